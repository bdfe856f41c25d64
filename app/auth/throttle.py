"""Slow-down after repeated failed logins, per username, shared by every replica through the DB.

The first few failures cost nothing; after that each further attempt must wait, twice as long
each time, up to a cap. Unknown usernames are throttled exactly like known ones, so the wait
does not tell anyone which names exist. A correct password during the wait is refused too.
"""

import hashlib
import math
from datetime import datetime, timedelta

from sqlmodel import Session, select

from app.auth.models import LoginThrottle
from app.db import is_postgresql

FREE_FAILURES = 5
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
# Failures older than this are forgotten at the next failure.
FORGET_AFTER = timedelta(hours=1)


def key_for(username: str) -> str:
    """The row key for a username: hashed, so the table lists no names."""
    return hashlib.sha256(f"login:{username.strip().lower()}".encode()).hexdigest()


def delay_after(failures: int) -> timedelta:
    """How long to wait after `failures` consecutive failures."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    doublings = failures - FREE_FAILURES
    if doublings >= 10:
        return MAX_DELAY
    return min(MAX_DELAY, FIRST_DELAY * 2**doublings)


def wait_seconds(session: Session, *, username: str, now: datetime) -> int:
    """Seconds before another attempt for this username is considered (0: go ahead)."""
    row = session.get(LoginThrottle, key_for(username))
    if row is None or row.blocked_until is None or row.blocked_until <= now:
        return 0
    return math.ceil((row.blocked_until - now).total_seconds())


def record_failure(session: Session, *, username: str, now: datetime) -> None:
    """Count one failed attempt and set the wait for the next one."""
    key = key_for(username)
    _ensure_row(session, key=key, now=now)
    stmt = (
        select(LoginThrottle)
        .where(LoginThrottle.key_hash == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.exec(stmt).one()
    if now - row.last_failure_at > FORGET_AFTER:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    delay = delay_after(row.failures)
    row.blocked_until = now + delay if delay else None
    session.add(row)
    session.flush()


def reset(session: Session, *, username: str) -> None:
    """Forget the failures after a successful login."""
    row = session.get(LoginThrottle, key_for(username))
    if row is not None:
        session.delete(row)
        session.flush()


def _ensure_row(session: Session, *, key: str, now: datetime) -> None:
    # Two replicas may count the first failure at once: insert-or-ignore, then lock the row.
    if is_postgresql(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    session.execute(
        insert(table).values(key_hash=key, failures=0, last_failure_at=now).on_conflict_do_nothing()
    )
