"""One send rate for the number, shared by every worker process through PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from sqlalchemy import Engine

from app.config import get_settings
from app.db import session_scope
from app.outbox import sending_rate
from app.outbox.sending_rate import LATE_SECONDS, LEAD_SECONDS, Grant, Pace, SharedPace
from app.sandbox.arrivals import busiest_second


def test_the_rate_is_the_lower_of_the_numbers_level_and_the_operators(engine: Engine) -> None:
    # Before Meta has said the number's throughput (app.sender), only the settings apply;
    # tests/outbox/test_rate_follows_sender.py covers the level Meta reports.
    def rate(level: float, operator: float) -> float:
        settings = get_settings().model_copy(
            update={"throughput_per_second": level, "send_rate_per_second": operator}
        )
        with session_scope(engine) as s:
            return sending_rate.per_number_rate(s, settings=settings)

    assert rate(80, 0) == 80
    assert rate(1000, 80) == 80
    assert rate(20, 80) == 20
    assert rate(0, 80) == 80
    assert rate(0, 0) == 0  # no limit known: unlimited (the sandbox, benchmarks)


@pytest.mark.postgres_only
def test_reserved_slots_follow_each_other_and_start_a_lead_ahead(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the shared pace lives in PostgreSQL")
    grants = []
    for _ in range(3):
        with session_scope(engine) as s:
            grants.append(sending_rate.reserve_slots(s, sender="n1", count=100, rate=100.0))
    # The first starts a lead from now; each next one starts where the previous one ended.
    assert grants[0].first_at - grants[0].db_now == pytest.approx(LEAD_SECONDS, abs=0.01)
    assert grants[1].first_at - grants[0].first_at == pytest.approx(1.0)
    assert grants[2].first_at - grants[1].first_at == pytest.approx(1.0)
    with session_scope(engine) as s:  # another number has its own slots
        other = sending_rate.reserve_slots(s, sender="n2", count=100, rate=100.0)
    assert other.first_at < grants[2].first_at


class FakeDatabase:
    """`send_pace` for one number, on a clock 1,000 s ahead of the workers'.

    After the first grant of each worker, half of the answers come back 40 ms late (the
    database read its clock long before the worker sees the answer): a worker that placed its
    slots by when the answer arrived would send them 40 ms late, into another worker's.
    """

    OFFSET = 1000.0

    def __init__(self, rng: random.Random, workers: int) -> None:
        self.next_at = 0.0
        self.rng = rng
        self.fast_calls = workers
        self.granted: list[float] = []  # every slot given out, on the database's clock

    async def reserve(self, count: int, rate: float, lead: float) -> Grant:
        await asyncio.sleep(self.rng.uniform(0, 0.004))
        now = time.monotonic() + self.OFFSET
        first = max(self.next_at, now + lead)
        self.next_at = first + count / rate
        self.granted.extend(first + n / rate for n in range(count))
        self.fast_calls -= 1
        await asyncio.sleep(0.002 if self.fast_calls >= 0 else self.rng.choice([0.0, 0.04]))
        return Grant(first_at=first, db_now=now)


async def _send_all(paces: list[Pace], sends: int) -> list[float]:
    """Each pace sends `sends / len(paces)` messages, 8 at a time; when each one left."""
    left: list[float] = []

    async def one(pace: Pace) -> None:
        slot = await pace.slot(lambda: True)
        assert slot is not None
        await asyncio.sleep(0.01)  # the mark
        assert await pace.keep(slot, lambda: True)
        left.append(time.monotonic())

    async def worker(pace: Pace) -> None:
        for _ in range(sends // len(paces) // 8):
            await asyncio.gather(*(one(pace) for _ in range(8)))

    await asyncio.gather(*(worker(p) for p in paces))
    return sorted(left)


def _each_at_a_slot_of_its_own(left: list[float], slots: list[float], tolerance: float) -> bool:
    """Whether every time in `left` can be given its own slot at most LATE_SECONDS before it."""
    j = 0
    for t in left:
        while j < len(slots) and slots[j] < t - LATE_SECONDS - tolerance:
            j += 1
        if j == len(slots) or slots[j] > t + tolerance:
            return False
        j += 1
    return True


def test_three_shared_paces_take_distinct_slots_and_together_keep_the_rate() -> None:
    rate = 200.0
    database = FakeDatabase(random.Random(13), workers=3)
    paces: list[Pace] = [SharedPace(rate, reserve=database.reserve) for _ in range(3)]
    left = asyncio.run(_send_all(paces, sends=480))
    assert len(left) == 480
    # Every send left at a slot of its own (on the database's clock), never before it and at
    # most LATE_SECONDS after: slots are placed by the measured clock offset, not by when the
    # answer arrived. The tolerance is the offset's error (half the fastest round trip).
    slots = sorted(database.granted)
    in_db_time = [t + FakeDatabase.OFFSET for t in left]
    assert _each_at_a_slot_of_its_own(in_db_time, slots, tolerance=0.004)
    # So no window holds more than its share of slots plus what lateness can shift into it …
    for window in (0.25, 0.5):
        most = max(
            sum(1 for t in left if start <= t < start + window) for start in left[: -int(rate)]
        )
        assert most <= rate * (window + LATE_SECONDS) + 1
    # … and together they used the rate (a few slots are lost at start and end).
    assert len(left) / (left[-1] - left[0]) >= rate * 0.9
    assert sum(p.missed for p in paces) <= len(left) * 0.05


class InstantDatabase:
    """`send_pace` for one number, answering at once on the workers' own clock."""

    def __init__(self) -> None:
        self.next_at = 0.0

    async def reserve(self, count: int, rate: float, lead: float) -> Grant:
        now = time.monotonic()
        first = max(self.next_at, now + lead)
        self.next_at = first + count / rate
        return Grant(first_at=first, db_now=now)


def test_a_missed_shared_slot_is_not_used_late_but_replaced_by_a_later_one() -> None:
    async def scenario() -> tuple[float, float, int]:
        pace = SharedPace(10.0, reserve=InstantDatabase().reserve)
        slot = await pace.slot(lambda: True)
        assert slot is not None
        await asyncio.sleep(slot.moment + 2 * LATE_SECONDS - time.monotonic())  # a slow mark
        assert await pace.keep(slot, lambda: True)
        return slot.moment, time.monotonic(), pace.missed

    moment, left, missed = asyncio.run(scenario())
    assert missed == 1
    assert left >= moment + 1 / 10.0  # the next slot, not the late one


def test_the_lead_grows_to_cover_a_slow_mark_so_later_sends_keep_their_planned_moments() -> None:
    async def scenario() -> tuple[float, float, list[float]]:
        pace = Pace(20.0)
        lateness: list[float] = []  # how long after its planned moment each send left

        async def one() -> None:
            slot = await pace.slot(lambda: True)
            assert slot is not None
            await asyncio.sleep(0.3)  # a slow commit
            assert await pace.keep(slot, lambda: True)
            lateness.append(time.monotonic() - slot.moment)

        await one()
        for _ in range(3):
            await asyncio.gather(*(one() for _ in range(5)))
        return pace.lead, lateness[0], lateness[1:]

    lead, first, later = asyncio.run(scenario())
    assert first >= 0.3 - LEAD_SECONDS - 0.01  # the first was planned only LEAD_SECONDS ahead
    assert lead >= 0.3
    assert max(later) <= LATE_SECONDS  # the lead now covers the mark


def test_marks_waiting_behind_an_import_cost_the_local_pace_no_slot() -> None:
    """SQLite: a mark queued behind an import batch delays its send, the pace stays full."""
    rate, sends = 20.0, 60

    async def scenario() -> tuple[list[float], int]:
        pace = Pace(rate)
        write_lock = asyncio.Lock()  # SQLite's: one writer at a time
        left: list[float] = []

        async def import_batches() -> None:
            await asyncio.sleep(0.5)
            for _ in range(4):
                async with write_lock:
                    await asyncio.sleep(0.4)  # one batch of a slow import
                await asyncio.sleep(0.01)

        async def one() -> None:
            slot = await pace.slot(lambda: True)
            assert slot is not None
            async with write_lock:
                await asyncio.sleep(0.005)  # the mark
            assert await pace.keep(slot, lambda: True)
            left.append(time.monotonic())

        importing = asyncio.create_task(import_batches())
        await asyncio.gather(*(one() for _ in range(sends)))
        await importing
        return sorted(left), pace.missed

    left, missed = asyncio.run(scenario())
    assert missed == 0  # no send came too late for the moment it was given
    assert busiest_second(left) <= rate * (1 + LATE_SECONDS) + 1
    # The sends waited for the import only while it held the lock (1.6 s of the sending's
    # 3 s, less the lead that marks run ahead): a missed slot would cost 1 / rate each.
    assert left[-1] - left[0] <= (sends - 1) / rate + 0.5


def test_the_local_pace_spaces_one_process_sends_at_the_rate() -> None:
    async def scenario() -> list[float]:
        pace = Pace(50.0)
        left: list[float] = []

        async def one() -> None:
            assert await pace.wait(lambda: True)
            left.append(time.monotonic())

        await asyncio.gather(*(one() for _ in range(50)))
        return sorted(left)

    left = asyncio.run(scenario())
    assert busiest_second(left) <= 50
    assert left[-1] - left[0] == pytest.approx(49 / 50.0, abs=0.05)


def test_a_send_no_longer_wanted_gives_its_slot_up() -> None:
    async def scenario() -> float | None:
        return await Pace(10.0).slot(lambda: False)

    assert asyncio.run(scenario()) is None


def test_busiest_second_counts_a_sliding_window() -> None:
    assert busiest_second([]) == 0
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert busiest_second([0.0, 0.9, 1.1, 1.2, 1.8]) == 4


def test_a_grant_wakes_the_next_send_in_line_not_every_waiting_one() -> None:
    """Hundreds of sends wait for slots; each grant must not wake them all (a busy event loop
    sends late, and late sends bunch up at Meta)."""
    rate, sends = 200.0, 300

    async def scenario() -> tuple[int, list[float]]:
        pace = SharedPace(rate, reserve=InstantDatabase().reserve)
        checks = 0
        handed: list[float] = []

        def still_wanted() -> bool:
            nonlocal checks
            checks += 1
            return True

        async def one() -> None:
            slot = await pace.slot(still_wanted)
            assert slot is not None
            handed.append(slot.moment)

        await asyncio.gather(*(one() for _ in range(sends)))
        return checks, handed

    checks, handed = asyncio.run(scenario())
    assert len(set(handed)) == sends  # every send its own slot
    # A waiting send checks whether it is still wanted when its turn comes (and once more
    # before its lead), not once per grant: all woken each time, it was about 10 per send.
    assert checks <= 4 * sends
