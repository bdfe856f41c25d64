"""Rendering shared by every dashboard page: templates, the header's viewer, no caching."""

from pathlib import Path
from typing import Any

from fastapi import Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.dashboard import service
from app.dashboard import session as dash_session

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC_DIR = Path(__file__).parent / "static"


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


def redirect(url: str) -> RedirectResponse:
    """A 303 to another page (after a form, or when a session is missing)."""
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def to_login() -> RedirectResponse:
    """Back to the login page."""
    return redirect(dash_session.LOGIN_URL)
