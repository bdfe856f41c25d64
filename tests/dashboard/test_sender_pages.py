"""The sender and pre-flight pages (admins only), the alert banner, and the pages at 390 px."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from app.config import Settings
from app.sandbox import notices
from tests.auth.helpers import add_user, fill_login
from tests.dashboard.conftest import CHROMIUM_ARGS
from tests.dashboard.test_login import login
from tests.factories import add_token
from tests.webhook import payloads


def _flag(client: TestClient, settings: Settings) -> None:
    """Meta flags the number: one open alert."""
    field, value = notices.phone_quality(event="FLAGGED", current_limit="TIER_2K")
    body = notices.envelope(field, value, waba_id=payloads.WABA_ID)
    assert payloads.post(client, settings, body).status_code == 200


def test_only_admins_see_the_sender_pages(client: TestClient, engine: Engine) -> None:
    login(client, add_token(engine, Role.inspectorate))
    assert client.get("/dashboard/sender").status_code == 403
    assert client.get("/dashboard/doctor").status_code == 403
    assert 'href="/dashboard/sender"' not in client.get("/dashboard").text


def test_an_alert_shows_as_a_banner_and_is_resolved_on_the_sender_page(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    csrf = login(client, add_token(engine, Role.admin))
    _flag(client, settings)
    campaigns = client.get("/dashboard").text
    assert 'id="sender-alerts"' in campaigns
    assert "Ada 1 peringatan" in campaigns

    page = client.get("/dashboard/sender").text
    assert 'data-alert-kind="quality_flagged"' in page
    assert "2.000 orang per 24 jam" in page
    assert "FLAGGED" in page
    action = re.search(r'action="(/dashboard/sender/alerts/\d+/resolve)"', page)
    assert action is not None
    refused = client.post(action.group(1), data={"csrf": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    done = client.post(action.group(1), data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert 'id="sender-alerts"' not in client.get("/dashboard").text
    assert "Tidak ada peringatan terbuka" in client.get("/dashboard/sender").text


def test_refresh_and_doctor_pages_against_the_sandbox(client: TestClient, engine: Engine) -> None:
    csrf = login(client, add_token(engine, Role.admin))
    read = client.post("/dashboard/sender/refresh", data={"csrf": csrf})
    assert read.status_code == 200
    assert "Data nomor dibaca ulang dari Meta" in read.text
    assert "250 orang per 24 jam" in read.text
    assert "TIER_250" in read.text
    doctor = client.get("/dashboard/doctor")
    assert doctor.status_code == 200
    assert 'data-check="token" data-status="ok"' in doctor.text
    assert "Tidak ada pemeriksaan yang gagal" in doctor.text


@pytest.mark.browser
def test_the_sender_page_at_390_px(
    live_server: str, chromium_path: str, engine: Engine, screenshot_dir: Path
) -> None:
    from playwright.sync_api import sync_playwright

    # The page takes accounts, no longer a pasted token.
    who = add_user(engine, Role.admin, name="Admin")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            fill_login(page, live_server, who)
            page.wait_for_url(f"{live_server}/dashboard")
            page.goto(f"{live_server}/dashboard/sender")
            assert page.locator("h1").inner_text() == "Nomor pengirim WhatsApp"
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways ({width}px)"
            page.screenshot(path=str(screenshot_dir / "dashboard-sender.png"), full_page=True)
            page.goto(f"{live_server}/dashboard/doctor")
            assert page.locator("#checks").is_visible()
            page.screenshot(path=str(screenshot_dir / "dashboard-doctor.png"), full_page=True)
        finally:
            browser.close()
