"""Create, list, revoke and resolve API tokens."""

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.audit import service as audit_service
from app.auth.models import ApiToken, Role
from app.auth.principal import Principal
from app.db import utcnow
from app.errors import Invalid, NotFound
from app.opds.models import Opd
from app.security import hash_token, new_api_token


def create_token(
    session: Session, *, actor: Principal, role: Role, name: str, opd_code: str | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the secret, which is never stored or shown again."""
    opd_id = None
    if role is Role.coordinator:
        if not opd_code:
            raise Invalid("a coordinator token needs --opd CODE", code="opd_required")
        opd = session.exec(select(Opd).where(Opd.code == opd_code)).first()
        if opd is None:
            raise NotFound(f"unknown OPD code {opd_code!r}", code="opd_not_found")
        opd_id = opd.id
    elif opd_code:
        raise Invalid("only coordinator tokens are bound to an OPD", code="opd_not_allowed")
    if not name.strip() or len(name) > 80:
        raise Invalid("token name must be 1-80 characters", code="invalid_name")
    secret = new_api_token()
    token = ApiToken(
        name=name.strip(), role=role.value, opd_id=opd_id, token_hash=hash_token(secret)
    )
    audit_service.save_and_record(
        session,
        actor=actor,
        row=token,
        action="token.create",
        object_type="api_token",
        detail={"role": role.value, "opd_id": opd_id},
    )
    return token, secret


def list_tokens(session: Session) -> Sequence[ApiToken]:
    """Every token, newest first (hashes only)."""
    return session.exec(select(ApiToken).order_by(col(ApiToken.id).desc())).all()


def revoke_token(session: Session, *, actor: Principal, token_id: int) -> ApiToken:
    """Revoke a token; it stops working at once."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit_service.record(
            session, actor=actor, action="token.revoke", object_type="api_token", object_id=token_id
        )
    return token


def resolve_token(session: Session, *, secret: str) -> Principal | None:
    """The principal behind a bearer secret, or None if unknown or revoked."""
    row = session.exec(
        select(ApiToken, Opd)
        .join(Opd, col(Opd.id) == col(ApiToken.opd_id), isouter=True)
        .where(ApiToken.token_hash == hash_token(secret))
    ).first()
    if row is None:
        return None
    token, opd = row
    if token.revoked_at is not None:
        return None
    return Principal(
        name=token.name,
        role=Role(token.role),
        token_id=token.id,
        opd_id=token.opd_id,
        opd_code=opd.code if opd else None,
    )
