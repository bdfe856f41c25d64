"""Page sessions over the server-side user sessions of `app.auth.sessions`.

The cookie holds a random key (HttpOnly, SameSite=Strict, Secure behind TLS and in production);
the row behind it holds the user, the stage and the CSRF value of every form.
"""

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from sqlmodel import Session

from app.auth import sessions as user_sessions
from app.auth.models import Role, SessionStage
from app.auth.principal import Principal
from app.config import Settings
from app.security import PhoneVault

COOKIE = "spi_session"
PRE_LOGIN_COOKIE = "spi_login_csrf"
LOGIN_URL = "/dashboard/login"
# Where each role lands after logging in: coordinators work in the console, the others here.
LANDING_BY_ROLE = {
    Role.coordinator: "/console",
    Role.admin: "/dashboard",
    Role.inspectorate: "/dashboard",
}


@dataclass(frozen=True)
class DashboardSession:
    principal: Principal
    csrf: str


def landing_url(role: Role) -> str:
    """The first page after login for a role."""
    return LANDING_BY_ROLE[role]


def cookie_secure(request: Request, settings: Settings) -> bool:
    """Secure cookies over HTTPS and always in production (TLS ends at the load balancer)."""
    return request.url.scheme == "https" or settings.env == "production"


def start(response: Response, *, key: str, secure: bool) -> None:
    """Set the session cookie (the key of a server-side session) and drop the login CSRF one."""
    max_age = int(user_sessions.ABSOLUTE_LIFETIME.total_seconds())
    response.set_cookie(
        COOKIE, key, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.delete_cookie(PRE_LOGIN_COOKIE)


def end(response: Response) -> None:
    """Forget the cookie (the server-side row is ended by the caller)."""
    response.delete_cookie(COOKIE, path="/")


def active(request: Request, session: Session) -> user_sessions.ActiveSession | None:
    """The live server-side session of the cookie, at whatever stage."""
    return user_sessions.lookup(session, key=request.cookies.get(COOKIE))


def read(request: Request, session: Session, *, vault: PhoneVault) -> DashboardSession | None:
    """The logged-in session: fully authenticated, not logged out, revoked, idle or disabled."""
    del vault  # kept in the signature for callers; sessions live in the database now
    current = active(request, session)
    if current is None or current.stage is not SessionStage.full:
        return None
    return DashboardSession(principal=current.principal, csrf=current.row.csrf)


def login_csrf(request: Request) -> str:
    """The pre-login CSRF value (double-submit cookie), reused if already set."""
    return request.cookies.get(PRE_LOGIN_COOKIE) or secrets.token_urlsafe(16)


def csrf_ok(expected: str, submitted: str | None) -> bool:
    """Constant-time comparison of the form's CSRF field."""
    return bool(expected) and bool(submitted) and hmac.compare_digest(expected, submitted or "")
