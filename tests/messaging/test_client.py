"""WhatsAppClient against a respx-mocked Graph API: requests sent and results classified."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from dataclasses import replace
from typing import Any

import httpx
import pytest
import respx

from app.messaging.client import GraphApiError, GraphConfig, build_http_client
from app.messaging.results import SendOutcome, SendResult, backoff_seconds
from app.messaging.spec import validate_against, validate_message_body
from tests.messaging.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID, RECIPIENT, WABA_ID, Harness

MESSAGES_URL = f"https://graph.facebook.com/v23.0/{PHONE_NUMBER_ID}/messages"
TEMPLATES_URL = f"https://graph.facebook.com/v23.0/{WABA_ID}/message_templates"
WAMID = "wamid.HBgLNjI4MTIzNDU2Nzg5MBUCABEYEjQ1"
EXPECTED_TEMPLATE_BODY = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": RECIPIENT,
    "type": "template",
    "template": {
        "name": "pengingat_spi",
        "language": {"code": "id", "policy": "deterministic"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Budi"},
                    {"type": "text", "text": "Senin, 08:00"},
                ],
            }
        ],
    },
    "biz_opaque_callback_data": "dlv_01HZX",
}
SUCCESS = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": RECIPIENT, "wa_id": "6281234567890"}],
    "messages": [{"id": WAMID}],
}


def error_body(code: int, subcode: int | None = None, details: str = "why") -> dict[str, Any]:
    """A Graph error answer shaped like Meta's documented example."""
    error: dict[str, Any] = {
        "message": f"(#{code}) something",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def send_template(wa: Harness) -> SendResult:
    """Send the canonical two-parameter reminder."""
    return wa.run(
        lambda c: c.send_template(
            to=RECIPIENT,
            template_name="pengingat_spi",
            language="id",
            parameters=["Budi", "Senin, 08:00"],
            callback_data="dlv_01HZX",
        )
    )


def sent_body(route: respx.Route, url: str = MESSAGES_URL) -> dict[str, Any]:
    """Check the single request on `route` and return its JSON body."""
    assert route.call_count == 1
    request = route.calls.last.request
    assert str(request.url) == url
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = json.loads(request.content)
    assert validate_message_body(body) == []
    return body


def test_accepted_template_send(wa: Harness, graph: respx.MockRouter) -> None:
    assert validate_against("MessageResponsePayload", SUCCESS) == []
    route = graph.post(MESSAGES_URL).respond(200, json=SUCCESS)
    result = send_template(wa)
    assert sent_body(route) == EXPECTED_TEMPLATE_BODY
    assert result == SendResult(
        SendOutcome.ACCEPTED, "accepted", wamid=WAMID, wa_id="6281234567890", http_status=200
    )


def test_pacing_status_is_kept_as_reason(wa: Harness, graph: respx.MockRouter) -> None:
    paced = {
        **SUCCESS,
        "messages": [{"id": WAMID, "message_status": "held_for_quality_assessment"}],
    }
    graph.post(MESSAGES_URL).respond(200, json=paced)
    result = send_template(wa)
    assert (result.outcome, result.reason, result.wamid) == (
        SendOutcome.ACCEPTED,
        "held_for_quality_assessment",
        WAMID,
    )


def test_text_reply(wa: Harness, graph: respx.MockRouter) -> None:
    route = graph.post(MESSAGES_URL).respond(200, json=SUCCESS)
    result = wa.run(lambda c: c.send_text(to=RECIPIENT, body="Terima kasih."))
    assert sent_body(route) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": RECIPIENT,
        "type": "text",
        "text": {"preview_url": False, "body": "Terima kasih."},
    }
    assert result.outcome is SendOutcome.ACCEPTED
    assert result.wamid == WAMID


R, F, H = SendOutcome.RETRY, SendOutcome.FAILED, SendOutcome.HALT
HALT_REASONS = {
    0: "auth_exception",
    10: "permission_denied",
    190: "access_token_invalid",
    200: "permission_denied",
    250: "permission_denied",
    299: "permission_denied",
    131005: "access_denied",
    368: "waba_policy_restricted",
    131031: "account_locked",
    131042: "payment_issue",
    131048: "spam_rate_limited",
    131064: "template_categorization_limit",
    132015: "template_paused",
    132016: "template_disabled",
}
# (HTTP status, code, subcode, outcome, reason, retry_after_seconds, per_recipient)
ERROR_CASES: list[tuple[int, int, int | None, SendOutcome, str, float | None, bool]] = [
    (400, 4, None, R, "app_rate_limited", None, False),
    (400, 80007, None, R, "waba_rate_limited", None, False),
    (400, 130429, 2494055, R, "throughput_limited", None, False),
    (400, 131056, None, R, "pair_rate_limited", 6.0, True),
    (500, 131000, None, R, "meta_unknown_error", None, False),
    (400, 131016, None, R, "service_unavailable", None, False),
    (400, 131057, None, R, "account_maintenance", 60.0, False),
    (400, 131026, None, F, "not_on_whatsapp", None, False),
    (500, 131026, None, F, "not_on_whatsapp", None, False),  # code wins over 5xx
    (400, 131008, None, F, "missing_parameter", None, False),
    (400, 131009, None, F, "invalid_parameter", None, False),
    (400, 100, None, F, "invalid_graph_parameter", None, False),
    (400, 100, 33, H, "graph_object_unavailable", None, False),
    (400, 132000, None, F, "template_param_count_mismatch", None, False),
    (400, 132001, None, F, "template_not_found", None, False),
    (400, 132005, None, F, "template_text_too_long", None, False),
    (400, 132007, None, F, "template_format_policy", None, False),
    (400, 132008, None, F, "template_param_invalid", None, False),
    (400, 132012, None, F, "template_param_format_mismatch", None, False),
    (400, 987654, None, F, "client_error", None, False),
    (429, 987654, None, R, "http_429", None, False),
    (503, 987654, None, R, "server_error", None, False),
    (403, 987654, None, H, "unauthorized", None, False),
    *((401 if c == 190 else 400, c, None, H, r, None, False) for c, r in HALT_REASONS.items()),
]


@pytest.mark.parametrize(
    ("status", "code", "subcode", "outcome", "reason", "retry_after", "per_recipient"),
    ERROR_CASES,
)
def test_error_classification(
    wa: Harness,
    graph: respx.MockRouter,
    status: int,
    code: int,
    subcode: int | None,
    outcome: SendOutcome,
    reason: str,
    retry_after: float | None,
    per_recipient: bool,
) -> None:
    answer = error_body(code, subcode, details=f"details for {code}")
    route = graph.post(MESSAGES_URL).respond(status, json=answer)
    result = send_template(wa)
    assert sent_body(route) == EXPECTED_TEMPLATE_BODY
    assert (result.outcome, result.reason) == (outcome, reason)
    assert (result.error_code, result.error_subcode) == (code, subcode)
    assert result.error_details == f"details for {code}"
    assert result.http_status == status
    assert result.retry_after_seconds == retry_after
    assert result.per_recipient is per_recipient
    assert result.wamid is None


@pytest.mark.parametrize(
    ("status", "content", "headers", "outcome", "reason", "retry_after"),
    [
        (429, b"", {"Retry-After": "30"}, R, "http_429", 30.0),
        (500, b"<html>Internal error</html>", {}, R, "server_error", None),
        (503, b"", {}, R, "server_error", None),
        (401, b"", {}, H, "unauthorized", None),
        (400, b"Bad request", {}, F, "client_error", None),
        (200, b"not json", {}, SendOutcome.UNKNOWN, "unparseable_success", None),
        (200, b'{"messages": []}', {}, SendOutcome.UNKNOWN, "unparseable_success", None),
    ],
)
def test_status_without_usable_error_code(
    wa: Harness,
    graph: respx.MockRouter,
    status: int,
    content: bytes,
    headers: dict[str, str],
    outcome: SendOutcome,
    reason: str,
    retry_after: float | None,
) -> None:
    route = graph.post(MESSAGES_URL).respond(status, content=content, headers=headers)
    result = send_template(wa)
    sent_body(route)
    assert (result.outcome, result.reason, result.http_status) == (outcome, reason, status)
    assert (result.error_code, result.retry_after_seconds) == (None, retry_after)


def test_retry_after_header_raises_the_pair_limit_floor(
    wa: Harness, graph: respx.MockRouter
) -> None:
    graph.post(MESSAGES_URL).respond(400, json=error_body(131056), headers={"Retry-After": "20"})
    result = send_template(wa)
    assert (result.retry_after_seconds, result.per_recipient) == (20.0, True)


@pytest.mark.parametrize(
    ("exc", "outcome", "reason"),
    [
        (httpx.ConnectError, R, "connect_error"),
        (httpx.ConnectTimeout, R, "connect_timeout"),
        (httpx.PoolTimeout, R, "pool_timeout"),
        (httpx.ReadTimeout, SendOutcome.UNKNOWN, "read_timeout"),
        (httpx.WriteTimeout, SendOutcome.UNKNOWN, "write_timeout"),
        (httpx.ReadError, SendOutcome.UNKNOWN, "connection_lost"),
        (httpx.RemoteProtocolError, SendOutcome.UNKNOWN, "remote_protocol_error"),
    ],
)
def test_transport_errors(
    wa: Harness,
    graph: respx.MockRouter,
    exc: type[httpx.TransportError],
    outcome: SendOutcome,
    reason: str,
) -> None:
    route = graph.post(MESSAGES_URL).mock(side_effect=exc)
    result = send_template(wa)
    # Exactly one attempt: the client itself never re-sends, least of all on UNKNOWN.
    assert sent_body(route) == EXPECTED_TEMPLATE_BODY
    assert result == SendResult(outcome, reason)


def test_invalid_recipient_is_failed_without_a_request(
    wa: Harness, graph: respx.MockRouter
) -> None:
    route = graph.post(MESSAGES_URL).respond(200, json=SUCCESS)
    result = wa.run(lambda c: c.send_text(to="081234567890", body="hi"))
    assert result == SendResult(SendOutcome.FAILED, "invalid_request")
    assert route.call_count == 0


def test_logs_show_no_number_even_masked_and_never_the_token(
    wa: Harness, graph: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    graph.post(MESSAGES_URL).mock(
        side_effect=[
            httpx.Response(200, json=SUCCESS),
            httpx.Response(400, json=error_body(131026)),
        ]
    )
    caplog.set_level(logging.DEBUG)
    send_template(wa)
    send_template(wa)
    assert "whatsapp send" in caplog.text  # the sends did log, just not to whom
    # Even masked: a reply's line would follow the STOP or HAPUS it answers.
    assert "+62812****7890" not in caplog.text
    assert "****" not in caplog.text
    assert RECIPIENT not in caplog.text
    assert "81234567890" not in caplog.text
    assert ACCESS_TOKEN not in caplog.text


def test_appsecret_proof_is_sent_when_configured(
    config: GraphConfig, graph: respx.MockRouter
) -> None:
    secured = replace(config, app_secret="app-secret")
    route = graph.post(MESSAGES_URL).respond(200, json=SUCCESS)
    send_template(Harness(secured))
    expected = hmac.new(b"app-secret", ACCESS_TOKEN.encode(), hashlib.sha256).hexdigest()
    assert sent_body(route, url=f"{MESSAGES_URL}?appsecret_proof={expected}")
    assert ACCESS_TOKEN not in str(route.calls.last.request.url)


def template(name: str, status: str, body: str) -> dict[str, Any]:
    """A message_templates list item as Graph returns it."""
    return {
        "name": name,
        "language": "id",
        "category": "UTILITY",
        "status": status,
        "id": "1",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "SPI"},
            {"type": "BODY", "text": body},
        ],
    }


@pytest.mark.parametrize("app_secret", [None, "app-secret"])
def test_list_templates_follows_paging(
    config: GraphConfig, graph: respx.MockRouter, app_secret: str | None
) -> None:
    next_url = f"{TEMPLATES_URL}?fields=name&limit=100&after=QVFIUk"
    route = graph.get(url__startswith=TEMPLATES_URL).mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "data": [template("pengingat_spi", "APPROVED", "Halo {{1}}")],
                    "paging": {"cursors": {"after": "QVFIUk"}, "next": next_url},
                },
            ),
            httpx.Response(
                200, json={"data": [template("terima_kasih", "PAUSED", "Terima kasih")]}
            ),
        ]
    )
    listed = Harness(replace(config, app_secret=app_secret)).run(lambda c: c.list_templates())
    assert [(t["name"], t["status"], t["body"]) for t in listed] == [
        ("pengingat_spi", "APPROVED", "Halo {{1}}"),
        ("terima_kasih", "PAUSED", "Terima kasih"),
    ]
    assert listed[0]["category"] == "UTILITY"
    assert listed[0]["language"] == "id"
    first, second = (call.request for call in route.calls)
    assert first.url.params["fields"] == "name,language,category,status,components"
    assert first.url.params["limit"] == "100"
    # The cursor must survive; appsecret_proof is added to, not substituted for, the query.
    assert second.url.params["after"] == "QVFIUk"
    assert second.url.copy_remove_param("appsecret_proof") == httpx.URL(next_url)
    for request in (first, second):
        assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
        assert ("appsecret_proof" in request.url.params) is (app_secret is not None)


def test_list_templates_refuses_foreign_next_url(wa: Harness, graph: respx.MockRouter) -> None:
    page = {"data": [], "paging": {"next": "https://evil.example/v23.0/1/message_templates"}}
    graph.get(url__startswith=TEMPLATES_URL).respond(200, json=page)
    with pytest.raises(GraphApiError) as caught:
        wa.run(lambda c: c.list_templates())
    assert caught.value.result.reason == "foreign_paging_url"


def test_list_templates_error_is_raised_with_classification(
    wa: Harness, graph: respx.MockRouter
) -> None:
    graph.get(url__startswith=TEMPLATES_URL).respond(401, json=error_body(190))
    with pytest.raises(GraphApiError) as caught:
        wa.run(lambda c: c.list_templates())
    assert (caught.value.result.outcome, caught.value.result.error_code) == (H, 190)


def test_build_http_client_settings() -> None:
    http = build_http_client(
        base_url="https://graph.facebook.com", connect_timeout=3, read_timeout=20, max_connections=8
    )
    try:
        assert (http.timeout.connect, http.timeout.read, http.timeout.pool) == (3, 20, 20)
        assert http.base_url == httpx.URL("https://graph.facebook.com")
        # httpx exposes no public accessor for the pool size.
        assert http._transport._pool._max_connections == 8  # type: ignore[attr-defined]
    finally:
        asyncio.run(http.aclose())


def test_config_hides_secrets_and_checks_ids(config: GraphConfig) -> None:
    assert ACCESS_TOKEN not in repr(replace(config, app_secret="app-secret"))
    assert "app-secret" not in repr(replace(config, app_secret="app-secret"))
    with pytest.raises(ValueError, match="phone_number_id"):
        replace(config, phone_number_id="+6281234567890")


class _Edge:
    """rng stub returning either end of the jitter interval."""

    def __init__(self, high: bool) -> None:
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def test_backoff_pair_limit_follows_four_to_the_x() -> None:
    assert [backoff_seconds(n, pair_limit=True) for n in range(5)] == [6, 6, 16, 64, 256]
    assert backoff_seconds(9, pair_limit=True) == 15 * 60


@pytest.mark.parametrize(("attempt", "low", "high"), [(0, 1, 2), (3, 8, 16), (40, 450, 900)])
def test_backoff_equal_jitter_is_bounded(attempt: int, low: float, high: float) -> None:
    assert backoff_seconds(attempt, rng=_Edge(False)) == low
    assert backoff_seconds(attempt, rng=_Edge(True)) == high
    assert low <= backoff_seconds(attempt, rng=random.Random(7)) <= high


def test_backoff_respects_minimum_and_rejects_negative_attempts() -> None:
    assert backoff_seconds(0, minimum=60.0, rng=_Edge(True)) == 60.0
    with pytest.raises(ValueError, match="attempt"):
        backoff_seconds(-1)
