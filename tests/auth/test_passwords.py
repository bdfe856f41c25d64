"""Passwords are hashed with argon2id, salted, checked in equal time, and upgraded on login."""

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine

from app.auth import passwords, users
from app.auth.models import Role
from app.db import session_scope
from app.errors import Invalid
from tests.auth.helpers import PASSWORD, add_user, stored_user


def test_hash_is_argon2id_salted_and_never_the_password() -> None:
    first = passwords.hash_password(PASSWORD)
    second = passwords.hash_password(PASSWORD)
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert PASSWORD not in first
    assert passwords.verify_password(first, PASSWORD)
    assert not passwords.verify_password(first, PASSWORD + "!")


def test_missing_or_malformed_hash_never_verifies() -> None:
    assert not passwords.verify_password(None, PASSWORD)
    assert not passwords.verify_password("not-a-hash", PASSWORD)


@pytest.mark.parametrize(
    ("candidate", "code"),
    [
        ("pendek", "password_too_short"),
        ("x" * 129, "password_too_long"),
        ("budi.dinkes-rahasia", "password_has_username"),
    ],
)
def test_new_password_rules(candidate: str, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        passwords.check_new_password(candidate, username="budi.dinkes")
    assert refused.value.code == code


def test_a_weak_old_hash_is_upgraded_at_the_next_login(engine: Engine) -> None:
    who = add_user(engine, Role.inspectorate)
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(who.password)
    assert passwords.needs_rehash(weak)
    with session_scope(engine) as s:
        user = users.get_by_username(s, username=who.username)
        assert user is not None
        user.password_hash = weak
        s.add(user)
    with session_scope(engine) as s:
        users.check_password(s, username=who.username, password=who.password)
    upgraded = stored_user(engine, who.username).password_hash
    assert upgraded is not None
    assert upgraded != weak
    assert not passwords.needs_rehash(upgraded)
    assert passwords.verify_password(upgraded, who.password)
