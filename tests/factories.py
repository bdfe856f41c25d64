"""Builders for test data, going through the real services."""

from sqlalchemy import Engine

from app.auth import service as auth_service
from app.auth.models import Role
from app.auth.principal import cli_principal
from app.db import session_scope
from app.opds import service as opd_service
from app.opds.schemas import OpdCreate


def add_opd(engine: Engine, code: str, name: str | None = None, tz: str = "Asia/Jakarta") -> None:
    """Create an OPD directly through the service."""
    with session_scope(engine) as s:
        opd_service.create_opd(
            s, actor=cli_principal(), data=OpdCreate(code=code, name=name or code, timezone=tz)
        )


def add_token(engine: Engine, role: Role, opd_code: str | None = None, name: str = "") -> str:
    """Create a token and return its secret."""
    with session_scope(engine) as s:
        _, secret = auth_service.create_token(
            s,
            actor=cli_principal(),
            role=role,
            name=name or f"test {role.value}",
            opd_code=opd_code,
        )
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
