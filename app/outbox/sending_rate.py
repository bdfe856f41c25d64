"""The phone number's send rate, shared by every worker process.

Meta counts throughput per phone number (80 messages/s by default, 20 for a coexistence number,
up to 1,000), however many workers send. `per_number_rate` is the one place that decides the
rate. `Pace` spaces one process's sends at it; on PostgreSQL `SharedPace` takes its send times
from the number's row in `send_pace`, which every worker reserves from in small grants (one
`INSERT … ON CONFLICT … RETURNING` per tenth of a second of the number's sending), so N
workers together stay within the rate.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlmodel import Session

from app.config import Settings
from app.sender import service as sender_service

logger = logging.getLogger(__name__)

# One grant covers about this much of the number's sending: few round trips even at 1,000/s.
SLICE_SECONDS = 0.1
# A slot missed by more than this is dropped rather than used late: late sends would bunch up
# with the on-time ones in one second, which is how Meta counts.
LATE_SECONDS = 0.02
RETRY_SECONDS = 0.5


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


_RESERVE = text(
    """
    INSERT INTO send_pace (sender, next_at)
    VALUES (:sender, extract(epoch FROM clock_timestamp()) + :span)
    ON CONFLICT (sender) DO UPDATE
    SET next_at = greatest(send_pace.next_at, extract(epoch FROM clock_timestamp())) + :span
    RETURNING next_at - extract(epoch FROM clock_timestamp())
    """
)


def reserve_slots(session: Session, *, sender: str, count: int, rate: float) -> float:
    """Reserve the number's next `count` send slots (PostgreSQL); seconds until they end.

    The slots are the last `count / rate` seconds before that end, `1 / rate` apart; no other
    worker gets any of them. Times are the database's, so workers' clocks need not agree.
    """
    answer = session.execute(_RESERVE, {"sender": sender, "span": count / rate}).scalar_one()
    return float(answer)


class Pace:
    """Spaces this process's sends `1 / rate` apart; rate 0 does not space them."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._next = 0.0

    def set_rate(self, rate: float) -> None:
        """Follow a new rate from the next send on."""
        self.rate = rate

    async def wait(self, still_wanted: Callable[[], bool]) -> bool:
        """Wait for this send's slot; False if still_wanted() said no first."""
        if self.rate <= 0:
            return still_wanted()
        now = self._clock()
        slot = max(self._next, now)
        self._next = slot + 1 / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)
        return still_wanted()


Reserve = Callable[[int, float], Awaitable[float]]


class SharedPace(Pace):
    """Send slots granted by the database, shared by every worker of the number."""

    def __init__(
        self, rate: float, *, reserve: Reserve, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(rate, clock=clock)
        self._reserve = reserve
        self._slots: deque[float] = deque()
        self._granting: asyncio.Task[None] | None = None
        self.grants = 0  # round trips made, for logs and benchmarks
        self.missed = 0  # slots dropped because this worker came too late for them

    @property
    def grant_size(self) -> int:
        """Slots asked for at once: about SLICE_SECONDS of the number's sending."""
        return max(1, math.ceil(self.rate * SLICE_SECONDS))

    async def wait(self, still_wanted: Callable[[], bool]) -> bool:
        """Wait for the next slot granted to this worker; False if no longer wanted."""
        if self.rate <= 0:
            return still_wanted()
        while still_wanted():
            if not self._slots:
                await asyncio.shield(self._grant())
                continue
            slot = self._slots.popleft()
            now = self._clock()
            if slot < now - LATE_SECONDS:
                self.missed += 1
                continue
            if len(self._slots) < self.grant_size // 2:
                self._grant()  # ask for the next grant while this one is used
            if slot > now:
                await asyncio.sleep(slot - now)
            return still_wanted()
        return False

    def _grant(self) -> asyncio.Task[None]:
        if self._granting is None or self._granting.done():
            self._granting = asyncio.create_task(self._fetch(), name="send-pace-grant")
        return self._granting

    async def _fetch(self) -> None:
        rate, count = self.rate, self.grant_size
        try:
            ends_in = await self._reserve(count, rate)
        except Exception as exc:
            logger.warning("outbox.pace_grant_failed error=%s", type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)
            return
        self.grants += 1
        end = self._clock() + ends_in
        start = end - count / rate
        self._slots.extend(start + n / rate for n in range(count))
