"""Admins' user pages: invite, list, disable, end sessions, reset TOTP or the password (audited)."""

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role, UserAccount
from app.db import session_scope
from app.security import PhoneVault
from tests.auth.helpers import Credentials, add_user, csrf_of, login, stored_user
from tests.factories import add_opd

LOGIN = "/dashboard/login"


@pytest.fixture
def other(api: FastAPI, client: TestClient) -> TestClient:
    """A second browser, for the user the admin acts on (the first one runs the lifespan)."""
    return TestClient(api)


def user_id(engine: Engine, username: str) -> int:
    found = stored_user(engine, username).id
    assert found is not None
    return found


def test_revoking_sessions_ends_them_at_once(
    client: TestClient, other: TestClient, engine: Engine
) -> None:
    admin_csrf = login(client, add_user(engine, Role.admin))
    who = add_user(engine, Role.inspectorate)
    login(other, who)
    assert other.get("/dashboard", follow_redirects=False).status_code == 200
    listing = client.get("/dashboard/users").text
    assert f'data-user="{who.username}"' in listing
    path = f"/dashboard/users/{user_id(engine, who.username)}/sessions/revoke"
    assert client.post(path, data={"csrf": "salah"}).status_code == 403
    assert other.get("/dashboard", follow_redirects=False).status_code == 200
    done = client.post(path, data={"csrf": admin_csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert other.get("/dashboard", follow_redirects=False).status_code == 303
    login(other, who)  # the account itself still works


def test_disabling_a_user_ends_their_sessions_and_logins(
    client: TestClient, other: TestClient, engine: Engine
) -> None:
    admin_csrf = login(client, add_user(engine, Role.admin))
    who = add_user(engine, Role.inspectorate)
    login(other, who)
    path = f"/dashboard/users/{user_id(engine, who.username)}/disable"
    assert client.post(path, data={}).status_code == 403  # no CSRF value
    assert stored_user(engine, who.username).disabled_at is None
    client.post(path, data={"csrf": admin_csrf})
    assert other.get("/dashboard", follow_redirects=False).status_code == 303
    form = other.get("/dashboard/login")
    again = other.post(
        "/dashboard/login",
        data={"username": who.username, "password": who.password, "csrf": csrf_of(form.text)},
    )
    assert again.status_code == 401
    assert "nonaktif" in client.get("/dashboard/users").text
    with session_scope(engine) as s:
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
    assert "user.disable" in actions


def test_an_admin_cannot_disable_themselves(client: TestClient, engine: Engine) -> None:
    admin = add_user(engine, Role.admin)
    csrf = login(client, admin)
    response = client.post(
        f"/dashboard/users/{user_id(engine, admin.username)}/disable", data={"csrf": csrf}
    )
    assert response.status_code == 403
    assert stored_user(engine, admin.username).disabled_at is None


def test_inviting_needs_csrf_and_shows_the_link_once(client: TestClient, engine: Engine) -> None:
    csrf = login(client, add_user(engine, Role.admin))
    data = {"username": "budi.dinkes", "display_name": "Budi", "role": "inspectorate"}
    assert client.post("/dashboard/users/new", data=data).status_code == 403
    with session_scope(engine) as s:
        assert (
            s.exec(select(UserAccount).where(UserAccount.username == "budi.dinkes")).first() is None
        )
    shown = client.post("/dashboard/users/new", data=data | {"csrf": csrf})
    link = re.search(r"/dashboard/invitation/([A-Za-z0-9_-]+)", shown.text)
    assert link
    listing = client.get("/dashboard/users").text
    assert "menunggu aktivasi" in listing
    assert link.group(1) not in listing  # never shown again


def test_a_coordinator_invitation_needs_an_opd(client: TestClient, engine: Engine) -> None:
    csrf = login(client, add_user(engine, Role.admin))
    data = {"username": "budi.dinkes", "display_name": "Budi", "role": "coordinator", "csrf": csrf}
    refused = client.post("/dashboard/users/new", data=data)
    assert refused.status_code == 422
    assert "Koordinator harus terikat pada satu OPD." in refused.text


@pytest.mark.parametrize("role", [Role.inspectorate, Role.coordinator])
def test_only_admins_reach_the_user_pages(client: TestClient, engine: Engine, role: Role) -> None:
    opd = None
    if role is Role.coordinator:
        add_opd(engine, "DINKES")
        opd = "DINKES"
    csrf = login(client, add_user(engine, role, opd))
    assert client.get("/dashboard/users").status_code == 403
    assert client.get("/dashboard/users/new").status_code == 403
    posted = client.post(
        "/dashboard/users/new",
        data={"username": "x.y.z", "display_name": "X", "role": "admin", "csrf": csrf},
    )
    assert posted.status_code == 403
    with session_scope(engine) as s:
        assert s.exec(select(UserAccount).where(UserAccount.username == "x.y.z")).first() is None


def _actions(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return [e.action for e in s.exec(select(AuditEvent)).all()]


def test_an_admin_resets_a_lost_second_factor(
    client: TestClient, other: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    add_opd(engine, "DINKES")
    admin_csrf = login(client, add_user(engine, Role.admin))
    who = add_user(engine, Role.coordinator, "DINKES", totp_vault=vault)
    login(other, who)
    listing = client.get("/dashboard/users").text
    path = f"/dashboard/users/{user_id(engine, who.username)}/two-factor/reset"
    assert f'action="{path}"' in listing
    assert client.post(path, data={"csrf": "salah"}).status_code == 403
    assert stored_user(engine, who.username).totp_secret is not None
    done = client.post(path, data={"csrf": admin_csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert "diatur ulang" in client.get(done.headers["location"]).text
    assert other.get("/console", follow_redirects=False).headers["location"] == LOGIN
    user = stored_user(engine, who.username)
    assert user.totp_secret is None
    assert user.totp_pending is None
    assert "user.totp_reset" in _actions(engine)
    # The password alone logs in now; the person can set up a new phone.
    login(other, Credentials(username=who.username, password=who.password))
    without = f"/dashboard/users/{user_id(engine, add_user(engine, Role.inspectorate).username)}"
    refused = client.post(f"{without}/two-factor/reset", data={"csrf": admin_csrf})
    assert refused.status_code == 409  # nothing to reset


def test_an_admin_cannot_reset_their_own_second_factor(
    client: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    admin = add_user(engine, Role.admin, totp_vault=vault)
    csrf = login(client, admin)
    path = f"/dashboard/users/{user_id(engine, admin.username)}/two-factor/reset"
    assert client.post(path, data={"csrf": csrf}).status_code == 403
    assert stored_user(engine, admin.username).totp_secret is not None


def test_a_password_reset_link_ends_the_sessions_and_replaces_the_password(
    client: TestClient, other: TestClient, engine: Engine
) -> None:
    admin_csrf = login(client, add_user(engine, Role.admin))
    who = add_user(engine, Role.inspectorate)
    login(other, who)
    path = f"/dashboard/users/{user_id(engine, who.username)}/reinvite"
    assert f'action="{path}"' in client.get("/dashboard/users").text
    assert client.post(path, data={}).status_code == 403  # no CSRF value
    assert other.get("/dashboard", follow_redirects=False).status_code == 200
    shown = client.post(path, data={"csrf": admin_csrf})
    assert shown.status_code == 200
    link = re.search(r'value="(https?://[^"]+/dashboard/invitation/[^"]+)"', shown.text)
    assert link
    assert other.get("/dashboard", follow_redirects=False).status_code == 303
    assert stored_user(engine, who.username).password_hash is None
    assert "user.reinvite" in _actions(engine)
    other.cookies.clear()
    invitation = link.group(1).split("://", 1)[1].split("/", 1)[1]
    form = other.get("/" + invitation)
    new_password = "kata sandi baru yang panjang"
    set_up = other.post(
        "/" + invitation,
        data={"password": new_password, "password_again": new_password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert set_up.status_code == 303
    other.cookies.clear()
    login(other, Credentials(username=who.username, password=new_password))
