"""Invitations: an admin creates the account, the person sets the password, once, in time."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth import user_admin, users
from app.auth.models import Role, UserInvitation
from app.auth.principal import cli_principal
from app.db import session_scope, utcnow
from app.errors import AppError, Conflict, Invalid, NotFound
from tests.auth.helpers import PASSWORD, stored_user
from tests.factories import add_opd


def invite(engine: Engine, username: str = "siti.inspektorat", **kwargs: object) -> str:
    with session_scope(engine) as s:
        invited = users.invite_user(
            s,
            actor=cli_principal(),
            username=username,
            display_name="Siti",
            role=kwargs.pop("role", Role.inspectorate),  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
        return invited.invitation_key


def accept(engine: Engine, key: str, password: str = PASSWORD) -> None:
    with session_scope(engine) as s:
        users.accept_invitation(s, key=key, password=password)


def test_an_invited_account_has_no_password_until_the_person_sets_one(engine: Engine) -> None:
    key = invite(engine)
    assert stored_user(engine, "siti.inspektorat").password_hash is None
    with session_scope(engine) as s:
        assert users.open_invitation(s, key=key) is not None
        stored = s.exec(select(UserInvitation)).one()
        assert key not in stored.token_hash  # only a hash is kept
    accept(engine, key)
    with session_scope(engine) as s:
        user = users.check_password(s, username="Siti.Inspektorat", password=PASSWORD)
        assert user.username == "siti.inspektorat"


def test_an_invitation_works_once(engine: Engine) -> None:
    key = invite(engine)
    accept(engine, key)
    with pytest.raises(NotFound):
        accept(engine, key, password="kata sandi lain yang panjang")
    with session_scope(engine) as s:
        users.check_password(s, username="siti.inspektorat", password=PASSWORD)


def test_an_expired_invitation_is_refused(engine: Engine) -> None:
    key = invite(engine)
    with session_scope(engine) as s:
        row = s.exec(select(UserInvitation)).one()
        assert row.expires_at - row.created_at == users.INVITATION_LIFETIME
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
    with session_scope(engine) as s:
        assert users.open_invitation(s, key=key) is None
    with pytest.raises(NotFound):
        accept(engine, key)
    assert stored_user(engine, "siti.inspektorat").password_hash is None


def test_a_new_invitation_cancels_the_old_one(engine: Engine) -> None:
    old = invite(engine)
    user_id = stored_user(engine, "siti.inspektorat").id
    assert user_id is not None
    with session_scope(engine) as s:
        new = users.reinvite_user(s, actor=cli_principal(), user_id=user_id).invitation_key
    with pytest.raises(NotFound):
        accept(engine, old)
    accept(engine, new)


def test_a_disabled_account_cannot_be_set_up(engine: Engine) -> None:
    key = invite(engine)
    user_id = stored_user(engine, "siti.inspektorat").id
    assert user_id is not None
    with session_scope(engine) as s:
        user_admin.disable_user(s, actor=cli_principal(), user_id=user_id)
    with pytest.raises(NotFound):
        accept(engine, key)
    with session_scope(engine) as s, pytest.raises(Conflict):
        users.reinvite_user(s, actor=cli_principal(), user_id=user_id)


def test_reinviting_a_set_up_account_resets_its_password(engine: Engine) -> None:
    accept(engine, invite(engine))
    user_id = stored_user(engine, "siti.inspektorat").id
    assert user_id is not None
    with session_scope(engine) as s:
        key = users.reinvite_user(s, actor=cli_principal(), user_id=user_id).invitation_key
    with session_scope(engine) as s, pytest.raises(users.LoginRefused):
        users.check_password(s, username="siti.inspektorat", password=PASSWORD)
    accept(engine, key, password="kata sandi baru yang panjang")
    with session_scope(engine) as s:
        users.check_password(
            s, username="siti.inspektorat", password="kata sandi baru yang panjang"
        )
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "user.reinvite")).one()
        assert event.detail == {"password_reset": True, "sessions_ended": 0}


def test_a_weak_password_leaves_the_invitation_usable(engine: Engine) -> None:
    key = invite(engine)
    with pytest.raises(Invalid):
        accept(engine, key, password="pendek")
    accept(engine, key)


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        ({"username": "ab"}, Invalid, "invalid_username"),
        ({"username": "budi dinkes"}, Invalid, "invalid_username"),
        ({"role": Role.coordinator}, Invalid, "opd_required"),
        ({"role": Role.coordinator, "opd_code": "NOPE"}, NotFound, "opd_not_found"),
        ({"role": Role.admin, "opd_code": "DINKES"}, Invalid, "opd_not_allowed"),
    ],
)
def test_invitations_refuse_bad_input(
    engine: Engine, kwargs: dict[str, object], error: type[AppError], code: str
) -> None:
    add_opd(engine, "DINKES")
    with pytest.raises(error) as refused:
        invite(engine, **kwargs)  # type: ignore[arg-type]
    assert refused.value.code == code


def test_usernames_are_unique_whatever_the_case(engine: Engine) -> None:
    invite(engine, username="budi.dinkes")
    with pytest.raises(Conflict):
        invite(engine, username="Budi.Dinkes")


def test_a_coordinator_is_bound_to_their_opd(engine: Engine) -> None:
    add_opd(engine, "DINKES")
    invite(engine, username="budi.dinkes", role=Role.coordinator, opd_code="DINKES")
    assert stored_user(engine, "budi.dinkes").opd_id is not None
