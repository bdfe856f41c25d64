"""Look a number up on one OPD's own list (the console's "is 0812-… on my list?").

The answer reads only this OPD's listed rows: whether the number is new, listed elsewhere,
opted out or erased never changes it (invariant 6). A suppressed number this OPD lists keeps its
blind index, so it is found like any other.
"""

from sqlmodel import Session, select

from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment, EnrolmentStatus
from app.enrolment.schemas import EnrolmentPublic
from app.errors import NotFound
from app.opds.models import Opd
from app.security import PhoneVault


def find_on_list(
    session: Session, *, vault: PhoneVault, opd: Opd, phone: str, regions: frozenset[str]
) -> EnrolmentPublic | None:
    """This OPD's listing of a number written any common way, or None; 422 if unreadable."""
    e164 = enrolment_service.normalise_or_422(phone, regions=regions)
    index = vault.blind_index(e164)
    row = session.exec(
        select(Enrolment).where(
            Enrolment.opd_id == opd.id,
            Enrolment.phone_index == index,
            Enrolment.status == EnrolmentStatus.active,
        )
    ).first()
    return enrolment_service.to_public(row, opd_code=opd.code, vault=vault) if row else None


def get_listed(session: Session, *, vault: PhoneVault, opd: Opd, public_id: str) -> EnrolmentPublic:
    """One listed row of this OPD (masked), or 404 for any other id."""
    row = session.exec(
        select(Enrolment).where(
            Enrolment.opd_id == opd.id,
            Enrolment.public_id == public_id,
            Enrolment.status == EnrolmentStatus.active,
        )
    ).first()
    if row is None:
        raise NotFound("pegawai ini tidak ada di daftar", code="enrolment_not_found")
    return enrolment_service.to_public(row, opd_code=opd.code, vault=vault)
