"""The coordinator console: an OPD's list, search, add, withdraw, poster and figures.

Server-rendered pages in Bahasa Indonesia on the dashboard's session. A coordinator reaches only
their own OPD (any other code is "not found"), an admin chooses an OPD, the inspectorate has no
enrolment pages. Every form carries the session's CSRF value; no page runs a script.
"""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, Response

from app.console import import_routes, messages, pages, poster, service
from app.dashboard import session as dash_session
from app.db import SessionDep
from app.dependencies import SettingsDep, VaultDep
from app.errors import AppError, Forbidden

router = APIRouter(prefix="/console", include_in_schema=False)
router.include_router(import_routes.router)

FLASHES = {
    "ditambah": "Pegawai berhasil ditambahkan ke daftar.",
    "ditarik": "Pegawai sudah ditarik dari daftar; nomor dan namanya dihapus.",
}


@router.get("/static/console.css")
def console_css() -> Response:
    """The console's only stylesheet (served from this origin: no CDN, no web font)."""
    return pages.harden(
        FileResponse(pages.STATIC_DIR / "console.css", media_type="text/css; charset=utf-8")
    )


@router.get("")
def console_home(request: Request, session: SessionDep, vault: VaultDep) -> Response:
    """A coordinator goes to their OPD; an admin chooses one; the inspectorate has none."""
    current = dash_session.read(request, session, vault=vault)
    if current is None:
        return pages.to_login()
    principal = current.principal
    if not pages.is_enroler(current):
        return pages.problem(request, current, Forbidden("no console", code="forbidden"))
    if principal.opd_code and not principal.is_admin:
        return pages.see_other(f"/console/opd/{principal.opd_code}")
    opds = service.choosable_opds(session, viewer=principal)
    return pages.render(request, "choose_opd.html", {"opds": opds}, current=current)


def _home(
    request: Request,
    visit: pages.Visit,
    session: SessionDep,
    vault: VaultDep,
    *,
    page: int = 1,
    flash: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    search: dict[str, object] | None = None,
    status_code: int = 200,
) -> Response:
    listing = service.list_page(session, vault=vault, opd=visit.opd, page=page)
    context = {
        "listing": listing,
        "flash": flash,
        "error": error,
        "form": form or {},
        "search": search,
        "consent_labels": service.CONSENT_LABELS,
        "today": date.today().isoformat(),
    }
    return pages.render(
        request, "home.html", context, current=visit.current, opd=visit.opd, status_code=status_code
    )


@router.get("/opd/{code}")
def opd_home(
    code: str,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    halaman: Annotated[int, Query(ge=1, le=100_000)] = 1,
    pesan: str = "",
) -> Response:
    """The OPD's list (masked numbers, labels, consent), paginated, with search and add."""
    visit = pages.open_visit(request, session, vault=vault, code=code)
    if isinstance(visit, Response):
        return visit
    return _home(request, visit, session, vault, page=halaman, flash=FLASHES.get(pesan))


@router.post("/opd/{code}/cari")
def search_number(
    code: str,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    nomor: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Is this number on my list? (POST: a number never travels in a URL or an access log.)"""
    visit = pages.open_form(request, session, vault=vault, code=code, csrf=csrf)
    if isinstance(visit, Response):
        return visit
    try:
        found = service.find(session, vault=vault, opd=visit.opd, phone=nomor, settings=settings)
    except AppError as exc:
        search: dict[str, object] = {"error": messages.text_for(exc.code)}
        return _home(request, visit, session, vault, search=search, status_code=exc.status_code)
    return _home(request, visit, session, vault, search={"found": found, "asked": True})


@router.post("/opd/{code}/tambah")
def add_person(
    code: str,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    nomor: Annotated[str, Form(max_length=64)] = "",
    nama: Annotated[str, Form(max_length=200)] = "",
    metode: Annotated[str, Form(max_length=32)] = "",
    tanggal: Annotated[str, Form(max_length=10)] = "",
    bukti: Annotated[str, Form(max_length=8)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Add one person who consented, with the consent evidence."""
    visit = pages.open_form(request, session, vault=vault, code=code, csrf=csrf)
    if isinstance(visit, Response):
        return visit
    form = {"nomor": nomor, "nama": nama, "metode": metode, "tanggal": tanggal}
    error = None
    if bukti != "ya":
        error = "Centang pernyataan bahwa Anda menyimpan bukti persetujuan pegawai ini."
    day = None
    try:
        day = date.fromisoformat(tanggal) if tanggal else None
    except ValueError:
        error = messages.text_for("import.consent_date_unreadable")
    if error is None:
        try:
            service.add_person(
                session,
                vault=vault,
                actor=visit.current.principal,
                opd=visit.opd,
                phone=nomor,
                label=nama,
                consent_method=metode,
                consent_day=day,
                settings=settings,
            )
        except AppError as exc:
            label_problem = exc.message.startswith("label: ")
            text = messages.reason_text(exc.message) if label_problem else None
            error = text or messages.text_for(exc.code)
            return _home(
                request, visit, session, vault, error=error, form=form, status_code=exc.status_code
            )
    if error is not None:
        return _home(request, visit, session, vault, error=error, form=form, status_code=422)
    return pages.see_other(f"/console/opd/{visit.opd.code}?pesan=ditambah")


@router.get("/opd/{code}/tarik/{enrolment_id}")
def withdraw_form(
    code: str, enrolment_id: str, request: Request, session: SessionDep, vault: VaultDep
) -> Response:
    """Ask before withdrawing one person from the list."""
    visit = pages.open_visit(request, session, vault=vault, code=code)
    if isinstance(visit, Response):
        return visit
    try:
        person = service.listed(session, vault=vault, opd=visit.opd, public_id=enrolment_id)
    except AppError as exc:
        return pages.problem(request, visit.current, exc, opd=visit.opd)
    context = {"person": person, "consent_labels": service.CONSENT_LABELS}
    return pages.render(request, "withdraw.html", context, current=visit.current, opd=visit.opd)


@router.post("/opd/{code}/tarik/{enrolment_id}")
def withdraw_person(
    code: str,
    enrolment_id: str,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Withdraw one person: the number and label are erased at once."""
    visit = pages.open_form(request, session, vault=vault, code=code, csrf=csrf)
    if isinstance(visit, Response):
        return visit
    try:
        service.withdraw(
            session,
            vault=vault,
            actor=visit.current.principal,
            opd=visit.opd,
            public_id=enrolment_id,
        )
    except AppError as exc:
        return pages.problem(request, visit.current, exc, opd=visit.opd)
    return pages.see_other(f"/console/opd/{visit.opd.code}?pesan=ditarik")


@router.get("/opd/{code}/poster")
def poster_page(
    code: str, request: Request, session: SessionDep, vault: VaultDep, settings: SettingsDep
) -> Response:
    """A printable A4 poster: scan or tap to send DAFTAR <kode OPD> on WhatsApp."""
    visit = pages.open_visit(request, session, vault=vault, code=code)
    if isinstance(visit, Response):
        return visit
    sheet = poster.poster(
        opd_code=visit.opd.code,
        opd_name=visit.opd.name,
        institution=settings.institution_name,
        number=settings.whatsapp_display_number,
    )
    context = {"poster": sheet, "stop_keywords": poster.STOP_KEYWORDS}
    return pages.render(request, "poster.html", context, current=visit.current, opd=visit.opd)


@router.get("/opd/{code}/angka")
def figures_page(
    code: str, request: Request, session: SessionDep, vault: VaultDep, settings: SettingsDep
) -> Response:
    """The OPD's aggregate figures, protected exactly as the statistics API publishes them."""
    visit = pages.open_visit(request, session, vault=vault, code=code)
    if isinstance(visit, Response):
        return visit
    campaigns = service.figures(
        session, vault=vault, viewer=visit.current.principal, opd=visit.opd, settings=settings
    )
    context = {
        "campaigns": campaigns,
        "measures": service.MEASURE_LABELS,
        "group_min": settings.stats_group_min,
    }
    return pages.render(request, "figures.html", context, current=visit.current, opd=visit.opd)
