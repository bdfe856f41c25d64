"""`spi-reminder doctor` against Meta (respx routes graph.facebook.com to a sandbox set up
like the account under test): the summary, the advice, the exit code, and no token printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import respx
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, get_settings
from app.db import utcnow
from app.sandbox.graph import SandboxGraph
from tests.factories import add_campaign, add_opd, add_template

PHONE_ID, WABA_ID = "106540352242922", "419561257915477"
TOKEN = "EAAG-doctor-token-never-printed"


@pytest.fixture
def meta_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SPI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SPI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SPI_ENCRYPTION_KEYS", settings.encryption_keys.get_secret_value())
    monkeypatch.setenv("SPI_BLIND_INDEX_KEY", settings.blind_index_key.get_secret_value())
    monkeypatch.setenv("SPI_WHATSAPP_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("SPI_WHATSAPP_PHONE_NUMBER_ID", PHONE_ID)
    monkeypatch.setenv("SPI_WHATSAPP_WABA_ID", WABA_ID)
    monkeypatch.setenv("SPI_WHATSAPP_APP_SECRET", "app-secret")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def meta() -> Iterator[SandboxGraph]:
    """graph.facebook.com, played by a sandbox with this service's ids."""
    account = SandboxGraph(secret=b"s", phone_number_id=PHONE_ID, waba_id=WABA_ID)
    with respx.mock() as router:
        router.route(host="graph.facebook.com").mock(
            side_effect=respx.ASGIHandler(account.asgi_app())
        )
        yield account


def test_a_healthy_account_passes(meta_env: None, meta: SandboxGraph) -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "Pemeriksaan pra-kirim (meta):" in result.output
    assert "[OK] Token akses dan izinnya" in result.output
    # Meta will call a URL this service does not know yet.
    assert "[PERINGATAN] URL webhook menjawab verifikasi Meta" in result.output
    assert "SPI_PUBLIC_WEBHOOK_URL" in result.output
    assert TOKEN not in result.output


def test_a_declined_name_fails_with_advice(meta_env: None, meta: SandboxGraph) -> None:
    meta.account.update({"name_status": "DECLINED", "coexistence": True})
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    checks = {c["key"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert checks["display_name"]["status"] == "fail"
    assert "WhatsApp Manager" in checks["display_name"]["advice"]
    assert checks["coexistence"]["status"] == "warn"
    assert TOKEN not in result.output


def test_a_campaign_template_meta_does_not_list_fails(
    meta_env: None, meta: SandboxGraph, engine: Engine
) -> None:
    add_opd(engine, "DINKES")
    template_id = add_template(engine, status="APPROVED")
    today = utcnow().date()
    add_campaign(
        engine,
        template_id=template_id,
        now=utcnow(),
        first_day=today,
        last_day=today + timedelta(days=30),
    )
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 1, result.output
    checks = [c for c in json.loads(result.stdout)["checks"] if c["key"].startswith("campaign")]
    assert [c["status"] for c in checks] == ["fail"]
    assert "tidak mencantumkan" in checks[0]["detail"]
    assert "spi_uji/id" in checks[0]["title"]
