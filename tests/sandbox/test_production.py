"""Production never runs the sandbox silently: refused without the flag; with it, said and locked.

Outside production nothing changes: the embedded default needs no credentials and no admin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.auth.models import Role
from app.cli import cli
from app.config import Settings, get_settings
from app.main import create_app
from app.sandbox.identity import (
    BANNER,
    DEV_WEBHOOK_SECRET,
    SandboxRefused,
    webhook_secret,
)
from app.security import PhoneVault
from app.webhook.security import sign
from tests.auth.helpers import login_as_token_holder
from tests.factories import add_opd, add_token, bearer, enrol_number
from tests.webhook import payloads
from tests.webhook.helpers import NUMBER, WA_ID, suppression

SANDBOX_ROUTES = [
    ("GET", "/sandbox/inbox"),
    ("GET", "/sandbox/inbox.json"),
    ("GET", "/sandbox/stats"),
    ("POST", "/sandbox/faults"),
    ("POST", "/sandbox/reset"),
    ("POST", "/sandbox/graph/v23.0/100000000000001/messages"),
]


@pytest.fixture
def production(settings: Settings) -> Settings:
    """Production with its keys set and no Meta credentials (the sandbox would stand in)."""
    return settings.model_copy(update={"env": "production"})


@pytest.fixture
def flagged(production: Settings) -> Settings:
    return production.model_copy(update={"sandbox_in_production": True})


@pytest.fixture
def prod_api(flagged: Settings, engine: Engine, caplog: pytest.LogCaptureFixture) -> FastAPI:
    caplog.set_level(logging.WARNING)
    return create_app(flagged, engine=engine)


@pytest.fixture
def prod_client(prod_api: FastAPI) -> Iterator[TestClient]:
    # https: the dashboard's session cookie is Secure there.
    with TestClient(prod_api, base_url="https://testserver") as client:
        yield client


def test_the_app_factory_refuses_production_without_credentials(
    production: Settings, engine: Engine
) -> None:
    with pytest.raises(SandboxRefused) as refused:
        create_app(production, engine=engine)
    message = str(refused.value)
    assert "SPI_WHATSAPP_ACCESS_TOKEN" in message
    assert "SPI_SANDBOX_IN_PRODUCTION=true" in message
    assert "\n" not in message


@pytest.fixture
def production_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SPI_ENV", "production")
    monkeypatch.setenv("SPI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SPI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SPI_ENCRYPTION_KEYS", settings.encryption_keys.get_secret_value())
    monkeypatch.setenv("SPI_BLIND_INDEX_KEY", settings.blind_index_key.get_secret_value())
    for name in ("ACCESS_TOKEN", "PHONE_NUMBER_ID", "WABA_ID", "APP_SECRET"):
        monkeypatch.setenv(f"SPI_WHATSAPP_{name}", "")
    monkeypatch.delenv("SPI_SANDBOX_IN_PRODUCTION", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "command", [["serve"], ["worker"], ["scheduler"], ["sandbox", "serve"]], ids=" ".join
)
def test_every_process_refuses_production_without_credentials(
    production_env: None, command: list[str]
) -> None:
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "SPI_WHATSAPP_ACCESS_TOKEN" in lines[0]
    assert "SPI_SANDBOX_IN_PRODUCTION=true" in lines[0]


@pytest.mark.parametrize("command", [["worker"], ["sandbox", "serve"]], ids=" ".join)
def test_with_the_flag_the_sandbox_runs_inside_serve_only(
    production_env: None, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    # A separate process could not ask for an admin before showing the sandbox's inbox.
    monkeypatch.setenv("SPI_SANDBOX_IN_PRODUCTION", "true")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2
    assert "inside `serve` only" in result.stderr


def test_with_the_flag_it_starts_and_warns(
    prod_api: FastAPI, prod_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert prod_client.get("/healthz").status_code == 200
    records = caplog.get_records("setup") + caplog.records  # create_app ran in the fixture
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert any(BANNER in r.getMessage() for r in warnings)
    assert prod_api.state.whatsapp.is_sandbox


def _login(client: TestClient, token: str) -> None:
    # The pages take people, not tokens: log in as a person like the token's holder.
    login_as_token_holder(client, token)


def test_every_html_page_shows_the_banner(
    prod_api: FastAPI, prod_client: TestClient, engine: Engine
) -> None:
    _login(prod_client, add_token(engine, Role.admin))
    paths = [
        route.path  # type: ignore[attr-defined]
        for route in prod_api.routes
        if "GET" in (getattr(route, "methods", None) or ()) and "{" not in route.path  # type: ignore[attr-defined]
    ]
    pages = 0
    for path in paths:
        response = prod_client.get(path)
        if response.headers.get("content-type", "").startswith("text/html"):
            pages += 1
            assert BANNER in response.text, path
            assert response.text.index(BANNER) < response.text.index("</body>"), path
            assert int(response.headers["content-length"]) == len(response.content), path
    assert pages >= 4  # the dashboard, its login, the sandbox inbox, the API docs
    assert BANNER not in prod_client.get("/healthz").text  # JSON stays as it was


def test_sandbox_routes_need_an_admin(prod_client: TestClient, engine: Engine) -> None:
    coordinator = add_token(engine, Role.coordinator, add_opd_code(engine))
    inspector = add_token(engine, Role.inspectorate)
    admin = add_token(engine, Role.admin)
    for method, path in SANDBOX_ROUTES:
        body = {"json": {}} if method == "POST" else {}
        assert prod_client.request(method, path, **body).status_code == 401, path
        for token in (coordinator, inspector, "spi_not_a_token"):
            status = prod_client.request(method, path, headers=bearer(token), **body).status_code
            assert status in (401, 403), (path, status)
    as_admin = bearer(admin)
    assert prod_client.get("/sandbox/inbox", headers=as_admin).status_code == 200
    assert prod_client.get("/sandbox/inbox.json", headers=as_admin).json() == []
    assert prod_client.post("/sandbox/reset", headers=as_admin).status_code == 200
    faults = prod_client.post("/sandbox/faults", headers=as_admin, json={"latency_ms": 5})
    assert faults.json()["latency_ms"] == 5
    # Nothing is mounted for a worker in another process: production refuses one.
    graph = prod_client.post(SANDBOX_ROUTES[-1][1], headers=as_admin, json={})
    assert graph.status_code in (404, 405)


def test_the_dashboard_admin_session_opens_the_sandbox(
    prod_client: TestClient, engine: Engine
) -> None:
    _login(prod_client, add_token(engine, Role.inspectorate))
    assert prod_client.get("/sandbox/inbox").status_code == 403
    prod_client.cookies.clear()
    _login(prod_client, add_token(engine, Role.admin))
    assert prod_client.get("/sandbox/inbox").status_code == 200


def add_opd_code(engine: Engine) -> str:
    add_opd(engine, "DINKES", "Dinas Kesehatan")
    return "DINKES"


def test_a_mulai_signed_with_the_public_sandbox_secret_is_refused(
    flagged: Settings, prod_client: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    enrol_number(engine, vault, add_opd_code(engine), NUMBER)
    stop = payloads.raw(payloads.inbound(payloads.text(WA_ID, "STOP")))
    own = prod_client.post(
        "/webhook/whatsapp",
        content=stop,
        headers={"X-Hub-Signature-256": sign(stop, webhook_secret(flagged))},
    )
    assert own.status_code == 200
    assert suppression(engine, vault) == "stop"
    assert webhook_secret(flagged) != DEV_WEBHOOK_SECRET

    forged = payloads.raw(payloads.inbound(payloads.text(WA_ID, "MULAI")))
    response = prod_client.post(
        "/webhook/whatsapp",
        content=forged,
        headers={"X-Hub-Signature-256": sign(forged, DEV_WEBHOOK_SECRET)},
    )
    assert response.status_code == 403
    assert suppression(engine, vault) == "stop"  # the opt-out holds


def test_outside_production_nothing_changes(
    settings: Settings, api: FastAPI, client: TestClient
) -> None:
    assert webhook_secret(settings) == DEV_WEBHOOK_SECRET
    assert client.get("/sandbox/inbox").status_code == 200  # no admin needed locally
    assert client.get("/sandbox/inbox.json").status_code == 200
    assert BANNER not in client.get("/sandbox/inbox").text
    assert BANNER not in client.get("/dashboard/login").text
