"""Invariants 1 and 2: inbound text is never stored or logged; no answer or completion is kept."""

import logging
import secrets

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.security import PhoneVault
from tests.factories import add_delivery_row, add_round_rows, enrol_number
from tests.webhook import payloads
from tests.webhook.conftest import FakeWhatsApp
from tests.webhook.helpers import NUMBER, WA_ID, all_stored_text, send


def test_a_marker_sent_in_every_kind_of_message_is_nowhere_afterwards(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "PENANDA" + secrets.token_hex(8).upper()
    enrolment_id = enrol_number(engine, vault, opd, NUMBER)
    _, round_id = add_round_rows(engine, opd_code=opd)
    add_delivery_row(engine, round_id=round_id, enrolment_id=enrolment_id, state="accepted")
    location = payloads.media(WA_ID, "location")
    location["location"] = {"latitude": 1.0, "longitude": 2.0, "name": marker, "address": marker}
    order = payloads.media(WA_ID, "order")
    order["order"] = {"catalog_id": "1", "text": marker, "product_items": []}
    unsupported = payloads.media(WA_ID, "unsupported")
    unsupported["errors"] = [{"code": 131051, "title": marker, "message": marker}]
    messages = [
        payloads.text(WA_ID, f"sudah isi {marker}"),
        payloads.text(WA_ID, marker),
        payloads.text(WA_ID, f"jawaban saya: {marker} sangat setuju"),
        payloads.text(WA_ID, f"DAFTAR {marker}"),
        payloads.text(WA_ID, f"STOP {marker}"),
        payloads.button(WA_ID, marker, marker),
        payloads.button_reply(WA_ID, marker, marker),
        payloads.media(WA_ID, "image", caption=marker),
        payloads.media(WA_ID, "document", caption=f"bukti pengisian {marker}"),
        location,
        order,
        unsupported,
    ]
    contacts = [{"profile": {"name": marker}, "wa_id": WA_ID}]
    send(client, settings, payloads.inbound(*messages, contacts=contacts))
    # Each again in its own request (the de-duplication keys differ per message id).
    for message in messages:
        message["id"] = payloads.wamid()
        send(client, settings, payloads.inbound(message, contacts=contacts))
    # And the commands that do change state, so that their code paths log too.
    for command in ("STOP", "MULAI", "DATA", "BANTUAN", "DAFTAR DINKES", "YA", "HAPUS"):
        send(client, settings, payloads.inbound(payloads.text(WA_ID, command), contacts=contacts))

    stored = all_stored_text(engine)
    assert marker not in stored
    assert marker.lower() not in stored.lower()
    assert "webhook/whatsapp" in caplog.text  # logging was captured (keyword handlers log nothing)
    assert marker not in caplog.text
    assert all(marker not in body for _, body in wa.replies)
    # Nor the number in clear, nor the names from the contact card.
    for spelling in (NUMBER, WA_ID, "81298765432"):
        assert spelling not in stored
        assert spelling not in caplog.text


def test_sudah_isi_leaves_no_trace_beyond_the_daily_marker(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    from sqlalchemy import inspect, text

    enrol_number(engine, vault, opd, NUMBER)

    def counts() -> dict[str, int]:
        with engine.connect() as conn:
            return {
                t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in inspect(conn).get_table_names()
            }

    before = counts()
    for body in ("sudah isi", "Sudah mengisi SPI pak", "SUDAH", "selesai"):
        send(client, settings, payloads.inbound(payloads.text(WA_ID, body)))
    after = counts()
    grown = {t: after[t] - before[t] for t in after if after[t] != before[t]}
    assert grown == {"webhook_inbound_seen": 4, "webhook_auto_reply": 1}
    assert len(wa.to(NUMBER)) == 1
