"""OPD routes (admin; coordinators may read their own)."""

from fastapi import APIRouter, status

from app.auth.dependencies import AdminDep, ReaderDep
from app.db import SessionDep
from app.opds import service
from app.opds.schemas import OpdCreate, OpdPublic, OpdRename

router = APIRouter(prefix="/api/v1/opds", tags=["OPD"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OpdPublic,
    responses={409: {"description": "an OPD with this code exists"}},
)
def create_opd(body: OpdCreate, session: SessionDep, actor: AdminDep) -> OpdPublic:
    """Create an OPD with its time zone (admin)."""
    return OpdPublic.model_validate(service.create_opd(session, actor=actor, data=body))


@router.get("", response_model=list[OpdPublic])
def list_opds(session: SessionDep, viewer: ReaderDep) -> list[OpdPublic]:
    """List OPDs; a coordinator sees only their own."""
    return [OpdPublic.model_validate(o) for o in service.list_opds(session, viewer=viewer)]


@router.patch("/{code}", response_model=OpdPublic)
def rename_opd(code: str, body: OpdRename, session: SessionDep, actor: AdminDep) -> OpdPublic:
    """Rename an OPD (admin)."""
    return OpdPublic.model_validate(
        service.rename_opd(session, actor=actor, code=code, name=body.name)
    )
