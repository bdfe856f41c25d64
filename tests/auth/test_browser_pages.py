"""axe on every page, in Debian's Chromium at 1280 px and 390 px.

The pages come from the routers (tests/auth/pages.py), so a new page is checked without being
listed here. Each is read in the state that renders it; the refusal pages too. Every page passes
axe (no serious or critical violation), fits the viewport's width, breaks no CSP rule, and loads
nothing from another origin.
"""

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.auth.models import Role
from app.security import PhoneVault
from tests.auth.helpers import add_user, fill_login
from tests.auth.pages import LOGGED_OUT, SECOND_STEP, arrange, fill, page_paths
from tests.auth.test_browser import Checked
from tests.dashboard.conftest import CHROMIUM_ARGS

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_passes_axe_and_fits(
    live_server: str,
    chromium_path: str,
    engine: Engine,
    vault: PhoneVault,
    screenshot_dir: Path,
    width: int,
) -> None:
    from playwright.sync_api import sync_playwright

    values = arrange(engine, vault)
    admin = add_user(engine, Role.admin, name="Admin Kota")
    half = add_user(engine, Role.inspectorate, totp_vault=vault)
    inspector = add_user(engine, Role.inspectorate)
    viewport = {"width": width, "height": 900 if width > 400 else 844}
    seen: set[str] = set()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:

            def visit(check: Checked, route: str, path: str) -> None:
                if path.endswith((".css", ".xlsx")):
                    return  # not a page (a download would abort the navigation)
                response = check.page.goto(f"{live_server}{path}")
                assert response is not None
                check("page" + re.sub(r"[^a-z0-9]+", "-", route.lower()).rstrip("-"))
                seen.add(route)

            # Logged out: the login form, an invitation, a spent or unknown invitation.
            page = browser.new_context(viewport=viewport).new_page()
            check = Checked(page, width, screenshot_dir, live_server)
            for route in LOGGED_OUT:
                visit(check, route, fill(route, values))
            visit(check, "/dashboard/invitation/unknown", "/dashboard/invitation/tidak-ada")
            # Half logged in: the TOTP code step.
            page.goto(f"{live_server}/dashboard/login")
            page.fill("#username", half.username)
            page.fill("#password", half.password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server}{SECOND_STEP}")
            visit(check, SECOND_STEP, SECOND_STEP)
            check.assert_clean()

            # An admin: every other page, then the refusal pages.
            page = browser.new_context(viewport=viewport).new_page()
            check = Checked(page, width, screenshot_dir, live_server)
            fill_login(page, live_server, admin)
            page.wait_for_url(f"{live_server}/dashboard")
            for route in page_paths():
                if route not in seen:
                    visit(check, route, fill(route, values))
            visit(check, "/console/opd/unknown", "/console/opd/TIDAKADA")
            visit(check, "/dashboard/campaigns/missing", "/dashboard/campaigns/999999")
            check.assert_clean()

            # The inspectorate is refused the user pages and the console.
            page = browser.new_context(viewport=viewport).new_page()
            check = Checked(page, width, screenshot_dir, live_server)
            fill_login(page, live_server, inspector)
            page.wait_for_url(f"{live_server}/dashboard")
            visit(check, "/dashboard/users/forbidden", "/dashboard/users")
            visit(check, "/console/forbidden", "/console")
            check.assert_clean()
        finally:
            browser.close()
    assert set(page_paths()) - seen <= {
        "/dashboard/static/dashboard.css",
        "/console/static/console.css",
        "/console/opd/{code}/impor/templat.xlsx",
    }
