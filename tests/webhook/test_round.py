"""Invariant 6 against the real runtime: after the STOP's 200, the number receives nothing more.

The in-process sandbox stands in for Meta; the real outbox worker claims and sends.
"""

import time
from datetime import datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.campaigns.models import Campaign
from app.campaigns.rounds import policy_for
from app.campaigns.timing import next_allowed
from app.config import Settings
from app.db import session_scope, utcnow
from app.outbox.worker import OutboxWorker, WorkerConfig
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault
from tests.factories import add_delivery_row, add_round_rows, enrol_number
from tests.webhook.helpers import NUMBER, OTHER_NUMBER, delivery, delivery_tallies, say

THIRD_NUMBER = "+6281355556666"


def _send_time(engine: Engine, campaign_id: int) -> datetime:
    """The next moment the campaign may send (a weekday inside the window), a minute in."""
    with session_scope(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        moment = next_allowed(policy_for(campaign), "Asia/Jakarta", utcnow() + timedelta(hours=1))
    assert moment is not None
    return moment + timedelta(minutes=1)


def _run_worker(
    client: TestClient, api: FastAPI, settings: Settings, engine: Engine, at: datetime
) -> int:
    worker = OutboxWorker(
        engine=engine,
        settings=settings,
        messenger=api.state.whatsapp,
        vault=api.state.vault,
        config=WorkerConfig(batch_size=50, poll_seconds=0.01),
        clock=lambda: at,
    )
    assert client.portal is not None
    return client.portal.call(worker.run_once)


def test_stop_during_a_round_stops_every_later_send(
    client: TestClient,
    api: FastAPI,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    opd: str,
) -> None:
    sandbox: SandboxGraph = api.state.sandbox
    assert sandbox is not None, "the test settings run the in-process sandbox"
    mine = enrol_number(engine, vault, opd, NUMBER)
    others = [enrol_number(engine, vault, opd, n) for n in (OTHER_NUMBER, THIRD_NUMBER)]
    campaign_id, round_id = add_round_rows(engine, opd_code=opd)
    at = _send_time(engine, campaign_id)
    my_delivery = add_delivery_row(engine, round_id=round_id, enrolment_id=mine)
    their_deliveries = [add_delivery_row(engine, round_id=round_id, enrolment_id=e) for e in others]

    say(client, settings, "STOP")  # 200: the opt-out is committed
    assert _run_worker(client, api, settings, engine, at) == 2

    assert sandbox.by_callback[my_delivery] == 0
    assert all(sandbox.by_callback[d] == 1 for d in their_deliveries)
    templates_to_me = [e for e in sandbox.inbox if e.masked == "+62812****5432" and e.template]
    assert templates_to_me == []
    # The STOP confirmation itself went out through the same client, as free text.
    replies = [e for e in sandbox.inbox if e.masked == "+62812****5432" and not e.template]
    assert len(replies) == 1
    row = delivery(engine, my_delivery)
    assert row is not None
    assert row.state == "skipped"

    # A later round that still lists the number (e.g. created from a stale list): the
    # worker's own claim-time check keeps it out as well.
    _, later = add_round_rows(engine, opd_code=opd)
    late_mine = add_delivery_row(engine, round_id=later, enrolment_id=mine)
    late_theirs = add_delivery_row(engine, round_id=later, enrolment_id=others[0])
    _run_worker(client, api, settings, engine, at)
    assert sandbox.by_callback[late_mine] == 0
    assert sandbox.by_callback[late_theirs] == 1
    late_row = delivery(engine, late_mine)
    assert late_row is not None
    assert late_row.state == "skipped"
    # Each skipped delivery counted once, by whoever skipped it.
    assert delivery_tallies(engine)["skipped"] == 2


def test_a_stop_in_the_middle_of_a_batch_stops_the_rest_of_it(
    api: FastAPI, settings: Settings, engine: Engine, vault: PhoneVault, opd: str
) -> None:
    # Twelve reminders at 4 per second: the batch is claimed at once and takes about 3 s to
    # send. The employee's own reminder is the last one; their STOP arrives while the others
    # are still going out. The claim-time check cannot see it; the re-read during sending must.
    settings.send_rate_per_second = 4
    others = [enrol_number(engine, vault, opd, f"+628135555{n:04d}") for n in range(1, 12)]
    mine = enrol_number(engine, vault, opd, NUMBER)
    campaign_id, round_id = add_round_rows(engine, opd_code=opd)
    at = _send_time(engine, campaign_id)
    theirs = [add_delivery_row(engine, round_id=round_id, enrolment_id=e) for e in others]
    my_delivery = add_delivery_row(engine, round_id=round_id, enrolment_id=mine)

    with TestClient(api) as client:
        sandbox: SandboxGraph = api.state.sandbox
        worker = OutboxWorker(
            engine=engine,
            settings=settings,
            messenger=api.state.whatsapp,
            vault=api.state.vault,
            config=WorkerConfig(batch_size=50, poll_seconds=0.01),
            clock=lambda: at,
        )
        assert client.portal is not None
        sending = client.portal.start_task_soon(worker.run_once)
        waited = time.monotonic() + 10
        while sum(sandbox.by_callback[d] for d in theirs) < 2:
            assert time.monotonic() < waited, "the batch never started sending"
            time.sleep(0.01)
        assert sandbox.by_callback[my_delivery] == 0, "too late: the STOP must come mid-batch"

        say(client, settings, "STOP")
        received_by_the_200 = sandbox.by_callback[my_delivery]
        assert sending.result(timeout=30) == 12

    assert received_by_the_200 == 0
    assert sandbox.by_callback[my_delivery] == 0
    assert all(sandbox.by_callback[d] == 1 for d in theirs)
    row = delivery(engine, my_delivery)
    assert row is not None
    # Reserved but not yet marked for sending when the STOP came: skipped at once, never sent;
    # another pass of the worker changes nothing.
    assert row.state == "skipped"
    _run_worker_now(api, settings, engine, at)
    row = delivery(engine, my_delivery)
    assert row is not None
    assert row.state == "skipped"


def _run_worker_now(api: FastAPI, settings: Settings, engine: Engine, at: datetime) -> None:
    with TestClient(api) as client:
        _run_worker(client, api, settings, engine, at)
