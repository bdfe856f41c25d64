"""Failed logins slow the next attempt down, per username, for known and unknown names alike."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.auth import throttle, users
from app.auth.models import LoginThrottle, Role
from app.db import session_scope
from tests.auth.helpers import add_user

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_the_delay_doubles_after_the_free_failures_up_to_a_cap() -> None:
    assert [throttle.delay_after(n) for n in range(throttle.FREE_FAILURES)] == [
        timedelta(0)
    ] * throttle.FREE_FAILURES
    assert throttle.delay_after(5) == timedelta(seconds=30)
    assert throttle.delay_after(6) == timedelta(seconds=60)
    assert throttle.delay_after(7) == timedelta(seconds=120)
    assert throttle.delay_after(12) == throttle.MAX_DELAY
    assert throttle.delay_after(1000) == throttle.MAX_DELAY


def fail(session: Session, username: str, times: int, now: datetime = NOW) -> None:
    for _ in range(times):
        throttle.record_failure(session, username=username, now=now)


def test_waiting_starts_at_the_fifth_failure_and_ends_on_time(session: Session) -> None:
    fail(session, "budi", 4)
    assert throttle.wait_seconds(session, username="budi", now=NOW) == 0
    fail(session, "budi", 1)
    assert throttle.wait_seconds(session, username="budi", now=NOW) == 30
    assert throttle.wait_seconds(session, username="BUDI ", now=NOW) == 30  # same person
    assert throttle.wait_seconds(session, username="siti", now=NOW) == 0  # others unaffected
    later = NOW + timedelta(seconds=30)
    assert throttle.wait_seconds(session, username="budi", now=later) == 0


def test_old_failures_are_forgotten(session: Session) -> None:
    fail(session, "budi", 5)
    much_later = NOW + throttle.FORGET_AFTER + timedelta(minutes=1)
    fail(session, "budi", 1, now=much_later)
    assert throttle.wait_seconds(session, username="budi", now=much_later) == 0


def test_the_table_holds_no_usernames(session: Session) -> None:
    fail(session, "budi.dinkes", 1)
    row = session.get(LoginThrottle, throttle.key_for("budi.dinkes"))
    assert row is not None
    assert "budi" not in row.key_hash


def test_during_the_wait_even_the_right_password_is_refused(engine: Engine) -> None:
    who = add_user(engine, Role.inspectorate, username="budi.inspektorat")
    for _ in range(throttle.FREE_FAILURES):
        with session_scope(engine) as s, pytest.raises(users.LoginRefused) as refused:
            users.check_password(s, username=who.username, password="salah sekali")
        assert refused.value.wait_seconds == 0
    with session_scope(engine) as s, pytest.raises(users.LoginRefused) as refused:
        users.check_password(s, username=who.username, password=who.password)
    assert 0 < refused.value.wait_seconds <= 30


def test_unknown_usernames_are_throttled_the_same_way(engine: Engine) -> None:
    for _ in range(throttle.FREE_FAILURES):
        with session_scope(engine) as s, pytest.raises(users.LoginRefused):
            users.check_password(s, username="tidak.ada", password="apa saja")
    with session_scope(engine) as s, pytest.raises(users.LoginRefused) as refused:
        users.check_password(s, username="tidak.ada", password="apa saja")
    assert refused.value.wait_seconds > 0


def test_a_successful_login_forgets_the_failures(engine: Engine) -> None:
    who = add_user(engine, Role.inspectorate)
    with session_scope(engine) as s:
        fail(s, who.username, 4, now=datetime.now(UTC))
    with session_scope(engine) as s:
        user = users.check_password(s, username=who.username, password=who.password)
        users.logged_in(s, user=user)
    with session_scope(engine) as s:
        assert s.get(LoginThrottle, throttle.key_for(who.username)) is None
