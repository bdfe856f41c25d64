"""What Meta billed for a campaign, per OPD and closed day, in messages and in rupiah.

The counts are the statistics' own `billed` figure (`app.stats.figures`): closed days only,
small OPDs grouped, keyed random rounding to base 5 (docs/privacy.md), and the same figure for
every viewer and surface. Rupiah are derived from the published count (count x the rate of the
campaign's template category in the configured rate table, `app.campaigns.costs`), never from
an exact one, and totals are sums of published rows, as every total here.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from app.auth.principal import Principal
from app.campaigns.costs import RateTable
from app.stats import service
from app.stats.figures import FIELDS
from app.stats.schemas import BillingDay, BillingRow, CampaignBilling
from app.templates.models import MessageTemplate

BILLED = FIELDS.index("billed")
DEFAULT_CATEGORY = "utility"  # the only category a reminder template may have (product.md)


def campaign_billing(
    session: Session,
    *,
    campaign_id: int,
    viewer: Principal,
    key: bytes,
    group_min: int,
    rates: RateTable,
    now: datetime | None = None,
) -> CampaignBilling:
    """Billed messages and their cost per OPD (or group) and closed day, and in total."""
    p = service.published(session, campaign_id, viewer, key, group_min, now)
    template = session.get(MessageTemplate, p.scope.campaign.template_id)
    category = (template.category if template else DEFAULT_CATEGORY).lower()
    rate = rates.rate(category)
    days = p.scope.days
    rows = []
    totals = [0] * len(days)
    for unit, series in zip(p.units, p.series, strict=True):
        billed = [int(series[i][BILLED]) for i in range(len(days))]
        totals = [t + b for t, b in zip(totals, billed, strict=True)]
        rows.append(_row(service.shown_code(unit.code), unit.name, days, billed, rate))
    return CampaignBilling.model_validate(
        {
            **service.header(p),
            "category": category,
            "rate_idr": rate,
            "rates_as_of": rates.as_of,
            "rows": rows,
            "total": _row(None, service.TOTAL_NAME, days, totals, rate),
        }
    )


def _row(code: str | None, name: str, days: list[date], billed: list[int], rate: int) -> BillingRow:
    last = billed[-1] if billed else 0
    return BillingRow(
        opd_code=code,
        opd_name=name,
        billed=last,
        cost_idr=last * rate,
        days=[
            BillingDay(day=day, billed=count, cost_idr=count * rate)
            for day, count in zip(days, billed, strict=True)
        ],
    )
