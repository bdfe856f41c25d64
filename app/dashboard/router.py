"""The inspectorate's dashboard: server-rendered pages in Bahasa Indonesia, aggregates only."""

from fastapi import APIRouter, Request, status
from fastapi.responses import FileResponse, Response

from app.dashboard import login_pages, sender_view, service, user_pages
from app.dashboard import session as dash_session
from app.dashboard.pages import STATIC_DIR, render, to_login
from app.db import SessionDep
from app.dependencies import SettingsDep, VaultDep
from app.errors import NotFound
from app.ids import DbId

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.get("/static/dashboard.css")
def dashboard_css() -> Response:
    """The pages' only stylesheet (from this origin: the CSP allows no inline style)."""
    return FileResponse(STATIC_DIR / "dashboard.css", media_type="text/css; charset=utf-8")


@router.get("")
def campaigns_page(request: Request, session: SessionDep, vault: VaultDep) -> Response:
    """Campaign list with state and alerts."""
    current = dash_session.read(request, session, vault=vault)
    if current is None:
        return to_login()
    rows = service.campaign_rows(session, viewer=current.principal)
    alerts = sender_view.banner(session, viewer=current.principal)
    return render(
        request,
        "campaigns.html",
        {"campaigns": rows, "sender_alert_count": alerts},
        current=current,
    )


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
        return to_login()
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


# Login, invitations, second factor and the admins' user pages share the /dashboard prefix.
router.include_router(login_pages.router)
router.include_router(user_pages.router)
