"""In Debian's Chromium at 1280 px and 390 px: invitation → password → TOTP → login with TOTP.

Every page passes axe (no serious or critical violation), fits the viewport's width, breaks no
Content-Security-Policy rule, and loads nothing from another origin.
"""

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyotp
import pytest
from sqlalchemy import Engine

from app.auth.models import Role
from tests.auth.helpers import PASSWORD, add_user, fill_login
from tests.axe import assert_accessible
from tests.dashboard.conftest import CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

NEW_PASSWORD = "teh manis hangat sore"


class Checked:
    """Checks each page the same way and keeps a screenshot of it."""

    def __init__(self, page: "Page", width: int, out: Path, origin: str) -> None:
        self.page, self.width, self.out, self.origin = page, width, out, origin
        self.requests: list[str] = []
        self.csp_errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on(
            "console",
            lambda msg: (
                self.csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )

    def __call__(self, name: str) -> None:
        assert_accessible(self.page)
        overflow = self.page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"{name} is {overflow} px wider than the {self.width} px viewport"
        self.page.screenshot(
            path=str(self.out / f"accounts-{name}-{self.width}.png"), full_page=True
        )

    def assert_clean(self) -> None:
        assert self.csp_errors == []
        assert [u for u in self.requests if not u.startswith(self.origin)] == []


@pytest.mark.parametrize("width", [1280, 390])
def test_invitation_to_login_with_totp(
    live_server: str, chromium_path: str, engine: Engine, screenshot_dir: Path, width: int
) -> None:
    from playwright.sync_api import sync_playwright

    admin = add_user(engine, Role.admin, name="Admin Kota")
    viewport = {"width": width, "height": 900 if width > 400 else 844}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            # The admin invites.
            page = browser.new_context(viewport=viewport).new_page()
            check = Checked(page, width, screenshot_dir, live_server)
            page.goto(f"{live_server}/dashboard/login")
            check("login")
            fill_login(page, live_server, admin)
            page.wait_for_url(f"{live_server}/dashboard")
            page.goto(f"{live_server}/dashboard/users/new")
            check("invite-form")
            page.fill("#display_name", "Siti Rahma")
            page.fill("#username", "siti.inspektorat")
            page.check("#role-inspectorate")
            page.click("main button[type=submit]")
            page.wait_for_selector("#invitation-link")
            check("invited")
            link = page.input_value("#invitation-link")
            page.goto(f"{live_server}/dashboard/users")
            check("users")
            check.assert_clean()

            # The invited person sets a password, then TOTP, in their own browser.
            person = browser.new_context(viewport=viewport).new_page()
            mine = Checked(person, width, screenshot_dir, live_server)
            person.goto(link)
            mine("invitation")
            person.fill("#password", NEW_PASSWORD)
            person.fill("#password_again", NEW_PASSWORD)
            person.click("main button[type=submit]")
            person.wait_for_url(f"{live_server}/dashboard/account/two-factor")
            mine("two-factor")
            secret = person.inner_text("#totp-secret").replace(" ", "")
            person.fill("#code", pyotp.TOTP(secret).now())
            person.click("main button.primary")
            person.wait_for_url(f"{live_server}/dashboard")
            mine("landing")

            # Log out, log in again: password, then a code from the next time step.
            person.click("header button[type=submit]")
            person.wait_for_url(f"{live_server}/dashboard/login")
            person.fill("#username", "siti.inspektorat")
            person.fill("#password", NEW_PASSWORD)
            person.click("main button[type=submit]")
            person.wait_for_url(f"{live_server}/dashboard/login/code")
            mine("login-code")
            person.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
            person.click("main button.primary")
            person.wait_for_url(f"{live_server}/dashboard")
            assert "Siti Rahma" in person.inner_text("header")
            mine.assert_clean()
        finally:
            browser.close()
    assert PASSWORD != NEW_PASSWORD
