"""The cost forecast in a campaign's plan: people x reminders left x rate, per OPD and in total.

For each OPD, the reminders its reachable people may still get: each person's remaining budget
(`max_reminders` minus counted deliveries), capped by the rounds the schedule still allows
before the campaign ends with `min_gap_days` between them. Within the limits: a zone whose
planned rounds the messaging limit cannot finish before the end counts only the share it can
reach. It is an upper bound for a budget (APBD): opt-outs, failures and free messages only
lower the bill.

Disclosure control is the statistics' own (docs/privacy.md): OPDs with fewer than
`SPI_STATS_GROUP_MIN` people listed are counted only inside "OPD lainnya", every count is
rounded with the keyed random rounding to base 5, rupiah come from the rounded counts, and the
total is the sum of the published rows. Only admins see it, as they alone see the plan's reach.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.campaigns import budget, rounds
from app.campaigns.costs import RateTable
from app.campaigns.models import Campaign
from app.campaigns.schemas import CostForecast, ForecastRow
from app.campaigns.timing import planned_firings
from app.opds.models import Opd
from app.stats.rounding import random_round
from app.templates.models import MessageTemplate

OTHER_CODE, OTHER_NAME, TOTAL_NAME = "LAINNYA", "OPD lainnya", "Jumlah"
FIRINGS_SCANNED = 400  # a daily schedule over a year; campaigns last weeks
NOTE = (
    "Perkiraan paling banyak: setiap orang yang masih dapat diingatkan × sisa pengingatnya "
    "(sebelum kampanye berakhir dan dalam batas pesan Meta) × tarif per pesan terkirim. "
    "Jumlah dibulatkan ke kelipatan 5 seperti statistik; OPD kecil digabung dalam "
    '"OPD lainnya".'
)


@dataclass(frozen=True)
class _Opd:
    id: int
    code: str
    name: str
    listed: int
    reminders: int


def rounds_left(campaign: Campaign, timezone: str, now: datetime) -> int:
    """Rounds a person can still get before the end: firings `min_gap_days` apart, at most
    `max_reminders` of them."""
    firings = planned_firings(rounds.policy_for(campaign), timezone, now, limit=FIRINGS_SCANNED)
    gap = timedelta(days=campaign.min_gap_days)
    count, last = 0, None
    for firing in firings:
        if last is None or firing.send_at - last >= gap:
            count, last = count + 1, firing.send_at
        if count == campaign.max_reminders:
            break
    return count


def cost_forecast(
    session: Session,
    *,
    campaign: Campaign,
    now: datetime,
    reach_share: Mapping[str, float],
    rates: RateTable,
    group_min: int,
    rounding_key: bytes | None,
) -> CostForecast:
    """The forecast for the zones of `reach_share` (zone → share the limit lets be reached)."""
    assert campaign.id is not None
    template = session.get(MessageTemplate, campaign.template_id)
    category = (template.category if template else "UTILITY").lower()
    rate = rates.rate(category)
    opds: list[_Opd] = []
    for timezone, share in reach_share.items():
        left = rounds_left(campaign, timezone, now)
        reminders = budget.reminders_left(
            session, campaign=campaign, timezone=timezone, rounds_left=left
        )
        listed = budget.listed_counts(session, campaign=campaign, timezone=timezone)
        found = session.exec(select(Opd).where(col(Opd.id).in_(list(listed)))).all()
        for found_opd in found:
            assert found_opd.id is not None
            n = int(reminders.get(found_opd.id, 0) * share)
            opds.append(_Opd(found_opd.id, found_opd.code, found_opd.name, listed[found_opd.id], n))
    rows: list[ForecastRow] = []
    small = sorted((o for o in opds if o.listed < group_min), key=lambda o: o.code)
    for opd in sorted((o for o in opds if o.listed >= group_min), key=lambda o: o.code):
        rows.append(_row(opd.code, opd.name, opd.reminders, rate, campaign.id, rounding_key))
    if small:
        # The group is a cell of its own: its members are part of its identity, as in the stats.
        cell = f"{OTHER_CODE}:{','.join(o.code for o in small)}"
        total = sum(o.reminders for o in small)
        group = _row(cell, OTHER_NAME, total, rate, campaign.id, rounding_key)
        rows.append(group.model_copy(update={"opd_code": OTHER_CODE}))
    published = sum(r.reminders for r in rows)
    return CostForecast(
        category=category,
        rate_idr=rate,
        rates_as_of=rates.as_of,
        rows=rows,
        total=ForecastRow(
            opd_code=None, opd_name=TOTAL_NAME, reminders=published, cost_idr=published * rate
        ),
        note=NOTE,
    )


def _row(
    code: str, name: str, reminders: int, rate: int, campaign_id: int, key: bytes | None
) -> ForecastRow:
    cell = f"forecast:{campaign_id}|{code}"
    shown = reminders if key is None else random_round(reminders, key=key, cell=cell)
    return ForecastRow(opd_code=code, opd_name=name, reminders=shown, cost_idr=shown * rate)
