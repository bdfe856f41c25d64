"""Reading the number (sandbox and Meta): limit, throughput, quality; shown to admins and on
/metrics; a repeated reading changes nothing twice."""

from __future__ import annotations

import httpx
import pytest
import respx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine

from app.auth.models import Role
from app.config import Settings
from app.messaging import spec
from app.sandbox.graph import SandboxGraph
from app.sender import jobs as sender_jobs
from tests.factories import add_token, bearer
from tests.sender.conftest import alerts, audit_actions

PHONE_ID, WABA_ID = "106540352242922", "419561257915477"
PHONE_URL = f"https://graph.facebook.com/v23.0/{PHONE_ID}"


def _metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name} {labels}")


def test_the_sandbox_plays_a_new_portfolio_and_admins_see_it(engine: Engine, api: FastAPI) -> None:
    admin = bearer(add_token(engine, Role.admin))
    coordinator = bearer(add_token(engine, Role.inspectorate))
    with TestClient(api, client=("127.0.0.1", 40000)) as client:
        assert client.get("/api/v1/sender", headers=coordinator).status_code == 403
        fresh = client.get("/api/v1/sender", headers=admin).json()
        assert fresh["known"] is False
        assert fresh["messaging_limit"] == 250  # assumed until Meta says otherwise

        read = client.post("/api/v1/sender/refresh", headers=admin)
        assert read.status_code == 200, read.text
        state = read.json()
        assert state["known"] is True
        assert state["messaging_limit_tier"] == "TIER_250"
        assert state["messaging_limit"] == 250
        assert state["throughput_per_second"] == 80
        assert state["quality_rating"] == "GREEN"
        assert state["name_status"] == "APPROVED"
        assert state["registration_status"] == "CONNECTED"

        text = client.get("/metrics").text
        assert _metric(text, "spi_sender_messaging_limit") == 250
        assert _metric(text, "spi_sender_throughput_per_second") == 80
        assert _metric(text, "spi_sender_quality", rating="green") == 1

        sandbox: SandboxGraph = api.state.sandbox
        sandbox.account.update({"messaging_limit": 0, "quality_rating": "YELLOW"})
        before = audit_actions(engine)
        client.post("/api/v1/sender/refresh", headers=admin)
        client.post("/api/v1/sender/refresh", headers=admin)
        state = client.get("/api/v1/sender", headers=admin).json()
        assert state["messaging_limit"] is None
        assert state["quality_rating"] == "YELLOW"
        assert [a["kind"] for a in state["open_alerts"]] == ["quality_low"]
        assert audit_actions(engine)[len(before) :] == ["sender.messaging_limit", "sender.quality"]
        assert _metric(client.get("/metrics").text, "spi_sender_messaging_limit") == float("inf")

        alert_id = state["open_alerts"][0]["id"]
        resolved = client.post(f"/api/v1/sender/alerts/{alert_id}/resolve", headers=admin)
        assert resolved.status_code == 200
        assert resolved.json()["resolved_by"]
        again = client.post(f"/api/v1/sender/alerts/{alert_id}/resolve", headers=admin)
        assert again.status_code == 409
        assert client.get("/api/v1/sender/alerts", headers=admin).json() == []


@pytest.fixture
def meta_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "whatsapp_access_token": SecretStr("EAAG-test-token"),
            "whatsapp_phone_number_id": PHONE_ID,
            "whatsapp_waba_id": WABA_ID,
            "whatsapp_app_secret": SecretStr("app-secret"),
        }
    )


META_PHONE = {
    "id": PHONE_ID,
    "display_phone_number": "+62 21 555 0100",
    "verified_name": "Pemerintah Kota Uji",
    "quality_rating": "GREEN",
    "name_status": "APPROVED",
    "code_verification_status": "VERIFIED",
    "status": "CONNECTED",
    "platform_type": "CLOUD_API",
    "is_on_biz_app": False,
    "throughput": {"level": "HIGH"},
    "whatsapp_business_manager_messaging_limit": "TIER_10K",
}


def test_the_scheduled_refresh_reads_meta_with_its_own_client(
    engine: Engine, meta_settings: Settings
) -> None:
    assert spec.validate_response(spec.PHONE_NUMBER_PATH, "get", META_PHONE) == []
    with respx.mock(assert_all_called=True) as meta:
        route = meta.get(PHONE_URL).mock(return_value=httpx.Response(200, json=META_PHONE))
        sender_jobs.refresh_sender_state(engine, settings=meta_settings)
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer EAAG-test-token"
    fields = request.url.params["fields"].split(",")
    assert {"whatsapp_business_manager_messaging_limit", "throughput", "quality_rating"} <= set(
        fields
    )
    assert "appsecret_proof" in request.url.params
    from app.db import session_scope
    from app.sender import service

    with session_scope(engine) as s:
        assert service.current_messaging_limit(s) == 10_000
        assert service.current_throughput_per_second(s) == 1_000


def test_a_refused_reading_keeps_the_last_state_and_says_why(
    engine: Engine, meta_settings: Settings
) -> None:
    with respx.mock() as meta:
        meta.get(PHONE_URL).mock(return_value=httpx.Response(200, json=META_PHONE))
        sender_jobs.refresh_sender_state(engine, settings=meta_settings)
        meta.get(PHONE_URL).mock(
            return_value=httpx.Response(
                401,
                json={"error": {"message": "expired", "type": "OAuthException", "code": 190}},
            )
        )
        sender_jobs.refresh_sender_state(engine, settings=meta_settings)
    from app.db import session_scope
    from app.sender import service

    with session_scope(engine) as s:
        state = service.current_state(s)
        assert state is not None
        assert state.refresh_error == "access_token_invalid"
        assert state.messaging_limit_tier == "TIER_10K"
    assert alerts(engine) == []
