"""The phone number's send rate, shared by every worker process.

Meta counts throughput per phone number (80 messages/s by default, 20 for a coexistence number,
up to 1,000) in one-second windows, however many workers send. `per_number_rate` is the one
place that decides the rate.

Every send gets a *slot*: a moment of its own, `1 / rate` after the previous slot of the number.
On PostgreSQL `SharedPace` reserves them from the number's row in `send_pace` with one atomic
`UPDATE … RETURNING` (`reserve_slots`): a slot given to one worker is never given to another, so
correctness does not depend on any worker reading a fresh value. A send leaves at its slot or
not at all:

- a slot is handed out a lead early, so that the delivery can be marked `sending` before its
  moment (the lead follows how long that takes), and the request then waits for the moment;
- a slot missed by more than LATE_SECONDS (a busy event loop, a slow mark) is dropped and the
  send takes the next one, so late sends never bunch up with on-time ones;
- on SQLite only this process sends (`Pace`): the send is handed a *planned* moment a lead
  early, but its slot is fixed only once it is marked (the planned moment, or the next free
  one if the mark took longer). A mark that waited behind an import batch delays its send
  instead of wasting a slot, so the pace stays full while an import commits batch by batch;
- slot times are the database's clock, converted with an offset measured on the least delayed
  round trip (error at most half of it), never by when an answer happened to arrive;
- a worker asks for more slots only while those it holds end less than its lead +
  SLICE_SECONDS from now (0.2 s usually, 2.1 s at most), so a dead worker's reservations cost
  the others at most that much of the number's sending, once.

So N workers together never send faster than the rate, give or take LATE_SECONDS and the
clock-offset error per send, and while they have work and keep time they use every slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from app.config import Settings
from app.sender import service as sender_service

logger = logging.getLogger(__name__)

# One grant covers about this much of the number's sending: few round trips even at 1,000/s.
SLICE_SECONDS = 0.1
# A slot is handed out at least this early (the lead): time to mark the delivery `sending`
# before its moment. The lead follows how long marking takes (x LEAD_MARGIN), up to
# MAX_LEAD_SECONDS: a slow commit costs a missed slot (on SQLite: a delay) once, then the lead
# covers it.
LEAD_SECONDS = 0.1
MAX_LEAD_SECONDS = 2.0
LEAD_MARGIN = 1.5
LEAD_SHRINK = 0.005  # share of the excess lead given up per send
# A slot missed by more than this is dropped rather than used late: late sends would bunch up
# with the on-time ones in one second, which is how Meta counts. Sends at most this late put
# at most rate x (1 + LATE_SECONDS) + 1 messages in any second: inside Meta's +5 %.
LATE_SECONDS = 0.04
RETRY_SECONDS = 0.5
# How fast the worker's clock may drift from the database's (seconds per second): an old
# offset measurement counts as that much less exact.
DRIFT = 5e-4

Wanted = Callable[[], bool]


@dataclass(frozen=True)
class Slot:
    """One send's moment (this process's monotonic clock) and when it was handed out."""

    moment: float
    handed_at: float


def per_number_rate(session: Session, *, settings: Settings) -> float:
    """Messages per second the number may send, all workers together; 0 means no limit.

    The number's throughput as Meta last said it (`app.sender`: 80/s, 1,000/s after an
    upgrade, 20/s for a coexistence number), unless the operator's SPI_THROUGHPUT_PER_SECOND or
    SPI_SEND_RATE_PER_SECOND is lower. Until Meta has said it, only those two apply.
    """
    live = sender_service.known_throughput_per_second(session)
    configured = (live, settings.throughput_per_second, settings.send_rate_per_second)
    limits = [r for r in configured if r is not None and r > 0]
    return min(limits, default=0.0)


@dataclass(frozen=True)
class Grant:
    """Slots reserved in one round trip, on the database's clock (epoch seconds)."""

    first_at: float  # the first slot; the others follow 1 / rate apart
    db_now: float  # the database's clock when it granted them


_RESERVE = text(
    """
    INSERT INTO send_pace (sender, next_at)
    VALUES (:sender, extract(epoch FROM clock_timestamp()) + :lead + :span)
    ON CONFLICT (sender) DO UPDATE
    SET next_at = greatest(send_pace.next_at, extract(epoch FROM clock_timestamp()) + :lead)
        + :span
    RETURNING next_at - :span, extract(epoch FROM clock_timestamp())
    """
)


def reserve_slots(
    session: Session, *, sender: str, count: int, rate: float, lead: float = LEAD_SECONDS
) -> Grant:
    """Reserve the number's next `count` send slots, `1 / rate` apart (PostgreSQL).

    They start where the last reservation of any worker ended, and no sooner than `lead`
    seconds from now; nobody else gets any of them.
    """
    row = session.execute(_RESERVE, {"sender": sender, "span": count / rate, "lead": lead}).one()
    return Grant(first_at=float(row[0]), db_now=float(row[1]))


class Pace:
    """Send slots `1 / rate` apart for this process alone; rate 0 does not space sends.

    `slot()` hands out a planned moment `lead` seconds before it; `keep()` fixes the slot once
    the send is ready (no earlier than planned) and waits for it.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._planned = 0.0  # the next send's planned moment: its mark starts a lead before
        self._next = 0.0  # the next moment no send has been given (sends are 1 / rate apart)
        self.lead = LEAD_SECONDS
        self.missed = 0  # slots dropped because their send came too late for them
        self.grants = 0  # database round trips for slots (SharedPace), for logs and benchmarks

    def describe(self) -> str:
        """Figures for the worker's closing log line."""
        return f"grants={self.grants} missed={self.missed} lead={self.lead:.2f}"

    def set_rate(self, rate: float) -> None:
        """Follow a new rate from the next slot on."""
        self.rate = rate

    async def slot(self, still_wanted: Wanted) -> Slot | None:
        """This send's slot, handed out `lead` ahead; None if no longer wanted."""
        if self.rate <= 0:
            now = self._clock()
            return Slot(now, now) if still_wanted() else None
        now = self._clock()
        moment = max(self._planned, now + self.lead)
        self._planned = moment + 1 / self.rate
        return await self._lead_to(moment, still_wanted)

    async def keep(self, slot: Slot, still_wanted: Wanted) -> bool:
        """Wait for the send's moment, or a later one's if it was missed; False if unwanted."""
        if self.rate <= 0:
            return still_wanted()
        self._follow(self._clock() - slot.handed_at)
        moment: float | None = self._fix(slot.moment)
        while moment is not None and still_wanted():
            late = self._clock() - moment
            if late < 0:
                await asyncio.sleep(-late)
                continue  # checked again: a busy event loop may wake it late
            if late <= LATE_SECONDS:
                return True
            self.missed += 1
            moment = await self._replace(still_wanted)
        return False

    async def wait(self, still_wanted: Wanted) -> bool:
        """Wait for a slot and its moment; False if still_wanted() said no first."""
        slot = await self.slot(still_wanted)
        return slot is not None and await self.keep(slot, still_wanted)

    def _fix(self, planned: float) -> float:
        """The send's moment, fixed once it is ready: its planned one or the next free one.

        Only this process sends, so a moment is given out for good only here, after the mark:
        a slow mark delays its send but leaves no moment unused while others are ready.
        """
        moment = max(self._next, planned, self._clock())
        self._next = moment + 1 / self.rate
        # Marks run a lead ahead of the sends, not of a plan the sends have fallen behind.
        self._planned = max(self._planned, self._next)
        return moment

    async def _replace(self, still_wanted: Wanted) -> float | None:
        """A moment for a send that missed its own (its event loop woke it too late)."""
        del still_wanted  # checked by keep() before the moment is used
        return self._fix(self._clock())

    def _follow(self, preparation: float) -> None:
        """Adapt the lead to how long this send's preparation took (grow at once, shrink slowly)."""
        wanted = min(MAX_LEAD_SECONDS, LEAD_MARGIN * preparation)
        if wanted > self.lead:
            self.lead = wanted
        else:
            self.lead = max(LEAD_SECONDS, self.lead - (self.lead - wanted) * LEAD_SHRINK)

    async def _lead_to(self, moment: float, still_wanted: Wanted) -> Slot | None:
        early = moment - self.lead - self._clock()
        if early > 0:
            await asyncio.sleep(early)
        return Slot(moment, self._clock()) if still_wanted() else None


Reserve = Callable[[int, float, float], Awaitable[Grant]]


class SharedPace(Pace):
    """Send slots reserved from the database, shared by every worker of the number."""

    def __init__(
        self, rate: float, *, reserve: Reserve, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(rate, clock=clock)
        self._reserve = reserve
        self._slots: deque[float] = deque()  # reserved moments, on this process's clock
        self._granting: asyncio.Task[None] | None = None
        self._turn = asyncio.Lock()
        # database clock - this clock, its error bound, and when it was measured
        self._offset = 0.0
        self._offset_error = math.inf
        self._offset_at = 0.0

    @property
    def grant_size(self) -> int:
        """Slots asked for at once: about SLICE_SECONDS of the number's sending."""
        return max(1, math.ceil(self.rate * SLICE_SECONDS))

    async def slot(self, still_wanted: Wanted) -> Slot | None:
        """The next slot reserved for this worker, `lead` ahead; None if no longer wanted."""
        if self.rate <= 0:
            return await super().slot(still_wanted)
        moment = await self._take(still_wanted)
        return None if moment is None else await self._lead_to(moment, still_wanted)

    async def _take(self, still_wanted: Wanted) -> float | None:
        # One send at a time waits for a grant, the others queue behind it in order: hundreds
        # of sends all woken by every grant (ten times a second) made the event loop late
        # enough to bunch sends at the fake.
        async with self._turn:
            while still_wanted():
                if self._running_low():
                    self._grant()  # the next grant is asked for while this one is used
                if not self._slots:
                    await asyncio.shield(self._grant())
                    continue
                moment = self._slots.popleft()
                if moment < self._clock() - LATE_SECONDS:
                    self.missed += 1
                    continue
                return moment
        return None

    def _fix(self, planned: float) -> float:
        return planned  # reserved in the database: another worker may hold the next one

    async def _replace(self, still_wanted: Wanted) -> float | None:
        again = await self.slot(still_wanted)
        return None if again is None else again.moment

    def _running_low(self) -> bool:
        """Whether the slots held end less than lead + SLICE_SECONDS from now (the look-ahead)."""
        horizon = self._clock() + self.lead + SLICE_SECONDS
        return not self._slots or self._slots[-1] < horizon

    def _grant(self) -> asyncio.Task[None]:
        if self._granting is None or self._granting.done():
            self._granting = asyncio.create_task(self._fetch(), name="send-pace-grant")
        return self._granting

    async def _fetch(self) -> None:
        rate, count = self.rate, self.grant_size
        asked = self._clock()
        try:
            grant = await self._reserve(count, rate, self.lead)
        except Exception as exc:
            logger.warning("outbox.pace_grant_failed error=%s", type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)
            return
        answered = self._clock()
        self.grants += 1
        self._measure_offset(grant.db_now, asked, answered)
        first = grant.first_at - self._offset
        self._slots.extend(first + n / rate for n in range(count))

    def _measure_offset(self, db_now: float, asked: float, answered: float) -> None:
        """Keep the offset whose error bound (half the round trip, plus drift) is smallest."""
        error = (answered - asked) / 2
        aged = self._offset_error + (answered - self._offset_at) * DRIFT
        if error <= aged:
            self._offset = db_now - (asked + answered) / 2
            self._offset_error = error
            self._offset_at = answered
