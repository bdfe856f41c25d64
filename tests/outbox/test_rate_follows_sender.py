"""The send rate follows the throughput Meta reports, unless the operator's is lower."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from app.config import Settings
from app.db import session_scope
from app.outbox import sending_rate
from app.sender import changes

READ_AT = datetime(2026, 3, 2, 1, tzinfo=UTC)


def _meta_says(engine: Engine, level: str, *, coexistence: bool = False, hours: int = 0) -> None:
    with session_scope(engine) as s:
        state = changes.state_row(s, lock=True)
        at = READ_AT + timedelta(hours=hours)
        changes.set_throughput(
            s, state, level=level, coexistence=coexistence, at=at, source="reading"
        )


def _rate(engine: Engine, *, throughput: int = 0, send_rate: float = 0) -> float:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, throughput_per_second=throughput, send_rate_per_second=send_rate
    )
    with session_scope(engine) as s:
        return sending_rate.per_number_rate(s, settings=settings)


def test_the_rate_follows_the_level_meta_reports(engine: Engine) -> None:
    assert _rate(engine) == 0  # nothing known and nothing configured: unlimited
    _meta_says(engine, "STANDARD")
    assert _rate(engine) == 80
    _meta_says(engine, "HIGH", hours=1)  # Meta upgraded the number
    assert _rate(engine) == 1000
    _meta_says(engine, "STANDARD", coexistence=True, hours=2)  # also on the Business app
    assert _rate(engine) == 20


def test_a_lower_operator_rate_wins_and_a_higher_one_does_not_raise_meta_s(
    engine: Engine,
) -> None:
    _meta_says(engine, "HIGH")
    assert _rate(engine, send_rate=80) == 80
    assert _rate(engine, throughput=500) == 500
    assert _rate(engine, send_rate=5000) == 1000
    _meta_says(engine, "STANDARD", coexistence=True, hours=1)
    assert _rate(engine, send_rate=80, throughput=80) == 20
