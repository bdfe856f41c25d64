"""'Reply as this employee' on the sandbox inbox: a signed inbound the service acts on, the
service's answer in the inbox, and the employee's words kept nowhere."""

from __future__ import annotations

import functools
import json
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.db import session_scope
from app.enrolment.models import Suppression
from app.messaging import spec
from app.messaging.inbound import parse_batch
from app.sandbox import reply
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault, mask_phone
from app.webhook.keywords import classify_any
from tests.factories import add_opd, add_template, enrol_number, every_cell

NUMBER = "+6281234567890"
# Typed as an employee might: recognised as STOP, and findable if it were stored anywhere.
WORDS = "Stop"


def _reminder(client: TestClient, api: FastAPI) -> str:
    """The sandbox takes one reminder to NUMBER; its message id in the inbox."""
    result = client.portal.call(  # type: ignore[union-attr]
        functools.partial(
            api.state.whatsapp.send_reminder,
            to=NUMBER,
            template_name="spi_uji",
            language="id",
            parameters=["Pemerintah Kota Uji", "30 April 2026"],
            callback_data="d0001",
        )
    )
    assert result is not None
    assert result.wamid is not None
    return result.wamid


def test_the_inbound_text_is_metas_shape() -> None:
    payload = reply.inbound_text(
        waba_id="100000000000002", phone_number_id="100000000000001", sender=NUMBER, text="BANTUAN"
    )
    assert spec.validate_inbound_text_webhook(payload) == []
    batch = parse_batch(payload, classify=classify_any)
    assert batch is not None
    assert [m.sender_digits for m in batch.messages] == [NUMBER[1:]]
    with pytest.raises(ValueError, match=r"E\.164"):
        reply.inbound_text(waba_id="1", phone_number_id="2", sender="0812", text="STOP")
    with pytest.raises(reply.ReplyRefused):
        reply.inbound_text(waba_id="1", phone_number_id="2", sender=NUMBER, text="  ")


def test_replying_stop_from_the_inbox_stops_the_number_and_keeps_no_words(
    engine: Engine, api: FastAPI, vault: PhoneVault
) -> None:
    add_opd(engine, "DINKES")
    add_template(engine)
    enrol_number(engine, vault, "DINKES", NUMBER)
    with TestClient(api) as client:
        sandbox: SandboxGraph = api.state.sandbox
        message_id = _reminder(client, api)

        page = client.get("/sandbox/inbox")
        assert f"/sandbox/reply?message={quote(message_id)}" in page.text
        form = client.get("/sandbox/reply", params={"message": message_id})
        assert form.status_code == 200
        assert mask_phone(NUMBER) in form.text
        assert NUMBER not in form.text
        assert NUMBER[1:] not in form.text

        sent = client.post(
            "/sandbox/reply",
            data={"message": message_id, "text": WORDS},
            follow_redirects=False,
        )
        assert sent.status_code == 303
        assert sent.headers["location"] == "/sandbox/inbox"

        with session_scope(engine) as s:
            assert s.get(Suppression, vault.blind_index(NUMBER)) is not None
        # The service answered the STOP: its reply is in the inbox, to the same masked number.
        replies = [e for e in sandbox.inbox if e.template is None]
        assert [e.masked for e in replies] == [mask_phone(NUMBER)]
        inbox_json = client.get("/sandbox/inbox.json").text
        stats = json.dumps(sandbox.stats(detail=True))

    assert not [c for c in every_cell(engine) if isinstance(c, str) and WORDS in c]
    assert WORDS not in inbox_json
    assert WORDS not in stats
    assert all(e.text is None or WORDS not in e.text for e in sandbox.inbox)
    assert NUMBER not in inbox_json


def test_a_reply_from_a_typed_number_and_refusals(engine: Engine, api: FastAPI) -> None:
    with TestClient(api) as client:
        page = client.get("/sandbox/reply")
        assert 'name="number"' in page.text
        sent = client.post("/sandbox/reply", json={"number": "+6281311112222", "text": "BANTUAN"})
        assert sent.status_code == 200
        assert sent.json() == {"posted": True}
        sandbox: SandboxGraph = api.state.sandbox
        assert [e.template for e in sandbox.inbox] == [None]  # the service's help reply

        gone = client.post("/sandbox/reply", json={"message": "wamid.gone", "text": "STOP"})
        assert gone.status_code == 400
        bad = client.post("/sandbox/reply", json={"number": "0812", "text": "STOP"})
        assert bad.status_code == 400
        assert client.get("/sandbox/reply", params={"message": "wamid.gone"}).status_code == 404
