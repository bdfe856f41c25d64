"""Dashboard login: token in the form body, signed HttpOnly SameSite cookie, CSRF-checked forms."""

import re
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from app.auth.models import ApiToken, Role
from app.auth.principal import cli_principal
from app.auth.service import revoke_token
from app.campaigns.models import Campaign
from app.db import session_scope
from app.templates.models import MessageTemplate
from tests.factories import add_token


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form has no CSRF field"
    return match.group(1)


def login(client: TestClient, token: str) -> str:
    """Log in through the form; returns the CSRF value of the logged-in pages."""
    form = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"token": token, "csrf": _csrf(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return _csrf(client.get("/dashboard").text)


def test_pages_need_a_session(client: TestClient) -> None:
    response = client.get("/dashboard", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login"


def test_login_sets_a_hardened_cookie_without_the_token(client: TestClient, engine: Engine) -> None:
    token = add_token(engine, Role.inspectorate, name="Inspektorat Kota")
    form = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"token": token, "csrf": _csrf(form.text)},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert token not in cookie
    assert token not in response.headers["location"]
    page = client.get("/dashboard")
    assert "Inspektorat Kota (inspektorat)" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_login_without_csrf_or_with_bad_token_fails(client: TestClient, engine: Engine) -> None:
    token = add_token(engine, Role.admin)
    client.get("/dashboard/login")
    no_csrf = client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert no_csrf.status_code == 401
    form = client.get("/dashboard/login")
    bad = client.post(
        "/dashboard/login",
        data={"token": "spi_nope", "csrf": _csrf(form.text)},
        follow_redirects=False,
    )
    assert bad.status_code == 401
    assert "Token tidak valid" in bad.text
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_ends_the_session(client: TestClient, engine: Engine) -> None:
    csrf = login(client, add_token(engine, Role.admin))
    refused = client.post("/dashboard/logout", data={"csrf": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/dashboard", follow_redirects=False).status_code == 200
    done = client.post("/dashboard/logout", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_revoking_the_token_ends_its_sessions(client: TestClient, engine: Engine) -> None:
    login(client, add_token(engine, Role.admin, name="to revoke"))
    with session_scope(engine) as s:
        token = s.exec(select(ApiToken).where(ApiToken.name == "to revoke")).one()
        assert token.id is not None
        revoke_token(s, actor=cli_principal(), token_id=token.id)
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
