"""The fake records when send requests arrive, for per-second throughput checks."""

from __future__ import annotations

from app.sandbox.arrivals import Arrivals


def test_arrivals_give_the_busiest_second_and_times_from_the_first() -> None:
    now = [100.0]
    arrivals = Arrivals(clock=lambda: now[0])
    for at in (100.0, 100.4, 100.9, 101.2, 101.3, 103.0):
        now[0] = at
        arrivals.record()
    summary = arrivals.summary()
    assert summary["busiest_second"] == 4  # 100.4 … 101.3
    assert summary["span_seconds"] == 3.0
    assert summary["times"] == [0.0, 0.4, 0.9, 1.2, 1.3, 3.0]
    arrivals.clear()
    assert arrivals.summary() == {"busiest_second": 0, "span_seconds": 0.0, "times": []}
