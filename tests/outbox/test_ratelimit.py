"""The shared token bucket: rate, burst, hold after throttling, and replies first."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.messaging.ratelimit import TokenBucket


def test_unlimited_never_waits() -> None:
    async def main() -> float:
        bucket = TokenBucket(0)
        start = time.monotonic()
        for _ in range(1000):
            await bucket.acquire()
        return time.monotonic() - start

    assert asyncio.run(main()) < 0.5


def test_rate_is_kept_after_a_small_burst() -> None:
    async def main() -> float:
        bucket = TokenBucket(200)  # burst of 20
        start = time.monotonic()
        for _ in range(80):
            await bucket.acquire()
        return time.monotonic() - start

    # 20 at once, then 60 more at 200/s.
    assert 0.27 <= asyncio.run(main()) <= 0.6


def test_replies_pass_waiting_reminders() -> None:
    async def main() -> list[str]:
        bucket = TokenBucket(20, burst=1)
        await bucket.acquire()
        order: list[str] = []

        async def take(name: str, priority: bool) -> None:
            await bucket.acquire(priority=priority)
            order.append(name)

        reminders = [asyncio.create_task(take(f"r{i}", False)) for i in range(3)]
        await asyncio.sleep(0)
        reply = asyncio.create_task(take("reply", True))
        await asyncio.gather(*reminders, reply)
        return order

    assert asyncio.run(main()) == ["reply", "r0", "r1", "r2"]


@pytest.mark.parametrize("rate", [0, 100])
def test_hold_stops_everyone_for_a_while(rate: float) -> None:
    async def main() -> float:
        bucket = TokenBucket(rate)
        await bucket.acquire()
        bucket.hold(0.3)
        start = time.monotonic()
        await bucket.acquire(priority=True)
        return time.monotonic() - start

    assert 0.28 <= asyncio.run(main()) <= 0.6


def test_a_cancelled_waiter_does_not_lose_a_slot() -> None:
    async def main() -> float:
        bucket = TokenBucket(10, burst=1)
        await bucket.acquire()
        waiter = asyncio.create_task(bucket.acquire())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        start = time.monotonic()
        await bucket.acquire()
        return time.monotonic() - start

    assert asyncio.run(main()) <= 0.15


def test_try_acquire_and_refund() -> None:
    bucket = TokenBucket(1, burst=1)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    bucket.refund()
    assert bucket.try_acquire()
