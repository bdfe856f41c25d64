"""Every route, tried with no token, a revoked token, each role and another OPD's coordinator."""

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine
from sqlmodel import select

from app.auth.models import ApiToken, Role
from app.auth.principal import cli_principal
from app.auth.service import revoke_token
from app.db import session_scope
from tests.factories import add_opd, add_token, bearer

CALLERS = ("none", "revoked", "admin", "inspectorate", "coordinator", "other_coordinator")


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str]
    enrolment_id: str

    def call(self, who: str, request: Callable[[TestClient, dict[str, str]], Response]) -> int:
        headers = bearer(self.tokens[who]) if who in self.tokens else {}
        return request(self.client, headers).status_code


@pytest.fixture
def world(client: TestClient, engine: Engine) -> World:
    add_opd(engine, "DINKES")
    add_opd(engine, "BAPPEDA")
    tokens = {
        "admin": add_token(engine, Role.admin),
        "inspectorate": add_token(engine, Role.inspectorate),
        "coordinator": add_token(engine, Role.coordinator, "DINKES"),
        "other_coordinator": add_token(engine, Role.coordinator, "BAPPEDA"),
        "revoked": add_token(engine, Role.admin, name="revoked admin"),
    }
    with session_scope(engine) as s:
        revoked = s.exec(select(ApiToken).where(ApiToken.name == "revoked admin")).one()
        assert revoked.id is not None
        revoke_token(s, actor=cli_principal(), token_id=revoked.id)
    created = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "0812-1111-2222", "consent": {"method": "paper_form"}},
        headers=bearer(tokens["admin"]),
    )
    assert created.status_code == 201
    return World(client, tokens, created.json()["id"])


_numbers = itertools.count(1000)


def enrol_body() -> dict[str, object]:
    """A new number for each call, so that only access decides the status."""
    return {"phone": f"0813-3333-{next(_numbers)}", "consent": {"method": "paper_form"}}


def csv_file() -> tuple[str, bytes, str]:
    row = f"nomor_hp;metode_persetujuan\n0815-5555-{next(_numbers)};paper_form\n"
    return ("f.csv", row.encode(), "text/csv")


# (route, request, expected status per caller in CALLERS order)
MATRIX: list[tuple[str, Callable[[TestClient, dict[str, str]], Response], tuple[int, ...]]] = [
    (
        "POST /opds",
        lambda c, h: c.post("/api/v1/opds", json={"code": "NEW", "name": "Baru"}, headers=h),
        (401, 401, 201, 403, 403, 403),
    ),
    ("GET /opds", lambda c, h: c.get("/api/v1/opds", headers=h), (401, 401, 200, 200, 200, 200)),
    (
        "PATCH /opds/{code}",
        lambda c, h: c.patch("/api/v1/opds/DINKES", json={"name": "Dinas"}, headers=h),
        (401, 401, 200, 403, 403, 403),
    ),
    (
        "POST /opds/{code}/enrolments",
        lambda c, h: c.post("/api/v1/opds/DINKES/enrolments", json=enrol_body(), headers=h),
        (401, 401, 201, 403, 201, 403),
    ),
    (
        "GET /opds/{code}/enrolments",
        lambda c, h: c.get("/api/v1/opds/DINKES/enrolments", headers=h),
        (401, 401, 200, 403, 200, 403),
    ),
    (
        "POST /opds/{code}/enrolments/import",
        lambda c, h: c.post(
            "/api/v1/opds/DINKES/enrolments/import", files={"file": csv_file()}, headers=h
        ),
        (401, 401, 200, 403, 200, 403),
    ),
    ("GET /audit", lambda c, h: c.get("/api/v1/audit", headers=h), (401, 401, 200, 403, 403, 403)),
]


@pytest.mark.parametrize(("route", "request_fn", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
def test_route_access(
    world: World,
    route: str,
    request_fn: Callable[[TestClient, dict[str, str]], Response],
    expected: tuple[int, ...],
) -> None:
    got = tuple(world.call(who, request_fn) for who in CALLERS)
    assert got == expected, f"{route}: {dict(zip(CALLERS, got, strict=True))}"


def test_withdraw_access(world: World) -> None:
    def delete(c: TestClient, h: dict[str, str]) -> Response:
        return c.delete(f"/api/v1/enrolments/{world.enrolment_id}", headers=h)

    assert world.call("none", delete) == 401
    assert world.call("revoked", delete) == 401
    assert world.call("inspectorate", delete) == 403
    # Another OPD's enrolment does not exist as far as its coordinator can tell.
    assert world.call("other_coordinator", delete) == 404
    assert world.call("coordinator", delete) == 204


def test_coordinator_sees_only_own_opd(world: World) -> None:
    listed = world.client.get("/api/v1/opds", headers=bearer(world.tokens["coordinator"])).json()
    assert [o["code"] for o in listed] == ["DINKES"]


def test_garbage_bearer_is_401(world: World) -> None:
    status = world.client.get("/api/v1/opds", headers={"Authorization": "Bearer nope"}).status_code
    assert status == 401
    basic = world.client.get("/api/v1/opds", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    assert basic.json()["error"]["code"] == "unauthorized"


def test_a_number_listed_by_another_opd_is_listed_here_too(world: World) -> None:
    # Refusing it would tell this coordinator that another OPD lists the number.
    response = world.client.post(
        "/api/v1/opds/BAPPEDA/enrolments",
        json={"phone": "+62 812 1111 2222", "consent": {"method": "paper_form"}},
        headers=bearer(world.tokens["other_coordinator"]),
    )
    assert response.status_code == 201, response.text
    assert "DINKES" not in response.text
    same_opd = world.client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "+62 812 1111 2222", "consent": {"method": "paper_form"}},
        headers=bearer(world.tokens["coordinator"]),
    )
    # Only the caller's own list refuses it: that list is theirs to know.
    assert same_opd.status_code == 409
    assert same_opd.json()["error"]["code"] == "already_enrolled"
