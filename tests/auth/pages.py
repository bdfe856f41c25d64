"""Every page of the dashboard and the console, found from the routers, and the data they need.

A GET route under /dashboard or /console with a path parameter `fill` does not know fails the
caller, so a new page cannot be left out of the page-wide checks (headers, markup, axe).
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlmodel import select

from app.auth import users
from app.auth.models import Role
from app.auth.principal import cli_principal
from app.console import router as console_router
from app.dashboard import router as dashboard_router
from app.db import session_scope, utcnow
from app.enrolment.models import Enrolment
from app.opds import service as opd_service
from app.outbox.models import DeliveryTally
from app.security import PhoneVault
from tests.factories import add_campaign, add_enrolments, add_opd, add_template

# Pages that render only before a full login (the rest are read as an admin).
LOGGED_OUT = ("/dashboard/login", "/dashboard/invitation/{key}")
SECOND_STEP = "/dashboard/login/code"


def _routes(router: Any, method: str, prefix: str = "") -> Iterator[str]:
    for route in router.routes:
        if isinstance(route, APIRoute):
            if method in route.methods:
                yield prefix + route.path
        elif hasattr(route, "original_router"):  # FastAPI's included router
            inner = prefix + (getattr(route.include_context, "prefix", "") or "")
            yield from _routes(route.original_router, method, inner)


def paths(method: str) -> list[str]:
    """Every path of the dashboard and the console for a method, parameters unfilled."""
    routers = (dashboard_router.router, console_router.router)
    return sorted({path for router in routers for path in _routes(router, method)})


def page_paths() -> list[str]:
    """Every page (GET path) of the dashboard and the console."""
    return paths("GET")


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace(name, value)
    assert "{" not in path, f"{path}: a page with a parameter the page checks do not know"
    return path


def arrange(engine: Engine, vault: PhoneVault) -> dict[str, str]:
    """An OPD with one person and figures, a campaign, a pending invitation: the parameters."""
    add_opd(engine, "DINKES", "Dinas Kesehatan")
    add_enrolments(engine, vault, "DINKES", 1)
    today = utcnow().date()
    campaign_id = add_campaign(
        engine,
        template_id=add_template(engine),
        now=utcnow(),
        first_day=today - timedelta(days=3),
        last_day=today + timedelta(days=30),
    )
    with session_scope(engine) as s:
        opd = opd_service.get_by_code(s, code="DINKES")
        for outcome, count in (("scheduled", 30), ("accepted", 30), ("delivered", 25)):
            s.add(
                DeliveryTally(
                    campaign_id=campaign_id,
                    opd_id=opd.id,
                    day=today - timedelta(days=1),
                    outcome=outcome,
                    count=count,
                )
            )
        public_id = s.exec(select(Enrolment.public_id)).one()
        invited = users.invite_user(
            s, actor=cli_principal(), username="calon.baru", display_name="Calon", role=Role.admin
        )
    return {
        "{campaign_id}": str(campaign_id),
        "{code}": "DINKES",
        "{enrolment_id}": public_id,
        "{key}": invited.invitation_key,
    }
