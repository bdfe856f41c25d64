"""A failure answers 5xx with nothing stored, so that Meta's retry applies it exactly once."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.config import Settings
from app.enrolment import optout
from app.security import PhoneVault
from tests.factories import enrol_number
from tests.webhook import payloads
from tests.webhook.conftest import FakeWhatsApp
from tests.webhook.helpers import (
    NUMBER,
    OTHER_NUMBER,
    OTHER_WA_ID,
    WA_ID,
    enrolment_tally,
    suppression,
)


def test_a_database_failure_is_503_and_the_retry_applies_everything_once(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enrol_number(engine, vault, opd, NUMBER)
    enrol_number(engine, vault, opd, OTHER_NUMBER)
    body = payloads.inbound(payloads.text(WA_ID, "STOP"), payloads.text(OTHER_WA_ID, "STOP"))
    real = optout.stop
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("UPDATE enrolment", {}, Exception("connection lost"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optout, "stop", flaky)
    response = payloads.post(client, settings, body)
    assert response.status_code == 503
    # The first STOP of the batch was rolled back with the rest: nothing half-applied.
    assert suppression(engine, vault) is None
    assert enrolment_tally(engine, "opted_out") == 0
    assert wa.replies == []

    monkeypatch.setattr(optout, "stop", real)
    for _ in range(2):  # Meta's retry, and a duplicate of it
        assert payloads.post(client, settings, body).status_code == 200
    assert suppression(engine, vault) == "stop"
    assert suppression(engine, vault, OTHER_NUMBER) == "stop"
    assert enrolment_tally(engine, "opted_out") == 2
    assert len(wa.replies) == 2


def test_a_failing_reply_send_does_not_undo_the_stop(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*, to: str, body: str) -> None:
        raise RuntimeError("graph down")

    monkeypatch.setattr(wa, "send_reply", broken)
    enrol_number(engine, vault, opd, NUMBER)
    response = payloads.post(client, settings, payloads.inbound(payloads.text(WA_ID, "STOP")))
    assert response.status_code == 200
    assert suppression(engine, vault) == "stop"
