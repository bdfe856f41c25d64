"""Who is acting: a token holder over the API, a logged-in user, or an operator at the CLI."""

from dataclasses import dataclass

from app.auth.models import Role


@dataclass(frozen=True)
class Principal:
    """The authenticated actor; coordinators carry the one OPD they may touch."""

    name: str
    role: Role
    token_id: int | None = None
    opd_id: int | None = None
    opd_code: str | None = None
    user_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


def cli_principal(name: str = "cli") -> Principal:
    """The operator at the command line acts as admin."""
    return Principal(name=name, role=Role.admin)
