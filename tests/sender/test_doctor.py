"""The pre-flight: every check passes against a healthy sandbox, and each fails clearly (with
advice in Bahasa Indonesia) against a sandbox set up to fail it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from app.auth.models import Role
from app.config import Settings
from app.db import utcnow
from app.main import create_app
from app.sandbox import notices
from app.sandbox.account import SANDBOX_APP_ID
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault
from tests.factories import add_campaign, add_opd, add_people, add_template, add_token, bearer
from tests.webhook import payloads

PUBLIC_URL = "https://spi.example.go.id/webhook/whatsapp"
VERIFY = "uji-verify-token"
# Advice is in Bahasa Indonesia: it reads with Indonesian function words.
INDONESIAN = re.compile(r"\b(dan|atau|yang|untuk|di|ke|dengan|agar|sebelum)\b")


def _doctor(engine: Engine, api: FastAPI, arrange: Callable[[SandboxGraph], None]) -> dict:
    admin = bearer(add_token(engine, Role.admin))
    with TestClient(api) as client:
        arrange(api.state.sandbox)
        response = client.get("/api/v1/doctor", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def _check(report: dict, key: str) -> dict[str, Any]:
    found = [c for c in report["checks"] if c["key"] == key]
    assert found, f"no check {key}: {[c['key'] for c in report['checks']]}"
    return found[0]


def _running_campaign(
    engine: Engine, *, status: str = "APPROVED", category: str = "UTILITY"
) -> None:
    add_opd(engine, "DINKES")
    template_id = add_template(engine)
    today = utcnow().date()
    add_campaign(
        engine,
        template_id=template_id,
        now=utcnow(),
        first_day=today,
        last_day=today + timedelta(days=30),
    )
    from app.db import session_scope
    from app.templates.models import MessageTemplate

    with session_scope(engine) as s:
        template = s.get(MessageTemplate, template_id)
        assert template is not None
        template.status, template.category = status, category
        s.add(template)


def test_a_healthy_sandbox_passes(engine: Engine, api: FastAPI) -> None:
    _running_campaign(engine, status="SANDBOX")
    report = _doctor(engine, api, lambda _sandbox: None)
    assert report["ok"] is True, report
    assert report["target"] == "sandbox"
    statuses = {c["key"]: c["status"] for c in report["checks"]}
    for key in (
        "token",
        "phone_registration",
        "display_name",
        "quality",
        "coexistence",
        "webhook_subscription",
        "account",
        "messaging_limit",
    ):
        assert statuses[key] == "ok", (key, report)
    assert statuses["webhook_fields"] == "skip"  # no app id configured
    assert [k for k in statuses if k.startswith("campaign_template:")]


FAILURES: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (sandbox account changes, failing check, expected status)
    "permissions": ({"permissions": ["whatsapp_business_messaging"]}, "token", "fail"),
    "registration": ({"registration_status": "PENDING"}, "phone_registration", "fail"),
    "name_declined": ({"name_status": "DECLINED"}, "display_name", "fail"),
    "name_pending": ({"name_status": "PENDING_REVIEW"}, "display_name", "warn"),
    "quality_red": ({"quality_rating": "RED"}, "quality", "fail"),
    "quality_yellow": ({"quality_rating": "YELLOW"}, "quality", "warn"),
    "coexistence": ({"coexistence": True}, "coexistence", "warn"),
    "not_subscribed": ({"subscribed": False}, "webhook_subscription", "fail"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_each_check_fails_clearly_against_a_sandbox_set_to_fail_it(
    engine: Engine, api: FastAPI, case: str
) -> None:
    changes, key, status = FAILURES[case]
    report = _doctor(engine, api, lambda sandbox: sandbox.account.update(changes))
    check = _check(report, key)
    assert check["status"] == status, check
    assert check["advice"], check
    assert INDONESIAN.search(check["advice"]), check["advice"]
    assert report["ok"] is (status != "fail")


def test_a_refused_token_fails_and_skips_what_depends_on_it(engine: Engine, api: FastAPI) -> None:
    report = _doctor(engine, api, lambda sandbox: sandbox.account.update({"token_valid": False}))
    token = _check(report, "token")
    assert token["status"] == "fail"
    assert "access_token_invalid" in token["detail"]
    assert "System User" in token["advice"]
    assert _check(report, "phone_registration")["status"] == "skip"
    assert _check(report, "webhook_subscription")["status"] == "skip"
    assert _check(report, "account")["status"] == "ok"  # the database's side still runs


@pytest.mark.parametrize(
    ("status", "category", "expected", "words"),
    [
        ("PAUSED", "UTILITY", "fail", "Status templat PAUSED"),
        ("PENDING", "UTILITY", "warn", "Status templat PENDING"),
        ("APPROVED", "MARKETING", "warn", "Kategori MARKETING"),
    ],
)
def test_a_campaigns_template_status_and_category(
    engine: Engine, api: FastAPI, status: str, category: str, expected: str, words: str
) -> None:
    _running_campaign(engine, status=status, category=category)
    report = _doctor(engine, api, lambda _sandbox: None)
    checks = [c for c in report["checks"] if c["key"].startswith("campaign_template:")]
    assert [c["status"] for c in checks] == [expected]
    assert words in checks[0]["detail"]
    assert "SPI 2026" in checks[0]["title"]


def test_the_limit_against_the_next_rounds_reach(
    engine: Engine, api: FastAPI, vault: PhoneVault
) -> None:
    _running_campaign(engine)
    add_people(engine, vault, "DINKES", 80)
    report = _doctor(engine, api, lambda sandbox: sandbox.account.update({"messaging_limit": 50}))
    check = _check(report, "messaging_limit")
    assert check["status"] == "warn"
    assert "batas Meta 50 orang per 24 jam" in check["detail"]
    assert "verifikasi bisnis" in check["advice"]


def test_a_restricted_account_fails(engine: Engine, api: FastAPI) -> None:
    admin = bearer(add_token(engine, Role.admin))
    with TestClient(api) as client:
        restriction = notices.account_restriction(kinds=["RESTRICTED_BIZ_INITIATED_MESSAGING"])
        body = notices.envelope(*restriction, waba_id=payloads.WABA_ID)
        settings: Settings = api.state.settings
        assert payloads.post(client, settings, body).status_code == 200
        report = client.get("/api/v1/doctor", headers=admin).json()
    assert _check(report, "account")["status"] == "fail"
    assert "RESTRICTED_BIZ_INITIATED_MESSAGING" in _check(report, "account")["detail"]


@pytest.fixture
def configured(settings: Settings, engine: Engine) -> Callable[..., FastAPI]:
    def build(**changes: Any) -> FastAPI:
        values = {
            "whatsapp_app_id": SANDBOX_APP_ID,
            "whatsapp_app_secret": SecretStr("sandbox-app-secret"),
            "public_webhook_url": PUBLIC_URL,
            "whatsapp_verify_token": SecretStr(VERIFY),
        }
        return create_app(settings.model_copy(update={**values, **changes}), engine=engine)

    return build


def _meta_handshake(request: httpx.Request) -> httpx.Response:
    params = request.url.params
    if params.get("hub.mode") == "subscribe" and params.get("hub.verify_token") == VERIFY:
        return httpx.Response(200, text=params["hub.challenge"])
    return httpx.Response(403, json={"error": {"code": "forbidden"}})


def test_webhook_fields_and_the_handshake(
    engine: Engine, configured: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with respx.mock() as public:
        public.get(PUBLIC_URL).mock(side_effect=_meta_handshake)
        good = _doctor(engine, configured(), lambda _sandbox: None)
        assert _check(good, "webhook_fields")["status"] == "ok"
        assert _check(good, "webhook_handshake")["status"] == "ok"

        wrong = _doctor(
            engine,
            configured(whatsapp_verify_token=SecretStr("another-token")),
            lambda sandbox: sandbox.account.update(
                {"webhook_fields": ["messages", "message_template_status_update"]}
            ),
        )
    fields = _check(wrong, "webhook_fields")
    assert fields["status"] == "warn"
    assert "phone_number_quality_update" in fields["detail"]
    handshake = _check(wrong, "webhook_handshake")
    assert handshake["status"] == "fail"
    assert "HTTP 403" in handshake["detail"]
    assert "SPI_WHATSAPP_VERIFY_TOKEN" in handshake["advice"]
    assert "hub.challenge" not in caplog.text  # the handshake's URL (and its token) is not logged
    assert VERIFY not in caplog.text


def test_no_messages_field_and_no_verify_token_fail(
    engine: Engine, configured: Callable[..., FastAPI]
) -> None:
    report = _doctor(
        engine,
        configured(whatsapp_verify_token=SecretStr("")),
        lambda sandbox: sandbox.account.update({"webhook_fields": ["account_update"]}),
    )
    assert _check(report, "webhook_fields")["status"] == "fail"
    assert _check(report, "webhook_handshake")["status"] == "fail"
    assert report["ok"] is False
