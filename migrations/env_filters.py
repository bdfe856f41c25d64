"""Which database objects Alembic compares against the models."""

# Created by a migration but owned by APScheduler's job store, not by a model.
UNMODELLED_TABLES = {"apscheduler_jobs"}


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Leave tables that no model describes out of the comparison."""
    return not (type_ == "table" and name in UNMODELLED_TABLES)
