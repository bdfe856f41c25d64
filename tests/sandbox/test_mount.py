"""The embedded sandbox in `serve`: on without credentials, inbox page, own webhook; off with."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator

import pytest
import respx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.main import create_app
from app.messaging.results import SendOutcome
from app.messaging.runtime import Messenger
from app.outbox import worker as outbox_worker
from app.sandbox.graph import SandboxGraph
from app.sandbox.identity import (
    DEV_WEBHOOK_SECRET,
    SANDBOX_ACCESS_TOKEN,
    SANDBOX_PHONE_NUMBER_ID,
    sandbox_active,
    webhook_secret,
)
from app.security import mask_phone
from tests.factories import add_template

TO = "+6281234567890"


@pytest.fixture
def sandbox_client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api) as client:
        yield client


def _wait_for_statuses(sandbox: SandboxGraph, at_least: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        answered = sandbox.webhooks_posted + sandbox.webhooks_failed
        if answered >= at_least and sandbox.stats()["pending_statuses"] == 0:
            return
        time.sleep(0.05)


def test_serve_without_credentials_uses_the_sandbox_and_shows_the_inbox(
    engine: Engine, api: FastAPI, sandbox_client: TestClient
) -> None:
    add_template(engine)
    messenger = api.state.whatsapp
    sandbox = api.state.sandbox
    assert isinstance(messenger, Messenger)
    assert isinstance(sandbox, SandboxGraph)
    assert messenger.sandbox is sandbox
    assert messenger.is_sandbox
    sandbox.faults.status_delay_seconds = 0.05

    reminder = sandbox_client.portal.call(  # type: ignore[union-attr]
        functools.partial(
            messenger.send_reminder,
            to=TO,
            template_name="spi_uji",
            language="id",
            parameters=["Pemerintah Kota Uji", "30 April 2026"],
            callback_data="d0001",
        )
    )
    reply = sandbox_client.portal.call(  # type: ignore[union-attr]
        functools.partial(messenger.send_reply, to=TO, body="Terima kasih.")
    )
    assert reminder is not None
    assert reminder.outcome is SendOutcome.ACCEPTED
    assert reply.outcome is SendOutcome.ACCEPTED

    page = sandbox_client.get("/sandbox/inbox")
    assert page.status_code == 200
    assert "Kotak Masuk Sandbox WhatsApp" in page.text
    assert mask_phone(TO) in page.text
    assert TO not in page.text
    assert "81234567890" not in page.text
    assert "spi_uji" in page.text
    # Rendered from the service's own copy of the template.
    assert "Pemerintah Kota Uji menyampaikan bahwa KPK" in page.text
    assert "Balasan teks" in page.text
    listed = sandbox_client.get("/sandbox/inbox.json").json()
    assert [e["template"] for e in listed] == [None, "spi_uji"]

    # The statuses go, signed, to the service's own webhook, which accepts them.
    _wait_for_statuses(sandbox, 2)
    assert sandbox.webhooks_posted >= 1
    assert sandbox.webhooks_failed == 0


def test_a_separate_worker_can_send_through_serves_sandbox(
    api: FastAPI, sandbox_client: TestClient
) -> None:
    sandbox = api.state.sandbox
    response = sandbox_client.post(
        f"/sandbox/graph/v23.0/{SANDBOX_PHONE_NUMBER_ID}/messages",
        json={
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": TO,
            "type": "text",
            "text": {"preview_url": False, "body": "Halo"},
        },
        headers={"Authorization": f"Bearer {SANDBOX_ACCESS_TOKEN}"},
    )
    assert response.status_code == 200
    assert sandbox.accepted == 1
    assert sandbox_client.get("/sandbox/graph/sandbox/stats").json()["accepted"] == 1


def test_lifespan_starts_and_stops_a_worker(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings.model_copy(update={"worker_enabled": True}), engine=engine)
    started: list[object] = []
    original = outbox_worker.start

    async def spy(app: FastAPI) -> outbox_worker.WorkerHandle | None:
        handle = await original(app)
        started.append(handle)
        return handle

    monkeypatch.setattr(outbox_worker, "start", spy)
    with TestClient(app):
        pass
    (handle,) = started
    assert isinstance(handle, outbox_worker.WorkerHandle)
    assert handle.worker.stopping
    assert handle.task.done()


def test_no_worker_without_a_messenger() -> None:
    app = FastAPI()
    app.state.whatsapp = None
    assert asyncio.run(outbox_worker.start(app)) is None
    asyncio.run(outbox_worker.stop(None))


def test_real_credentials_switch_the_sandbox_off(settings: Settings, engine: Engine) -> None:
    real = settings.model_copy(
        update={
            "whatsapp_access_token": SecretStr("EAAG-real"),
            "whatsapp_phone_number_id": "106540352242922",
            "whatsapp_waba_id": "419561257915477",
            "whatsapp_app_secret": SecretStr("meta-app-secret"),
        }
    )
    app = create_app(real, engine=engine)
    assert app.state.sandbox is None
    with TestClient(app) as client:
        assert client.get("/sandbox/inbox").status_code == 404
        assert client.post("/sandbox/graph/v23.0/1/messages", json={}).status_code == 404
        messenger = app.state.whatsapp
        assert isinstance(messenger, Messenger)
        assert not messenger.is_sandbox
        assert messenger.client.config.base_url == "https://graph.facebook.com"
        assert messenger.sandbox is None
    assert webhook_secret(real) == b"meta-app-secret"


def test_webhook_secret(settings: Settings) -> None:
    assert webhook_secret(settings) == DEV_WEBHOOK_SECRET
    own = settings.model_copy(update={"whatsapp_app_secret": SecretStr("mine")})
    assert webhook_secret(own) == b"mine"
    unverifiable = settings.model_copy(update={"whatsapp_access_token": SecretStr("EAAG")})
    assert webhook_secret(unverifiable) == b""
    assert sandbox_active(settings)
    assert not sandbox_active(unverifiable)


def test_sandbox_inbox_command() -> None:
    entries = [
        {
            "at": "2026-03-10T03:00:00+00:00",
            "to": "+62812****7890",
            "template": "spi_uji",
            "text": "Yth. Bapak/Ibu, Pemerintah Kota Uji menyampaikan …",
            "status": "delivered",
        },
        {
            "at": "2026-03-10T03:00:01+00:00",
            "to": "+62812****7890",
            "template": None,
            "text": "Terima kasih.",
            "status": "accepted",
        },
    ]
    with respx.mock(assert_all_called=True) as router:
        router.get("http://sandbox.test/sandbox/inbox.json").respond(200, json=entries)
        result = CliRunner().invoke(cli, ["sandbox", "inbox", "--url", "http://sandbox.test"])
    assert result.exit_code == 0, result.output
    assert "+62812****7890  templat spi_uji  [sampai di ponsel]" in result.output
    assert "Pemerintah Kota Uji menyampaikan" in result.output
    assert "balasan teks  [diterima Meta]" in result.output


def test_sandbox_inbox_command_when_nothing_runs() -> None:
    with respx.mock() as router:
        router.get("http://sandbox.test/sandbox/inbox.json").respond(502)
        result = CliRunner().invoke(cli, ["sandbox", "inbox", "--url", "http://sandbox.test"])
    assert result.exit_code == 2
