"""Pages carry a strict CSP (no inline script, no framing), nosniff, and load nothing foreign."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from tests.auth.helpers import add_user, login

PAGES = [
    "/dashboard/login",
    "/dashboard",
    "/dashboard/users",
    "/dashboard/users/new",
    "/dashboard/account/two-factor",
]


def directives(header: str) -> dict[str, str]:
    parts = (p.strip().split(" ", 1) for p in header.split(";") if p.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_the_security_headers(
    client: TestClient, engine: Engine, path: str
) -> None:
    login(client, add_user(engine, Role.admin))
    response = client.get(path)
    assert response.status_code == 200
    csp = directives(response.headers["content-security-policy"])
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
    assert csp["frame-ancestors"] == "'none'"
    assert csp["form-action"] == "'self'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    assert "<script" not in html  # the pages need no script at all
    foreign = re.findall(r'(?:src|href|action)="((?:https?:)?//[^"]*)"', html)
    assert foreign == []


def test_json_answers_carry_nosniff_too(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
