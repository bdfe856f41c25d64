"""Sessions no cookie can use any more are deleted by the daily retention job; live ones stay.

And the session cookie is Secure when TLS ends at a proxy the service trusts, not otherwise.
"""

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from app.auth import sessions as user_sessions
from app.auth.models import Role, SessionStage, UserSession
from app.config import Settings
from app.db import session_scope, utcnow
from app.main import create_app
from app.retention import jobs as retention_jobs
from tests.auth.helpers import add_user, csrf_of, stored_user


def _sessions(engine: Engine, username: str) -> dict[str, str]:
    """Four sessions of one user: live, logged out, past their expiry, idle too long."""
    keys: dict[str, str] = {}
    with session_scope(engine) as s:
        user = stored_user(engine, username)
        for name in ("live", "logged_out", "expired", "idle"):
            keys[name] = user_sessions.start(s, user=user, stage=SessionStage.full)
        rows = {name: user_sessions.lookup(s, key=key) for name, key in keys.items()}
        now = utcnow()
        for name, found in rows.items():
            assert found is not None
            row = found.row
            if name == "logged_out":
                user_sessions.end(s, row=row)
            elif name == "expired":
                row.expires_at = now - timedelta(seconds=1)
            elif name == "idle":
                row.last_seen_at = now - user_sessions.IDLE_TIMEOUT - timedelta(minutes=1)
            s.add(row)
    return keys


def _left(engine: Engine) -> int:
    with session_scope(engine) as s:
        return len(s.exec(select(UserSession)).all())


def test_the_daily_job_deletes_ended_sessions_and_keeps_live_ones(engine: Engine) -> None:
    who = add_user(engine, Role.inspectorate)
    keys = _sessions(engine, who.username)
    assert _left(engine) == 4
    dry = retention_jobs.run(engine, audit_retention_days=365, dry_run=True)
    assert dry.sessions == 3
    assert _left(engine) == 4  # a dry run deletes nothing
    report = retention_jobs.run(engine, audit_retention_days=365)
    assert report.sessions == 3
    assert "sessions=3" in report.summary()
    assert _left(engine) == 1
    with session_scope(engine) as s:
        assert user_sessions.lookup(s, key=keys["live"]) is not None
        assert user_sessions.lookup(s, key=keys["idle"]) is None


def _login_cookie(client: TestClient, engine: Engine, headers: dict[str, str]) -> str:
    """Log in with these request headers; the session cookie's Set-Cookie line."""
    who = add_user(engine, Role.inspectorate)
    form = client.get("/dashboard/login", headers=headers)
    pre_login = form.headers["set-cookie"]
    value = re.match(r"spi_login_csrf=([^;]+)", pre_login)
    assert value
    # Sent by hand: the test client keeps a Secure cookie for https URLs only.
    cookie = {"Cookie": f"spi_login_csrf={value.group(1)}"}
    response = client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
        headers=headers | cookie,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    session_cookie = response.headers["set-cookie"]
    # Both cookies follow the same rule.
    assert ("Secure" in pre_login) == ("Secure" in session_cookie)
    return session_cookie


@pytest.fixture
def proxied(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The service behind a proxy it trusts (TestClient's peer address is "testclient")."""
    trusting = settings.model_copy(update={"forwarded_allow_ips": "testclient"})
    with TestClient(create_app(trusting, engine=engine)) as c:
        yield c


def test_behind_a_trusted_tls_proxy_the_cookie_is_secure(
    proxied: TestClient, engine: Engine
) -> None:
    cookie = _login_cookie(proxied, engine, {"X-Forwarded-Proto": "https"})
    assert cookie.startswith("spi_session=")
    assert "Secure" in cookie


def test_a_forwarded_scheme_from_an_untrusted_peer_is_ignored(
    client: TestClient, engine: Engine
) -> None:
    # The default trusts only 127.0.0.1: anyone else saying "https" is not believed.
    cookie = _login_cookie(client, engine, {"X-Forwarded-Proto": "https"})
    assert cookie.startswith("spi_session=")
    assert "Secure" not in cookie


def test_behind_a_trusted_proxy_over_plain_http_the_cookie_is_not_secure(
    proxied: TestClient, engine: Engine
) -> None:
    cookie = _login_cookie(proxied, engine, {"X-Forwarded-Proto": "http"})
    assert "Secure" not in cookie
