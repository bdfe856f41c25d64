"""The worker against a respx-mocked Graph API: what is sent, and what each answer does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import select

from app.auth.principal import cli_principal
from app.campaigns import service as campaign_service
from app.campaigns.models import Campaign, CampaignState
from app.config import Settings
from app.db import session_scope
from app.enrolment.models import Enrolment
from app.messaging import runtime
from app.messaging.results import HALT_CODES, SendOutcome, SendResult
from app.messaging.spec import validate_message_body
from app.outbox.halts import HALT_TEXT, halt_reason
from app.outbox.models import DeliveryState
from app.security import PhoneVault
from tests.outbox.conftest import ACCESS_TOKEN, MESSAGES_URL, NOW, Rig, World, make_world

WAMID = "wamid.HBgLNjI4MTIzNDU2Nzg5MBUCABEYEjQ1"


def success(to: str = "+6281200000000") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
        "messages": [{"id": WAMID}],
    }


def error_body(code: int) -> dict[str, Any]:
    return {
        "error": {
            "message": f"(#{code}) something",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "details"},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def check_requests(route: respx.Route, world: World) -> list[dict[str, Any]]:
    """Every request carried the token and a spec-valid body for one of the deliveries."""
    public_ids = {d.public_id for d in world.deliveries()}
    bodies = []
    for call in route.calls:
        request = call.request
        assert str(request.url) == MESSAGES_URL
        assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
        assert request.headers["Content-Type"] == "application/json"
        body = json.loads(request.content)
        assert validate_message_body(body) == []
        assert body["to"] in world.phones
        assert body["biz_opaque_callback_data"] in public_ids
        assert body["template"]["name"] == world.template_name
        assert body["template"]["language"] == {"code": "id", "policy": "deterministic"}
        assert [p["text"] for p in body["template"]["components"][0]["parameters"]] == [
            "Pemerintah Kota Uji",
            "30 April 2026",
        ]
        bodies.append(body)
    return bodies


def test_accepted_sends_each_delivery_once(
    world: World, meta_rig: Rig, graph: respx.MockRouter
) -> None:
    route = graph.post(MESSAGES_URL).respond(200, json=success())
    assert meta_rig.batches(2) == [3, 0]
    bodies = check_requests(route, world)
    assert sorted(b["to"] for b in bodies) == sorted(world.phones)
    deliveries = world.deliveries()
    assert {d.state for d in deliveries} == {DeliveryState.accepted}
    assert {d.wamid for d in deliveries} == {WAMID}
    assert all(d.lease_expires_at is None and d.claimed_by is None for d in deliveries)
    assert world.tallies() == {"scheduled": 3, "accepted": 3}


# One case per kind of answer; tests/messaging classifies every code Meta documents.
# (HTTP status, code, seconds until the retry: low, high)
RETRIES = [
    (400, 130429, 1, 2),
    (400, 131056, 6, 6),  # pair limit: this person only, after at least 6 s
    (400, 131057, 60, 60),
    (500, 131000, 1, 2),
    (429, 987654, 1, 2),
    (503, 987654, 1, 2),
]


@pytest.mark.parametrize(("status", "code", "low", "high"), RETRIES)
def test_retryable_errors_requeue_with_backoff(
    engine: Engine,
    vault: PhoneVault,
    meta_rig: Rig,
    graph: respx.MockRouter,
    status: int,
    code: int,
    low: float,
    high: float,
) -> None:
    world = make_world(engine, vault, people=1)
    route = graph.post(MESSAGES_URL).respond(status, json=error_body(code))
    meta_rig.batches(1)
    check_requests(route, world)
    (delivery,) = world.deliveries()
    assert delivery.state == DeliveryState.queued
    assert delivery.attempts == 1
    assert delivery.error_code == code
    assert delivery.claimed_by is None
    assert delivery.lease_expires_at is None
    wait = (delivery.next_attempt_at - NOW).total_seconds()
    assert low <= wait <= high
    assert world.tallies() == {"scheduled": 1, "retried": 1}
    # Not due yet: nothing is sent again before the backoff has passed.
    assert meta_rig.batches(1) == [0]
    assert route.call_count == 1


def test_connection_refused_is_retried(
    engine: Engine, vault: PhoneVault, meta_rig: Rig, graph: respx.MockRouter
) -> None:
    world = make_world(engine, vault, people=1)
    route = graph.post(MESSAGES_URL).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=success())]
    )
    meta_rig.batches(1)
    (delivery,) = world.deliveries()
    assert (delivery.state, delivery.attempts, delivery.error_class) == (
        DeliveryState.queued,
        1,
        "connect_error",
    )
    meta_rig.clock.advance(3)
    meta_rig.batches(1)
    check_requests(route, world)
    (delivery,) = world.deliveries()
    assert (delivery.state, delivery.attempts, delivery.wamid) == ("accepted", 1, WAMID)
    assert world.tallies() == {"scheduled": 1, "retried": 1, "accepted": 1}


def test_retries_stop_at_max_attempts(
    engine: Engine,
    vault: PhoneVault,
    meta_rig: Rig,
    graph: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "THROTTLE_HOLD_SECONDS", 0.01)
    world = make_world(engine, vault, people=1)
    route = graph.post(MESSAGES_URL).respond(400, json=error_body(130429))
    meta_rig.batches(3, advance=60)  # max_attempts is 3 in the rig
    assert route.call_count == 3
    (delivery,) = world.deliveries()
    assert (delivery.state, delivery.attempts, delivery.error_class) == (
        DeliveryState.failed,
        3,
        "throughput_limited",
    )
    assert world.tallies() == {"scheduled": 1, "retried": 2, "failed_other": 1}


# (HTTP status, code, error_class, tally outcome)
FAILURES = [
    (400, 131026, "not_on_whatsapp", "failed_not_on_whatsapp"),
    (400, 131009, "invalid_parameter", "failed_other"),
    (400, 132001, "template_not_found", "failed_other"),
]


@pytest.mark.parametrize(("status", "code", "error_class", "outcome"), FAILURES)
def test_permanent_failures_are_final(
    engine: Engine,
    vault: PhoneVault,
    meta_rig: Rig,
    graph: respx.MockRouter,
    status: int,
    code: int,
    error_class: str,
    outcome: str,
) -> None:
    world = make_world(engine, vault, people=1)
    route = graph.post(MESSAGES_URL).respond(status, json=error_body(code))
    meta_rig.batches(1)
    meta_rig.clock.advance(3600)
    assert meta_rig.batches(1) == [0]
    check_requests(route, world)
    assert route.call_count == 1
    (delivery,) = world.deliveries()
    assert (delivery.state, delivery.error_code, delivery.error_class) == (
        DeliveryState.failed,
        code,
        error_class,
    )
    assert world.tallies() == {"scheduled": 1, outcome: 1}
    with session_scope(engine) as s:
        (enrolment,) = s.exec(select(Enrolment)).all()
        # Only "not on WhatsApp" keeps the person out of later rounds.
        assert (enrolment.unreachable_at is not None) is (code == 131026)


# (HTTP status, code, text expected in paused_reason)
HALTS = [
    (401, 190, "Token WhatsApp tidak valid atau kedaluwarsa (190)"),
    (400, 368, "dibatasi karena pelanggaran kebijakan (368)"),
    (400, 131048, "diblokir/dilaporkan (131048)"),
    (400, 132015, "Templat dijeda oleh WhatsApp karena kualitasnya rendah (132015)"),
    (403, 987654, "WhatsApp menolak kredensial layanan (987654)"),
]


@pytest.mark.parametrize(("status", "code", "reason"), HALTS)
def test_halt_pauses_the_campaign_and_sends_nothing_more(
    engine: Engine,
    vault: PhoneVault,
    meta_rig: Rig,
    graph: respx.MockRouter,
    settings: Settings,
    status: int,
    code: int,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = make_world(engine, vault, people=3)
    route = graph.post(MESSAGES_URL).respond(status, json=error_body(code))
    assert meta_rig.batches(1) == [3]
    # Concurrency 1: the first refusal stops the rest of the batch before it is sent.
    assert route.call_count == 1
    check_requests(route, world)
    assert world.states() == [DeliveryState.queued] * 3
    assert all(d.attempts == 0 and d.claimed_by is None for d in world.deliveries())
    with session_scope(engine) as s:
        campaign = s.get(Campaign, world.campaign_id)
        assert campaign is not None
        assert campaign.state == CampaignState.paused
        assert campaign.paused_reason is not None
        assert reason in campaign.paused_reason
        assert "admin" in campaign.paused_reason
    assert "outbox.campaign_paused" in caplog.text
    assert ACCESS_TOKEN not in caplog.text
    assert world.tallies() == {"scheduled": 3}

    # Paused: nothing is claimed, however long we wait.
    meta_rig.clock.advance(3600)
    assert meta_rig.batches(1) == [0]
    assert route.call_count == 1

    # An admin resumes: the same deliveries go out, once each.
    with session_scope(engine) as s:
        campaign_service.resume(
            s,
            actor=cli_principal(),
            campaign_id=world.campaign_id,
            now=meta_rig.clock.now,
            settings=settings,
        )
    route.respond(200, json=success())
    assert meta_rig.batches(2) == [3, 0]
    assert route.call_count == 4
    assert world.states() == [DeliveryState.accepted] * 3


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (httpx.ReadTimeout, "read_timeout"),
        (httpx.RemoteProtocolError, "remote_protocol_error"),
        (httpx.ReadError, "connection_lost"),
    ],
)
def test_unknown_outcome_is_never_sent_again(
    engine: Engine,
    vault: PhoneVault,
    meta_rig: Rig,
    graph: respx.MockRouter,
    exc: type[httpx.TransportError],
    error_class: str,
) -> None:
    world = make_world(engine, vault, people=1)
    route = graph.post(MESSAGES_URL).mock(side_effect=exc("no answer"))
    meta_rig.batches(1)
    meta_rig.clock.advance(timedelta(days=1).total_seconds())
    assert meta_rig.batches(1) == [0]
    check_requests(route, world)
    assert route.call_count == 1
    (delivery,) = world.deliveries()
    assert (delivery.state, delivery.error_class) == (DeliveryState.unknown, error_class)
    assert world.tallies() == {"scheduled": 1, "unknown": 1}


def test_every_halt_reason_has_an_indonesian_explanation() -> None:
    reasons = set(HALT_CODES.values()) | {
        "graph_object_unavailable",
        "unauthorized",
        "local_configuration_error",
        "unexpected_response",
    }
    assert reasons <= set(HALT_TEXT)
    result = SendResult(SendOutcome.HALT, "unauthorized", http_status=401)
    assert halt_reason(result).startswith("WhatsApp menolak kredensial layanan (HTTP 401)")


def test_a_sandbox_template_is_never_sent_to_meta(
    engine: Engine, vault: PhoneVault, meta_rig: Rig, graph: respx.MockRouter
) -> None:
    world = make_world(engine, vault, people=2, template_status="SANDBOX")
    route = graph.post(MESSAGES_URL).respond(200, json=success())
    assert meta_rig.batches(1) == [0]
    assert route.call_count == 0
    assert world.states() == [DeliveryState.queued] * 2
    with session_scope(engine) as s:
        campaign = s.get(Campaign, world.campaign_id)
        assert campaign is not None
        assert campaign.state == CampaignState.paused
        assert campaign.paused_reason is not None
        assert campaign.paused_reason.startswith("Templat kampanye tidak dapat dikirim")
        assert "SANDBOX" in campaign.paused_reason
