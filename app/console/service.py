"""What the coordinator console shows and does, through the enrolment, OPD and stats services.

Every answer here reads one OPD's own list or its protected aggregates; none depends on whether
a number is new, listed by another OPD, opted out or erased (docs/privacy.md, invariant 6).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session

from app.auth.models import Role
from app.auth.principal import Principal
from app.config import Settings
from app.dashboard import service as dashboard_service
from app.enrolment import listing
from app.enrolment import service as enrolment_service
from app.enrolment.schemas import EnrolmentPublic, clean_label
from app.errors import Forbidden, Invalid, NotFound
from app.opds import service as opd_service
from app.opds.models import Opd
from app.security import PhoneVault
from app.stats import service as stats_service
from app.stats.schemas import MEASURES, StatsRow
from app.templates.rendering import format_date_id

PAGE_SIZE = 50
CONSENT_LABELS = {
    "paper_form": "formulir kertas",
    "digital_form": "formulir digital",
    "whatsapp": "WhatsApp (DAFTAR lalu YA)",
}


def local_day(moment: datetime, timezone: str | None) -> str:
    """A stored moment as the OPD's own calendar day, written the Indonesian way (15/07/2026)."""
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(timezone or "Asia/Jakarta")).strftime("%d/%m/%Y")


def resolve_opd(session: Session, *, viewer: Principal, code: str) -> Opd:
    """The OPD a viewer may manage: a coordinator only their own, an admin any; else 403/404."""
    if viewer.role is Role.inspectorate:
        raise Forbidden("the inspectorate has no enrolment pages", code="forbidden")
    if viewer.role is Role.coordinator and (viewer.opd_code or "").upper() != code.upper():
        # Another OPD's pages do not exist for a coordinator, whether or not the code does.
        raise NotFound("no such OPD", code="opd_not_found")
    return opd_service.get_by_code(session, code=code)


def choosable_opds(session: Session, *, viewer: Principal) -> list[Opd]:
    """The OPDs an admin may open the console for."""
    return list(opd_service.list_opds(session, viewer=viewer))


@dataclass(frozen=True)
class ListPage:
    items: list[EnrolmentPublic]
    total: int
    page: int
    pages: int


def list_page(session: Session, *, vault: PhoneVault, opd: Opd, page: int) -> ListPage:
    """One page of the OPD's list, newest first, numbers masked."""
    page = max(page, 1)
    result = enrolment_service.list_enrolments(
        session, vault=vault, opd=opd, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    pages = max(1, -(-result.total // PAGE_SIZE))
    return ListPage(items=result.items, total=result.total, page=page, pages=pages)


def find(
    session: Session, *, vault: PhoneVault, opd: Opd, phone: str, settings: Settings
) -> EnrolmentPublic | None:
    """The OPD's listing of a number written any common way (422 if it is not a number)."""
    return listing.find_on_list(
        session, vault=vault, opd=opd, phone=phone, regions=settings.phone_regions
    )


def add_person(
    session: Session,
    *,
    vault: PhoneVault,
    actor: Principal,
    opd: Opd,
    phone: str,
    label: str,
    consent_method: str,
    consent_day: date | None,
    settings: Settings,
) -> EnrolmentPublic:
    """List one consenting person with their consent evidence (the API's enrol)."""
    if consent_method not in ("paper_form", "digital_form"):
        raise Invalid("consent: unknown method", code="import.consent_method_unknown")
    try:
        cleaned = clean_label(label)
    except ValueError as exc:
        raise Invalid(f"label: {exc}", code="invalid") from exc
    recorded_at = None
    if consent_day is not None:
        recorded_at = datetime.combine(consent_day, time(0), tzinfo=ZoneInfo(opd.timezone))
    enrolment = enrolment_service.enrol(
        session,
        vault=vault,
        actor=actor,
        opd=opd,
        phone=phone,
        label=cleaned,
        consent_method=consent_method,
        consent_recorded_at=recorded_at,
        notice_version=settings.privacy_notice_version,
        regions=settings.phone_regions,
    )
    return enrolment_service.to_public(enrolment, opd_code=opd.code, vault=vault)


def listed(session: Session, *, vault: PhoneVault, opd: Opd, public_id: str) -> EnrolmentPublic:
    """One listing of this OPD (404 for another OPD's or a withdrawn one)."""
    return listing.get_listed(session, vault=vault, opd=opd, public_id=public_id)


def withdraw(
    session: Session, *, vault: PhoneVault, actor: Principal, opd: Opd, public_id: str
) -> None:
    """Withdraw one listing of this OPD (its number and label are erased at once)."""
    listing.get_listed(session, vault=vault, opd=opd, public_id=public_id)
    enrolment_service.withdraw(session, actor=actor, public_id=public_id)


@dataclass(frozen=True)
class CampaignFigures:
    name: str
    period: str
    as_of: str | None
    row: StatsRow | None  # None: the OPD is published only inside "OPD lainnya"


def figures(
    session: Session, *, vault: PhoneVault, viewer: Principal, opd: Opd, settings: Settings
) -> list[CampaignFigures]:
    """The OPD's published figures per campaign: the stats service's rows, nothing new."""
    assert opd.id is not None
    covering = Principal(name=viewer.name, role=Role.coordinator, opd_id=opd.id, opd_code=opd.code)
    key, group_min = stats_service.stats_key(vault), settings.stats_group_min
    out = []
    for campaign in dashboard_service.visible_campaigns(session, viewer=covering):
        assert campaign.id is not None
        stats = stats_service.campaign_stats(
            session, campaign_id=campaign.id, viewer=viewer, key=key, group_min=group_min
        )
        row = next((r for r in stats.rows if r.opd_code == opd.code), None)
        out.append(
            CampaignFigures(
                name=campaign.name,
                period=" – ".join(
                    format_date_id(d) for d in (campaign.first_day, campaign.last_day)
                ),
                as_of=format_date_id(stats.as_of) if stats.as_of else None,
                row=row,
            )
        )
    return out


MEASURE_LABELS = MEASURES
