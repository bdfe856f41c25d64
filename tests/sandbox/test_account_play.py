"""The sandbox plays Meta's account side: answers valid against Meta's spec, events that the
service acts on (also from the CLI), and the messaging limit and throughput when enforced."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.campaigns.models import Campaign
from app.cli import cli
from app.db import session_scope, utcnow
from app.messaging import spec
from app.messaging.account_events import (
    AccountUpdate,
    CapabilityUpdate,
    PhoneQualityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
)
from app.messaging.inbound import parse_batch
from app.sandbox.account import SandboxAccount
from app.sandbox.events import KINDS
from app.sandbox.faults import Faults
from app.sandbox.graph import SandboxGraph
from app.sandbox.identity import SANDBOX_PHONE_NUMBER_ID, SANDBOX_WABA_ID
from app.sandbox.limits import LIMIT_FAILURE_CODE
from app.templates.models import MessageTemplate
from tests.factories import add_campaign, add_opd, add_template

AUTH = {"Authorization": "Bearer sandbox-token"}
V = "/v23.0"


def _get(sandbox: SandboxGraph, path: str, headers: dict[str, str] = AUTH) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=sandbox.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(main())


def test_the_management_answers_validate_against_metas_spec() -> None:
    sandbox = SandboxGraph(secret=b"s")
    phone = _get(sandbox, f"{V}/{SANDBOX_PHONE_NUMBER_ID}?fields=quality_rating")
    assert phone.status_code == 200
    assert spec.validate_response(spec.PHONE_NUMBER_PATH, "get", phone.json()) == []
    assert phone.json()["whatsapp_business_manager_messaging_limit"] == "TIER_250"
    apps = _get(sandbox, f"{V}/{SANDBOX_WABA_ID}/subscribed_apps")
    assert spec.validate_response(spec.SUBSCRIBED_APPS_PATH, "get", apps.json()) == []
    refused = _get(sandbox, f"{V}/{SANDBOX_PHONE_NUMBER_ID}", headers={})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == 190
    unknown = _get(sandbox, f"{V}/123")
    assert unknown.json()["error"]["error_subcode"] == 33


def test_an_invalid_submission_is_refused_like_meta() -> None:
    sandbox = SandboxGraph(secret=b"s")

    async def main(body: dict[str, Any]) -> httpx.Response:
        transport = httpx.ASGITransport(app=sandbox.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
            return await c.post(f"{V}/{SANDBOX_WABA_ID}/message_templates", json=body, headers=AUTH)

    bad = {"name": "Bukan Nama", "language": "id", "category": "UTILITY", "components": "x"}
    answer = asyncio.run(main(bad))
    assert answer.status_code == 400
    details = answer.json()["error"]["error_data"]["details"]
    assert "components" in details
    assert "name" in details
    assert sandbox.account.templates == {}


EXPECTED_EVENTS = {
    "template-paused": TemplateStatusUpdate,
    "template-marketing": TemplateCategoryUpdate,
    "template-marketing-announced": TemplateCategoryUpdate,
    "template-quality-red": TemplateQualityUpdate,
    "quality-flagged": PhoneQualityUpdate,
    "limit-downgrade": PhoneQualityUpdate,
    "limit-set": CapabilityUpdate,
    "throughput-upgrade": PhoneQualityUpdate,
    "account-restricted": AccountUpdate,
    "account-disabled": AccountUpdate,
    "account-violation": AccountUpdate,
}


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "quality-yellow"])
def test_every_event_is_a_notice_the_service_reads(kind: str) -> None:
    posted: list[dict[str, Any]] = []

    async def post(payload: dict[str, Any]) -> bool:
        posted.append(payload)
        return True

    from app.sandbox.events import SandboxEvents

    events = SandboxEvents(SandboxAccount(messaging_limit=2000), post)
    played = asyncio.run(events.trigger(kind, template="spi_uji", tier=None))
    assert played["posted"] is True
    batch = parse_batch(posted[0], classify=lambda *_: None)
    assert batch is not None
    assert len(batch.account) == 1
    event = batch.account[0]
    assert event.at is not None  # entry.time: what orders notices
    if kind in EXPECTED_EVENTS:
        assert isinstance(event, EXPECTED_EVENTS[kind])


def test_a_limit_downgrade_lowers_what_the_sandbox_reports() -> None:
    sandbox = SandboxGraph(secret=b"s", account=SandboxAccount(messaging_limit=10_000))

    async def post(_payload: dict[str, Any]) -> bool:
        return True

    sandbox.events._post = post  # keep the notice to itself
    asyncio.run(sandbox.events.trigger("limit-downgrade"))
    phone = _get(sandbox, f"{V}/{SANDBOX_PHONE_NUMBER_ID}").json()
    assert phone["whatsapp_business_manager_messaging_limit"] == "TIER_2K"


def test_the_cli_event_pauses_a_template_and_its_campaign(engine: Engine, api: FastAPI) -> None:
    add_opd(engine, "DINKES")
    template_id = add_template(engine)
    today = utcnow().date()
    campaign_id = add_campaign(
        engine,
        template_id=template_id,
        now=utcnow(),
        first_day=today,
        last_day=today + timedelta(days=30),
    )
    with TestClient(api) as client, respx.mock() as forward:
        # The CLI talks HTTP to a running sandbox: forward its requests to this app.
        def to_app(request: httpx.Request) -> httpx.Response:
            answer = client.post(
                request.url.path, content=request.content, headers=dict(request.headers)
            )
            return httpx.Response(answer.status_code, content=answer.content)

        forward.post("http://sandbox.test/sandbox/events").mock(side_effect=to_app)
        result = CliRunner().invoke(
            cli, ["sandbox", "event", "template-paused", "spi_uji", "--url", "http://sandbox.test"]
        )
        assert result.exit_code == 0, result.output
        assert "accepted" in result.output
        unknown = CliRunner().invoke(
            cli, ["sandbox", "event", "template-exploded", "x", "--url", "http://sandbox.test"]
        )
        assert unknown.exit_code == 2
    with session_scope(engine) as s:
        template = s.get(MessageTemplate, template_id)
        campaign = s.get(Campaign, campaign_id)
        assert template is not None
        assert campaign is not None
        assert template.status == "PAUSED"
        assert campaign.state == "paused"
        assert campaign.paused_reason is not None
        assert "dijeda oleh Meta" in campaign.paused_reason


def _send_many(sandbox: SandboxGraph, recipients: list[str]) -> list[int]:
    from app.config import Settings
    from app.sandbox import connect

    settings = Settings(_env_file=None, send_rate_per_second=0)  # type: ignore[call-arg]

    async def main() -> list[int]:
        messenger = await connect.open_in_process(settings, sandbox=sandbox)
        codes = []
        try:
            for n, to in enumerate(recipients):
                result = await messenger.client.send_template(
                    to=to, template_name="spi_uji", language="id", parameters=["A"],
                    callback_data=f"d{n}",
                )  # fmt: skip
                codes.append(result.error_code or 0)
            await asyncio.sleep(0.2)
        finally:
            await messenger.aclose()
        return codes

    return asyncio.run(main())


def test_enforced_limits_refuse_like_meta() -> None:
    account = SandboxAccount(messaging_limit=2, throughput_per_second=1000)
    sandbox = SandboxGraph(
        secret=b"s", account=account, faults=Faults(enforce_limits=True, status_delay_seconds=0)
    )
    statuses: list[dict[str, Any]] = []
    original = sandbox._poster.payload

    def keep(items: list[dict[str, Any]]) -> dict[str, Any]:
        statuses.extend(items)
        return original(items)

    sandbox._poster.payload = keep  # type: ignore[method-assign]
    people = ["+6281200000001", "+6281200000002", "+6281200000003", "+6281200000001"]
    assert _send_many(sandbox, people) == [0, 0, 0, 0]  # Meta takes them, then fails one
    failed = [s for s in statuses if s["status"] == "failed"]
    assert [(s["recipient_id"], s["errors"][0]["code"]) for s in failed] == [
        ("6281200000003", LIMIT_FAILURE_CODE)
    ]

    account.throughput_per_second = 2
    burst = _send_many(sandbox, ["+6281200000001"] * 5)
    assert 130429 in burst


def test_without_enforcement_the_limits_are_only_reported() -> None:
    sandbox = SandboxGraph(secret=b"s", account=SandboxAccount(messaging_limit=1))
    started = time.monotonic()
    assert _send_many(sandbox, ["+6281200000001", "+6281200000002"]) == [0, 0]
    assert time.monotonic() - started < 5
