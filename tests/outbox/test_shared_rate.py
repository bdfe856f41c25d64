"""One send rate for the number, shared by every worker process through PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.config import get_settings
from app.db import session_scope
from app.outbox import sending_rate


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
def test_reserved_slots_never_overlap(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the shared pace lives in PostgreSQL")
    ends = []
    for _ in range(3):
        with session_scope(engine) as s:
            ends.append(sending_rate.reserve_slots(s, sender="n1", count=10, rate=100.0))
    # Each grant is 0.1 s of the number's sending and starts where the previous one ended.
    assert 0 < ends[0] <= 0.1
    assert ends[1] - ends[0] == pytest.approx(0.1, abs=0.02)
    assert ends[2] - ends[1] == pytest.approx(0.1, abs=0.02)
    with session_scope(engine) as s:  # another number has its own slots
        assert sending_rate.reserve_slots(s, sender="n2", count=10, rate=100.0) <= 0.1
