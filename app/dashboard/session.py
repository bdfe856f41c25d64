"""Dashboard sessions: a signed cookie holding the token id (never the token) and a CSRF secret."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session, col, select

from app.auth.models import ApiToken, Role
from app.auth.principal import Principal
from app.opds.models import Opd
from app.security import PhoneVault

COOKIE = "spi_session"
PRE_LOGIN_COOKIE = "spi_login_csrf"
MAX_AGE_SECONDS = 8 * 3600


@dataclass(frozen=True)
class DashboardSession:
    principal: Principal
    csrf: str


def _serializer(vault: PhoneVault) -> URLSafeTimedSerializer:
    # Derived from the blind-index key so no extra secret has to be configured; a separate
    # HMAC label keeps the two uses apart.
    secret = hmac.new(vault.index_key, b"dashboard-session", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(secret, salt="spi-dashboard")


def start(response: Response, *, vault: PhoneVault, token_id: int, secure: bool) -> None:
    """Set the session cookie after a successful login."""
    value = _serializer(vault).dumps({"t": token_id, "c": secrets.token_urlsafe(16)})
    response.set_cookie(
        COOKIE, value, max_age=MAX_AGE_SECONDS, httponly=True, samesite="strict", secure=secure
    )
    response.delete_cookie(PRE_LOGIN_COOKIE)


def end(response: Response) -> None:
    """Forget the session."""
    response.delete_cookie(COOKIE)


def read(request: Request, session: Session, *, vault: PhoneVault) -> DashboardSession | None:
    """The logged-in session, if the cookie is valid and its token is still not revoked."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(vault).loads(raw, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    row = session.exec(
        select(ApiToken, Opd)
        .join(Opd, col(Opd.id) == col(ApiToken.opd_id), isouter=True)
        .where(ApiToken.id == data.get("t"))
    ).first()
    if row is None or row[0].revoked_at is not None:
        return None
    token, opd = row
    principal = Principal(
        name=token.name,
        role=Role(token.role),
        token_id=token.id,
        opd_id=token.opd_id,
        opd_code=opd.code if opd else None,
    )
    return DashboardSession(principal=principal, csrf=str(data.get("c", "")))


def login_csrf(request: Request) -> str:
    """The pre-login CSRF value (double-submit cookie), reused if already set."""
    return request.cookies.get(PRE_LOGIN_COOKIE) or secrets.token_urlsafe(16)


def csrf_ok(expected: str, submitted: str | None) -> bool:
    """Constant-time comparison of the form's CSRF field."""
    return bool(expected) and bool(submitted) and hmac.compare_digest(expected, submitted or "")
