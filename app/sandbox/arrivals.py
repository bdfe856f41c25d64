"""When send requests reached the fake: Meta counts a number's throughput per second."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

# Enough for a benchmark round; older arrivals are forgotten so `serve` stays small.
KEEP = 200_000


def busiest_second(times: Sequence[float]) -> int:
    """The most arrivals in any one-second window [t, t + 1) of sorted `times`."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


class Arrivals:
    """Arrival times of send requests (monotonic seconds), the last KEEP of them."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._times: deque[float] = deque(maxlen=KEEP)

    def record(self) -> None:
        """One send request arrived now."""
        self._times.append(self._clock())

    def clear(self) -> None:
        """Forget every arrival."""
        self._times.clear()

    def summary(self) -> dict[str, object]:
        """The busiest second, the span, and every time counted from the first."""
        times = list(self._times)
        return {
            "busiest_second": busiest_second(times),
            "span_seconds": times[-1] - times[0] if times else 0.0,
            "times": [round(t - times[0], 6) for t in times],
        }
