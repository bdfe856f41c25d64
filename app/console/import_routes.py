"""The console's spreadsheet import: template, upload → check page → confirm → result, report."""

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.responses import Response, StreamingResponse

from app.console import importer, messages, pages, spreadsheets
from app.db import SessionDep
from app.dependencies import SettingsDep, VaultDep
from app.enrolment.importing import ImportOptions
from app.enrolment.limits import SpreadsheetLimits
from app.errors import AppError, Invalid

router = APIRouter()

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPIRED = (
    "Hasil pemeriksaan ini sudah kedaluwarsa (lebih dari 30 menit) atau bukan milik Anda. "
    "Unggah berkasnya lagi."
)


@router.get("/opd/{code}/impor")
def import_form(code: str, request: Request, session: SessionDep, vault: VaultDep) -> Response:
    """Upload a list: the template, the rules, the file field."""
    visit = pages.open_visit(request, session, vault=vault, code=code)
    if isinstance(visit, Response):
        return visit
    return pages.render(request, "import.html", {}, current=visit.current, opd=visit.opd)


@router.get("/opd/{code}/impor/templat.xlsx")
def import_template(code: str, request: Request, session: SessionDep, vault: VaultDep) -> Response:
    """The XLSX template: Indonesian headers, the phone column as text, a sheet of instructions."""
    visit = pages.open_visit(request, session, vault=vault, code=code)
    if isinstance(visit, Response):
        return visit
    name = f"templat-daftar-pegawai-{visit.opd.code}.xlsx"
    response = Response(
        spreadsheets.template_xlsx(),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    return pages.harden(response)


@router.post("/opd/{code}/impor/periksa")
def check_import(
    code: str,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    berkas: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form()] = "",
    metode_bawaan: Annotated[Literal["", "paper_form", "digital_form"], Form()] = "",
    semua_atau_tidak: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Check every row of an upload and show each problem by row; nothing is enrolled yet."""
    visit = pages.open_form(request, session, vault=vault, code=code, csrf=csrf)
    if isinstance(visit, Response):
        return visit
    all_or_nothing = semua_atau_tidak == "ya"
    opts = ImportOptions.from_settings(
        settings,
        all_or_nothing=all_or_nothing,
        default_consent_method=metode_bawaan or None,
    )
    try:
        if (berkas.size or 0) > settings.max_import_bytes:
            raise Invalid("file too large", code="too_large", status_code=413)
        result = importer.check_upload(
            session,
            vault=vault,
            actor=visit.current.principal,
            opd=visit.opd,
            stream=berkas.file,
            filename=berkas.filename,
            opts=opts,
            limits=SpreadsheetLimits.from_settings(settings),
        )
    except importer.UnreadableFile as exc:
        error = exc.limit or messages.text_for("unreadable_file")
        return pages.render(
            request,
            "import.html",
            {"error": error},
            current=visit.current,
            opd=visit.opd,
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    except AppError as exc:
        return pages.render(
            request,
            "import.html",
            {"error": messages.text_for(exc.code)},
            current=visit.current,
            opd=visit.opd,
            status_code=exc.status_code,
        )
    finally:
        berkas.file.close()
    context = {
        "result": result,
        "all_or_nothing": all_or_nothing,
        "blocked": all_or_nothing and result.invalid > 0,
        "filename": berkas.filename or "",
        "labels": spreadsheets.OUTCOME_LABELS,
    }
    return pages.render(request, "import_check.html", context, current=visit.current, opd=visit.opd)


@router.post("/opd/{code}/impor/konfirmasi")
def confirm_import(
    code: str,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Enrol the rows the check found ready; then the result and its report."""
    visit = pages.open_form(request, session, vault=vault, code=code, csrf=csrf)
    if isinstance(visit, Response):
        return visit
    opts = ImportOptions.from_settings(settings, all_or_nothing=False, default_consent_method=None)
    try:
        result = importer.confirm_import(
            session,
            vault=vault,
            actor=visit.current.principal,
            opd=visit.opd,
            token=token,
            opts=opts,
        )
    except importer.TokenRefused:
        return pages.render(
            request,
            "import.html",
            {"error": EXPIRED},
            current=visit.current,
            opd=visit.opd,
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    context = {"result": result, "labels": spreadsheets.OUTCOME_LABELS}
    return pages.render(
        request, "import_result.html", context, current=visit.current, opd=visit.opd
    )


@router.post("/opd/{code}/impor/laporan")
def import_report(
    code: str,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """The finished import's report as CSV: row, outcome, reason (never a number)."""
    visit = pages.open_form(request, session, vault=vault, code=code, csrf=csrf)
    if isinstance(visit, Response):
        return visit
    try:
        rows = importer.report_rows(vault, token, opd=visit.opd, actor=visit.current.principal)
    except importer.TokenRefused:
        return pages.render(
            request,
            "problem.html",
            {"message": EXPIRED},
            current=visit.current,
            opd=visit.opd,
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    name = f"laporan-impor-{visit.opd.code}.csv"
    response = StreamingResponse(
        spreadsheets.report_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    return pages.harden(response)
