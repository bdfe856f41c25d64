"""Arrange users and log in through the real forms (password, then the TOTP code if set)."""

import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth import service as auth_service
from app.auth import users
from app.auth.models import Role, UserAccount
from app.auth.principal import cli_principal
from app.db import session_scope
from app.security import PhoneVault

if TYPE_CHECKING:
    from playwright.sync_api import Page

PASSWORD = "kopi tubruk pagi hari"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    totp_secret: str | None = None


def add_user(
    engine: Engine,
    role: Role,
    opd_code: str | None = None,
    *,
    username: str | None = None,
    name: str = "",
    password: str = PASSWORD,
    totp_vault: PhoneVault | None = None,
) -> Credentials:
    """An account already set up (invited, password chosen; TOTP on when a vault is given)."""
    username = username or f"{role.value}.{secrets.token_hex(3)}"
    totp_secret = pyotp.random_base32() if totp_vault is not None else None
    with session_scope(engine) as s:
        invited = users.invite_user(
            s,
            actor=cli_principal(),
            username=username,
            display_name=name or f"Uji {role.value}",
            role=role,
            opd_code=opd_code,
        )
        user = users.accept_invitation(s, key=invited.invitation_key, password=password)
        if totp_vault is not None and totp_secret is not None:
            user.totp_secret = totp_vault.encrypt(totp_secret)
            s.add(user)
    return Credentials(username=username, password=password, totp_secret=totp_secret)


def next_code(secret: str) -> str:
    """A code for the next 30-second step: accepted once even right after this step's code."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form has no CSRF field"
    return match.group(1)


def login(client: TestClient, who: Credentials) -> str:
    """Log in through the forms; returns the CSRF value of the logged-in pages."""
    form = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    if response.headers["location"] == "/dashboard/login/code":
        assert who.totp_secret is not None
        page = client.get("/dashboard/login/code")
        response = client.post(
            "/dashboard/login/code",
            data={"code": pyotp.TOTP(who.totp_secret).now(), "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
    return csrf_of(client.get("/dashboard/account/two-factor").text)


def login_as_token_holder(client: TestClient, token: str) -> str:
    """Log in as a person with the role, OPD and name of an API token's holder.

    For tests written when the pages took a pasted token: the pages now take only people, so
    this sets up an account like the token (with TOTP, which production requires of admins).
    """
    app = client.app
    with session_scope(app.state.engine) as s:  # type: ignore[attr-defined]
        principal = auth_service.resolve_token(s, secret=token)
    assert principal is not None, "unknown or revoked token"
    who = add_user(
        app.state.engine,  # type: ignore[attr-defined]
        principal.role,
        principal.opd_code,
        name=principal.name,
        totp_vault=app.state.vault,  # type: ignore[attr-defined]
    )
    return login(client, who)


def stored_user(engine: Engine, username: str) -> UserAccount:
    with session_scope(engine) as s:
        user = users.get_by_username(s, username=username)
        assert user is not None
        s.expunge(user)
        return user


def fill_login(page: "Page", base_url: str, who: Credentials) -> None:
    """Log in through the login page in a browser (the TOTP step too, when the user has one)."""
    page.goto(f"{base_url}/dashboard/login")
    page.fill("#username", who.username)
    page.fill("#password", who.password)
    page.click("button[type=submit]")
    if who.totp_secret is not None:
        page.wait_for_url(f"{base_url}/dashboard/login/code")
        page.fill("#code", pyotp.TOTP(who.totp_secret).now())
        page.click("button[type=submit]")
