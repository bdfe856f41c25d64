"""Logging in as a person: password, then the TOTP code; invitations; setting up TOTP."""

from collections.abc import Mapping
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request, status
from fastapi.responses import Response

from app.auth import sessions as user_sessions
from app.auth import totp, users
from app.auth.models import Role, SessionStage, UserAccount
from app.dashboard import session as dash_session
from app.dashboard.pages import redirect, render, to_login
from app.db import SessionDep
from app.dependencies import SettingsDep, VaultDep
from app.errors import AppError

router = APIRouter()

WRONG_LOGIN = "Nama pengguna atau kata sandi salah."
WRONG_CODE = "Kode tidak cocok. Periksa jam ponsel Anda, lalu masukkan kode yang baru."
CSRF_FAILED = "Formulir kedaluwarsa. Muat ulang halaman, lalu coba lagi."


def _throttled(wait_seconds: int) -> str:
    minutes = max(1, -(-wait_seconds // 60))
    return f"Terlalu banyak percobaan gagal. Coba lagi dalam {minutes} menit."


def _second_factor_required(user: UserAccount, settings: SettingsDep) -> bool:
    # Admins can change who may do what: in production they must use a second factor.
    return settings.env == "production" and user.role == Role.admin.value


def _pre_login_page(
    request: Request,
    settings: SettingsDep,
    name: str,
    context: Mapping[str, object],
    *,
    status_code: int = 200,
) -> Response:
    """A page whose form is posted before any session exists: CSRF by double-submit cookie."""
    csrf = dash_session.login_csrf(request)
    response = render(request, name, {"csrf": csrf, **context}, status_code=status_code)
    secure = dash_session.cookie_secure(request, settings)
    response.set_cookie(
        dash_session.PRE_LOGIN_COOKIE, csrf, httponly=True, samesite="strict", secure=secure
    )
    return response


def _login_form(
    request: Request,
    settings: SettingsDep,
    *,
    error: str | None = None,
    status_code: int = 200,
    username: str = "",
) -> Response:
    context: dict[str, object] = {"error": error, "username": username}
    return _pre_login_page(request, settings, "login.html", context, status_code=status_code)


def _begin(
    request: Request, session: SessionDep, settings: SettingsDep, user: UserAccount, *, url: str
) -> Response:
    """Open the session the user has earned so far and send them on."""
    if user.totp_secret is not None:
        stage, url = SessionStage.second_factor, "/dashboard/login/code"
    elif _second_factor_required(user, settings):
        stage, url = SessionStage.enrol_second_factor, "/dashboard/account/two-factor"
    else:
        stage, url = SessionStage.full, url or dash_session.landing_url(Role(user.role))
        users.logged_in(session, user=user)
    key = user_sessions.start(session, user=user, stage=stage)
    response = redirect(url)
    dash_session.start(response, key=key, secure=dash_session.cookie_secure(request, settings))
    return response


@router.get("/login")
def login_form(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The login page: username and password."""
    current = dash_session.active(request, session)
    if current is not None and current.stage is SessionStage.full:
        return redirect(dash_session.landing_url(current.principal.role))
    return _login_form(request, settings)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Check the password (throttled per username); then the TOTP step or the landing page."""
    expected = request.cookies.get(dash_session.PRE_LOGIN_COOKIE, "")
    if not dash_session.csrf_ok(expected, csrf):
        return _login_form(
            request, settings, error=CSRF_FAILED, status_code=status.HTTP_403_FORBIDDEN
        )
    try:
        user = users.check_password(session, username=username, password=password)
    except users.LoginRefused as refused:
        if refused.wait_seconds:
            return _login_form(
                request,
                settings,
                error=_throttled(refused.wait_seconds),
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                username=username,
            )
        return _login_form(
            request,
            settings,
            error=WRONG_LOGIN,
            status_code=status.HTTP_401_UNAUTHORIZED,
            username=username,
        )
    return _begin(request, session, settings, user, url="")


@router.get("/login/code")
def code_form(request: Request, session: SessionDep) -> Response:
    """The second step: the 6-digit code from the authenticator app."""
    current = dash_session.active(request, session)
    if current is None or current.stage is not SessionStage.second_factor:
        return to_login()
    return render(request, "login_code.html", {"csrf": current.row.csrf, "error": None})


@router.post("/login/code")
def check_code(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
    code: Annotated[str, Form(max_length=20)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Finish the login with a TOTP code; a new session key replaces the pending one."""
    current = dash_session.active(request, session)
    if current is None or current.stage is not SessionStage.second_factor:
        return to_login()
    if not dash_session.csrf_ok(current.row.csrf, csrf):
        return Response(CSRF_FAILED, status_code=status.HTTP_403_FORBIDDEN)
    try:
        ok = users.check_second_factor(session, user=current.user, code=code, vault=vault)
    except users.LoginRefused as refused:
        user_sessions.end(session, row=current.row)
        response = _login_form(
            request,
            settings,
            error=_throttled(refused.wait_seconds),
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
        dash_session.end(response)
        return response
    if not ok:
        context = {"csrf": current.row.csrf, "error": WRONG_CODE}
        return render(request, "login_code.html", context, status_code=401)
    user_sessions.end(session, row=current.row)
    users.logged_in(session, user=current.user)
    key = user_sessions.start(session, user=current.user, stage=SessionStage.full)
    response = redirect(dash_session.landing_url(current.principal.role))
    dash_session.start(response, key=key, secure=dash_session.cookie_secure(request, settings))
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """End the session on the server at once (CSRF-checked)."""
    current = dash_session.active(request, session)
    if current is not None:
        if not dash_session.csrf_ok(current.row.csrf, csrf):
            return Response("Token CSRF salah.", status_code=status.HTTP_403_FORBIDDEN)
        user_sessions.end(session, row=current.row)
    response = to_login()
    dash_session.end(response)
    return response


@router.get("/invitation/{key}")
def invitation_form(
    key: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """The invited user chooses their password."""
    user = users.open_invitation(session, key=key)
    if user is None:
        return render(request, "invitation_invalid.html", {}, status_code=404)
    context = {"error": None, "user": user}
    return _pre_login_page(request, settings, "invitation.html", context)


@router.post("/invitation/{key}")
def accept_invitation(
    key: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    password: Annotated[str, Form(max_length=1000)] = "",
    password_again: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Set the first password, spend the invitation, log in, and offer the second factor."""
    user = users.open_invitation(session, key=key)
    if user is None:
        return render(request, "invitation_invalid.html", {}, status_code=404)
    expected = request.cookies.get(dash_session.PRE_LOGIN_COOKIE, "")
    error, status_code = None, status.HTTP_422_UNPROCESSABLE_CONTENT
    if not dash_session.csrf_ok(expected, csrf):
        error, status_code = CSRF_FAILED, status.HTTP_403_FORBIDDEN
    elif password != password_again:
        error = "Kedua kata sandi tidak sama."
    else:
        try:
            user = users.accept_invitation(session, key=key, password=password)
        except AppError as exc:
            error = exc.message
    if error is not None:
        context = {"error": error, "user": user}
        return _pre_login_page(
            request, settings, "invitation.html", context, status_code=status_code
        )
    return _begin(request, session, settings, user, url="/dashboard/account/two-factor")


@router.get("/account/two-factor")
def two_factor_form(
    request: Request, session: SessionDep, settings: SettingsDep, vault: VaultDep
) -> Response:
    """Set up the authenticator app: the secret as a QR code and as text, then one code."""
    current = dash_session.active(request, session)
    if current is None or current.stage is SessionStage.second_factor:
        return to_login()
    return _two_factor_page(request, session, settings, vault, current, error=None)


@router.post("/account/two-factor")
def confirm_two_factor(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
    code: Annotated[str, Form(max_length=20)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Turn TOTP on with a first code; every other session of the user ends."""
    current = dash_session.active(request, session)
    if current is None or current.stage is SessionStage.second_factor:
        return to_login()
    if not dash_session.csrf_ok(current.row.csrf, csrf):
        return Response(CSRF_FAILED, status_code=status.HTTP_403_FORBIDDEN)
    if not users.confirm_totp(session, user=current.user, code=code, vault=vault):
        return _two_factor_page(
            request, session, settings, vault, current, error=WRONG_CODE, status_code=422
        )
    assert current.user.id is not None
    user_sessions.end_all_for_user(session, user_id=current.user.id)
    users.logged_in(session, user=current.user)
    key = user_sessions.start(session, user=current.user, stage=SessionStage.full)
    response = redirect(dash_session.landing_url(current.principal.role))
    dash_session.start(response, key=key, secure=dash_session.cookie_secure(request, settings))
    return response


def _two_factor_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
    current: user_sessions.ActiveSession,
    *,
    error: str | None,
    status_code: int = 200,
) -> Response:
    user = current.user
    context: dict[str, object] = {
        "csrf": current.row.csrf,
        "error": error,
        "enabled": user.totp_secret is not None,
        "required": _second_factor_required(user, settings),
        "landing": dash_session.landing_url(current.principal.role),
        "pending_stage": current.stage is SessionStage.enrol_second_factor,
    }
    if user.totp_secret is None:
        secret = users.pending_totp_secret(session, user=user, vault=vault)
        uri = totp.provisioning_uri(secret, username=user.username)
        context["secret_groups"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        context["qr_svg"] = segno.make(uri, error="m").svg_inline(
            scale=4, light="#fff", title="Kode QR"
        )
    viewer = None
    if current.stage is SessionStage.full:
        viewer = dash_session.DashboardSession(principal=current.principal, csrf=current.row.csrf)
    return render(request, "two_factor.html", context, current=viewer, status_code=status_code)
