"""A delivery moves only as `app.outbox.lifecycle.TRANSITIONS` allows, and only lifecycle moves it.

The lifecycle is a package (`app/outbox/lifecycle/`), one module per use case.

Every lifecycle operation is driven on real rows and each observed (before, after) pair of a
changed row is checked against the table; operations asked for a move outside it refuse or do
nothing; and no module of `app/` but the lifecycle writes the `delivery` table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from app.config import Settings
from app.db import session_scope
from app.enrolment import erasure, optout
from app.enrolment.models import Enrolment
from app.messaging.inbound import StatusEvent
from app.messaging.results import SendOutcome, SendResult
from app.outbox import claim, lifecycle, record
from app.outbox.lifecycle import TRANSITIONS, ForbiddenTransition
from app.outbox.models import Delivery, DeliveryState
from app.security import PhoneVault
from tests.outbox.conftest import NOW, make_world

Pair = tuple[str | None, str | None]
STATES: list[str | None] = [None, *DeliveryState]
APP = Path(__file__).resolve().parents[2] / "app"
LIFECYCLE = APP / "outbox" / "lifecycle"  # the package: one module per use case


def _rows(engine: Engine) -> dict[int, tuple[Any, ...]]:
    with session_scope(engine) as s:
        return {
            d.id: (
                d.state,
                d.enrolment_id,
                d.attempts,
                d.next_attempt_at,
                d.wamid,
                d.error_code,
                d.error_class,
                d.lease_expires_at,
                d.claimed_by,
                d.updated_at,
            )
            for d in s.exec(select(Delivery)).all()
            if d.id is not None
        }


class Observer:
    """Runs operations and collects the (before, after) state of every row each one changed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: set[Pair] = set()

    def run(self, operation: Callable[[Session], Any]) -> Any:
        """Run the operation in its own transaction."""

        def in_transaction() -> Any:
            with session_scope(self.engine) as s:
                return operation(s)

        return self.observe(in_transaction)

    def observe(self, action: Callable[[], Any]) -> Any:
        before = _rows(self.engine)
        result = action()
        after = _rows(self.engine)
        for d_id in before.keys() | after.keys():
            old, new = before.get(d_id), after.get(d_id)
            if old != new:
                pair = (old[0] if old else None, new[0] if new else None)
                assert pair[1] in TRANSITIONS[pair[0]], f"forbidden move {pair}"
                self.seen.add(pair)
        return result


def _enrolment_id(engine: Engine, vault: PhoneVault, phone: str) -> int:
    with session_scope(engine) as s:
        found = s.exec(
            select(Enrolment.id).where(Enrolment.phone_index == vault.blind_index(phone))
        ).one()
        assert found is not None
        return found


def _status(status: str, callback: str, error_code: int | None = None) -> StatusEvent:
    return StatusEvent(
        status=status, wamid=None, callback=callback, at=NOW, recipient=None, error_code=error_code
    )


def _claim(s: Session, vault: PhoneVault, settings: Settings, now: datetime) -> list[claim.Job]:
    """Reserve what is due and mark it all as about to be sent, as the worker does."""
    jobs, _ = claim.claim_batch(
        s, worker_id="w1", now=now, limit=50, lease_seconds=60, vault=vault, settings=settings
    )
    marked = claim.start_sending(
        s, worker_id="w1", delivery_ids=[j.delivery_id for j in jobs], now=now, lease_seconds=60
    )
    assert marked == {j.delivery_id for j in jobs}
    return jobs


def test_every_operation_moves_deliveries_only_as_the_table_allows(
    engine: Engine, vault: PhoneVault, settings: Settings
) -> None:
    watch = Observer(engine)
    # Created for a round (make_world goes through create_round).
    world = watch.observe(lambda: make_world(engine, vault, people=10))
    ids = [_enrolment_id(engine, vault, phone) for phone in world.phones]

    # Skipped for an opt-out.
    watch.run(lambda s: optout.stop(s, index=vault.blind_index(world.phones[0]), now=NOW))
    # Claimed: sending, skipped (unreachable) and failed (undecryptable) in one claim.
    with session_scope(engine) as s:
        s.execute(update(Enrolment).where(col(Enrolment.id) == ids[9]).values(unreachable_at=NOW))
        s.execute(update(Enrolment).where(col(Enrolment.id) == ids[8]).values(phone_ciphertext="x"))
    jobs: list[claim.Job] = watch.run(lambda s: _claim(s, vault, settings, NOW))
    assert len(jobs) == 7

    # Recorded: accepted, failed, unknown, retried, never sent; two stay in sending.
    results = [
        SendResult(SendOutcome.ACCEPTED, "accepted", wamid="wamid.a"),
        SendResult(SendOutcome.FAILED, "rejected", error_code=131026),
        SendResult(SendOutcome.UNKNOWN, "read_timeout"),
        SendResult(SendOutcome.RETRY, "throttled"),
        None,
    ]
    outcomes = [record.Outcome(job, result) for job, result in zip(jobs, results, strict=False)]
    watch.run(
        lambda s: record.record_batch(s, worker_id="w1", outcomes=outcomes, now=NOW, max_attempts=3)
    )

    # Moved by statuses: up from accepted, queued (retrying), unknown and skipped.
    skipped = next(d for d in world.deliveries() if d.enrolment_id == ids[0])
    events = [
        _status("delivered", jobs[0].public_id),
        _status("sent", jobs[3].public_id),
        _status("failed", jobs[2].public_id, 131049),
        _status("delivered", skipped.public_id),
    ]
    watch.run(lambda s: lifecycle.apply_statuses(s, events, now=NOW))
    # Expired: jobs[3], moved up to accepted by its `sent`, was never delivered in its window.
    held = next(d for d in world.deliveries() if d.id == jobs[3].delivery_id)
    assert held.id is not None
    late = [(held.id, held.campaign_id, held.opd_id, "Asia/Jakarta")]
    assert watch.run(lambda s: lifecycle.expire_undelivered(s, deliveries=late, now=NOW)) == 1
    fail_delivered = [_status("failed", jobs[0].public_id)]
    watch.run(lambda s: lifecycle.apply_statuses(s, fail_delivered, now=NOW))

    # Erased: the sending one is detached, the others deleted.
    in_flight = vault.blind_index(world.phones[ids.index(jobs[5].enrolment_id)])
    watch.run(lambda s: erasure.erase(s, index=in_flight, now=NOW))
    # Lease expired: what is left in sending becomes unknown.
    later = NOW + timedelta(seconds=61)
    assert watch.run(lambda s: lifecycle.recover_expired_leases(s, now=later)) == 2
    # Deferred: the never-sent one is due again, but on a Saturday the window is closed.
    saturday = datetime(2026, 3, 14, 3, 0, tzinfo=UTC)
    assert watch.run(lambda s: _claim(s, vault, settings, saturday)) == []
    # Purged.
    watch.run(lambda s: lifecycle.purge_campaign(s, campaign_id=world.campaign_id))
    assert world.deliveries() == []

    q, sending, skip = DeliveryState.queued, DeliveryState.sending, DeliveryState.skipped
    accepted, delivered = DeliveryState.accepted, DeliveryState.delivered
    failed, unknown = DeliveryState.failed, DeliveryState.unknown
    expired = DeliveryState.expired
    assert watch.seen >= {
        (accepted, expired),
        (None, q),
        (q, skip),
        (q, sending),
        (q, failed),
        (q, q),
        (sending, accepted),
        (sending, failed),
        (sending, unknown),
        (sending, q),
        (sending, sending),
        (accepted, delivered),
        (q, accepted),
        (unknown, failed),
        (skip, delivered),
        (delivered, failed),
        (failed, None),
    }


def test_require_refuses_every_move_outside_the_table() -> None:
    for before in STATES:
        for after in STATES:
            if after in TRANSITIONS[before]:
                lifecycle.require(before, after)
            else:
                with pytest.raises(ForbiddenTransition):
                    lifecycle.require(before, after)
    assert set(TRANSITIONS) == set(STATES)


def test_operations_asked_for_a_forbidden_move_refuse_or_do_nothing(
    engine: Engine, vault: PhoneVault, settings: Settings
) -> None:
    world = make_world(engine, vault, people=2)
    with session_scope(engine) as s:
        jobs = _claim(s, vault, settings, NOW)
    accepted = SendResult(SendOutcome.ACCEPTED, "accepted", wamid="wamid.a")
    with session_scope(engine) as s:
        record.record_batch(
            s,
            worker_id="w1",
            outcomes=[record.Outcome(j, accepted) for j in jobs],
            now=NOW,
            max_attempts=3,
        )
    with session_scope(engine) as s:
        lifecycle.apply_statuses(s, [_status("delivered", jobs[0].public_id)], now=NOW)
    before = _rows(engine)

    with session_scope(engine) as s:
        # Recording again, or a status going down, leaves the rows as they are.
        summary = record.record_batch(
            s,
            worker_id="w1",
            outcomes=[record.Outcome(j, SendResult(SendOutcome.UNKNOWN, "x")) for j in jobs],
            now=NOW,
            max_attempts=3,
        )
        assert summary.counts["settled_elsewhere"] == 2
        moves = lifecycle.apply_statuses(s, [_status("sent", j.public_id) for j in jobs], now=NOW)
        assert (moves.applied, moves.unchanged) == (0, 2)
        # An opt-out skips only queued deliveries; leases expire only in sending.
        people = [j.enrolment_id for j in jobs]
        assert lifecycle.skip_for_opt_out(s, enrolment_ids=people, now=NOW) == 0
        assert lifecycle.recover_expired_leases(s, now=NOW + timedelta(days=1)) == 0
    assert _rows(engine) == before
    assert sorted(world.states()) == ["accepted", "delivered"]

    row: dict[str, object] = {"d_id": jobs[0].delivery_id, "d_state": DeliveryState.skipped}
    with session_scope(engine) as s, pytest.raises(ForbiddenTransition):
        lifecycle.record_sends(s, rows=[row])


# A statement that writes the delivery table, in SQLAlchemy or in raw SQL.
WRITES = re.compile(
    r"(?:insert|update|delete)\(\s*Delivery\b"
    r"|(?<!class )\bDelivery\("
    r"|(?i:\b(?:insert\s+into|update|delete\s+from)\s+[\"']?delivery\b)"
)
STATE_ASSIGNMENT = re.compile(r"\b\w*delivery\w*\.state\s*=(?!=)", re.IGNORECASE)


def test_only_the_lifecycle_writes_the_delivery_table() -> None:
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(APP.parent).as_posix()
        if LIFECYCLE not in path.parents and WRITES.search(text):
            offenders.append(where)
        if not where.startswith("app/outbox/") and STATE_ASSIGNMENT.search(text):
            offenders.append(where)
    assert offenders == []
    writers = {p.stem for p in LIFECYCLE.glob("*.py") if WRITES.search(p.read_text("utf-8"))}
    assert writers >= {"transitions", "created", "claimed", "statuses", "expired", "removed"}
