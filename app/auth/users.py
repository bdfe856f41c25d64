"""User accounts: invitations, first set-up, password login, TOTP, disabling."""

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth import passwords, throttle, totp
from app.auth import sessions as user_sessions
from app.auth.models import Role, UserAccount, UserInvitation
from app.auth.principal import Principal
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.opds.models import Opd
from app.security import PhoneVault

INVITATION_LIFETIME = timedelta(days=3)
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{2,39}")


@dataclass(frozen=True)
class Invited:
    """A new account and its one-time invitation key (shown once, stored as a hash)."""

    user: UserAccount
    invitation_key: str


class LoginRefused(Exception):
    """A refused login: `wait_seconds` > 0 when the refusal is the throttle's."""

    def __init__(self, wait_seconds: int = 0) -> None:
        super().__init__("login refused")
        self.wait_seconds = wait_seconds


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def normalise_username(username: str) -> str:
    """Usernames compare case-insensitively."""
    return username.strip().lower()


def invite_user(
    session: Session,
    *,
    actor: Principal,
    username: str,
    display_name: str,
    role: Role,
    opd_code: str | None = None,
) -> Invited:
    """Create an account without a password and its invitation (valid for three days)."""
    username = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(username):
        raise Invalid(
            "Nama pengguna 3–40 karakter: huruf kecil, angka, titik, garis bawah "
            "atau tanda hubung.",
            code="invalid_username",
        )
    display_name = display_name.strip()
    if not display_name or len(display_name) > 80:
        raise Invalid("Nama lengkap wajib diisi (maksimal 80 karakter).", code="invalid_name")
    opd_id = None
    if role is Role.coordinator:
        if not opd_code:
            raise Invalid("Koordinator harus terikat pada satu OPD.", code="opd_required")
        opd = session.exec(select(Opd).where(Opd.code == opd_code)).first()
        if opd is None:
            raise NotFound(f"OPD {opd_code!r} tidak dikenal.", code="opd_not_found")
        opd_id = opd.id
    elif opd_code:
        raise Invalid("Hanya koordinator yang terikat pada OPD.", code="opd_not_allowed")
    if session.exec(select(UserAccount).where(UserAccount.username == username)).first():
        raise Conflict(f"Nama pengguna {username!r} sudah dipakai.", code="username_taken")
    user = UserAccount(username=username, display_name=display_name, role=role.value, opd_id=opd_id)
    audit_service.save_and_record(
        session,
        actor=actor,
        row=user,
        action="user.invite",
        object_type="user_account",
        detail={"role": role.value, "opd_id": opd_id},
    )
    return Invited(user=user, invitation_key=_new_invitation(session, user=user))


def reinvite_user(session: Session, *, actor: Principal, user_id: int) -> Invited:
    """A fresh invitation (older ones stop working); for a set-up account, a password reset.

    An active account's password is cleared and its sessions end at once: whoever holds the new
    link chooses the next password. The second factor, if any, stays on.
    """
    user = get_user(session, user_id)
    if user.disabled_at is not None:
        raise Conflict("Akun ini dinonaktifkan.", code="user_disabled")
    password_reset = user.password_hash is not None
    if password_reset:
        user.password_hash = None
        session.add(user)
    user_sessions.end_all_audited(
        session,
        actor=actor,
        user_id=user_id,
        action="user.reinvite",
        end=password_reset,
        detail={"password_reset": password_reset},
    )
    return Invited(user=user, invitation_key=_new_invitation(session, user=user))


def _new_invitation(session: Session, *, user: UserAccount) -> str:
    assert user.id is not None
    now = utcnow()
    for old in session.exec(
        select(UserInvitation).where(
            UserInvitation.user_id == user.id, col(UserInvitation.used_at).is_(None)
        )
    ).all():
        old.used_at = now
        session.add(old)
    key = secrets.token_urlsafe(32)
    session.add(
        UserInvitation(
            user_id=user.id,
            token_hash=_hash(key),
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
    )
    session.flush()
    return key


def open_invitation(session: Session, *, key: str) -> UserAccount | None:
    """The account an unused, unexpired invitation key sets up, or None."""
    found = session.exec(
        select(UserInvitation, UserAccount)
        .join(UserAccount, col(UserAccount.id) == col(UserInvitation.user_id))
        .where(UserInvitation.token_hash == _hash(key))
    ).first()
    if found is None:
        return None
    invitation, user = found
    if invitation.used_at is not None or invitation.expires_at <= utcnow():
        return None
    if user.disabled_at is not None:
        return None
    return user


def accept_invitation(session: Session, *, key: str, password: str) -> UserAccount:
    """Set the account's first password; the invitation is then spent."""
    user = open_invitation(session, key=key)
    if user is None:
        raise NotFound(
            "Tautan undangan tidak berlaku (sudah dipakai atau kedaluwarsa).",
            code="invitation_invalid",
        )
    passwords.check_new_password(password, username=user.username)
    invitation = session.exec(
        select(UserInvitation).where(UserInvitation.token_hash == _hash(key))
    ).one()
    invitation.used_at = utcnow()
    user.password_hash = passwords.hash_password(password)
    user.last_login_at = utcnow()
    session.add_all([invitation, user])
    _record_own(session, user=user, action="user.setup")
    return user


def check_password(session: Session, *, username: str, password: str) -> UserAccount:
    """The account if the password is right and the username is not being throttled."""
    now = utcnow()
    username = normalise_username(username)
    wait = throttle.wait_seconds(session, username=username, now=now)
    if wait:
        raise LoginRefused(wait)
    user = session.exec(select(UserAccount).where(UserAccount.username == username)).first()
    stored = user.password_hash if user is not None else None
    if not passwords.verify_password(stored, password) or user is None or user.disabled_at:
        throttle.record_failure(session, username=username, now=now)
        raise LoginRefused()
    assert stored is not None
    if passwords.needs_rehash(stored):
        user.password_hash = passwords.hash_password(password)
    return user


def check_second_factor(
    session: Session, *, user: UserAccount, code: str, vault: PhoneVault
) -> bool:
    """Whether the TOTP code is right and unused; failures count towards the throttle."""
    now = utcnow()
    wait = throttle.wait_seconds(session, username=user.username, now=now)
    if wait:
        raise LoginRefused(wait)
    if user.totp_secret is None:
        return False
    secret = vault.decrypt(user.totp_secret)
    step = totp.matching_step(secret, code, now=now, after_step=user.totp_last_step)
    if step is None:
        throttle.record_failure(session, username=user.username, now=now)
        return False
    user.totp_last_step = step
    # Keeps the secret readable after a key rotation retires the key it was encrypted with.
    user.totp_secret = vault.rotate(user.totp_secret)
    session.add(user)
    return True


def logged_in(session: Session, *, user: UserAccount) -> None:
    """Note a completed login and forget earlier failures."""
    user.last_login_at = utcnow()
    session.add(user)
    throttle.reset(session, username=user.username)


def pending_totp_secret(session: Session, *, user: UserAccount, vault: PhoneVault) -> str:
    """The secret being set up (made on first view, kept until confirmed)."""
    if user.totp_pending is None:
        user.totp_pending = vault.encrypt(totp.new_secret())
        session.add(user)
        session.flush()
    return vault.decrypt(user.totp_pending)


def confirm_totp(session: Session, *, user: UserAccount, code: str, vault: PhoneVault) -> bool:
    """Turn on the second factor once the user proves their app shows the right codes."""
    if user.totp_pending is None:
        return False
    secret = vault.decrypt(user.totp_pending)
    step = totp.matching_step(secret, code, now=utcnow(), after_step=None)
    if step is None:
        return False
    user.totp_secret = user.totp_pending
    user.totp_pending = None
    user.totp_last_step = step
    session.add(user)
    _record_own(session, user=user, action="user.totp_enable")
    return True


def list_users(session: Session) -> Sequence[tuple[UserAccount, Opd | None]]:
    """Every account with its OPD, by username."""
    rows = session.exec(
        select(UserAccount, Opd)
        .join(Opd, col(Opd.id) == col(UserAccount.opd_id), isouter=True)
        .order_by(col(UserAccount.username))
    ).all()
    return [(user, opd) for user, opd in rows]


def get_by_username(session: Session, *, username: str) -> UserAccount | None:
    """The account with this username, if any."""
    name = normalise_username(username)
    return session.exec(select(UserAccount).where(UserAccount.username == name)).first()


def get_user(session: Session, user_id: int) -> UserAccount:
    """The account with this id; NotFound otherwise."""
    user = session.get(UserAccount, user_id)
    if user is None:
        raise NotFound(f"Pengguna {user_id} tidak ditemukan.", code="user_not_found")
    return user


def _record_own(session: Session, *, user: UserAccount, action: str) -> None:
    """Audit what a person did to their own account (never a password, key or code)."""
    audit_service.record(
        session,
        actor=principal_of(user),
        action=action,
        object_type="user_account",
        object_id=user.id,
    )
    session.flush()


def principal_of(user: UserAccount, opd_code: str | None = None) -> Principal:
    """The principal a user acts as."""
    return Principal(
        name=user.display_name,
        role=Role(user.role),
        opd_id=user.opd_id,
        opd_code=opd_code,
        user_id=user.id,
    )
