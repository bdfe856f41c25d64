"""Console helpers: log in through the dashboard's form, read the CSRF value of a page."""

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from tests.auth.helpers import login_as_token_holder

# The live server and Chromium of the dashboard's browser tests.
from tests.dashboard.conftest import chromium_path, live_server, screenshot_dir  # noqa: F401
from tests.factories import add_token


def csrf_of(html: str) -> str:
    """The CSRF value of a page's forms."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form has no CSRF field"
    return match.group(1)


def login(client: TestClient, engine: Engine, role: Role, opd_code: str | None = None) -> str:
    """A fresh session for a new token of this role; returns the pages' CSRF value."""
    client.cookies.clear()
    token = add_token(engine, role, opd_code, name=f"Koordinator {opd_code or role.value}")
    return login_as_token_holder(client, token)
