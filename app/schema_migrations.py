"""Run and inspect Alembic migrations from the application (CLI, serve, readyz, tests).

Several processes may start at once on an empty PostgreSQL database (API replicas, workers,
schedulers). Each would create `alembic_version` and the tables itself, and all but one would
crash on a unique violation. So the upgrade runs under a session advisory lock: the first
process migrates, the others wait for the lock and then find the schema current.
"""

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# b"spi-migr": distinct from the scheduler's election lock (b"spi-schd").
MIGRATION_LOCK_KEY = 0x7370692D6D696772
VERSION_TABLE = "alembic_version"


def migrations_dir() -> Path:
    """Where the migrations are: beside the `app` package, in the source tree or the wheel."""
    return PROJECT_ROOT / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the project's migrations and the given database."""
    ini = PROJECT_ROOT / "alembic.ini"
    # An installed wheel ships migrations/ but not alembic.ini; nothing in it is needed here.
    cfg = Config(str(ini)) if ini.exists() else Config()
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_to_head(url: str) -> None:
    """Apply every pending migration; on PostgreSQL one process at a time."""
    if not url.startswith("postgresql"):
        command.upgrade(alembic_config(url), "head")
        return
    lock_engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with lock_engine.connect() as lock_conn:
            # Blocks until the migrating process is done; the lock dies with this session.
            lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            try:
                command.upgrade(alembic_config(url), "head")
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
    finally:
        lock_engine.dispose()


@cache
def _head(script_location: str) -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return ScriptDirectory.from_config(cfg).get_current_head()


def head_revision(url: str = "") -> str | None:
    """The newest revision the code ships (read once per process: the files do not change)."""
    return _head(str(migrations_dir()))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated).

    Read with one query rather than through Alembic's MigrationContext, which logs two lines
    each time: /readyz calls this on every probe.
    """
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return versions[0] if len(versions) == 1 else None
