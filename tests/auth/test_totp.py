"""TOTP codes: right within one 30-second step either side, wrong outside it, good only once."""

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import Engine

from app.auth import totp, users
from app.auth.models import Role
from app.db import session_scope
from app.security import PhoneVault
from tests.auth.helpers import add_user, stored_user

NOW = datetime(2026, 12, 1, 9, 0, 10, tzinfo=UTC)


@pytest.fixture
def secret() -> str:
    return totp.new_secret()


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def test_the_current_code_matches_its_step(secret: str) -> None:
    step = totp.matching_step(secret, code_at(secret, NOW), now=NOW, after_step=None)
    assert step == int(NOW.timestamp()) // 30


@pytest.mark.parametrize("offset", [-30, 30])
def test_one_step_either_side_is_accepted(secret: str, offset: int) -> None:
    code = code_at(secret, NOW + timedelta(seconds=offset))
    assert totp.matching_step(secret, code, now=NOW, after_step=None) is not None


@pytest.mark.parametrize("offset", [-90, -60, 60, 90])
def test_codes_further_away_are_refused(secret: str, offset: int) -> None:
    code = code_at(secret, NOW + timedelta(seconds=offset))
    assert totp.matching_step(secret, code, now=NOW, after_step=None) is None


def test_a_code_is_accepted_once(secret: str) -> None:
    code = code_at(secret, NOW)
    step = totp.matching_step(secret, code, now=NOW, after_step=None)
    assert step is not None
    assert totp.matching_step(secret, code, now=NOW, after_step=step) is None
    # an older step's code cannot follow a newer one either
    older = code_at(secret, NOW - timedelta(seconds=30))
    assert totp.matching_step(secret, older, now=NOW, after_step=step) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_refused(secret: str, code: str) -> None:
    assert totp.matching_step(secret, code, now=NOW, after_step=None) is None


def test_spaces_inside_a_code_are_ignored(secret: str) -> None:
    code = code_at(secret, NOW)
    spaced = f"{code[:3]} {code[3:]}"
    assert totp.matching_step(secret, spaced, now=NOW, after_step=None) is not None


def test_provisioning_uri_names_the_service_and_the_user(secret: str) -> None:
    uri = totp.provisioning_uri(secret, username="budi.dinkes")
    assert uri.startswith("otpauth://totp/")
    assert "Pengingat%20SPI" in uri
    assert "budi.dinkes" in uri
    assert f"secret={secret}" in uri


def test_setting_up_totp_needs_a_right_code_and_stores_the_secret_encrypted(
    engine: Engine, vault: PhoneVault
) -> None:
    who = add_user(engine, Role.admin)
    with session_scope(engine) as s:
        user = users.get_by_username(s, username=who.username)
        assert user is not None
        secret = users.pending_totp_secret(s, user=user, vault=vault)
        assert users.pending_totp_secret(s, user=user, vault=vault) == secret  # stable on reload
        wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        assert not users.confirm_totp(s, user=user, code=wrong, vault=vault)
        assert user.totp_secret is None
        assert users.confirm_totp(s, user=user, code=pyotp.TOTP(secret).now(), vault=vault)
    stored = stored_user(engine, who.username)
    assert stored.totp_secret is not None
    assert secret not in stored.totp_secret
    assert vault.decrypt(stored.totp_secret) == secret
    assert stored.totp_pending is None


def test_the_login_code_cannot_be_replayed(engine: Engine, vault: PhoneVault) -> None:
    who = add_user(engine, Role.admin, totp_vault=vault)
    assert who.totp_secret is not None
    code = pyotp.TOTP(who.totp_secret).now()
    with session_scope(engine) as s:
        user = users.get_by_username(s, username=who.username)
        assert user is not None
        assert users.check_second_factor(s, user=user, code=code, vault=vault)
    with session_scope(engine) as s:
        user = users.get_by_username(s, username=who.username)
        assert user is not None
        assert not users.check_second_factor(s, user=user, code=code, vault=vault)
