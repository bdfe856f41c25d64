"""Read models for the dashboard pages (aggregates only)."""

from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.auth.models import Role
from app.auth.principal import Principal
from app.campaigns.models import Campaign, CampaignOpd
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
    rows = []
    for c in visible_campaigns(session, viewer=viewer):
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
