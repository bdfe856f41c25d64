"""Delivery statuses: correlation, monotonic state, tallies once per outcome, any order."""

import itertools
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine
from sqlmodel import select

from app.config import Settings
from app.db import session_scope
from app.outbox.models import DeliveryTally
from app.security import PhoneVault
from tests.factories import add_delivery_row, add_round_rows, enrol_number
from tests.webhook import payloads
from tests.webhook.conftest import FakeWhatsApp
from tests.webhook.helpers import (
    NUMBER,
    OTHER_NUMBER,
    OTHER_WA_ID,
    WA_ID,
    all_stored_text,
    delivery,
    delivery_tallies,
    enrolment,
    enrolment_tally,
    send,
    suppression,
)


def _now() -> int:
    return int(time.time()) - 30


def _setup(
    engine: Engine, vault: PhoneVault, opd: str, *, state: str = "accepted", wamid: str | None
) -> tuple[int, str]:
    enrolment_id = enrol_number(engine, vault, opd, NUMBER)
    _, round_id = add_round_rows(engine, opd_code=opd)
    public_id = add_delivery_row(
        engine, round_id=round_id, enrolment_id=enrolment_id, state=state, wamid=wamid
    )
    return enrolment_id, public_id


def _status(kind: str, message_id: str, callback: str | None, **kw: object) -> dict:  # type: ignore[type-arg]
    return payloads.status(kind, message_id=message_id, callback=callback, timestamp=_now(), **kw)  # type: ignore[arg-type]


def _unmatched() -> float:
    return REGISTRY.get_sample_value("spi_webhook_statuses_total", {"effect": "unmatched"}) or 0.0


@pytest.mark.parametrize(
    ("kind", "state", "counted"),
    [
        ("sent", "accepted", {}),
        ("delivered", "delivered", {"delivered": 1}),
        ("read", "delivered", {"delivered": 1}),
        ("played", "delivered", {"delivered": 1}),
    ],
)
def test_each_status_kind_moves_an_accepted_delivery(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    opd: str,
    kind: str,
    state: str,
    counted: dict[str, int],
) -> None:
    wamid = payloads.wamid()
    _, public_id = _setup(engine, vault, opd, wamid=wamid)
    before = delivery_tallies(engine)
    send(client, settings, payloads.statuses(_status(kind, wamid, public_id)))
    row = delivery(engine, public_id)
    assert row is not None
    assert row.state == state
    after = delivery_tallies(engine)
    assert {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after[k] != before.get(k, 0)
    } == counted
    assert "read" not in all_stored_text(engine).split()


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(131049, "failed_refused"), (131000, "failed_other"), (131047, "failed_refused")],
)
def test_failed_records_the_error_class(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    opd: str,
    code: int,
    outcome: str,
) -> None:
    wamid = payloads.wamid()
    enrolment_id, public_id = _setup(engine, vault, opd, wamid=wamid)
    send(client, settings, payloads.statuses(_status("failed", wamid, public_id, error_code=code)))
    row = delivery(engine, public_id)
    assert row is not None
    assert row.state == "failed"
    assert row.error_code == code
    assert row.error_class == outcome
    assert delivery_tallies(engine).get(outcome) == 1
    assert enrolment(engine, enrolment_id).status == "active"
    assert suppression(engine, vault) is None


def test_131026_marks_the_enrolment_unreachable_once(
    client: TestClient, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    wamid = payloads.wamid()
    enrolment_id, public_id = _setup(engine, vault, opd, wamid=wamid)
    failed = payloads.statuses(_status("failed", wamid, public_id, error_code=131026))
    for _ in range(3):
        send(client, settings, failed)
    assert enrolment(engine, enrolment_id).unreachable_at is not None
    assert enrolment_tally(engine, "unreachable") == 1
    assert delivery_tallies(engine).get("failed_not_on_whatsapp") == 1


def test_131050_suppresses_like_stop(
    client: TestClient, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    wamid = payloads.wamid()
    enrolment_id, public_id = _setup(engine, vault, opd, wamid=wamid)
    _, later_round = add_round_rows(engine, opd_code=opd)
    queued = add_delivery_row(engine, round_id=later_round, enrolment_id=enrolment_id)
    send(
        client,
        settings,
        payloads.statuses(_status("failed", wamid, public_id, error_code=131050)),
    )
    assert suppression(engine, vault) == "marketing_optout"
    assert enrolment(engine, enrolment_id).status == "active"  # listed as before
    assert enrolment_tally(engine, "opted_out") == 1
    queued_row = delivery(engine, queued)
    assert queued_row is not None
    assert queued_row.state == "skipped"
    tallies = delivery_tallies(engine)
    assert tallies.get("failed_refused") == 1
    assert tallies.get("skipped") == 1


def test_131050_for_an_unknown_delivery_still_suppresses_the_recipient(
    client: TestClient, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    send(
        client,
        settings,
        payloads.statuses(
            _status("failed", payloads.wamid(), None, error_code=131050, recipient=OTHER_WA_ID)
        ),
    )
    assert suppression(engine, vault, OTHER_NUMBER) == "marketing_optout"


def test_status_before_the_worker_stored_the_wamid_lands_by_callback_data(
    client: TestClient, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    _, public_id = _setup(engine, vault, opd, state="sending", wamid=None)
    wamid = payloads.wamid()
    send(client, settings, payloads.statuses(_status("sent", wamid, public_id)))
    row = delivery(engine, public_id)
    assert row is not None
    assert row.state == "accepted"
    assert row.wamid == wamid
    # Without callback data, the wamid now finds it.
    send(client, settings, payloads.statuses(_status("delivered", wamid, None)))
    row = delivery(engine, public_id)
    assert row is not None
    assert row.state == "delivered"
    tallies = delivery_tallies(engine)
    assert tallies.get("accepted") == 1
    assert tallies.get("delivered") == 1


def test_unknown_or_purged_delivery_is_acknowledged_and_counted(
    client: TestClient, settings: Settings, engine: Engine, opd: str
) -> None:
    before = _unmatched()
    response = payloads.post(
        client,
        settings,
        payloads.statuses(
            _status("delivered", payloads.wamid(), "no-such-delivery"),
            _status("read", payloads.wamid(), None),
        ),
    )
    assert response.status_code == 200
    assert _unmatched() - before == 2
    assert delivery_tallies(engine) == {}


ORDERS = list(itertools.permutations(["sent", "delivered", "read"]))


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_any_order_and_duplicates_give_one_outcome_each(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    opd: str,
    order: tuple[str, ...],
) -> None:
    _, public_id = _setup(engine, vault, opd, state="sending", wamid=None)
    wamid = payloads.wamid()
    events = [_status(kind, wamid, public_id) for kind in order]
    send(client, settings, payloads.statuses(*events))  # all in one batch
    for event in (*events, *reversed(events)):  # then each alone, twice
        send(client, settings, payloads.statuses(event))
    row = delivery(engine, public_id)
    assert row is not None
    assert row.state == "delivered"
    assert delivery_tallies(engine) == {"scheduled": 1, "accepted": 1, "delivered": 1}


def test_statuses_in_reverse_order_across_requests(
    client: TestClient, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    _, public_id = _setup(engine, vault, opd, state="sending", wamid=None)
    wamid = payloads.wamid()
    for kind in ("failed", "delivered", "sent"):
        send(
            client, settings, payloads.statuses(_status(kind, wamid, public_id, error_code=131049))
        )
    row = delivery(engine, public_id)
    assert row is not None
    assert row.state == "failed"
    assert delivery_tallies(engine) == {"scheduled": 1, "accepted": 1, "failed_refused": 1}


def test_the_same_webhook_three_times_counts_once(
    client: TestClient, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    enrolment_id = enrol_number(engine, vault, opd, NUMBER)
    _, round_id = add_round_rows(engine, opd_code=opd)
    ids = [add_delivery_row(engine, round_id=round_id, enrolment_id=enrolment_id, state="sending")]
    other = enrol_number(engine, vault, opd, OTHER_NUMBER)
    ids.append(add_delivery_row(engine, round_id=round_id, enrolment_id=other, state="sending"))
    wamids = [payloads.wamid(), payloads.wamid()]
    body = payloads.statuses(
        *(_status(k, w, p) for w, p in zip(wamids, ids, strict=True) for k in ("sent", "delivered"))
    )
    for _ in range(3):
        send(client, settings, body)
    assert delivery_tallies(engine) == {"scheduled": 2, "accepted": 2, "delivered": 2}


def test_tally_day_is_the_opd_local_day_of_the_status(
    client: TestClient, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    wamid = payloads.wamid()
    _, public_id = _setup(engine, vault, opd, wamid=wamid)
    stamp = _now() - 3600
    millis = payloads.status(
        "delivered", message_id=wamid, callback=public_id, timestamp=stamp * 1000
    )
    send(client, settings, payloads.statuses(millis))
    with session_scope(engine) as s:
        row = s.exec(select(DeliveryTally).where(DeliveryTally.outcome == "delivered")).one()
    expected = datetime.fromtimestamp(stamp, UTC).astimezone(ZoneInfo("Asia/Jakarta")).date()
    assert row.day == expected


def test_a_batch_mixing_entries_messages_and_statuses(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
) -> None:
    wamid = payloads.wamid()
    enrolment_id, public_id = _setup(engine, vault, opd, wamid=wamid)
    other = enrol_number(engine, vault, opd, OTHER_NUMBER)
    _, round_id = add_round_rows(engine, opd_code=opd)
    queued = add_delivery_row(engine, round_id=round_id, enrolment_id=other)
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": payloads.WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": payloads.value(statuses=[_status("delivered", wamid, public_id)]),
                    },
                    {
                        "field": "messages",
                        "value": payloads.value(
                            messages=[
                                payloads.text(OTHER_WA_ID, "sudah isi"),
                                payloads.text(OTHER_WA_ID, "STOP"),
                            ],
                            contacts=[{"wa_id": OTHER_WA_ID}],
                        ),
                    },
                ],
            },
            {
                "id": payloads.WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": payloads.value(
                            messages=[payloads.text(WA_ID, "BANTUAN")],
                            statuses=[_status("read", wamid, public_id)],
                        ),
                    }
                ],
            },
        ],
    }
    send(client, settings, body)
    row = delivery(engine, public_id)
    assert row is not None
    assert row.state == "delivered"
    assert suppression(engine, vault, OTHER_NUMBER) == "stop"
    assert enrolment(engine, other).status == "active"  # listed as before
    assert enrolment(engine, enrolment_id).status == "active"
    queued_row = delivery(engine, queued)
    assert queued_row is not None
    assert queued_row.state == "skipped"
    assert len(wa.to(OTHER_NUMBER)) == 2  # the neutral reply, then the STOP confirmation
    assert len(wa.to(NUMBER)) == 1
    assert delivery_tallies(engine)["delivered"] == 1
