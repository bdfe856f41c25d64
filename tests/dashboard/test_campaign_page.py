"""The campaign page shows exactly the API's rounded aggregates, in a real Chromium."""

from datetime import timedelta
from html import escape
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from app.auth.models import Role
from app.db import session_scope, utcnow
from app.enrolment.models import EnrolmentTally
from app.opds.models import Opd
from app.outbox.models import DeliveryTally
from app.security import PhoneVault
from tests.auth.helpers import add_user, fill_login
from tests.dashboard.conftest import CHROMIUM_ARGS
from tests.dashboard.test_login import login
from tests.factories import add_campaign, add_enrolments, add_opd, add_template, add_token

MEASURES = ("enrolled", "scheduled", "delivered", "not_delivered", "opted_out")


@pytest.fixture
def campaign_id(engine: Engine, vault: PhoneVault) -> int:
    """Three OPDs in three zones; one of them small enough to be grouped."""
    for code, tz, people in (("DINKES", "WIB", 30), ("BAPPEDA", "WITA", 12), ("KECIL", "WIT", 3)):
        add_opd(engine, code, tz=tz)
        add_enrolments(engine, vault, code, people)
    today = utcnow().date()
    cid = add_campaign(
        engine,
        template_id=add_template(engine),
        now=utcnow(),
        first_day=today - timedelta(days=10),
        last_day=today + timedelta(days=30),
    )
    figures = {
        "DINKES": {"scheduled": 30, "accepted": 28, "delivered": 25, "failed_not_on_whatsapp": 2},
        "BAPPEDA": {"scheduled": 12, "accepted": 12, "delivered": 11},
        "KECIL": {"scheduled": 3, "accepted": 3, "delivered": 2},
    }
    people = {"DINKES": 30, "BAPPEDA": 12, "KECIL": 3}
    with session_scope(engine) as s:
        opds = {o.code: o.id for o in s.exec(select(Opd)).all()}
        for code, n in people.items():
            # the factory writes rows only; the statistics read the enrolment counters
            s.add(
                EnrolmentTally(
                    opd_id=opds[code], day=today - timedelta(days=20), event="enrolled", count=n
                )
            )
        for code, outcomes in figures.items():
            for outcome, count in outcomes.items():
                s.add(
                    DeliveryTally(
                        campaign_id=cid,
                        opd_id=opds[code],
                        day=today - timedelta(days=1),
                        outcome=outcome,
                        count=count,
                    )
                )
    return cid


def _api_stats(client: TestClient, engine: Engine, campaign_id: int) -> dict[str, object]:
    admin = {"Authorization": f"Bearer {add_token(engine, Role.admin)}"}
    response = client.get(f"/api/v1/stats/campaigns/{campaign_id}", headers=admin)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_page_cells_match_the_api(client: TestClient, engine: Engine, campaign_id: int) -> None:
    api = _api_stats(client, engine, campaign_id)
    login(client, add_token(engine, Role.inspectorate))
    html = client.get(f"/dashboard/campaigns/{campaign_id}").text
    rows = {r["opd_code"]: r for r in api["rows"]}  # type: ignore[attr-defined]
    assert set(rows) == {"DINKES", "BAPPEDA", "LAINNYA"}  # KECIL (3 people) is grouped
    for code, row in rows.items():
        for measure in MEASURES:
            cell = f'data-measure="{measure}">{escape(str(row[measure]))}</td>'
            assert cell in html.split(f'data-opd="{code}"', 1)[1], (code, measure)
    assert "<svg" in html
    assert "+62" not in html  # aggregates only: no number, not even masked
    assert "dibulatkan ke kelipatan 5" in html  # the footnote says how to read the figures


def test_coordinator_page_is_own_opd_only(
    client: TestClient, engine: Engine, campaign_id: int
) -> None:
    login(client, add_token(engine, Role.coordinator, "DINKES"))
    html = client.get(f"/dashboard/campaigns/{campaign_id}").text
    assert 'data-opd="DINKES"' in html
    assert 'data-opd="BAPPEDA"' not in html
    assert 'data-opd="TOTAL"' not in html


def test_unknown_campaign_is_a_404_page(client: TestClient, engine: Engine) -> None:
    login(client, add_token(engine, Role.admin))
    response = client.get("/dashboard/campaigns/999")
    assert response.status_code == 404
    assert "tidak ditemukan" in response.text


@pytest.mark.browser
def test_campaign_page_in_chromium_matches_api(
    live_server: str,
    chromium_path: str,
    engine: Engine,
    campaign_id: int,
    screenshot_dir: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    admin = {"Authorization": f"Bearer {add_token(engine, Role.admin)}"}
    api = httpx.get(f"{live_server}/api/v1/stats/campaigns/{campaign_id}", headers=admin).json()
    who = add_user(engine, Role.inspectorate, name="Inspektorat Kota")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            fill_login(page, live_server, who)
            page.wait_for_url(f"{live_server}/dashboard")
            page.click(f"a[href='/dashboard/campaigns/{campaign_id}']")
            page.wait_for_selector("#per-opd")
            shown = {
                (
                    cell.get_attribute("data-measure"),
                    row.get_attribute("data-opd"),
                ): cell.inner_text()
                for row in page.query_selector_all("#per-opd tbody tr")
                for cell in row.query_selector_all("td[data-measure]")
            }
            expected = {
                (measure, row["opd_code"]): str(row[measure])
                for row in api["rows"]  # type: ignore[attr-defined]
                for measure in MEASURES
            }
            expected |= {(m, "TOTAL"): str(api["total"][m]) for m in MEASURES}  # type: ignore[index]
            assert shown == expected
            assert "dibulatkan ke kelipatan 5" in page.inner_text("#method-note")
            assert page.locator("svg[aria-label='Grafik harian']").count() == 1
            page.screenshot(path=str(screenshot_dir / "dashboard-campaign.png"), full_page=True)
        finally:
            browser.close()
