"""Delivery bounded in time: no send too close to the window's end, and undelivered ones expire."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.campaigns import expiry
from app.campaigns.models import Campaign
from app.campaigns.rounds import policy_for
from app.campaigns.timing import closed_reason, window_end
from app.config import Settings
from app.db import session_scope
from app.messaging.inbound import StatusEvent
from app.messaging.results import SendOutcome, SendResult
from app.outbox import claim, lifecycle, record
from app.outbox.lifecycle import ForbiddenTransition
from app.security import PhoneVault
from tests.outbox.conftest import NOW, World, make_world

GRACE = timedelta(minutes=30)
# NOW is Tuesday 10:00 WIB; the window closes at 15:00 WIB (08:00 UTC).
WINDOW_END = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def claim_all(
    engine: Engine, vault: PhoneVault, settings: Settings, now: datetime
) -> list[claim.Job]:
    """Reserve what is due and mark it as about to be sent, as the worker does."""
    with session_scope(engine) as s:
        jobs, _ = claim.claim_batch(
            s, worker_id="w1", now=now, limit=50, lease_seconds=60, vault=vault, settings=settings
        )
        ids = [j.delivery_id for j in jobs]
        marked = claim.start_sending(s, worker_id="w1", delivery_ids=ids, now=now, lease_seconds=60)
    return [j for j in jobs if j.delivery_id in marked]


def accept_all(engine: Engine, vault: PhoneVault, settings: Settings) -> list[claim.Job]:
    jobs = claim_all(engine, vault, settings, NOW)
    outcomes = [
        record.Outcome(job, SendResult(SendOutcome.ACCEPTED, "accepted", wamid=f"wamid.{i}"))
        for i, job in enumerate(jobs)
    ]
    with session_scope(engine) as s:
        record.record_batch(s, worker_id="w1", outcomes=outcomes, now=NOW, max_attempts=3)
    return jobs


def status(state: str, callback: str, at: datetime) -> StatusEvent:
    return StatusEvent(
        status=state, wamid=None, callback=callback, at=at, recipient=None, error_code=None
    )


def expire(engine: Engine, now: datetime) -> int:
    with session_scope(engine) as s:
        return expiry.expire_undelivered(s, now=now, grace=GRACE)


def test_undelivered_reminders_expire_after_their_window_once_and_for_good(
    engine: Engine, vault: PhoneVault, settings: Settings
) -> None:
    world: World = make_world(engine, vault, people=4)
    jobs = accept_all(engine, vault, settings)
    assert len(jobs) == 4
    with session_scope(engine) as s:
        lifecycle.apply_statuses(s, [status("delivered", jobs[0].public_id, NOW)], now=NOW)

    # Still inside the window, or within the grace after it: nothing expires yet.
    assert expire(engine, NOW + timedelta(hours=1)) == 0
    assert expire(engine, WINDOW_END + GRACE - timedelta(seconds=1)) == 0
    assert expire(engine, WINDOW_END + GRACE) == 3
    assert sorted(world.states()) == ["delivered", "expired", "expired", "expired"]
    assert world.tallies()["expired"] == 3
    # Counted once: running again finds nothing.
    assert expire(engine, WINDOW_END + GRACE + timedelta(hours=1)) == 0

    # A delivered status arriving after expiry neither moves nor counts the reminder again.
    late = WINDOW_END + timedelta(hours=2)
    with session_scope(engine) as s:
        moves = lifecycle.apply_statuses(
            s,
            [status("delivered", jobs[1].public_id, late), status("read", jobs[2].public_id, late)],
            now=late,
        )
    assert (moves.applied, moves.unchanged) == (0, 2)
    assert sorted(world.states()) == ["delivered", "expired", "expired", "expired"]
    tallies = world.tallies()
    assert (tallies["expired"], tallies["delivered"], tallies["accepted"]) == (3, 1, 4)


def test_expiry_follows_the_window_of_the_opd_zone_and_the_campaign(
    engine: Engine, vault: PhoneVault, settings: Settings
) -> None:
    make_world(engine, vault, people=1, send_end=datetime(2000, 1, 1, 12, 0).time())
    accept_all(engine, vault, settings)
    noon_wib = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    assert expire(engine, noon_wib + GRACE - timedelta(seconds=1)) == 0
    assert expire(engine, noon_wib + GRACE) == 1


def test_the_worker_sends_nothing_when_too_little_of_the_window_is_left(
    engine: Engine, vault: PhoneVault, settings: Settings
) -> None:
    world = make_world(engine, vault, people=2)
    ten_to_three = WINDOW_END - timedelta(minutes=10)  # 14:50 WIB, margin 15 minutes
    assert claim_all(engine, vault, settings, ten_to_three) == []
    assert world.states() == ["queued", "queued"]
    next_morning = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)  # Wednesday 08:00 WIB
    assert {d.next_attempt_at for d in world.deliveries()} == {next_morning}
    with Session(engine) as s:
        campaign = s.get(Campaign, world.campaign_id)
        assert campaign is not None
        policy = policy_for(campaign)
    reason = closed_reason(policy, "Asia/Jakarta", ten_to_three)
    assert reason == "outside_send_window: sends only 08:00-14:45 local"
    assert closed_reason(policy, "Asia/Jakarta", WINDOW_END - timedelta(minutes=16)) is None
    assert window_end(policy, "Asia/Jakarta", NOW) == WINDOW_END


def test_only_accepted_deliveries_may_expire_and_expired_ones_stay() -> None:
    lifecycle.require("accepted", "expired")
    lifecycle.require("expired", None)
    for after in ("delivered", "failed", "accepted", "queued"):
        with pytest.raises(ForbiddenTransition):
            lifecycle.require("expired", after)
    for before in ("queued", "sending", "delivered", "failed", "skipped", "unknown"):
        with pytest.raises(ForbiddenTransition):
            lifecycle.require(before, "expired")
