"""The worker against the in-process sandbox: claims, re-checks, leases, throttling, stop."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col

from app.campaigns.models import Campaign, CampaignState
from app.config import Settings
from app.db import session_scope
from app.enrolment.models import Enrolment, EnrolmentStatus, Suppression
from app.messaging import runtime
from app.messaging.results import SendOutcome, SendResult
from app.outbox import claim, lifecycle, queries, record
from app.outbox.models import Delivery, DeliveryState
from app.outbox.worker import OutboxWorker, WorkerConfig
from app.sandbox import connect as sandbox_connect
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault
from tests.outbox.conftest import NOW, Clock, Rig, World, make_world

pytestmark = pytest.mark.usefixtures("no_rate_limit")


def test_round_is_sent_once_per_person(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    world = make_world(engine, vault, people=20)
    rig.config = WorkerConfig(batch_size=7, poll_seconds=0.05)
    assert rig.batches(5) == [7, 7, 6, 0, 0]
    assert world.states() == [DeliveryState.accepted] * 20
    assert sandbox.accepted == 20
    assert sandbox.stats()["max_per_callback"] == 1
    assert sandbox.stats()["max_per_recipient"] == 1
    assert set(sandbox.by_recipient) == set(world.phones)
    with session_scope(engine) as s:
        counts = queries.outbox_counts(s, campaign_id=world.campaign_id)
    assert counts["sent"] == counts["total"] == 20
    assert world.tallies() == {"scheduled": 20, "accepted": 20}


@pytest.mark.parametrize("source", ["stop", "erase"])
def test_stop_committed_after_round_creation_prevents_the_send(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph, source: str
) -> None:
    world = make_world(engine, vault, people=3)
    stopped = world.phones[1]
    # The STOP commits after the round was created and before any worker claims it.
    with session_scope(engine) as s:
        s.add(Suppression(phone_index=vault.blind_index(stopped), source=source))
    rig.batches(1)
    assert stopped not in sandbox.by_recipient
    assert sandbox.accepted == 2
    states = {d.enrolment_id: (d.state, d.error_class) for d in world.deliveries()}
    assert sorted(states.values()) == [
        ("accepted", None),
        ("accepted", None),
        ("skipped", "suppressed"),
    ]
    assert world.tallies() == {"scheduled": 3, "accepted": 2, "skipped": 1}


def test_people_no_longer_enrolled_are_skipped(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    status = EnrolmentStatus.withdrawn
    world = make_world(engine, vault, people=2)
    with session_scope(engine) as s:
        s.execute(
            update(Enrolment)
            .where(col(Enrolment.phone_index) == vault.blind_index(world.phones[0]))
            .values(status=status)
        )
    rig.batches(1)
    assert list(sandbox.by_recipient) == [world.phones[1]]
    assert sorted((d.state, d.error_class) for d in world.deliveries()) == [
        ("accepted", None),
        ("skipped", "not_enrolled"),
    ]


def _set_campaign_state(engine: Engine, campaign_id: int, state: str) -> None:
    with session_scope(engine) as s:
        s.execute(update(Campaign).where(col(Campaign.id) == campaign_id).values(state=state))


def test_paused_campaign_keeps_its_deliveries_queued(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    world = make_world(engine, vault, people=2)
    _set_campaign_state(engine, world.campaign_id, CampaignState.paused)
    assert rig.batches(1) == [0]
    assert sandbox.requests == 0
    assert world.states() == [DeliveryState.queued] * 2


def test_finished_campaign_skips_what_is_left(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    world = make_world(engine, vault, people=2)
    _set_campaign_state(engine, world.campaign_id, CampaignState.finished)
    rig.batches(1)
    assert sandbox.requests == 0
    assert {(d.state, d.error_class) for d in world.deliveries()} == {
        ("skipped", "campaign_finished")
    }
    assert world.tallies() == {"scheduled": 2, "skipped": 2}


def test_outside_the_send_window_waits_for_the_next_opening(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    world = make_world(engine, vault, people=2)
    # Tuesday 16:00 in Jakarta, a worker far behind: past the 15:00 end of the window.
    rig.clock.now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert rig.batches(1) == [0]
    assert sandbox.requests == 0
    deliveries = world.deliveries()
    assert {d.state for d in deliveries} == {DeliveryState.queued}
    # Wednesday 08:00 WIB.
    assert {d.next_attempt_at for d in deliveries} == {datetime(2026, 3, 11, 1, 0, tzinfo=UTC)}
    rig.clock.now = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)
    rig.batches(1)
    assert world.states() == [DeliveryState.accepted] * 2


def test_no_opening_left_skips(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    world = make_world(engine, vault, people=1)
    rig.clock.now = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)  # the campaign ended 30 April
    rig.batches(1)
    assert sandbox.requests == 0
    assert [(d.state, d.error_class) for d in world.deliveries()] == [("skipped", "window_closed")]


def _reserve(
    engine: Engine, vault: PhoneVault, settings: Settings, *, worker: str, limit: int, mark: int
) -> list[claim.Job]:
    """Claim `limit` deliveries for `worker` and mark the first `mark` as about to be sent."""
    with session_scope(engine) as s:
        jobs, _ = claim.claim_batch(
            s,
            worker_id=worker,
            now=NOW,
            limit=limit,
            lease_seconds=30,
            vault=vault,
            settings=settings,
        )
    with session_scope(engine) as s:
        marked = claim.start_sending(
            s,
            worker_id=worker,
            delivery_ids=[j.delivery_id for j in jobs[:mark]],
            now=NOW,
            lease_seconds=30,
        )
    assert marked == {j.delivery_id for j in jobs[:mark]}
    return jobs


def test_a_dead_worker_costs_only_what_it_was_sending(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    world = make_world(engine, vault, people=4)
    # The dead worker reserved three and was about to send one of them when it died.
    jobs = _reserve(engine, vault, rig.settings, worker="dead-worker", limit=3, mark=1)
    assert sorted(world.states()) == ["queued", "queued", "queued", "sending"]
    rig.clock.advance(10)  # its lease still runs: the live worker takes only the fourth
    assert rig.batches(1) == [1]
    rig.clock.advance(30)  # lapsed: the one it was sending is unknown, the rest is sent
    assert rig.batches(1) == [2]
    assert sandbox.accepted == 3
    assert sandbox.stats()["max_per_callback"] == 1
    states = {d.public_id: d.state for d in world.deliveries()}
    assert states[jobs[0].public_id] == "unknown"
    assert sorted(states.values()) == ["accepted", "accepted", "accepted", "unknown"]
    assert {d.error_class for d in world.deliveries() if d.state == "unknown"} == {"lease_expired"}
    assert world.tallies() == {"scheduled": 4, "accepted": 3, "unknown": 1}


def test_a_reservation_taken_over_is_never_sent_by_its_first_worker(
    engine: Engine, vault: PhoneVault, settings: Settings, world: World
) -> None:
    jobs = _reserve(engine, vault, settings, worker="slow", limit=3, mark=0)
    later = NOW + timedelta(seconds=31)
    with session_scope(engine) as s:
        taken, _ = claim.claim_batch(
            s,
            worker_id="fast",
            now=later,
            limit=3,
            lease_seconds=30,
            vault=vault,
            settings=settings,
        )
    assert {j.delivery_id for j in taken} == {j.delivery_id for j in jobs}
    with session_scope(engine) as s:
        ids = [j.delivery_id for j in jobs]
        assert (
            claim.start_sending(s, worker_id="slow", delivery_ids=ids, now=later, lease_seconds=30)
            == set()
        )
        lifecycle.release_reservations(s, worker_id="slow", ids=ids, now=later)
    assert {d.claimed_by for d in world.deliveries()} == {"fast"}
    assert world.states() == [DeliveryState.queued] * 3


def test_outcome_of_a_lost_lease_is_not_recorded(
    engine: Engine, vault: PhoneVault, settings: Settings, world: World
) -> None:
    jobs = _reserve(engine, vault, settings, worker="slow", limit=10, mark=10)
    with session_scope(engine) as s:
        assert lifecycle.recover_expired_leases(s, now=NOW + timedelta(seconds=31)) == 3
    accepted = SendResult(SendOutcome.ACCEPTED, "accepted", wamid="wamid.late")
    with session_scope(engine) as s:
        summary = record.record_batch(
            s,
            worker_id="slow",
            outcomes=[record.Outcome(j, accepted) for j in jobs],
            now=NOW + timedelta(seconds=32),
            max_attempts=3,
        )
    assert summary.counts["settled_elsewhere"] == 3
    assert world.states() == [DeliveryState.unknown] * 3
    assert world.tallies() == {"scheduled": 3, "unknown": 3}


def test_throttled_burst_is_sent_later_once_and_nothing_fails(
    engine: Engine,
    vault: PhoneVault,
    rig: Rig,
    sandbox: SandboxGraph,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "THROTTLE_HOLD_SECONDS", 0.01)
    world = make_world(engine, vault, people=6)
    sandbox.faults.throttle_burst = 4
    rig.batches(4, advance=5)
    assert world.states() == [DeliveryState.accepted] * 6
    assert sandbox.rejected["throttled"] == 4
    assert sandbox.accepted == 6
    assert sandbox.stats()["max_per_callback"] == 1
    tallies = world.tallies()
    assert tallies["accepted"] == 6
    assert tallies["retried"] >= 4
    assert not any(k.startswith("failed") for k in tallies)


def test_outbox_counts_per_campaign_and_in_total(engine: Engine, world: World) -> None:
    ids = [d.id for d in world.deliveries()]
    with session_scope(engine) as s:
        s.execute(
            update(Delivery).where(col(Delivery.id) == ids[0]).values(state="queued", attempts=2)
        )
        s.execute(update(Delivery).where(col(Delivery.id) == ids[1]).values(state="delivered"))
        s.execute(update(Delivery).where(col(Delivery.id) == ids[2]).values(state="unknown"))
    with session_scope(engine) as s:
        mine = queries.outbox_counts(s, campaign_id=world.campaign_id)
        everything = queries.outbox_counts(s)
        other = queries.outbox_counts(s, campaign_id=world.campaign_id + 1)
    assert mine == everything
    assert mine["retrying"] == 1
    assert mine["queued"] == 0
    assert (mine["sent"], mine["delivered"], mine["unknown"], mine["total"]) == (1, 1, 1, 3)
    assert set(other.values()) == {0}


def test_stop_finishes_in_flight_sends_and_requeues_the_rest(
    engine: Engine,
    vault: PhoneVault,
    settings: Settings,
    clock: Clock,
    sandbox: SandboxGraph,
) -> None:
    world = make_world(engine, vault, people=12)
    sandbox.faults.latency_ms = 150

    async def main() -> None:
        messenger = await sandbox_connect.open_in_process(settings, sandbox=sandbox)
        messenger.concurrency = 2
        worker = OutboxWorker(
            engine=engine,
            settings=settings,
            messenger=messenger,
            vault=vault,
            config=WorkerConfig(batch_size=4, poll_seconds=0.05),
            clock=clock,
        )
        task = asyncio.create_task(worker.run())
        deadline = asyncio.get_running_loop().time() + 30
        while sandbox.accepted < 3:
            if task.done():
                task.result()  # the worker's own error, rather than waiting for ever
            assert asyncio.get_running_loop().time() < deadline, "no send accepted in 30 s"
            await asyncio.sleep(0.02)
        worker.stop()
        await asyncio.wait_for(task, timeout=10)
        await messenger.aclose()

    asyncio.run(main())
    states = world.states()
    assert DeliveryState.sending not in states
    assert states.count(DeliveryState.accepted) == sandbox.accepted
    assert states.count(DeliveryState.queued) == 12 - sandbox.accepted
    assert sandbox.accepted < 12
    assert all(d.claimed_by is None for d in world.deliveries())


def test_a_campaign_whose_template_cannot_be_filled_is_paused(
    engine: Engine, vault: PhoneVault, rig: Rig, sandbox: SandboxGraph
) -> None:
    world = make_world(engine, vault, people=2)
    rig.settings = rig.settings.model_copy(update={"institution_name": " "})
    assert rig.batches(1) == [0]
    assert sandbox.requests == 0
    assert world.states() == [DeliveryState.queued] * 2
    with session_scope(engine) as s:
        campaign = s.get(Campaign, world.campaign_id)
        assert campaign is not None
        assert campaign.state == CampaignState.paused
        assert campaign.paused_reason is not None
        assert campaign.paused_reason.startswith("Parameter templat kampanye tidak lengkap")


def test_numbers_never_reach_the_logs(
    engine: Engine,
    vault: PhoneVault,
    rig: Rig,
    sandbox: SandboxGraph,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = make_world(engine, vault, people=4)
    caplog.set_level(logging.DEBUG)
    sandbox.faults.throttle_burst = 1
    rig.batches(1)
    with session_scope(engine) as s:
        jobs, _ = claim.claim_batch(
            s,
            worker_id="w",
            now=NOW + timedelta(hours=1),
            limit=10,
            lease_seconds=30,
            vault=vault,
            settings=rig.settings,
        )
    shown = caplog.text + "".join(repr(j) for j in jobs)
    for phone in world.phones:
        assert phone not in shown
        assert phone[3:] not in shown  # without +62
