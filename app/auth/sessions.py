"""Server-side browser sessions: the cookie holds a random key, the row says who and how far.

Logout, disabling a user or revoking their sessions marks the rows; the next request with the
cookie is refused, on every replica, because each request reads the row.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.models import Role, SessionStage, UserAccount, UserSession
from app.auth.principal import Principal
from app.db import utcnow
from app.opds.models import Opd

ABSOLUTE_LIFETIME = timedelta(hours=10)
IDLE_TIMEOUT = timedelta(minutes=60)
# A pending second-factor step must be finished quickly.
PENDING_LIFETIME = timedelta(minutes=10)
# last_seen_at is written at most this often, not on every page view.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class ActiveSession:
    """A session row that is still good, with its user."""

    row: UserSession
    user: UserAccount
    principal: Principal

    @property
    def stage(self) -> SessionStage:
        return SessionStage(self.row.stage)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start(session: Session, *, user: UserAccount, stage: SessionStage) -> str:
    """Open a session; returns the cookie key (never stored, only its hash)."""
    assert user.id is not None
    key = secrets.token_urlsafe(32)
    now = utcnow()
    # Rows past their expiry serve no one; each login tidies its own user's.
    session.execute(
        delete(UserSession).where(
            col(UserSession.user_id) == user.id, col(UserSession.expires_at) < now
        )
    )
    lifetime = ABSOLUTE_LIFETIME if stage is SessionStage.full else PENDING_LIFETIME
    session.add(
        UserSession(
            token_hash=_hash(key),
            user_id=user.id,
            stage=stage.value,
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return key


def lookup(
    session: Session, *, key: str | None, now: datetime | None = None
) -> ActiveSession | None:
    """The live session behind a cookie key: not revoked, expired, idle, nor its user disabled."""
    if not key:
        return None
    now = now or utcnow()
    found = session.exec(
        select(UserSession, UserAccount, Opd)
        .join(UserAccount, col(UserAccount.id) == col(UserSession.user_id))
        .join(Opd, col(Opd.id) == col(UserAccount.opd_id), isouter=True)
        .where(UserSession.token_hash == _hash(key))
    ).first()
    if found is None:
        return None
    row, user, opd = found
    if (
        row.revoked_at is not None
        or user.disabled_at is not None
        or row.expires_at <= now
        or now - row.last_seen_at > IDLE_TIMEOUT
    ):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    principal = Principal(
        name=user.display_name,
        role=Role(user.role),
        opd_id=user.opd_id,
        opd_code=opd.code if opd else None,
        user_id=user.id,
    )
    return ActiveSession(row=row, user=user, principal=principal)


def end(session: Session, *, row: UserSession) -> None:
    """Revoke one session (logout, or the end of a pending step)."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.flush()


def end_all_for_user(session: Session, *, user_id: int) -> int:
    """Revoke every live session of a user; returns how many were ended."""
    result = session.execute(
        update(UserSession)
        .where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end_all_audited(
    session: Session,
    *,
    actor: Principal,
    user_id: int,
    action: str,
    end: bool = True,
    detail: dict[str, object] | None = None,
) -> int:
    """End a user's sessions (when `end`) and audit the action with how many ended."""
    ended = end_all_for_user(session, user_id=user_id) if end else 0
    audit_service.record(
        session,
        actor=actor,
        action=action,
        object_type="user_account",
        object_id=user_id,
        detail=(detail or {}) | {"sessions_ended": ended},
    )
    return ended


def purge_ended(session: Session, *, now: datetime, dry_run: bool = False) -> int:
    """Delete every session no cookie can use any more: revoked, expired or idle too long."""
    ended = or_(
        col(UserSession.revoked_at).is_not(None),
        col(UserSession.expires_at) <= now,
        col(UserSession.last_seen_at) < now - IDLE_TIMEOUT,
    )
    if dry_run:
        return int(session.exec(select(func.count()).select_from(UserSession).where(ended)).one())
    result = session.execute(delete(UserSession).where(ended))
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def live_count(session: Session, *, user_id: int) -> int:
    """How many sessions of the user are not revoked and not past their absolute expiry."""
    now = utcnow()
    rows = session.exec(
        select(UserSession.id).where(
            UserSession.user_id == user_id,
            col(UserSession.revoked_at).is_(None),
            col(UserSession.expires_at) > now,
        )
    ).all()
    return len(rows)
