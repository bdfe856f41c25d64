"""`spi-reminder user …`: how the first admin comes to exist, and how the operator helps them."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.cli import cli
from app.config import Settings, get_settings
from app.db import session_scope
from app.security import PhoneVault
from tests.auth.helpers import PASSWORD, add_user, csrf_of, stored_user


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SPI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SPI_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SPI_ENCRYPTION_KEYS", settings.encryption_keys.get_secret_value())
    monkeypatch.setenv("SPI_BLIND_INDEX_KEY", settings.blind_index_key.get_secret_value())
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["user", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_first_admin_is_invited_from_the_cli_and_sets_up_on_the_page(
    cli_env: None, client: TestClient, engine: Engine
) -> None:
    code, out, _ = run(
        "create",
        "--username",
        "admin.kota",
        "--name",
        "Admin Kota",
        "--role",
        "admin",
        "--base-url",
        "https://spi.example.go.id/",
    )
    assert code == 0, out
    link = out.strip().splitlines()[-1]
    assert link.startswith("https://spi.example.go.id/dashboard/invitation/")
    path = link.removeprefix("https://spi.example.go.id")
    form = client.get(path)
    done = client.post(
        path,
        data={"password": PASSWORD, "password_again": PASSWORD, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    code, out, _ = run("list")
    assert code == 0
    assert "admin.kota\tadmin\topd=-\tactive\t-\tAdmin Kota" in out
    assert "$argon2" not in out


def test_disable_from_the_cli(cli_env: None, engine: Engine) -> None:
    run("create", "--username", "budi.inspektorat", "--name", "Budi", "--role", "inspectorate")
    code, out, _ = run("disable", "budi.inspektorat")
    assert code == 0, out
    assert stored_user(engine, "budi.inspektorat").disabled_at is not None
    code, _, err = run("disable", "tidak.ada")
    assert code == 2
    assert "user_not_found" in err


def test_bad_input_is_one_line_and_exit_2(cli_env: None) -> None:
    code, _, err = run("create", "--username", "x", "--name", "X", "--role", "admin")
    assert code == 2
    assert "invalid_username" in err
    code, _, err = run("create", "--username", "koord", "--name", "K", "--role", "coordinator")
    assert code == 2
    assert "opd_required" in err


def test_reset_totp_and_reinvite_from_the_cli(
    cli_env: None, engine: Engine, vault: PhoneVault
) -> None:
    # The only admin lost their phone and forgot their password: the operator helps on the server.
    who = add_user(engine, Role.admin, username="admin.satu", totp_vault=vault)
    code, out, _ = run("reset-totp", who.username)
    assert code == 0, out
    assert stored_user(engine, who.username).totp_secret is None
    code, _, err = run("reset-totp", who.username)
    assert code == 2
    assert "totp_not_enabled" in err
    code, out, _ = run("reinvite", who.username, "--base-url", "https://spi.example.go.id")
    assert code == 0, out
    assert (
        out.strip().splitlines()[-1].startswith("https://spi.example.go.id/dashboard/invitation/")
    )
    assert stored_user(engine, who.username).password_hash is None
    with session_scope(engine) as s:
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
    assert "user.totp_reset" in actions
    assert "user.reinvite" in actions
