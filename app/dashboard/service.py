"""Read models for the dashboard pages (aggregates only)."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.auth.models import Role
from app.auth.principal import Principal
from app.campaigns import plan
from app.campaigns.models import Campaign, CampaignOpd
from app.config import Settings
from app.dashboard import charts
from app.db import utcnow
from app.security import PhoneVault
from app.stats import service as stats_service
from app.templates.rendering import format_date_id

STATE_LABELS = {
    "draft": "draf",
    "active": "aktif",
    "paused": "dijeda",
    "finished": "selesai",
    "purged": "selesai, data pribadi dihapus",
}
ROLE_LABELS = {"admin": "admin", "inspectorate": "inspektorat", "coordinator": "koordinator OPD"}


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    spi_year: int
    period: str
    state: str
    state_label: str
    alert: str | None


def _period(campaign: Campaign) -> str:
    return f"{format_date_id(campaign.first_day)} – {format_date_id(campaign.last_day)}"


def visible_campaigns(session: Session, *, viewer: Principal) -> list[Campaign]:
    """Campaigns the viewer may see: all, or those covering a coordinator's OPD."""
    stmt = select(Campaign).order_by(col(Campaign.id).desc())
    if viewer.role is Role.coordinator:
        covering = select(CampaignOpd.campaign_id).where(CampaignOpd.opd_id == viewer.opd_id)
        stmt = stmt.where(or_(col(Campaign.all_opds).is_(True), col(Campaign.id).in_(covering)))
    return list(session.exec(stmt).all())


def campaign_rows(session: Session, *, viewer: Principal) -> list[CampaignRow]:
    """The campaign list with Indonesian state labels and alerts."""
    return campaign_rows_for(visible_campaigns(session, viewer=viewer))


def campaign_rows_for(campaigns: list[Campaign]) -> list[CampaignRow]:
    """List rows (labels, period, alert) for these campaigns."""
    rows = []
    for c in campaigns:
        assert c.id is not None
        alert = None
        if c.state == "paused":
            alert = f"dijeda: {c.paused_reason}" if c.paused_reason else "dijeda oleh admin"
        rows.append(
            CampaignRow(
                id=c.id,
                name=c.name,
                spi_year=c.spi_year,
                period=_period(c),
                state=c.state,
                state_label=STATE_LABELS.get(c.state, c.state),
                alert=alert,
            )
        )
    return rows


ZONE_LABELS = {
    "Asia/Jakarta": "WIB (Asia/Jakarta)",
    "Asia/Pontianak": "WIB (Asia/Pontianak)",
    "Asia/Makassar": "WITA (Asia/Makassar)",
    "Asia/Jayapura": "WIT (Asia/Jayapura)",
}


def campaign_page(
    session: Session, *, campaign_id: int, viewer: Principal, settings: Settings, vault: PhoneVault
) -> dict[str, Any]:
    """Everything the campaign page shows, rounded exactly as the statistics API rounds it."""
    key, group_min = stats_service.stats_key(vault), settings.stats_group_min
    stats = stats_service.campaign_stats(
        session, campaign_id=campaign_id, viewer=viewer, key=key, group_min=group_min
    )
    daily = stats_service.campaign_daily(
        session, campaign_id=campaign_id, viewer=viewer, key=key, group_min=group_min
    )
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    zones = []
    if viewer.role is not Role.coordinator and campaign.state in ("draft", "active", "paused"):
        zones = plan.campaign_plan(
            session,
            campaign=campaign,
            now=utcnow(),
            limit=3,
            rounding_key=key,
            with_reach=viewer.is_admin,
        ).zones
    row = campaign_rows_for([campaign])[0]
    chart = charts.daily_bars(
        [d.day for d in daily.days],
        [
            ("Terkirim", "#1f6f8b", [d.delivered for d in daily.days]),
            ("Berhenti", "#b45309", [d.opted_out for d in daily.days]),
        ],
    )
    total = stats.total.model_copy(update={"opd_name": "Jumlah"})
    return {
        "stats": stats,
        "rows": [*stats.rows, total] if len(stats.rows) > 1 else stats.rows,
        "state_label": row.state_label,
        "alert": row.alert,
        "period": row.period,
        "as_of": format_date_id(stats.as_of) if stats.as_of else None,
        "chart": chart,
        "zones": zones,
        "zone_label": lambda tz: ZONE_LABELS.get(tz, tz),
        "share": charts.share,
    }
