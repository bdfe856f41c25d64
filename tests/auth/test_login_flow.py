"""The login forms over HTTP: invitation, password, TOTP, logout, throttling, landing pages."""

import re
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth import throttle
from app.auth.models import Role
from app.config import Settings
from app.dashboard.session import COOKIE, landing_url
from app.main import create_app
from app.security import PhoneVault
from tests.auth.helpers import PASSWORD, add_user, csrf_of, login, next_code, stored_user
from tests.factories import add_opd


def invitation_path(engine: Engine, client: TestClient, role: Role = Role.inspectorate) -> str:
    """Invite through the admin's page and read the one-time link it shows."""
    login(client, add_user(engine, Role.admin))
    page = client.get("/dashboard/users/new")
    shown = client.post(
        "/dashboard/users/new",
        data={
            "username": "siti.inspektorat",
            "display_name": "Siti Rahma",
            "role": role.value,
            "csrf": csrf_of(page.text),
        },
    )
    assert shown.status_code == 200, shown.text
    match = re.search(r'value="https?://[^/"]+(/dashboard/invitation/[^"]+)"', shown.text)
    assert match, "the invitation page shows no link"
    client.cookies.clear()
    return match.group(1)


def test_invitation_sets_the_password_once_and_logs_in(client: TestClient, engine: Engine) -> None:
    path = invitation_path(engine, client)
    form = client.get(path)
    assert "siti.inspektorat" in form.text
    done = client.post(
        path,
        data={"password": PASSWORD, "password_again": PASSWORD, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/dashboard/account/two-factor"
    assert client.get("/dashboard", follow_redirects=False).status_code == 200
    client.cookies.clear()
    again = client.get(path)
    assert again.status_code == 404
    assert "tidak berlaku" in again.text


def test_invitation_without_csrf_or_with_mismatched_passwords_sets_nothing(
    client: TestClient, engine: Engine
) -> None:
    path = invitation_path(engine, client)
    client.get(path)
    no_csrf = client.post(path, data={"password": PASSWORD, "password_again": PASSWORD})
    assert no_csrf.status_code == 403  # refused like every other form without it
    form = client.get(path)
    mismatch = client.post(
        path,
        data={"password": PASSWORD, "password_again": PASSWORD + "x", "csrf": csrf_of(form.text)},
    )
    assert mismatch.status_code == 422
    assert "tidak sama" in mismatch.text
    assert stored_user(engine, "siti.inspektorat").password_hash is None


def test_totp_set_up_then_login_needs_the_code(
    client: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    who = add_user(engine, Role.inspectorate)
    csrf = login(client, who)
    page = client.get("/dashboard/account/two-factor")
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page.text)
    assert secret, "the secret is not shown as text"
    assert "<svg" in page.text  # and as a QR code
    key = secret.group(1).replace(" ", "")
    refused = client.post("/dashboard/account/two-factor", data={"code": pyotp.TOTP(key).now()})
    assert refused.status_code == 403  # no CSRF value
    enabled = client.post(
        "/dashboard/account/two-factor",
        data={"code": pyotp.TOTP(key).now(), "csrf": csrf},
        follow_redirects=False,
    )
    assert enabled.status_code == 303
    client.cookies.clear()

    form = client.get("/dashboard/login")
    step_one = client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert step_one.headers["location"] == "/dashboard/login/code"
    pending_cookie = client.cookies.get(COOKIE)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303  # not yet
    code_form = client.get("/dashboard/login/code")
    wrong = client.post(
        "/dashboard/login/code", data={"code": "12345x", "csrf": csrf_of(code_form.text)}
    )
    assert wrong.status_code == 401
    right = client.post(
        "/dashboard/login/code",
        data={"code": next_code(key), "csrf": csrf_of(code_form.text)},
        follow_redirects=False,
    )
    assert right.headers["location"] == "/dashboard"
    assert client.cookies.get(COOKIE) != pending_cookie  # a new key once fully logged in
    assert client.get("/dashboard", follow_redirects=False).status_code == 200


def test_a_logged_out_cookie_is_refused_at_once(client: TestClient, engine: Engine) -> None:
    csrf = login(client, add_user(engine, Role.inspectorate))
    kept = client.cookies.get(COOKIE)
    assert kept
    client.post("/dashboard/logout", data={"csrf": csrf})
    client.cookies.set(COOKIE, kept)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_repeated_failures_slow_logins_down(client: TestClient, engine: Engine) -> None:
    who = add_user(engine, Role.inspectorate)
    for _ in range(throttle.FREE_FAILURES):
        form = client.get("/dashboard/login")
        wrong = client.post(
            "/dashboard/login",
            data={"username": who.username, "password": "salah lagi", "csrf": csrf_of(form.text)},
        )
        assert wrong.status_code == 401
    form = client.get("/dashboard/login")
    right = client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
    )
    assert right.status_code == 429
    assert "Terlalu banyak percobaan gagal" in right.text


@pytest.mark.parametrize(
    ("role", "landing"),
    [(Role.coordinator, "/console"), (Role.admin, "/dashboard"), (Role.inspectorate, "/dashboard")],
)
def test_each_role_lands_on_its_page(
    client: TestClient, engine: Engine, role: Role, landing: str
) -> None:
    assert landing_url(role) == landing
    opd = None
    if role is Role.coordinator:
        add_opd(engine, "DINKES")
        opd = "DINKES"
    who = add_user(engine, role, opd)
    form = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.headers["location"] == landing


@pytest.fixture
def prod_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    production = settings.model_copy(update={"env": "production", "sandbox_in_production": True})
    with TestClient(create_app(production, engine=engine), base_url="https://testserver") as c:
        yield c


def test_in_production_admins_must_set_up_totp_first(
    prod_client: TestClient, engine: Engine
) -> None:
    who = add_user(engine, Role.admin)
    form = prod_client.get("/dashboard/login")
    response = prod_client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/dashboard/account/two-factor"
    assert "Secure" in response.headers["set-cookie"]
    assert prod_client.get("/dashboard", follow_redirects=False).status_code == 303
    assert prod_client.get("/dashboard/users", follow_redirects=False).status_code == 303
    page = prod_client.get("/dashboard/account/two-factor")
    assert "Admin wajib memakai verifikasi dua langkah" in page.text
    assert "Lewati" not in page.text
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page.text)
    assert secret
    done = prod_client.post(
        "/dashboard/account/two-factor",
        data={
            "code": pyotp.TOTP(secret.group(1).replace(" ", "")).now(),
            "csrf": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert done.headers["location"] == "/dashboard"
    assert prod_client.get("/dashboard", follow_redirects=False).status_code == 200


def test_in_production_other_roles_may_skip_totp(prod_client: TestClient, engine: Engine) -> None:
    who = add_user(engine, Role.inspectorate)
    form = prod_client.get("/dashboard/login")
    response = prod_client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/dashboard"
