"""`spi-reminder templates sync|seed|list` end to end, Meta mocked with respx."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import select
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.cli import cli
from app.config import Settings, get_settings
from app.db import session_scope
from app.templates import acknowledgements
from app.templates.models import MessageTemplate

WABA_ID = "419561257915477"
TOKEN = "EAAG-test-token-do-not-log"
TEMPLATES_URL = f"https://graph.facebook.com/v23.0/{WABA_ID}/message_templates"
NEUTRAL = (
    "Yth. Bapak/Ibu, {{1}} menyampaikan bahwa masa pengisian SPI berakhir pada {{2}}. "
    "Keikutsertaan bersifat sukarela. Balas BERHENTI untuk berhenti."
)


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI's environment, pointing at the test database, without Meta credentials."""
    monkeypatch.setenv("SPI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SPI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SPI_LOG_JSON", "false")
    monkeypatch.setenv("SPI_WHATSAPP_ACCESS_TOKEN", "")
    monkeypatch.setenv("SPI_WHATSAPP_WABA_ID", "")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def meta_env(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SPI_WHATSAPP_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("SPI_WHATSAPP_WABA_ID", WABA_ID)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def meta_template(name: str, status: str, body: str, category: str = "UTILITY") -> dict[str, Any]:
    return {
        "name": name,
        "language": "id",
        "category": category,
        "status": status,
        "id": "1234567890",
        "components": [{"type": "BODY", "text": body}],
    }


def rows(engine: Engine) -> dict[str, MessageTemplate]:
    with session_scope(engine) as s:
        found = s.exec(select(MessageTemplate)).all()
        for row in found:
            s.expunge(row)
        return {r.name: r for r in found}


def test_sync_without_credentials_exits_2(cli_env: None, engine: Engine) -> None:
    with respx.mock(assert_all_mocked=True) as graph:
        result = CliRunner().invoke(cli, ["templates", "sync"])
        assert not graph.calls
    assert result.exit_code == 2
    assert "SPI_WHATSAPP_ACCESS_TOKEN" in result.output
    assert rows(engine) == {}


def test_sync_upserts_from_meta_keeping_status_and_body(meta_env: None, engine: Engine) -> None:
    seeded = CliRunner().invoke(cli, ["templates", "seed"])
    assert seeded.exit_code == 0, seeded.output
    before = rows(engine)["spi_pengingat_umum"]
    page_two = f"{TEMPLATES_URL}?after=CURSOR&limit=100&fields=name"
    first_page = {
        "data": [
            meta_template("spi_pengingat_umum", "APPROVED", NEUTRAL),
            meta_template("spi_dijeda", "PAUSED", NEUTRAL),
        ],
        "paging": {"cursors": {"after": "CURSOR"}, "next": page_two},
    }
    second_page = {"data": [meta_template("spi_ditolak", "REJECTED", "Halo {{1}}")]}
    with respx.mock(assert_all_mocked=True) as graph:
        listing = graph.get(url__startswith=TEMPLATES_URL).mock(
            side_effect=[
                httpx.Response(200, json=first_page),
                httpx.Response(200, json=second_page),
            ]
        )
        result = CliRunner().invoke(cli, ["templates", "sync"])
    assert result.exit_code == 0, result.output
    assert listing.call_count == 2
    first_request, second_request = (c.request for c in listing.calls)
    assert first_request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert first_request.url.params["fields"] == "name,language,category,status,components"
    assert str(second_request.url) == page_two
    assert TOKEN not in result.output
    assert "synced 3 template(s)" in result.output
    found = rows(engine)
    umum = found["spi_pengingat_umum"]
    assert (umum.status, umum.source, umum.body) == ("APPROVED", "meta", NEUTRAL)
    assert umum.parameters == before.parameters
    assert acknowledgements.usable_problem(umum) is None
    assert found["spi_dijeda"].status == "PAUSED"
    assert found["spi_ditolak"].status == "REJECTED"
    assert acknowledgements.usable_problem(found["spi_dijeda"]) is not None
    assert found["spi_pengingat_keaslian_undangan"].status == "SANDBOX"  # not Meta's
    with session_scope(engine) as s:
        synced = s.exec(select(AuditEvent).where(AuditEvent.action == "template.sync")).all()
        assert len(synced) == 3
        assert {e.actor_name for e in synced} == {"cli"}

    listed = CliRunner().invoke(cli, ["templates", "list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split("\t")[1]: line for line in listed.output.strip().splitlines()}
    assert lines["spi_pengingat_umum/id"].endswith("usable")
    assert "not usable: template status is PAUSED" in lines["spi_dijeda/id"]


def test_sync_reports_a_meta_error_and_changes_nothing(meta_env: None, engine: Engine) -> None:
    error = {
        "error": {"message": "Invalid OAuth access token", "type": "OAuthException", "code": 190}
    }
    with respx.mock(assert_all_mocked=True) as graph:
        graph.get(url__startswith=TEMPLATES_URL).respond(401, json=error)
        result = CliRunner().invoke(cli, ["templates", "sync"])
    assert result.exit_code == 1
    assert "Meta refused" in result.output
    assert rows(engine) == {}


def test_seed_is_idempotent(cli_env: None, engine: Engine) -> None:
    first = CliRunner().invoke(cli, ["templates", "seed"])
    second = CliRunner().invoke(cli, ["templates", "seed"])
    assert first.exit_code == 0, first.output
    assert "added 2" in first.output
    assert "added 0" in second.output
    assert sorted(rows(engine)) == ["spi_pengingat_keaslian_undangan", "spi_pengingat_umum"]
