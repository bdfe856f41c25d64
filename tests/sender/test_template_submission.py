"""Submitting a template to Meta (respx) and to the sandbox: bodies valid against Meta's spec,
a time-to-live from the send window, Meta's verdict applied without a manual sync."""

from __future__ import annotations

import json
import time
from datetime import time as clock_time
from datetime import timedelta

import httpx
import pytest
import respx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from app.auth.models import Role
from app.config import Settings
from app.db import session_scope, utcnow
from app.main import create_app
from app.messaging import spec
from app.templates.models import MessageTemplate, TemplateLifecycle
from tests.factories import add_campaign, add_opd, add_template, add_token, bearer

PHONE_ID, WABA_ID = "106540352242922", "419561257915477"
TEMPLATES_URL = f"https://graph.facebook.com/v23.0/{WABA_ID}/message_templates"


def _draft_campaign(engine: Engine, template_id: int) -> int:
    add_opd(engine, "DINKES")
    today = utcnow().date()
    return add_campaign(
        engine,
        template_id=template_id,
        now=utcnow(),
        first_day=today,
        last_day=today + timedelta(days=60),
        send_start=clock_time(8, 0),
        send_end=clock_time(15, 0),
        activate=False,
    )


def _template(engine: Engine, template_id: int) -> MessageTemplate:
    with session_scope(engine) as s:
        row = s.get(MessageTemplate, template_id)
        assert row is not None
        return row


@pytest.fixture
def meta_api(settings: Settings, engine: Engine) -> FastAPI:
    meta = settings.model_copy(
        update={
            "whatsapp_access_token": SecretStr("EAAG-test-token"),
            "whatsapp_phone_number_id": PHONE_ID,
            "whatsapp_waba_id": WABA_ID,
            "whatsapp_app_secret": SecretStr("app-secret"),
        }
    )
    return create_app(meta, engine=engine)


def test_a_submission_to_meta_is_valid_utility_with_examples_and_the_window_as_ttl(
    engine: Engine, meta_api: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.messaging import runtime

    # Send through httpx's default transport so that respx sees the request.
    monkeypatch.setattr(runtime, "graph_http_client", _plain_client)
    admin = bearer(add_token(engine, Role.admin))
    template_id = add_template(engine)
    campaign_id = _draft_campaign(engine, template_id)
    answer = {"id": "594425479261596", "status": "PENDING", "category": "UTILITY"}
    assert spec.validate_response(spec.TEMPLATES_PATH, "post", answer) == []
    with respx.mock() as meta, TestClient(meta_api) as client:
        route = meta.post(TEMPLATES_URL).mock(return_value=httpx.Response(200, json=answer))
        response = client.post(
            f"/api/v1/templates/{template_id}/submit",
            json={"campaign_id": campaign_id},
            headers=admin,
        )
    assert response.status_code == 200, response.text
    sent = json.loads(route.calls.last.request.content)
    assert spec.validate_template_creation(sent) == []
    assert sent["category"] == "UTILITY"
    assert sent["message_send_ttl_seconds"] == 7 * 3600  # 08:00–15:00
    body = sent["components"][0]
    assert body["type"] == "BODY"
    assert body["example"]["body_text"] == [response.json()["examples"]]
    assert "Pemerintah Kota Uji" in response.json()["examples"]
    assert response.json()["status"] == "PENDING"
    saved = _template(engine, template_id)
    assert (saved.meta_template_id, saved.status, saved.source) == (
        "594425479261596",
        "PENDING",
        "meta",
    )
    with session_scope(engine) as s:
        row = s.get(TemplateLifecycle, template_id)
        assert row is not None
        assert row.send_ttl_seconds == 7 * 3600


def test_meta_refusing_a_submission_changes_nothing(
    engine: Engine, meta_api: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.messaging import runtime

    monkeypatch.setattr(runtime, "graph_http_client", _plain_client)
    admin = bearer(add_token(engine, Role.admin))
    template_id = add_template(engine)
    refusal = {
        "error": {
            "message": "Invalid parameter",
            "type": "OAuthException",
            "code": 100,
            "error_data": {"details": "Template name already exists"},
        }
    }
    with respx.mock() as meta, TestClient(meta_api) as client:
        meta.post(TEMPLATES_URL).mock(return_value=httpx.Response(400, json=refusal))
        response = client.post(
            f"/api/v1/templates/{template_id}/submit", json={"ttl_seconds": 3600}, headers=admin
        )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "meta_refused"
    assert _template(engine, template_id).status == "SANDBOX"
    assert _template(engine, template_id).meta_template_id is None


def test_submissions_refused_locally(engine: Engine, client: TestClient) -> None:
    admin = bearer(add_token(engine, Role.admin))
    template_id = add_template(engine)
    url = f"/api/v1/templates/{template_id}/submit"
    no_ttl = client.post(url, json={}, headers=admin)
    assert no_ttl.status_code == 422
    assert no_ttl.json()["error"]["code"] == "template_ttl_missing"
    assert client.post(url, json={"ttl_seconds": 20}, headers=admin).status_code == 422
    assert client.post(url, json={"ttl_seconds": 50000}, headers=admin).status_code == 422
    approved = add_template(engine, name="spi_lain", status="APPROVED")
    other = client.post(
        f"/api/v1/templates/{approved}/submit", json={"ttl_seconds": 3600}, headers=admin
    )
    assert other.status_code == 409


def test_the_sandbox_reviews_a_submission_and_the_verdict_arrives_by_webhook(
    engine: Engine, api: FastAPI
) -> None:
    admin = bearer(add_token(engine, Role.admin))
    template_id = add_template(engine)
    campaign_id = _draft_campaign(engine, template_id)
    with TestClient(api) as client:
        sandbox = api.state.sandbox
        sandbox.account.review_delay_seconds = 0.05
        response = client.post(
            f"/api/v1/templates/{template_id}/submit",
            json={"campaign_id": campaign_id},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        submitted = sandbox.account.templates[("spi_uji", "id")]
        assert submitted.ttl_seconds == 7 * 3600
        deadline = time.monotonic() + 5
        while _template(engine, template_id).status != "APPROVED":
            assert time.monotonic() < deadline, "the sandbox's verdict never arrived"
            time.sleep(0.05)
        saved = _template(engine, template_id)
        assert saved.meta_template_id == submitted.template_id
        activated = client.post(f"/api/v1/campaigns/{campaign_id}/activate", headers=admin)
        assert activated.status_code == 200, activated.text


def test_the_sandbox_can_approve_a_utility_as_marketing(engine: Engine, api: FastAPI) -> None:
    admin = bearer(add_token(engine, Role.admin))
    template_id = add_template(engine)
    with TestClient(api) as client:
        api.state.sandbox.account.update({"template_review": "MARKETING"})
        response = client.post(
            f"/api/v1/templates/{template_id}/submit", json={"ttl_seconds": 600}, headers=admin
        )
        assert response.status_code == 200, response.text
        assert response.json()["category"] == "MARKETING"
        assert response.json()["template"]["warnings"]  # the MARKETING warning


def _plain_client(base_url: str, *, timeout: httpx.Timeout, pool: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=timeout)
