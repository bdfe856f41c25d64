"""SQLite's single write lock, shared fairly and held briefly by everything in this process.

SQLite has one writer at a time. A waiting writer does not queue: its busy handler sleeps and
retries, after the first few tries every 100 ms, so a writer that commits and begins again
at once (an import applying batch after batch) keeps winning, and a webhook or the worker can
wait for many seconds. Here every write transaction of this process first takes its turn in
a first-come queue per database file; between processes the busy handler still decides.
Reads (`_DEFERRED` transactions) take the lock only at their first write.
"""

import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

# Execution option: begin without the write lock and take it only at the first write.
DEFERRED = "spi_deferred_write"
# Connection info key: this transaction already holds the write lock.
_WRITE_LOCKED = "spi_write_locked"
# Statements that need the write lock (SAVEPOINT too, so a savepoint never spans the upgrade).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT", "CREATE", "DROP", "ALTER")
BUSY_TIMEOUT_SECONDS = 30.0


class WriteQueue:
    """This process's writers of one database file, served in the order they arrived."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: deque[object] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        """Wait for our turn (False after `timeout` seconds)."""
        turn = object()
        with self._changed:
            self._waiting.append(turn)
            ours = self._changed.wait_for(
                lambda: not self._held and self._waiting[0] is turn, timeout
            )
            if not ours:
                self._waiting.remove(turn)
                self._changed.notify_all()
                return False
            self._waiting.popleft()
            self._held = True
            return True

    def release(self) -> None:
        """Let the next writer go."""
        with self._changed:
            self._held = False
            self._changed.notify_all()


_queues: dict[str, WriteQueue] = {}
_queues_lock = threading.Lock()


def queue_for(database: str) -> WriteQueue:
    """The queue of one database file (one per process, shared by every engine on it)."""
    with _queues_lock:
        return _queues.setdefault(database, WriteQueue())


class QueuedConnection(sqlite3.Connection):
    """A connection that holds its turn in the write queue from BEGIN IMMEDIATE to the end."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.write_queue = queue_for(str(database))
        self.has_turn = False

    def take_turn(self) -> None:
        """Wait until the writers of this process that came first are done."""
        if self.has_turn:
            return
        if not self.write_queue.acquire(BUSY_TIMEOUT_SECONDS):
            cause = sqlite3.OperationalError("database is locked (other writers were first)")
            raise OperationalError("BEGIN IMMEDIATE", None, cause)
        self.has_turn = True

    def end_turn(self) -> None:
        """Let the next writer of this process go (after commit, rollback or close)."""
        if self.has_turn:
            self.has_turn = False
            self.write_queue.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()


def _begin_immediate(dbapi_conn: QueuedConnection, execute: Callable[[str], object]) -> None:
    """Wait for this process's turn, then take SQLite's write lock (giving the turn back if not)."""
    dbapi_conn.take_turn()
    try:
        execute("BEGIN IMMEDIATE")
    except BaseException:
        dbapi_conn.end_turn()
        raise


def configure(engine: Engine) -> None:
    """Pragmas, and transactions that take the write lock in turn (or, deferred, not at all)."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets the API read while the worker writes; busy_timeout waits instead of failing.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        # The default 2 MB page cache thrashes on the random public-id index when a round
        # inserts hundreds of thousands of deliveries; 16 MB per connection is bounded.
        cur.execute("PRAGMA cache_size=-16384")
        cur.close()
        # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented fix
        # is to let SQLAlchemy emit BEGIN itself.
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(DEFERRED):
            # A plain read: with WAL it never waits for a writer.
            conn.info[_WRITE_LOCKED] = False
            conn.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front, so a read-then-write transaction waits
        # (busy_timeout) instead of failing with SQLITE_BUSY_SNAPSHOT under concurrency.
        conn.info[_WRITE_LOCKED] = True
        _begin_immediate(conn.connection.dbapi_connection, conn.exec_driver_sql)

    @event.listens_for(engine, "before_cursor_execute")
    def _lock_before_first_write(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get(_WRITE_LOCKED, True) or not conn.in_transaction():
            return
        if not statement.lstrip()[:9].upper().startswith(_WRITES):
            return
        # Upgrading a read transaction in place fails at once (SQLITE_BUSY_SNAPSHOT) when
        # another writer committed since it began. Nothing is written yet, so end the read
        # snapshot and wait for the lock like any writer: the reads before it behave as
        # under PostgreSQL's READ COMMITTED.
        conn.info[_WRITE_LOCKED] = True
        cursor.execute("COMMIT")
        _begin_immediate(conn.connection.dbapi_connection, cursor.execute)
