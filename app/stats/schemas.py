"""What the statistics API returns: aggregate counts only, small cells withheld.

A count is an integer, or a marker when withheld: ``"<5"`` (fewer than k, k = 5 by default)
or ``"x"`` (withheld so that a small count cannot be worked out from the totals). A rate is a
fraction between 0 and 1, ``"x"`` when a count it is built on is withheld, or null when its
denominator is 0.
"""

from datetime import date

from pydantic import BaseModel, Field

Count = int | str
Rate = float | str | None

# Indonesian column headers of every count.
_COUNT_HEADERS = {
    "enrolled": "Terdaftar aktif",
    "opted_out": "Berhenti (STOP)",
    "unreachable": "Tidak terjangkau",
    "scheduled": "Pengingat dijadwalkan",
    "accepted": "Diterima WhatsApp",
    "delivered": "Terkirim",
    "failed_not_on_whatsapp": "Gagal: bukan nomor WhatsApp",
    "failed_refused": "Gagal: ditolak WhatsApp",
    "failed_other": "Gagal: lainnya",
    "unknown": "Tidak diketahui",
    "skipped": "Dilewati",
    "pending": "Menunggu",
}
_OUTCOMES = (
    "scheduled",
    "accepted",
    "delivered",
    "failed_not_on_whatsapp",
    "failed_refused",
    "failed_other",
    "unknown",
    "skipped",
)
# Measures of the per-OPD table, in column order, with their Indonesian headers.
CAMPAIGN_COUNTS: tuple[tuple[str, str], ...] = tuple(
    (key, _COUNT_HEADERS[key])
    for key in ("enrolled", "opted_out", "unreachable", *_OUTCOMES, "pending")
)
CAMPAIGN_RATES: tuple[tuple[str, str], ...] = (
    ("delivery_rate", "Tingkat terkirim (%)"),
    ("opt_out_rate", "Tingkat berhenti (%)"),
)
# Measures of the per-day table: outcomes counted on the day they happened.
DAILY_COUNTS: tuple[tuple[str, str], ...] = tuple(
    (key, _COUNT_HEADERS[key]) for key in (*_OUTCOMES, "opted_out", "unreachable")
)


def marker_notes(k: int) -> dict[str, str]:
    """What the markers mean, in Bahasa Indonesia (shown under tables and in the API)."""
    return {
        f"<{k}": f"kurang dari {k}; disembunyikan agar tidak ada orang yang dapat dikenali",
        "x": "disembunyikan agar angka kecil tidak dapat dihitung dari total",
    }


class StatsRow(BaseModel):
    """One OPD (or the total) of a campaign."""

    opd_code: str | None = Field(description="null for the total row")
    opd_name: str
    enrolled: Count = Field(description="active enrolments at the end of the period")
    opted_out: Count = Field(description="STOPs between the first day and the end of the period")
    unreachable: Count = Field(description="numbers found not to be on WhatsApp in the period")
    scheduled: Count
    accepted: Count
    delivered: Count
    failed_not_on_whatsapp: Count
    failed_refused: Count
    failed_other: Count
    unknown: Count
    skipped: Count
    pending: Count = Field(description="scheduled minus accepted, failed, unknown and skipped")
    delivery_rate: Rate = Field(description="delivered / scheduled")
    opt_out_rate: Rate = Field(description="opted_out / (enrolled + opted_out)")


class CampaignHeader(BaseModel):
    campaign_id: int
    campaign_name: str
    state: str
    first_day: date
    last_day: date
    as_of: date = Field(description="enrolment figures are counted up to this day")
    min_cell: int = Field(description="k: counts from 1 to k-1 are withheld")
    notes: dict[str, str]


class CampaignStats(CampaignHeader):
    rows: list[StatsRow]
    total: StatsRow


class DailyRow(BaseModel):
    """One day (or the total, with day null) of a campaign."""

    day: date | None
    scheduled: Count
    accepted: Count
    delivered: Count
    failed_not_on_whatsapp: Count
    failed_refused: Count
    failed_other: Count
    unknown: Count
    skipped: Count
    opted_out: Count
    unreachable: Count


class CampaignDaily(CampaignHeader):
    opd_code: str | None = Field(description="the coordinator's OPD; null for every OPD")
    days: list[DailyRow]
    total: DailyRow
