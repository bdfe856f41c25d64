"""The dashboard in a real headless Chromium: log in, open a campaign, numbers match the API."""

from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.auth.models import Role
from tests.auth.helpers import add_user, fill_login
from tests.dashboard.conftest import CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def test_login_and_campaign_list_in_chromium(
    live_server: str, chromium_path: str, engine: Engine, screenshot_dir: Path
) -> None:
    from playwright.sync_api import sync_playwright

    who = add_user(engine, Role.inspectorate, name="Inspektorat")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(f"{live_server}/dashboard")
            assert page.url.endswith("/dashboard/login")
            fill_login(page, live_server, who)
            page.wait_for_url(f"{live_server}/dashboard")
            assert who.password not in page.url
            assert page.locator("h1").inner_text() == "Kampanye pengingat"
            page.screenshot(path=str(screenshot_dir / "dashboard-campaigns.png"), full_page=True)
        finally:
            browser.close()
