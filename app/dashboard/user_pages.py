"""Admins manage people: invite (a one-time link shown once), list, disable, end sessions,
reset a lost second factor, re-invite (a new link; for a set-up account, a password reset)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import Response

from app.auth import sessions as user_sessions
from app.auth import user_admin, users
from app.auth.models import Role
from app.dashboard import service
from app.dashboard import session as dash_session
from app.dashboard.pages import redirect, render, to_login
from app.db import SessionDep
from app.dependencies import VaultDep
from app.errors import AppError
from app.opds import service as opd_service

router = APIRouter()

ROLE_CHOICES = [(role.value, service.ROLE_LABELS[role.value]) for role in Role]


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    display_name: str
    role_label: str
    opd_code: str | None
    state: str
    state_label: str
    two_factor: bool
    live_sessions: int


def _admin(
    request: Request, session: SessionDep, vault: VaultDep
) -> dash_session.DashboardSession | Response:
    current = dash_session.read(request, session, vault=vault)
    if current is None:
        return to_login()
    if not current.principal.is_admin:
        return render(request, "forbidden.html", {}, current=current, status_code=403)
    return current


def _rows(session: SessionDep) -> list[UserRow]:
    rows = []
    for user, opd in users.list_users(session):
        assert user.id is not None
        if user.disabled_at is not None:
            state, label = "disabled", "nonaktif"
        elif user.password_hash is None:
            state, label = "invited", "menunggu aktivasi"
        else:
            state, label = "active", "aktif"
        rows.append(
            UserRow(
                id=user.id,
                username=user.username,
                display_name=user.display_name,
                role_label=service.ROLE_LABELS[user.role],
                opd_code=opd.code if opd else None,
                state=state,
                state_label=label,
                two_factor=user.totp_secret is not None,
                live_sessions=user_sessions.live_count(session, user_id=user.id),
            )
        )
    return rows


@router.get("/users")
def users_page(request: Request, session: SessionDep, vault: VaultDep) -> Response:
    """Every account, its role, OPD, state and live sessions."""
    current = _admin(request, session, vault)
    if isinstance(current, Response):
        return current
    notice = {
        "disabled": "Pengguna dinonaktifkan; semua sesinya berakhir.",
        "revoked": "Semua sesi pengguna diakhiri.",
        "totp_reset": "Verifikasi dua langkah pengguna diatur ulang; semua sesinya berakhir.",
    }.get(request.query_params.get("done", ""))
    context = {"users": _rows(session), "notice": notice}
    return render(request, "users.html", context, current=current)


def _invite_form(
    request: Request,
    session: SessionDep,
    current: dash_session.DashboardSession,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    opds = opd_service.list_opds(session, viewer=current.principal)
    context = {
        "error": error,
        "roles": ROLE_CHOICES,
        "opds": opds,
        "values": values or {"role": Role.coordinator.value},
    }
    return render(request, "user_invite.html", context, current=current, status_code=status_code)


@router.get("/users/new")
def invite_form(request: Request, session: SessionDep, vault: VaultDep) -> Response:
    """The invitation form: username, name, role and, for coordinators, their OPD."""
    current = _admin(request, session, vault)
    if isinstance(current, Response):
        return current
    return _invite_form(request, session, current)


@router.post("/users/new")
def invite(
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    username: Annotated[str, Form(max_length=200)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    opd_code: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Create the account and show its one-time invitation link, once."""
    current = _admin(request, session, vault)
    if isinstance(current, Response):
        return current
    values = {
        "username": username,
        "display_name": display_name,
        "role": role,
        "opd_code": opd_code,
    }
    if not dash_session.csrf_ok(current.csrf, csrf):
        return Response("Token CSRF salah.", status_code=status.HTTP_403_FORBIDDEN)
    if role not in {r.value for r in Role}:
        return _invite_form(
            request, session, current, error="Pilih peran.", values=values, status_code=422
        )
    try:
        invited = users.invite_user(
            session,
            actor=current.principal,
            username=username,
            display_name=display_name,
            role=Role(role),
            opd_code=(opd_code or None) if role == Role.coordinator.value else None,
        )
    except AppError as exc:
        return _invite_form(
            request, session, current, error=exc.message, values=values, status_code=exc.status_code
        )
    return _invited_page(request, current, invited)


def _invited_page(
    request: Request, current: dash_session.DashboardSession, invited: users.Invited
) -> Response:
    link = str(request.base_url).rstrip("/") + f"/dashboard/invitation/{invited.invitation_key}"
    context = {
        "user": invited.user,
        "link": link,
        "days": users.INVITATION_LIFETIME.days,
    }
    return render(request, "user_invited.html", context, current=current)


def _user_action(
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    csrf: str,
    act: Callable[[dash_session.DashboardSession], Response],
) -> Response:
    """An admin's CSRF-checked action on an account; a refusal becomes a page in Indonesian."""
    current = _admin(request, session, vault)
    if isinstance(current, Response):
        return current
    if not dash_session.csrf_ok(current.csrf, csrf):
        return Response("Token CSRF salah.", status_code=status.HTTP_403_FORBIDDEN)
    try:
        return act(current)
    except AppError as exc:
        context = {"error": exc.message}
        return render(
            request, "user_error.html", context, current=current, status_code=exc.status_code
        )


CsrfField = Annotated[str, Form(max_length=200)]


@router.post("/users/{user_id}/disable")
def disable(
    user_id: int, request: Request, session: SessionDep, vault: VaultDep, csrf: CsrfField = ""
) -> Response:
    """Disable an account; its sessions end at once."""

    def act(current: dash_session.DashboardSession) -> Response:
        user_admin.disable_user(session, actor=current.principal, user_id=user_id)
        return redirect("/dashboard/users?done=disabled")

    return _user_action(request, session, vault, csrf, act)


@router.post("/users/{user_id}/sessions/revoke")
def revoke_sessions(
    user_id: int, request: Request, session: SessionDep, vault: VaultDep, csrf: CsrfField = ""
) -> Response:
    """End every session of a user at once."""

    def act(current: dash_session.DashboardSession) -> Response:
        user_admin.revoke_sessions(session, actor=current.principal, user_id=user_id)
        return redirect("/dashboard/users?done=revoked")

    return _user_action(request, session, vault, csrf, act)


@router.post("/users/{user_id}/two-factor/reset")
def reset_two_factor(
    user_id: int, request: Request, session: SessionDep, vault: VaultDep, csrf: CsrfField = ""
) -> Response:
    """Turn a user's TOTP off (a lost phone): they set it up again at their next login."""

    def act(current: dash_session.DashboardSession) -> Response:
        user_admin.reset_totp(session, actor=current.principal, user_id=user_id)
        return redirect("/dashboard/users?done=totp_reset")

    return _user_action(request, session, vault, csrf, act)


@router.post("/users/{user_id}/reinvite")
def reinvite(
    user_id: int, request: Request, session: SessionDep, vault: VaultDep, csrf: CsrfField = ""
) -> Response:
    """A fresh invitation link; for an account already set up, it resets the password."""

    def act(current: dash_session.DashboardSession) -> Response:
        invited = users.reinvite_user(session, actor=current.principal, user_id=user_id)
        return _invited_page(request, current, invited)

    return _user_action(request, session, vault, csrf, act)
