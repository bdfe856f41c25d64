"""Production start logs the pre-flight; a process that may run the scheduler reads the number."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from app.config import Settings
from app.db import session_scope
from app.main import create_app
from app.messaging import runtime
from app.sandbox.graph import SandboxGraph
from app.sender import service

PHONE_ID, WABA_ID = "106540352242922", "419561257915477"


def _plain_client(base_url: str, *, timeout: httpx.Timeout, pool: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=timeout)


@pytest.fixture
def meta_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # httpx's own transport, so that respx can hand graph.facebook.com to the sandbox.
    monkeypatch.setattr(runtime, "graph_http_client", _plain_client)
    return settings.model_copy(
        update={
            "env": "production",
            "whatsapp_access_token": SecretStr("EAAG-startup-token"),
            "whatsapp_phone_number_id": PHONE_ID,
            "whatsapp_waba_id": WABA_ID,
            "whatsapp_app_secret": SecretStr("app-secret"),
        }
    )


def test_production_start_logs_the_preflight_and_reads_the_number(
    engine: Engine, meta_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    meta = SandboxGraph(secret=b"s", phone_number_id=PHONE_ID, waba_id=WABA_ID)
    meta.account.update({"name_status": "DECLINED", "messaging_limit": 2000})
    settings = meta_settings.model_copy(update={"scheduler_enabled": True})
    app = create_app(settings, engine=engine)
    caplog.set_level(logging.INFO)
    with respx.mock() as router:
        router.route(host="graph.facebook.com").mock(side_effect=respx.ASGIHandler(meta.asgi_app()))
        with TestClient(app):
            deadline = time.monotonic() + 10
            while "doctor.summary" not in caplog.text:
                assert time.monotonic() < deadline, "the start-up pre-flight never logged"
                time.sleep(0.1)
    assert "doctor.summary target=meta" in caplog.text
    assert "doctor.fail display_name" in caplog.text
    assert "EAAG-startup-token" not in caplog.text
    with session_scope(engine) as s:
        assert service.current_messaging_limit(s) == 2000
