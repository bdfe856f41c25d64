"""GET handshake and POST authenticity: signature over raw bytes, size, JSON, other objects."""

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.outbox.service import OPT_OUT_RECHECK_SECONDS, OPT_OUT_SETTLE_SECONDS
from app.security import PhoneVault
from app.webhook.receiver import WebhookReceiver
from app.webhook.security import app_secret, sign
from tests.factories import enrol_number
from tests.webhook.conftest import VERIFY_TOKEN, FakeWhatsApp
from tests.webhook.helpers import NUMBER, WA_ID, suppression
from tests.webhook.payloads import inbound, post, raw, text


def _verify(client: TestClient, **params: str) -> tuple[int, str]:
    query = {f"hub.{k}": v for k, v in params.items()}
    response = client.get("/webhook/whatsapp", params=query)
    return response.status_code, response.text


def test_handshake_echoes_the_challenge_as_plain_text(client: TestClient) -> None:
    response = client.get(
        "/webhook/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8832"},
    )
    assert response.status_code == 200
    assert response.text == "8832"
    assert response.headers["content-type"].startswith("text/plain")


def test_handshake_refuses_wrong_token_mode_or_missing_parts(client: TestClient) -> None:
    assert _verify(client, mode="subscribe", verify_token="salah", challenge="1")[0] == 403
    assert _verify(client, mode="unsubscribe", verify_token=VERIFY_TOKEN, challenge="1")[0] == 403
    assert _verify(client, mode="subscribe", challenge="1")[0] == 403
    assert _verify(client, verify_token=VERIFY_TOKEN, challenge="1")[0] == 403
    status, body = _verify(client, mode="subscribe", verify_token="", challenge="1")
    assert status == 403
    assert body != "1"


def test_handshake_refused_when_no_token_is_configured(
    client: TestClient, settings: Settings
) -> None:
    client.app.state.settings = settings.model_copy(  # type: ignore[attr-defined]
        update={"whatsapp_verify_token": settings.whatsapp_verify_token.__class__("")}
    )
    assert _verify(client, mode="subscribe", verify_token="", challenge="1")[0] == 403


def test_unsigned_is_401_and_wrongly_signed_is_403(
    client: TestClient, settings: Settings, wa: FakeWhatsApp
) -> None:
    body = inbound(text("6281298765432", "STOP"))
    assert post(client, settings, body, signature=None).status_code == 401
    assert post(client, settings, body, signature="").status_code == 401
    assert post(client, settings, body, signature="sha256=" + "0" * 64).status_code == 403
    assert post(client, settings, body, signature="sha1=abc").status_code == 403
    assert (
        post(client, settings, body, signature=sign(b"{}", app_secret(settings))).status_code == 403
    )
    wrong_key = sign(json.dumps(body).encode(), b"another secret")
    assert post(client, settings, body, signature=wrong_key).status_code == 403
    assert wa.replies == []


def test_signature_is_over_the_raw_bytes_not_reparsed_json(
    client: TestClient, settings: Settings, wa: FakeWhatsApp
) -> None:
    # Meta escapes '@' and non-ASCII as \\uXXXX; re-serialising would change the bytes.
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",'
        b'"value":{"messages":[{"from":"6281298765432","id":"wamid.A1","timestamp":"1750000000",'
        b'"type":"text","text":{"body":"halo \\u0040 caf\\u00e9 \\ud83d\\ude00"}}]}}]}]}'
    )
    assert post(client, settings, body).status_code == 200
    upper = "sha256=" + sign(body, app_secret(settings)).removeprefix("sha256=").upper()
    assert post(client, settings, body, signature=upper).status_code == 200


def test_bodies_that_are_not_a_json_object_are_400(client: TestClient, settings: Settings) -> None:
    full = json.dumps(inbound(text("6281298765432", "BANTUAN"))).encode()
    for body in (
        b"not json",
        b"",
        full[: len(full) // 2],  # truncated
        b"[1, 2, 3]",
        b'"whatsapp_business_account"',
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"object": ' + b"1" * 5000 + b"}",  # beyond Python's int-parsing limit
    ):
        assert post(client, settings, body).status_code == 400, body[:20]


def test_oversize_body_is_413(client: TestClient, settings: Settings) -> None:
    big = json.dumps({"object": "whatsapp_business_account", "pad": "x" * (3 * 1024 * 1024)})
    assert post(client, settings, big.encode()).status_code == 413


def test_other_objects_and_unknown_fields_are_acknowledged_and_ignored(
    client: TestClient, settings: Settings, wa: FakeWhatsApp
) -> None:
    page = {"object": "page", "entry": [{"id": "1", "messaging": [{"message": {"text": "STOP"}}]}]}
    response = post(client, settings, page)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    odd = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": "x"}, 5]}
    assert post(client, settings, odd).status_code == 200
    template_update = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {"event": "APPROVED", "message_template_id": 1},
                    }
                ],
            }
        ],
    }
    assert post(client, settings, template_update).status_code == 200
    assert wa.replies == []


def test_oversize_body_streamed_without_length_is_413_and_stores_nothing(
    client: TestClient, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    body = raw(inbound(text(WA_ID, "STOP")))
    padded = body[:-1] + b', "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'

    def chunks() -> Iterator[bytes]:  # a generator body is sent chunked, with no length
        for start in range(0, len(padded), 64 * 1024):
            yield padded[start : start + 64 * 1024]

    response = client.post(
        "/webhook/whatsapp",
        content=chunks(),
        headers={"X-Hub-Signature-256": sign(padded, app_secret(settings))},
    )
    assert response.status_code == 413
    assert str(3 * 1024 * 1024) in response.json()["error"]["message"]
    assert suppression(engine, vault) is None


def test_a_client_gone_mid_body_gets_no_answer_and_nothing_is_stored(
    api: FastAPI, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    body = raw(inbound(text(WA_ID, "STOP")))
    arriving = [
        {"type": "http.request", "body": body[:20], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return arriving.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhook/whatsapp",
        "headers": [(b"x-hub-signature-256", sign(body, app_secret(settings)).encode())],
        "app": api,
    }
    asyncio.run(WebhookReceiver(api)(scope, receive, send))
    assert sent == []
    assert suppression(engine, vault) is None


def test_openapi_documents_the_webhook_post(client: TestClient) -> None:
    operations = client.get("/openapi.json").json()["paths"]["/webhook/whatsapp"]
    assert set(operations) == {"get", "post"}
    post_op = operations["post"]
    assert "stored before the 200" in post_op["description"]
    assert set(post_op["responses"]) == {"200", "400", "401", "403", "413", "503"}


def test_other_methods_and_paths_still_reach_the_routes(client: TestClient) -> None:
    assert client.put("/webhook/whatsapp").status_code == 405
    # Starlette's trailing-slash redirect, which keeps the method, leads back to the receiver.
    assert client.post("/webhook/whatsapp/", follow_redirects=False).status_code == 307
    assert client.post("/webhook/whatsapp/").status_code == 401
    assert client.get("/healthz").status_code == 200


def test_a_stop_is_answered_only_after_sending_workers_have_re_read(
    client: TestClient, settings: Settings, wa: FakeWhatsApp
) -> None:
    started = time.monotonic()
    assert post(client, settings, inbound(text(WA_ID, "STOP"))).status_code == 200
    assert time.monotonic() - started >= OPT_OUT_SETTLE_SECONDS
    assert OPT_OUT_SETTLE_SECONDS >= 2 * OPT_OUT_RECHECK_SECONDS
