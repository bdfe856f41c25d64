"""What an admin does to someone else's account: disable it, end its sessions, reset its TOTP.

Each action ends the person's sessions at once and is audited (counts only, never a secret).
"""

from sqlmodel import Session

from app.auth import sessions as user_sessions
from app.auth import users
from app.auth.models import UserAccount
from app.auth.principal import Principal
from app.db import utcnow
from app.errors import Conflict, Forbidden


def disable_user(session: Session, *, actor: Principal, user_id: int) -> UserAccount:
    """Disable an account; its sessions end at once and it can no longer log in."""
    user = users.get_user(session, user_id)
    if actor.user_id == user_id:
        raise Forbidden("Anda tidak dapat menonaktifkan akun sendiri.", code="self_disable")
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        session.add(user)
        user_sessions.end_all_audited(session, actor=actor, user_id=user_id, action="user.disable")
    return user


def revoke_sessions(session: Session, *, actor: Principal, user_id: int) -> int:
    """End every session of a user at once (they must log in again)."""
    users.get_user(session, user_id)
    return user_sessions.end_all_audited(
        session, actor=actor, user_id=user_id, action="user.sessions_revoke"
    )


def reset_totp(session: Session, *, actor: Principal, user_id: int) -> UserAccount:
    """Turn a user's second factor off (a lost phone); their sessions end at once.

    At the next login they set it up again: at once if their role requires it.
    """
    user = users.get_user(session, user_id)
    if actor.user_id == user_id:
        raise Forbidden(
            "Anda tidak dapat mengatur ulang verifikasi dua langkah akun sendiri.",
            code="self_totp_reset",
        )
    if user.totp_secret is None and user.totp_pending is None:
        raise Conflict("Verifikasi dua langkah akun ini belum aktif.", code="totp_not_enabled")
    user.totp_secret = None
    user.totp_pending = None
    user.totp_last_step = None
    session.add(user)
    user_sessions.end_all_audited(session, actor=actor, user_id=user_id, action="user.totp_reset")
    return user
