"""Dashboard pages for admins: the sending number's state and alerts, and the pre-flight."""

import contextlib
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.dashboard import sender_view, service
from app.dashboard import session as dash_session
from app.db import SessionDep, read_scope, utcnow
from app.dependencies import VaultDep
from app.errors import AppError
from app.ids import DbId
from app.security import PhoneVault
from app.sender import alerts, doctor, runtime

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _render(
    request: Request, name: str, context: dict[str, Any], current: dash_session.DashboardSession
) -> HTMLResponse:
    base = {
        "viewer": current.principal,
        "csrf": current.csrf,
        "role_label": service.ROLE_LABELS[current.principal.role.value],
    }
    response = templates.TemplateResponse(request, name, base | context)
    response.headers["Cache-Control"] = "no-store"
    return response


def _admin(
    request: Request, session: Session, vault: PhoneVault
) -> dash_session.DashboardSession | Response:
    current = dash_session.read(request, session, vault=vault)
    if current is None:
        return RedirectResponse("/dashboard/login", status_code=status.HTTP_303_SEE_OTHER)
    if not current.principal.is_admin:
        return HTMLResponse("Halaman ini hanya untuk admin.", status_code=403)
    return current


def _admin_outside(request: Request, vault: PhoneVault) -> dash_session.DashboardSession | Response:
    # For the routes that call Meta: no transaction of theirs may stay open meanwhile.
    with read_scope(request.app.state.engine) as session:
        return _admin(request, session, vault)


def _back(note: str | None = None) -> RedirectResponse:
    url = "/dashboard/sender" + (f"?catatan={note}" if note else "")
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/sender")
def sender_page(request: Request, session: SessionDep, vault: VaultDep) -> Response:
    """The number's limit, throughput, quality and alerts; templates as Meta sees them."""
    current = _admin(request, session, vault)
    if isinstance(current, Response):
        return current
    page = sender_view.sender_page(session)
    page["note"] = {
        "dibaca": "Data nomor dibaca ulang dari Meta.",
        "gagal": "Meta tidak menjawab; data terakhir tetap ditampilkan.",
    }.get(request.query_params.get("catatan", ""))
    return _render(request, "sender.html", page, current)


@router.post("/sender/refresh")
async def refresh_sender(
    request: Request, vault: VaultDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Read the number from Meta now (CSRF-checked)."""
    current = await run_in_threadpool(_admin_outside, request, vault)
    if isinstance(current, Response):
        return current
    if not dash_session.csrf_ok(current.csrf, csrf):
        return Response("CSRF token salah", status_code=status.HTTP_403_FORBIDDEN)
    failure = await runtime.refresh(request.app.state.engine, request.app.state.whatsapp.account())
    return _back("gagal" if failure else "dibaca")


@router.post("/sender/alerts/{alert_id}/resolve")
def resolve_alert(
    alert_id: DbId,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Mark an alert as dealt with (CSRF-checked, audited)."""
    current = _admin(request, session, vault)
    if isinstance(current, Response):
        return current
    if not dash_session.csrf_ok(current.csrf, csrf):
        return Response("CSRF token salah", status_code=status.HTTP_403_FORBIDDEN)
    with contextlib.suppress(AppError):  # already resolved or gone: the page shows what is open
        alerts.resolve_alert(session, actor=current.principal, alert_id=alert_id, now=utcnow())
    return _back()


@router.get("/doctor")
async def doctor_page(request: Request, vault: VaultDep) -> Response:
    """Run the pre-flight and show each check with what to do."""
    current = await run_in_threadpool(_admin_outside, request, vault)
    if isinstance(current, Response):
        return current
    report = await doctor.check_app(request.app)
    context = {
        "report": report,
        "labels": sender_view.STATUS_LABELS,
        "checked_at": utcnow(),
    }
    return _render(request, "doctor.html", context, current)
