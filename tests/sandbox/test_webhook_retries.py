"""The sandbox posts a status webhook again on 5xx and timeouts, with back-off, as Meta does."""

from __future__ import annotations

import asyncio
import time

import httpx

from app.config import Settings
from app.messaging.wire import template_message_body
from app.sandbox.graph import SandboxGraph
from app.sandbox.identity import SANDBOX_ACCESS_TOKEN, SANDBOX_PHONE_NUMBER_ID
from app.sandbox.mount import sandbox_faults

SECRET = b"retry-secret"
URL = f"/v23.0/{SANDBOX_PHONE_NUMBER_ID}/messages"
AUTH = {"Authorization": f"Bearer {SANDBOX_ACCESS_TOKEN}"}
BODY = template_message_body(
    to="+6281234567890",
    template_name="spi_uji",
    language="id",
    parameters=["Pemerintah Kota Uji", "30 April 2026"],
    callback_data="d0001",
)


def _run(answers: list[int | type[Exception]], *, retries: int) -> tuple[SandboxGraph, list]:
    """Send one message; the webhook answers each post with the next of `answers` (then 200)."""
    received: list[tuple[float, bytes, str]] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        received.append((time.monotonic(), request.content, request.headers["x-hub-signature-256"]))
        answer = answers.pop(0) if answers else 200
        if isinstance(answer, type):
            raise answer("no answer in time", request=request)
        return httpx.Response(answer, json={})

    sandbox = SandboxGraph(secret=SECRET)
    sandbox.faults.status_delay_seconds = 0.0
    sandbox.faults.update({"webhook_retries": retries, "webhook_retry_seconds": 0.02})

    async def main() -> None:
        await sandbox.start(
            webhook_url="http://service/webhook/whatsapp",
            transport=httpx.MockTransport(webhook),
        )
        transport = httpx.ASGITransport(app=sandbox.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
            assert (await c.post(URL, json=BODY, headers=AUTH)).status_code == 200
        for _ in range(200):
            if sandbox.webhooks_posted + sandbox.webhooks_failed >= 1 and not answers:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # nothing more may arrive
        await sandbox.aclose()

    asyncio.run(main())
    return sandbox, received


def test_webhook_answered_503_is_posted_again_with_the_same_signed_body() -> None:
    sandbox, received = _run([503, 503], retries=5)
    assert len(received) == 3
    assert len({(body, signature) for _, body, signature in received}) == 1
    assert (sandbox.webhooks_posted, sandbox.webhooks_retried, sandbox.webhooks_failed) == (1, 2, 0)
    first_wait = received[1][0] - received[0][0]
    second_wait = received[2][0] - received[1][0]
    assert first_wait >= 0.02
    assert second_wait >= 0.04  # the wait doubles


def test_timeouts_are_retried_too() -> None:
    sandbox, received = _run([httpx.ReadTimeout], retries=3)
    assert len(received) == 2
    assert (sandbox.webhooks_posted, sandbox.webhooks_failed) == (1, 0)


def test_retries_are_bounded_then_given_up() -> None:
    sandbox, received = _run([503] * 10, retries=2)
    assert len(received) == 3  # the post and two retries
    assert (sandbox.webhooks_posted, sandbox.webhooks_retried, sandbox.webhooks_failed) == (0, 2, 1)


def test_refusals_other_than_5xx_are_not_retried() -> None:
    sandbox, received = _run([403], retries=5)
    assert len(received) == 1
    assert (sandbox.webhooks_posted, sandbox.webhooks_failed) == (0, 1)


def test_retries_are_configured_from_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        sandbox_webhook_retries=7,
        sandbox_webhook_retry_seconds=0.5,
    )
    faults = sandbox_faults(settings)
    assert (faults.webhook_retries, faults.webhook_retry_seconds) == (7, 0.5)
