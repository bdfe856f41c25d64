"""The fake Graph API: Meta's wire format, validation, faults and signed status webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.messaging.client import GraphConfig, WhatsAppClient
from app.messaging.results import SendOutcome
from app.messaging.spec import validate_against
from app.messaging.wire import template_message_body
from app.sandbox.connect import TimeoutASGITransport
from app.sandbox.graph import SandboxGraph
from app.sandbox.identity import SANDBOX_ACCESS_TOKEN, SANDBOX_PHONE_NUMBER_ID, SANDBOX_WABA_ID

T = TypeVar("T")
TO = "+6281234567890"
URL = f"/v23.0/{SANDBOX_PHONE_NUMBER_ID}/messages"
AUTH = {"Authorization": f"Bearer {SANDBOX_ACCESS_TOKEN}"}
SECRET = b"sandbox-test-secret"


def body(**overrides: Any) -> dict[str, Any]:
    sent = template_message_body(
        to=TO,
        template_name="spi_uji",
        language="id",
        parameters=["Pemerintah Kota Uji", "30 April 2026"],
        callback_data="d0001",
    )
    return {**sent, **overrides}


def against(sandbox: SandboxGraph, action: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        transport = httpx.ASGITransport(app=sandbox.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
            return await action(c)

    return asyncio.run(main())


def post(sandbox: SandboxGraph, payload: Any, headers: dict[str, str] = AUTH) -> httpx.Response:
    return against(sandbox, lambda c: c.post(URL, json=payload, headers=headers))


def test_accepts_a_template_send_like_meta() -> None:
    sandbox = SandboxGraph(secret=SECRET)
    response = post(sandbox, body())
    assert response.status_code == 200
    answer = response.json()
    assert validate_against("MessageResponsePayload", answer) == []
    assert answer["contacts"] == [{"input": TO, "wa_id": TO[1:]}]
    assert answer["messages"][0]["id"].startswith("wamid.")
    assert sandbox.by_callback == {"d0001": 1}
    (entry,) = sandbox.inbox
    assert entry.masked == "+62812****7890"
    assert entry.template == "spi_uji"


@pytest.mark.parametrize(
    ("payload", "headers", "status", "code", "subcode"),
    [
        (body(), {}, 401, 190, None),
        (body(type="templat"), AUTH, 400, 100, None),
        (body(to="081234567890"), AUTH, 400, 100, None),
        ({**body(), "template": {"name": "x"}}, AUTH, 400, 100, None),
        (body(biz_opaque_callback_data="x" * 513), AUTH, 400, 100, None),
    ],
)
def test_refuses_like_meta(
    payload: dict[str, Any],
    headers: dict[str, str],
    status: int,
    code: int,
    subcode: int | None,
) -> None:
    sandbox = SandboxGraph(secret=SECRET)
    response = post(sandbox, payload, headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error.get("error_subcode")) == (code, subcode)
    assert error["error_data"]["details"]
    assert sandbox.accepted == 0
    assert not sandbox.inbox


def test_wrong_sender_id_is_refused() -> None:
    sandbox = SandboxGraph(secret=SECRET)
    response = against(sandbox, lambda c: c.post("/v23.0/999/messages", json=body(), headers=AUTH))
    assert response.status_code == 400
    assert response.json()["error"]["error_subcode"] == 33


def test_faults_throttle_then_fail_then_recover() -> None:
    sandbox = SandboxGraph(secret=SECRET)

    async def main(c: httpx.AsyncClient) -> list[tuple[int, Any]]:
        answers = []
        changed = await c.post("/sandbox/faults", json={"throttle_burst": 2})
        assert changed.json()["throttle_burst"] == 2
        for _ in range(3):
            r = await c.post(URL, json=body(), headers=AUTH)
            answers.append((r.status_code, r.json().get("error", {}).get("code")))
        await c.post("/sandbox/faults", json={"error_rate": 1})
        r = await c.post(URL, json=body(), headers=AUTH)
        answers.append((r.status_code, None))
        bad = await c.post("/sandbox/faults", json={"nonsense": 1})
        answers.append((bad.status_code, None))
        return answers

    assert against(sandbox, main) == [
        (400, 130429),
        (400, 130429),
        (200, None),
        (503, None),
        (400, None),
    ]
    stats = sandbox.stats()
    assert stats["rejected"] == {"throttled": 2, "server_error": 1}
    assert stats["accepted"] == 1


def test_no_answer_in_time_is_unknown_but_the_message_was_taken() -> None:
    sandbox = SandboxGraph(secret=SECRET)
    sandbox.faults.timeout_rate = 1.0
    sandbox.faults.hang_seconds = 5

    async def main() -> Any:
        transport = TimeoutASGITransport(sandbox.asgi_app(), read_timeout=0.2)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            config = GraphConfig(
                base_url="http://sandbox",
                phone_number_id=SANDBOX_PHONE_NUMBER_ID,
                waba_id=SANDBOX_WABA_ID,
                access_token=SANDBOX_ACCESS_TOKEN,
            )
            return await WhatsAppClient(http, config).send_template(
                to=TO,
                template_name="spi_uji",
                language="id",
                parameters=["a"],
                callback_data="d1",
            )

    result = asyncio.run(main())
    assert (result.outcome, result.reason) == (SendOutcome.UNKNOWN, "read_timeout")
    assert sandbox.by_callback == {"d1": 1}


def test_status_webhooks_are_signed_and_shaped_like_meta() -> None:
    received: list[tuple[bytes, str]] = []

    async def webhook(request: Request) -> JSONResponse:
        received.append((await request.body(), request.headers["x-hub-signature-256"]))
        return JSONResponse({"ok": True})

    service = Starlette(routes=[Route("/webhook/whatsapp", webhook, methods=["POST"])])
    sandbox = SandboxGraph(secret=SECRET)
    sandbox.faults.status_delay_seconds = 0.05

    async def main() -> None:
        await sandbox.start(
            webhook_url="http://service/webhook/whatsapp",
            transport=httpx.ASGITransport(app=service),
        )
        transport = httpx.ASGITransport(app=sandbox.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
            await c.post(URL, json=body(), headers=AUTH)
            sandbox.faults.failed_share = 1.0
            await c.post(URL, json=body(biz_opaque_callback_data="d0002"), headers=AUTH)
        for _ in range(100):
            if sandbox.stats()["pending_statuses"] == 0 and received:
                break
            await asyncio.sleep(0.02)
        await sandbox.aclose()

    asyncio.run(main())
    statuses = []
    for raw, signature in received:
        assert signature == "sha256=" + hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
        payload = json.loads(raw)
        assert validate_against("WebhookPayload", payload) == []
        for entry in payload["entry"]:
            for change in entry["changes"]:
                statuses += change["value"]["statuses"]
    seen = sorted(
        (s["biz_opaque_callback_data"], s["status"], s.get("errors", [{}])[0].get("code"))
        for s in statuses
    )
    assert seen == [
        ("d0001", "delivered", None),
        ("d0001", "sent", None),
        ("d0002", "failed", 131026),
        ("d0002", "sent", None),
    ]
    assert {s["recipient_id"] for s in statuses} == {TO[1:]}
    assert sandbox.webhooks_posted == len(received)
    assert [e.status for e in sandbox.inbox] == ["delivered", "failed"]
