"""What the statistics API returns: aggregate figures only, each rounded as docs/privacy.md says.

Every count is a multiple of 5 within 4 of the truth (keyed random rounding), counted up to the
end of the last closed day. Totals are sums of the published rows; rates are ratios of published
figures, null when the denominator is under 10.
"""

from datetime import date

from pydantic import BaseModel, Field

# Measures, in column order, with their Indonesian headers.
MEASURES: tuple[tuple[str, str], ...] = (
    ("enrolled", "Terdaftar"),
    ("scheduled", "Pengingat dijadwalkan"),
    ("delivered", "Terkirim"),
    ("not_delivered", "Tidak terkirim"),
    ("opted_out", "Berhenti (STOP)"),
    ("expired", "Kedaluwarsa"),
    ("billed", "Ditagih Meta"),
)
RATES: tuple[tuple[str, str], ...] = (
    ("delivery_rate", "Tingkat terkirim (%)"),
    ("opt_out_rate", "Tingkat berhenti (%)"),
)
OTHER_OPDS_CODE = "LAINNYA"
OTHER_OPDS_NAME = "OPD lainnya"


def method_notes(group_min: int) -> dict[str, str]:
    """How to read the figures, in Bahasa Indonesia (shown under tables and in the API)."""
    return {
        "pembulatan": (
            "setiap angka dibulatkan ke kelipatan 5 secara acak (selisih paling banyak 4), "
            "agar tidak ada orang yang dapat dikenali; jumlah adalah penjumlahan baris"
        ),
        "hari_tertutup": "angka dihitung sampai akhir hari kemarin (WIB), tidak pernah hari ini",
        "opd_lainnya": f"OPD dengan kurang dari {group_min} orang terdaftar digabung",
        "persentase": "dihitung dari angka yang dibulatkan; kosong bila penyebutnya di bawah 10",
    }


class Figures(BaseModel):
    """The published counts."""

    enrolled: int = Field(description="people on the list at the end of the period")
    scheduled: int = Field(description="reminders planned in the period")
    delivered: int = Field(description="reminders WhatsApp reported delivered")
    not_delivered: int = Field(description="reminders that failed, were skipped, or are unknown")
    opted_out: int = Field(description="STOPs by listed people in the period")
    expired: int = Field(
        description="reminders accepted but not delivered before their send window ended"
    )
    billed: int = Field(
        description="delivered reminders Meta charged for (from the statuses' pricing)"
    )


class StatsRow(Figures):
    """One OPD, the group of small OPDs, or the total."""

    opd_code: str | None = Field(description="null for the total row; LAINNYA for the group")
    opd_name: str
    delivery_rate: float | None = Field(description="delivered / scheduled")
    opt_out_rate: float | None = Field(description="opted_out / enrolled")


class CampaignHeader(BaseModel):
    campaign_id: int
    campaign_name: str
    state: str
    first_day: date
    last_day: date
    as_of: date | None = Field(description="figures count up to the end of this day; null before")
    group_min: int = Field(description="OPDs with fewer people listed are shown together")
    notes: dict[str, str]


class CampaignStats(CampaignHeader):
    rows: list[StatsRow]
    total: StatsRow


class DailyRow(Figures):
    """The figures at the end of one closed day (cumulative from the campaign's first day)."""

    day: date


class CampaignDaily(CampaignHeader):
    opd_code: str | None = Field(description="the coordinator's OPD; null for every OPD")
    days: list[DailyRow]


class BillingDay(BaseModel):
    """What Meta billed up to the end of one closed day (cumulative, as every figure here)."""

    day: date
    billed: int = Field(description="delivered reminders Meta charged for, rounded as `billed`")
    cost_idr: int = Field(description="billed x the rate of the campaign's category (rupiah)")


class BillingRow(BaseModel):
    """One OPD, the group of small OPDs, or the total: its days and its last figures."""

    opd_code: str | None = Field(description="null for the total row; LAINNYA for the group")
    opd_name: str
    billed: int
    cost_idr: int
    days: list[BillingDay]


class CampaignBilling(CampaignHeader):
    category: str = Field(description="Meta's pricing category of the campaign's template")
    rate_idr: int = Field(description="rupiah per delivered message of that category")
    rates_as_of: date = Field(description="the date of the rate card (SPI_MESSAGE_RATES_DATE)")
    rows: list[BillingRow]
    total: BillingRow
