"""Enrolment routes: coordinators for their own OPD, admins for any."""

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from app.audit.refusals import audited_refusal
from app.auth.dependencies import EnrolerDep, ensure_opd_scope
from app.db import SessionDep
from app.dependencies import SettingsDep, VaultDep
from app.enrolment import service
from app.enrolment.importing import ImportOptions, ImportReport, import_enrolments
from app.enrolment.limits import SpreadsheetLimits
from app.enrolment.rows import FileFormatError, iter_rows
from app.enrolment.schemas import EnrolmentCreate, EnrolmentPage, EnrolmentPublic
from app.errors import Invalid
from app.ids import Offset
from app.opds import service as opd_service

router = APIRouter(prefix="/api/v1", tags=["Enrolment"])


@router.post(
    "/opds/{code}/enrolments",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrolmentPublic,
    responses={409: {"description": "already on this OPD's list"}},
)
def create_enrolment(
    code: str,
    body: EnrolmentCreate,
    session: SessionDep,
    actor: EnrolerDep,
    vault: VaultDep,
    settings: SettingsDep,
) -> EnrolmentPublic:
    """Enrol one person who consented; the number is stored encrypted and shown masked."""
    ensure_opd_scope(actor, code.upper())
    opd = opd_service.get_by_code(session, code=code)
    with audited_refusal(session, actor, "enrolment.create", object_type="opd", object_id=opd.code):
        enrolment = service.enrol(
            session,
            vault=vault,
            actor=actor,
            opd=opd,
            phone=body.phone,
            label=body.label,
            consent_method=body.consent.method,
            consent_recorded_at=body.consent.recorded_at,
            notice_version=body.consent.notice_version or settings.privacy_notice_version,
            regions=settings.phone_regions,
        )
    return service.to_public(enrolment, opd_code=opd.code, vault=vault)


@router.get("/opds/{code}/enrolments", response_model=EnrolmentPage)
def list_enrolments(
    code: str,
    session: SessionDep,
    actor: EnrolerDep,
    vault: VaultDep,
    # Only the list itself: no filter may show who stopped, was erased or was withdrawn.
    status_filter: Annotated[Literal["active"], Query(alias="status")] = "active",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> EnrolmentPage:
    """A page of this OPD's list; numbers are masked."""
    ensure_opd_scope(actor, code.upper())
    opd = opd_service.get_by_code(session, code=code)
    return service.list_enrolments(session, vault=vault, opd=opd, limit=limit, offset=offset)


@router.delete("/enrolments/{enrolment_id}", status_code=status.HTTP_204_NO_CONTENT)
def withdraw_enrolment(enrolment_id: str, session: SessionDep, actor: EnrolerDep) -> Response:
    """Withdraw an enrolment: the number and label are erased at once."""
    service.withdraw(session, actor=actor, public_id=enrolment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/opds/{code}/enrolments/import",
    responses={
        200: {"description": "row-level report"},
        413: {"description": "file over the configured limit"},
        422: {"description": "unreadable file, or all_or_nothing with bad rows (report included)"},
    },
)
def import_enrolments_file(
    code: str,
    session: SessionDep,
    actor: EnrolerDep,
    vault: VaultDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV (comma or semicolon) or XLSX")],
    all_or_nothing: Annotated[bool, Form()] = False,
    default_consent_method: Annotated[Literal["paper_form", "digital_form"] | None, Form()] = None,
) -> StreamingResponse:
    """Enrol from a CSV/XLSX file; answers with a row-level report."""
    ensure_opd_scope(actor, code.upper())
    opd = opd_service.get_by_code(session, code=code)
    report = ImportReport()
    opts = ImportOptions.from_settings(
        settings, all_or_nothing=all_or_nothing, default_consent_method=default_consent_method
    )
    try:
        limits = SpreadsheetLimits.from_settings(settings)
        rows = iter_rows(file.file, filename=file.filename, limits=limits)
        summary = import_enrolments(
            session, vault=vault, actor=actor, opd=opd, rows=rows, opts=opts, report=report
        )
    except FileFormatError as exc:
        report.close()
        raise Invalid(str(exc), code="unreadable_file") from exc
    except BaseException:
        report.close()
        raise
    session.commit()
    head: dict[str, object] = {"opd": opd.code}
    status_code = 200
    if not summary.applied:
        status_code = 422
        head["error"] = {
            "code": "import_rejected",
            "message": f"{summary.invalid} baris bermasalah; tidak ada yang didaftarkan "
            "karena all_or_nothing dipilih",
        }

    def body() -> Iterator[bytes]:
        try:
            yield from report.iter_json(head)
        finally:
            report.close()

    return StreamingResponse(body(), status_code=status_code, media_type="application/json")
