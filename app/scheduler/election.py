"""Exactly one scheduler across processes: a PostgreSQL session advisory lock elects it.

The leader holds `pg_try_advisory_lock(LOCK_KEY)` on a dedicated connection for as long as it
leads. The lock belongs to that database session, so when the leader dies (even kill -9) its
connection closes and PostgreSQL releases the lock; a standby polling every few seconds then
takes it. The leader re-checks its lock on every poll and steps down if the connection is gone,
before PostgreSQL could have handed the lock to anyone else. SQLite is single-process: always
the leader. Session locks need a direct connection (or PgBouncer in session mode), never
transaction pooling.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from app.db import utcnow

logger = logging.getLogger(__name__)

LOCK_KEY = 0x7370692D73636864  # b"spi-schd": one constant for every process of this service
DEFAULT_POLL_SECONDS = 5.0
CHECK_TIMEOUT = 10.0
T = TypeVar("T")
# libpq settings of the lock connection: fail fast when the database becomes unreachable.
_LIBPQ_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
    "application_name": "spi-reminder scheduler lock",
}
# pg_locks shows a bigint advisory key as two 32-bit halves, with objsubid 1.
_HELD_SQL = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1)"
)


class LeaderLock(Protocol):
    # Whether the lock does I/O (and so is polled in a thread, with a deadline).
    blocking: bool

    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...


class SingleProcessLock:
    """SQLite: one process runs everything, so it always leads.

    Nothing to ask the database, so polls answer at once: a busy database or a full thread
    pool (a long import, say) can never make the leader step down.
    """

    blocking = False

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection of its own (not from the pool)."""

    blocking = True

    def __init__(self, engine: Engine, key: int = LOCK_KEY) -> None:
        # NullPool: closing the connection really ends the session, which releases the lock.
        self._engine = create_engine(
            engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=_LIBPQ_ARGS
        )
        self._key = key
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; raises when the database cannot be reached."""
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key})
            return bool(got.scalar_one())
        except Exception:
            self._drop(conn)
            raise

    def still_held(self) -> bool:
        """Whether the lock connection is alive and still holds the lock."""
        conn = self._conn
        if conn is None:
            return False
        params = {"hi": self._key >> 32, "lo": self._key & 0xFFFFFFFF}
        try:
            return bool(conn.execute(_HELD_SQL, params).scalar_one())
        except Exception as exc:
            logger.warning("scheduler.lock_check_failed %s", type(exc).__name__)
            self._drop(conn)
            return False

    def release(self) -> None:
        """Let go of the lock and end the session."""
        conn = self._conn
        if conn is None:
            return
        try:
            # Explicit, because the server ends a closed session a moment after close() returns.
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        except Exception as exc:
            logger.warning("scheduler.lock_unlock_failed %s", type(exc).__name__)
        self._drop(conn)

    def _drop(self, conn: Connection) -> None:
        # Forget it first, so a late answer from a timed-out check cannot drop a newer one.
        if self._conn is conn:
            self._conn = None
        try:
            conn.close()
        except Exception as exc:
            logger.warning("scheduler.lock_close_failed %s", type(exc).__name__)


def lock_for(engine: Engine) -> LeaderLock:
    """The leader lock that fits the database."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return SingleProcessLock()


class Election:
    """Polls the lock: a standby tries to take it, the leader checks it still holds it."""

    def __init__(
        self,
        lock: LeaderLock,
        *,
        on_elected: Callable[[], Awaitable[None]],
        on_deposed: Callable[[], Awaitable[None]],
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.lock = lock
        self.poll_seconds = poll_seconds
        self.is_leader = False
        self.last_heartbeat: datetime | None = None  # last poll that reached the lock
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._announced_standby = False

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.tick()
            except Exception:
                logger.exception("scheduler.election_error")

    async def tick(self) -> None:
        """One poll: take over, confirm or step down."""
        if self.is_leader:
            if await self._still_held():
                self.last_heartbeat = utcnow()
                return
            logger.error("scheduler.lock_lost stopping the scheduler")
            await self.step_down()
            return
        try:
            acquired = await self._call(self.lock.try_acquire)
        except Exception as exc:
            logger.warning("scheduler.lock_unreachable %s", type(exc).__name__)
            return
        self.last_heartbeat = utcnow()
        if not acquired:
            if not self._announced_standby:
                logger.info("scheduler.standby another process holds the scheduler lock")
                self._announced_standby = True
            return
        self.is_leader = True
        self._announced_standby = False
        logger.info("scheduler.leader this process runs the scheduler")
        try:
            await self._on_elected()
        except Exception:
            logger.exception("scheduler.start_failed giving the lock up")
            await self.step_down()

    async def step_down(self) -> None:
        """Stop leading: stop the scheduler first, then let go of the lock."""
        self.is_leader = False
        try:
            await self._on_deposed()
        finally:
            try:
                await self._bounded(self.lock.release)
            except TimeoutError:
                logger.warning("scheduler.lock_release_timeout")

    async def _still_held(self) -> bool:
        # A check that does not answer in time counts as lost: better no scheduler than two.
        if not self.lock.blocking:
            return self.lock.still_held()
        try:
            return await self._bounded(self.lock.still_held)
        except TimeoutError:
            logger.warning("scheduler.lock_check_timeout")
            return False

    async def _call(self, call: Callable[[], T]) -> T:
        return await asyncio.to_thread(call) if self.lock.blocking else call()

    async def _bounded(self, call: Callable[[], T]) -> T:
        if not self.lock.blocking:
            return call()
        # A hung network must not hang the election loop (the thread is left to libpq's timeouts).
        return await asyncio.wait_for(asyncio.to_thread(call), self.poll_seconds + CHECK_TIMEOUT)
