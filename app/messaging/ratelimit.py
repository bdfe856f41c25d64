"""Token-bucket send limiter shared by reminders and replies, replies first."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    """`rate` messages per second with a small burst; rate <= 0 means unlimited.

    Waiting replies (priority=True) are served before waiting reminders. `hold()` stops
    everyone for a while, as Meta asks after a throughput error (130429).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = max(0.0, float(rate))
        # A burst of a tenth of a second keeps every one-second window close to `rate`,
        # which is how Meta counts throughput.
        self.burst = max(1.0, burst if burst is not None else self.rate / 10)
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()
        self._held_until = 0.0
        self._waiters: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )
        self._timer: asyncio.TimerHandle | None = None

    def set_rate(self, rate: float) -> None:
        """Follow a new rate (the number's, which the outbox reads); 0 means unlimited."""
        self._refill()
        self.rate = max(0.0, float(rate))
        self.burst = max(1.0, self.rate / 10)
        self._tokens = min(self._tokens, self.burst)

    @property
    def unlimited(self) -> bool:
        """Whether sends are only paced by hold()."""
        return self.rate <= 0

    def hold(self, seconds: float) -> None:
        """Let nothing through for `seconds` (longer holds win)."""
        if seconds <= 0:
            return
        self._held_until = max(self._held_until, self._clock() + seconds)
        if not self.unlimited:
            self._refill()
            self._tokens = min(self._tokens, 0.0)

    def refund(self) -> None:
        """Give back a token that was acquired but not used for a send."""
        if not self.unlimited:
            self._refill()
            self._tokens = min(self.burst, self._tokens + 1)
            self._dispatch()

    def try_acquire(self) -> bool:
        """Take a slot only if one is free now and nobody waits (the fast path)."""
        return not self._waiters[0] and not self._waiters[1] and self._take()

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for a send slot; replies pass waiting reminders."""
        queue = self._waiters[0 if priority else 1]
        nobody_ahead = not self._waiters[0] and (priority or not self._waiters[1])
        if nobody_ahead and self._take():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            if future in queue:
                queue.remove(future)
            elif future.done() and not future.cancelled():
                self.refund()
            raise

    def _refill(self) -> None:
        now = self._clock()
        if not self.unlimited:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def _take(self) -> bool:
        if self._clock() < self._held_until:
            return False
        if self.unlimited:
            return True
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for queue in self._waiters:
            while queue:
                if queue[0].done():  # cancelled while waiting
                    queue.popleft()
                    continue
                if not self._take():
                    self._arm()
                    return
                queue.popleft().set_result(None)

    def _arm(self) -> None:
        now = self._clock()
        wait = max(self._held_until - now, 0.0)
        if not self.unlimited and now >= self._held_until:
            wait = max(wait, (1 - self._tokens) / self.rate)
        self._timer = asyncio.get_running_loop().call_later(max(wait, 0.0005), self._dispatch)
