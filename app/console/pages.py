"""Rendering for the console: the dashboard session, the OPD gate, hardened headers."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from app.auth.models import Role
from app.console import messages, service
from app.dashboard import session as dash_session
from app.errors import AppError
from app.http_headers import CONTENT_SECURITY_POLICY
from app.opds.models import Opd
from app.security import PhoneVault

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC_DIR = Path(__file__).parent / "static"

# The dashboard's policy (app.http_headers): no script, styles from this origin only.
CSP = CONTENT_SECURITY_POLICY
ROLE_LABELS = {"admin": "admin", "inspectorate": "inspektorat", "coordinator": "koordinator OPD"}


def harden(response: Response) -> Response:
    """The console's security headers; nothing of a staff list belongs in a shared cache."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class Visit:
    """A logged-in viewer on one OPD's console."""

    current: dash_session.DashboardSession
    opd: Opd


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    current: dash_session.DashboardSession | None,
    opd: Opd | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A console page with the header's viewer, CSRF value and the OPD's navigation."""
    base: dict[str, Any] = {
        "viewer": None,
        "csrf": "",
        "role_label": "",
        "opd": opd,
        "local_day": lambda moment: service.local_day(moment, opd.timezone if opd else None),
    }
    if current is not None:
        base |= {
            "viewer": current.principal,
            "csrf": current.csrf,
            "role_label": ROLE_LABELS[current.principal.role.value],
            "is_admin": current.principal.is_admin,
        }
    response = templates.TemplateResponse(request, name, base | context, status_code=status_code)
    harden(response)
    return response


def see_other(url: str) -> Response:
    """A 303 to another console page (after a form, or to the right OPD)."""
    return harden(RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER))


def to_login() -> Response:
    """Where a visitor without a session goes."""
    return see_other("/dashboard/login")


def problem(
    request: Request,
    current: dash_session.DashboardSession | None,
    exc: AppError,
    *,
    opd: Opd | None = None,
) -> HTMLResponse:
    """An expected refusal as a page in Bahasa Indonesia with the API's status code."""
    return render(
        request,
        "problem.html",
        {"message": messages.text_for(exc.code)},
        current=current,
        opd=opd,
        status_code=exc.status_code,
    )


def csrf_refused(request: Request, visit: Visit) -> HTMLResponse:
    """A form without the session's CSRF value is refused, with nothing done."""
    return render(
        request,
        "problem.html",
        {"message": "Formulir ini kedaluwarsa atau tidak sah. Muat ulang halaman lalu coba lagi."},
        current=visit.current,
        opd=visit.opd,
        status_code=status.HTTP_403_FORBIDDEN,
    )


def open_visit(
    request: Request, session: Session, *, vault: PhoneVault, code: str
) -> Visit | Response:
    """The session and the OPD it may manage here, or the page to answer instead."""
    current = dash_session.read(request, session, vault=vault)
    if current is None:
        return to_login()
    try:
        opd = service.resolve_opd(session, viewer=current.principal, code=code)
    except AppError as exc:
        return problem(request, current, exc)
    return Visit(current=current, opd=opd)


def open_form(
    request: Request, session: Session, *, vault: PhoneVault, code: str, csrf: str
) -> Visit | Response:
    """Like open_visit, for a posted form: without the session's CSRF value nothing is done."""
    visit = open_visit(request, session, vault=vault, code=code)
    if isinstance(visit, Response) or dash_session.csrf_ok(visit.current.csrf, csrf):
        return visit
    return csrf_refused(request, visit)


def is_enroler(current: dash_session.DashboardSession) -> bool:
    """Coordinators and admins have console pages; the inspectorate has none."""
    return current.principal.role in (Role.admin, Role.coordinator)
