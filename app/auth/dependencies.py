"""Bearer-token authentication and role checks for routes."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from app.auth import service as auth_service
from app.auth.models import Role
from app.auth.principal import Principal
from app.db import read_scope
from app.errors import Forbidden, Unauthorized


def _lookup(request: Request, secret: str) -> Principal | None:
    # Its own short session: authentication must not share the request's transaction, and
    # (read_scope) never waits for SQLite's write lock.
    with read_scope(request.app.state.engine) as session:
        return auth_service.resolve_token(session, secret=secret)


def current_principal(request: Request) -> Principal:
    """The caller behind `Authorization: Bearer …` (or the dashboard session); 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("missing bearer token")
    principal = _lookup(request, secret.strip())
    if principal is None:
        raise Unauthorized("invalid or revoked token")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only the given roles (403 for the others)."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"this action needs the role {' or '.join(r.value for r in roles)}")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require_roles(Role.admin))]
EnrolerDep = Annotated[Principal, Depends(require_roles(Role.admin, Role.coordinator))]
ReaderDep = Annotated[
    Principal, Depends(require_roles(Role.admin, Role.inspectorate, Role.coordinator))
]


def ensure_opd_scope(principal: Principal, opd_code: str) -> None:
    """Coordinators may act only on their own OPD."""
    if principal.role is Role.coordinator and principal.opd_code != opd_code:
        raise Forbidden("coordinators may only act on their own OPD")
