"""The inspectorate's dashboard: server-rendered pages in Bahasa Indonesia, aggregates only."""

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.auth import service as auth_service
from app.dashboard import service
from app.dashboard import session as dash_session
from app.db import SessionDep
from app.dependencies import SettingsDep, VaultDep
from app.errors import NotFound
from app.ids import DbId

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    current: dash_session.DashboardSession | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with the header's viewer, role label and CSRF value."""
    base: dict[str, Any] = {"viewer": None, "csrf": "", "role_label": ""}
    if current is not None:
        base = {
            "viewer": current.principal,
            "csrf": current.csrf,
            "role_label": service.ROLE_LABELS[current.principal.role.value],
        }
    response = templates.TemplateResponse(request, name, base | context, status_code=status_code)
    # Pages show aggregates only, but nothing of them belongs in a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _to_login() -> RedirectResponse:
    return RedirectResponse("/dashboard/login", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    """The login page: paste an API token."""
    csrf = dash_session.login_csrf(request)
    response = render(request, "login.html", {"csrf": csrf, "error": None})
    response.set_cookie(dash_session.PRE_LOGIN_COOKIE, csrf, httponly=True, samesite="strict")
    return response


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    token: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Exchange a token (sent in the form body, never in a URL) for a session cookie."""
    expected = request.cookies.get(dash_session.PRE_LOGIN_COOKIE, "")
    principal = None
    if dash_session.csrf_ok(expected, csrf):
        principal = auth_service.resolve_token(session, secret=token.strip())
    response: Response
    if principal is None or principal.token_id is None:
        fresh = dash_session.login_csrf(request)
        response = render(
            request,
            "login.html",
            {"csrf": fresh, "error": "Token tidak valid atau sudah dicabut."},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
        response.set_cookie(dash_session.PRE_LOGIN_COOKIE, fresh, httponly=True, samesite="strict")
        return response
    response = RedirectResponse("/dashboard", status_code=status.HTTP_303_SEE_OTHER)
    dash_session.start(
        response, vault=vault, token_id=principal.token_id, secure=request.url.scheme == "https"
    )
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, vault: VaultDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    """End the session (CSRF-checked)."""
    current = dash_session.read(request, session, vault=vault)
    if current is not None and not dash_session.csrf_ok(current.csrf, csrf):
        return Response("CSRF token salah", status_code=status.HTTP_403_FORBIDDEN)
    response = _to_login()
    dash_session.end(response)
    return response


@router.get("")
def campaigns_page(request: Request, session: SessionDep, vault: VaultDep) -> Response:
    """Campaign list with state and alerts."""
    current = dash_session.read(request, session, vault=vault)
    if current is None:
        return _to_login()
    rows = service.campaign_rows(session, viewer=current.principal)
    return render(request, "campaigns.html", {"campaigns": rows}, current=current)


@router.get("/campaigns/{campaign_id}")
def campaign_page(
    campaign_id: DbId,
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
) -> Response:
    """A campaign's aggregates: progress per OPD, the figures per closed day, next rounds."""
    current = dash_session.read(request, session, vault=vault)
    if current is None:
        return _to_login()
    try:
        page = service.campaign_page(
            session,
            campaign_id=campaign_id,
            viewer=current.principal,
            settings=settings,
            vault=vault,
        )
    except NotFound:
        return render(
            request, "missing.html", {}, current=current, status_code=status.HTTP_404_NOT_FOUND
        )
    return render(request, "campaign.html", page, current=current)
