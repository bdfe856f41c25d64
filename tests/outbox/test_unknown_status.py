"""A late status for an `unknown` delivery moves it forward, and the figures follow."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select

from app.config import Settings
from app.db import session_scope
from app.messaging.inbound import StatusEvent
from app.outbox import claim, lifecycle
from app.outbox.models import DeliveryState, DeliveryTally
from app.security import PhoneVault
from app.webhook import statuses
from tests.outbox.conftest import NOW, make_world


def _tallies_by_day(engine: Engine) -> dict[tuple[str, str], int]:
    with session_scope(engine) as s:
        rows = s.exec(select(DeliveryTally)).all()
    return {(r.day.isoformat(), r.outcome): r.count for r in rows if r.outcome != "listed"}


def test_a_late_status_moves_an_unknown_delivery_and_its_tallies(
    engine: Engine, vault: PhoneVault, settings: Settings
) -> None:
    world = make_world(engine, vault, people=3)
    with session_scope(engine) as s:
        jobs, _ = claim.claim_batch(
            s, worker_id="w", now=NOW, limit=3, lease_seconds=30, vault=vault, settings=settings
        )
        ids = [j.delivery_id for j in jobs]
        claim.start_sending(s, worker_id="w", delivery_ids=ids, now=NOW, lease_seconds=30)
    # The worker died with all three on the wire: unknown, counted on that day.
    with session_scope(engine) as s:
        assert lifecycle.recover_expired_leases(s, now=NOW + timedelta(seconds=31)) == 3
    assert world.states() == [DeliveryState.unknown] * 3
    today = NOW.date().isoformat()  # 10:00 in Jakarta: the same local day
    assert _tallies_by_day(engine) == {(today, "scheduled"): 3, (today, "unknown"): 3}

    # A day later, Meta's statuses prove two of them went out.
    later = NOW + timedelta(days=1)
    failed = StatusEvent("failed", "wamid.b", jobs[1].public_id, later, None, 131026)
    events = [
        StatusEvent("delivered", "wamid.a", jobs[0].public_id, later, None, None),
        failed,
        StatusEvent("read", "wamid.a", jobs[0].public_id, later, None, None),  # adds nothing
    ]
    with session_scope(engine) as s:
        summary = statuses.apply_statuses(s, events, vault=vault, now=later)
    assert summary.applied == 2
    states = {d.public_id: d.state for d in world.deliveries()}
    assert states[jobs[0].public_id] == DeliveryState.delivered
    assert states[jobs[1].public_id] == DeliveryState.failed
    assert states[jobs[2].public_id] == DeliveryState.unknown
    # Taken out of `unknown` on the day they were counted there, counted where they went.
    next_day = later.date().isoformat()
    assert _tallies_by_day(engine) == {
        (today, "scheduled"): 3,
        (today, "unknown"): 1,
        (next_day, "accepted"): 2,
        (next_day, "delivered"): 1,
        (next_day, failed.meaning.failure_class.value): 1,
    }
    totals = world.tallies()
    assert totals["unknown"] + totals["accepted"] == totals["scheduled"]
