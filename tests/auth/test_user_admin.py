"""Admins' user pages: invite, list, disable and end sessions, each ending access at once."""

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from app.audit.models import AuditEvent
from app.auth.models import Role, UserAccount
from app.db import session_scope
from tests.auth.helpers import add_user, csrf_of, login, stored_user


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
        from tests.factories import add_opd

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
