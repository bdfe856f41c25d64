"""Invariant 5 for operators: /metrics and the logs tell a decision from a help request by nothing.

Each keyword goes through the signed webhook as Meta would send it. A STOP, MULAI, HAPUS, DATA,
DAFTAR or YA must move every /metrics series exactly as a BANTUAN does, and no log record of any
logger may carry the number (in any spelling, masked included) or name the keyword.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, update

from app.config import Settings
from app.db import session_scope, utcnow
from app.outbox.models import Delivery
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault, mask_phone
from tests.factories import add_delivery_row, add_round_rows, enrol_number
from tests.webhook import payloads
from tests.webhook.conftest import FakeWhatsApp
from tests.webhook.helpers import NUMBER, WA_ID, say, send

# The keywords that carry a person's decision, in an order where each one acts (YA confirms the
# DAFTAR before it, MULAI lifts the STOP before it).
DECISIONS = ("STOP", "MULAI", "DATA", "DAFTAR DINKES", "YA", "HAPUS", "DAFTAR DINKES", "YA")
KEYWORD_WORDS = re.compile(
    r"\b(stop|mulai|hapus|data|daftar|ya|resume|erase|erased|signup|self_enrol|confirm|"
    r"opt_?out|opted_out|berhenti)\b",
    re.IGNORECASE,
)
NUMBER_SPELLINGS = (NUMBER, WA_ID, "0" + WA_ID[2:], WA_ID[2:], mask_phone(NUMBER))
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def scrape(api: FastAPI) -> TestClient:
    """A loopback client for /metrics (no lifespan: the main client runs it)."""
    return TestClient(api, client=("127.0.0.1", 40000))


def _samples(body: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _move(scrape: TestClient, act: object) -> list[tuple[object, float]]:
    """How every series moved across act(): each key of either scrape with its change."""
    before = scrape.get("/metrics")
    assert before.status_code == 200
    act()  # type: ignore[operator]
    after = scrape.get("/metrics")
    assert "_created" not in before.text + after.text
    old, new = _samples(before.text), _samples(after.text)
    return sorted((k, new.get(k, 0.0) - old.get(k, 0.0)) for k in old.keys() | new.keys())


@pytest.fixture
def person(engine: Engine, vault: PhoneVault, opd: str) -> None:
    """Enrolled, with tomorrow's reminder queued: STOP and HAPUS skip it on the spot."""
    enrolment_id = enrol_number(engine, vault, opd, NUMBER)
    _, round_id = add_round_rows(engine, opd_code=opd)
    add_delivery_row(engine, round_id=round_id, enrolment_id=enrolment_id)
    with session_scope(engine) as s:
        s.execute(update(Delivery).values(next_attempt_at=utcnow() + timedelta(days=1)))


def test_metrics_move_after_each_decision_exactly_as_after_a_help_request(
    client: TestClient, scrape: TestClient, settings: Settings, wa: FakeWhatsApp, person: None
) -> None:
    help_request = _move(scrape, lambda: say(client, settings, "BANTUAN"))
    assert any(change for _, change in help_request)  # the webhook traffic is counted
    for keyword in DECISIONS:
        assert _move(scrape, lambda k=keyword: say(client, settings, k)) == help_request, keyword
    assert _move(scrape, lambda: say(client, settings, "BANTUAN")) == help_request
    assert len(wa.to(NUMBER)) == len(DECISIONS) + 2  # every keyword was acted on and answered


def test_whatsapps_own_opt_out_moves_metrics_like_an_ordinary_text(
    client: TestClient, scrape: TestClient, settings: Settings, wa: FakeWhatsApp, person: None
) -> None:
    say(client, settings, "halo")  # today's one neutral reply; later texts get none
    text = _move(scrape, lambda: say(client, settings, "halo lagi"))
    for value in ("stop", "resume", "stop"):
        preference = payloads.preference(WA_ID, value)
        assert _move(scrape, lambda p=preference: send(client, settings, p)) == text, value
    assert len(wa.to(NUMBER)) == 1


def test_no_log_record_links_the_number_to_a_keyword(
    api: FastAPI,
    client: TestClient,
    settings: Settings,
    person: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The real messenger (the in-process sandbox), so that sending the reply logs as in service.
    sandbox = api.state.sandbox
    assert isinstance(sandbox, SandboxGraph)
    sandbox.faults.status_delay_seconds = 0.0
    caplog.set_level(logging.DEBUG)
    for keyword in ("BANTUAN", *DECISIONS):
        caplog.clear()
        say(client, settings, keyword)
        _wait_for_status_webhooks(sandbox)
        messages = [record.getMessage() for record in caplog.records]
        assert any("whatsapp send" in m for m in messages), keyword  # the reply did log
        for message in messages:
            assert not KEYWORD_WORDS.search(message), (keyword, message)
            assert "****" not in message, (keyword, message)
            for spelling in NUMBER_SPELLINGS:
                assert spelling not in message, (keyword, message)
    assert len(sandbox.inbox) == len(DECISIONS) + 1  # every keyword was answered


def _wait_for_status_webhooks(sandbox: SandboxGraph) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sandbox.stats()["pending_statuses"]:
        time.sleep(0.02)
