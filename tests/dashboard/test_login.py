"""Dashboard login as a person: password in the form body, server-side session, CSRF checks."""

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from app.campaigns.models import Campaign
from app.db import session_scope
from app.templates.models import MessageTemplate
from tests.auth.helpers import add_user, csrf_of, login_as_token_holder
from tests.factories import add_token


def login(client: TestClient, token: str) -> str:
    """Log in as a person like the token's holder; returns the CSRF value of the pages."""
    return login_as_token_holder(client, token)


def test_pages_need_a_session(client: TestClient) -> None:
    response = client.get("/dashboard", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login"


def test_login_sets_a_hardened_cookie_without_the_password(
    client: TestClient, engine: Engine
) -> None:
    who = add_user(engine, Role.inspectorate, name="Inspektorat Kota")
    form = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http outside production: the browser would drop it
    assert who.password not in cookie
    page = client.get("/dashboard")
    assert "Inspektorat Kota (inspektorat)" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_login_without_csrf_or_with_a_wrong_password_fails(
    client: TestClient, engine: Engine
) -> None:
    who = add_user(engine, Role.admin)
    client.get("/dashboard/login")
    no_csrf = client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password},
        follow_redirects=False,
    )
    assert no_csrf.status_code == 403
    form = client.get("/dashboard/login")
    bad = client.post(
        "/dashboard/login",
        data={"username": who.username, "password": "salah sekali", "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert bad.status_code == 401
    assert "Nama pengguna atau kata sandi salah." in bad.text
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_pasted_api_token_no_longer_logs_in(client: TestClient, engine: Engine) -> None:
    token = add_token(engine, Role.admin)
    form = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"token": token, "username": token, "password": token, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_ends_the_session(client: TestClient, engine: Engine) -> None:
    csrf = login(client, add_token(engine, Role.admin))
    refused = client.post("/dashboard/logout", data={"csrf": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/dashboard", follow_redirects=False).status_code == 200
    done = client.post("/dashboard/logout", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_campaign_list_shows_state_and_pause_alert(client: TestClient, engine: Engine) -> None:
    with session_scope(engine) as s:
        template = MessageTemplate(name="t", body="Halo {{1}}", status="SANDBOX")
        s.add(template)
        s.flush()
        assert template.id is not None
        s.add(
            Campaign(
                name="SPI 2026 Gelombang 1",
                spi_year=2026,
                first_day=date(2026, 8, 3),
                last_day=date(2026, 10, 30),
                template_id=template.id,
                state="paused",
                paused_reason="token WhatsApp tidak valid (190)",
            )
        )
    login(client, add_token(engine, Role.inspectorate))
    page = client.get("/dashboard").text
    assert "SPI 2026 Gelombang 1" in page
    assert "dijeda: token WhatsApp tidak valid (190)" in page
    assert "3 Agustus 2026 – 30 Oktober 2026" in page
