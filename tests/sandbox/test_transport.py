"""The Graph API transport over a real socket, against the standalone sandbox process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.messaging.client import GraphConfig, WhatsAppClient
from app.messaging.results import SendOutcome, SendResult, classify_response
from app.messaging.transport import KeepAliveTransport, graph_http_client
from app.sandbox.identity import SANDBOX_ACCESS_TOKEN, SANDBOX_PHONE_NUMBER_ID, SANDBOX_WABA_ID
from tests.outbox.processes import SandboxProcess, free_port, sandbox_process


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with sandbox_process(Path(tmp_path_factory.mktemp("sandbox"))) as sandbox:
        yield sandbox


def send(base_url: str, count: int = 1, *, read_timeout: float = 5.0) -> list[SendResult]:
    async def main() -> list[SendResult]:
        timeout = httpx.Timeout(2.0, read=read_timeout)
        async with graph_http_client(base_url, timeout=timeout, pool=2) as http:
            assert isinstance(http._transport, KeepAliveTransport)
            config = GraphConfig(
                base_url=base_url,
                phone_number_id=SANDBOX_PHONE_NUMBER_ID,
                waba_id=SANDBOX_WABA_ID,
                access_token=SANDBOX_ACCESS_TOKEN,
            )
            client = WhatsAppClient(http, config)
            results = []
            for n in range(count):
                results.append(
                    await client.send_template(
                        to=f"+62812{n:08d}",
                        template_name="spi_uji",
                        language="id",
                        parameters=["Pemerintah Kota Uji"],
                        callback_data=f"t{n}",
                    )
                )
            idle = sum(len(c) for c in http._transport._idle.values())
            assert idle <= 1  # sequential sends share one kept-alive connection
            return results

    return asyncio.run(main())


def test_sends_over_one_kept_alive_connection(standalone: SandboxProcess) -> None:
    before = standalone.stats()["accepted"]
    results = send(standalone.url, 25)
    assert {r.outcome for r in results} == {SendOutcome.ACCEPTED}
    assert all(r.wamid and r.wamid.startswith("wamid.") for r in results)
    assert standalone.stats()["accepted"] == before + 25


def test_spec_refusal_comes_back_as_failed(standalone: SandboxProcess) -> None:
    async def main() -> SendResult:
        async with graph_http_client(standalone.url, timeout=httpx.Timeout(2.0), pool=1) as http:
            response = await http.post(
                f"/v23.0/{SANDBOX_PHONE_NUMBER_ID}/messages",
                json={"messaging_product": "whatsapp", "to": "+6281200000000", "type": "x"},
                headers={"Authorization": "Bearer x"},
            )
            return classify_response(response.status_code, response.json())

    result = asyncio.run(main())
    assert (result.outcome, result.error_code) == (SendOutcome.FAILED, 100)


def test_no_answer_in_time_is_unknown(standalone: SandboxProcess) -> None:
    standalone.faults(timeout_rate=1.0, hang_seconds=2.0)
    try:
        before = standalone.stats()["accepted"]
        (result,) = send(standalone.url, read_timeout=0.3)
    finally:
        standalone.faults(timeout_rate=0.0)
    assert (result.outcome, result.reason) == (SendOutcome.UNKNOWN, "read_timeout")
    # The request did arrive: exactly why it must never be sent again.
    assert standalone.stats()["accepted"] == before + 1


def test_nobody_listening_is_retryable() -> None:
    (result,) = send(f"http://127.0.0.1:{free_port()}")
    assert (result.outcome, result.reason) == (SendOutcome.RETRY, "connect_error")


def test_a_configured_proxy_falls_back_to_httpx_own_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http = graph_http_client(
        "https://graph.facebook.com", timeout=httpx.Timeout(5.0, read=20.0), pool=8
    )
    try:
        assert not isinstance(http._transport, KeepAliveTransport)
        assert (http.timeout.connect, http.timeout.read) == (5.0, 20.0)
    finally:
        asyncio.run(http.aclose())
