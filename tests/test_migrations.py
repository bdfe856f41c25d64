"""Models and migrations describe the same schema, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

import app.models  # noqa: F401
from migrations.env_filters import include_name


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_name": include_name}
        context = MigrationContext.configure(conn, opts=opts)
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
