"""The console in a real headless Chromium at desktop (1280 px) and phone (390 px) widths.

Each flow runs as a coordinator would: log in, add, search, withdraw; download the template,
fill it, upload, check, confirm, download the report; open the poster and the figures. Every
page passes axe-core (no serious or critical violation), loads nothing from another origin and
breaks no CSP rule; screenshots go to SPI_TEST_OUTPUT (default test-output/).
"""

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from app.auth.models import Role
from app.security import PhoneVault
from tests.auth.helpers import add_user, fill_login
from tests.axe import assert_accessible
from tests.dashboard.conftest import CHROMIUM_ARGS
from tests.factories import add_opd, enrol_number

pytestmark = pytest.mark.browser
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture(params=list(WIDTHS))
def width(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def browser_page(
    live_server: str, chromium_path: str, engine: Engine, width: str, api: FastAPI
) -> Iterator[Any]:
    """A coordinator of DINKES logged in, with every request and console error recorded."""
    from playwright.sync_api import sync_playwright

    add_opd(engine, "DINKES", "Dinas Kesehatan")
    add_opd(engine, "BAPPEDA", "Badan Perencanaan Pembangunan Daerah")
    api.state.settings.whatsapp_display_number = "6281100000000"
    who = add_user(engine, Role.coordinator, "DINKES", name="Koordinator Dinkes")
    w, h = WIDTHS[width]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": w, "height": h}, accept_downloads=True)
            page = context.new_page()
            page.requests = []  # type: ignore[attr-defined]
            page.errors = []  # type: ignore[attr-defined]
            page.on("request", lambda r: page.requests.append(r.url))  # type: ignore[attr-defined]
            page.on("console", lambda m: _note_csp(page, m))
            page.on("response", lambda r: _note_missing(page, r))
            page.goto(f"{live_server}/console")
            assert page.url.endswith("/dashboard/login")
            fill_login(page, live_server, who)
            page.wait_for_url(f"{live_server}/console**")
            page.goto(f"{live_server}/console")
            assert page.url.endswith("/console/opd/DINKES")
            yield page
            assert all(url.startswith(live_server) for url in page.requests), page.requests  # type: ignore[attr-defined]
            assert page.errors == []  # type: ignore[attr-defined]
        finally:
            browser.close()


def _note_csp(page: Any, message: Any) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        page.errors.append(message.text)


def _note_missing(page: Any, response: Any) -> None:
    # A stylesheet or image that failed; the dashboard's own pages have no favicon.
    request = response.request
    failed = response.status >= 400 and request.resource_type != "document"
    if failed and not request.url.endswith("/favicon.ico"):
        page.errors.append(f"{response.status} {request.url}")


def _shot(page: Any, directory: Path, name: str, width: str) -> None:
    page.screenshot(path=str(directory / f"console-{name}-{width}.png"), full_page=True)


def test_add_search_and_withdraw(browser_page: Any, screenshot_dir: Path, width: str) -> None:
    page = browser_page
    assert_accessible(page)
    page.fill("#tambah-nomor", "0812-3456-7890")
    page.fill("#tambah-nama", "Budi Santoso, Bagian Umum")
    page.check("#metode-paper_form")
    page.fill("#tambah-tanggal", "2026-07-15")
    page.check("#tambah-bukti")
    page.click("text=Tambahkan")
    assert "Pegawai berhasil ditambahkan" in page.inner_text("main")
    assert "+62812****7890" in page.inner_text("table")
    assert "15/07/2026" in page.inner_text("table")
    assert_accessible(page)
    _shot(page, screenshot_dir, "home", width)
    page.fill("#cari-nomor", "+62 812 3456 7890")
    page.click("button:text('Cari')")
    assert "Ya, nomor ini ada di daftar Anda" in page.inner_text("main")
    assert_accessible(page)
    page.click("table a:text('Tarik')")
    assert page.locator("h1").inner_text() == "Tarik pegawai dari daftar?"
    assert_accessible(page)
    page.click("text=Ya, tarik dari daftar")
    assert "sudah ditarik" in page.inner_text("main")
    assert "Daftar (0 orang)" in page.inner_text("main")
    _shot(page, screenshot_dir, "withdrawn", width)


def test_a_form_is_usable_by_keyboard_alone(browser_page: Any) -> None:
    page = browser_page
    page.focus("#cari-nomor")
    page.keyboard.type("081234567890")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    assert "tidak ada di daftar OPD Anda" in page.inner_text("main")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("() => document.activeElement.textContent") == "Langsung ke isi", (
        page.evaluate("() => document.activeElement.outerHTML + location.href")
    )


def test_template_upload_check_confirm_and_report(
    browser_page: Any, screenshot_dir: Path, width: str, tmp_path: Path, engine: Engine,
    vault: PhoneVault,
) -> None:  # fmt: skip
    page = browser_page
    enrol_number(engine, vault, "DINKES", "081277776666")
    page.click("nav >> text=Impor")
    assert_accessible(page)
    with page.expect_download() as download:
        page.click("text=Unduh templat Excel")
    template = tmp_path / "templat.xlsx"
    download.value.save_as(template)
    book = openpyxl.load_workbook(template)
    sheet = book["Daftar"]
    rows = [
        ["0812-1111-2222", "Ani", "formulir kertas", "01/07/2026"],
        ["6,28123E+12", "Budi", "formulir kertas", ""],
        ["0812-7777-6666", "Pegawai lama", "formulir digital", ""],
        ["0813 2222 3333", "Citra", "lisan", ""],
        ["+62 813 4444 5555", "Dewi", "formulir digital", ""],
        ["112", "Eko", "formulir kertas", ""],
    ]
    for n, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            sheet.cell(row=n, column=c, value=value)
    filled = tmp_path / "pegawai.xlsx"
    book.save(filled)
    page.set_input_files("#berkas", str(filled))
    page.click("text=Periksa berkas")
    main = page.inner_text("main")
    assert "2 siap didaftarkan" in main
    assert "3 bermasalah" in main
    assert "notasi ilmiah" in main
    assert "Metode persetujuan tidak dikenal" in main
    assert "nomor layanan singkat" in main
    assert_accessible(page)
    _shot(page, screenshot_dir, "import-check", width)
    page.click("text=Daftarkan 2 pegawai")
    assert "2 pegawai didaftarkan" in page.inner_text("main")
    assert_accessible(page)
    _shot(page, screenshot_dir, "import-result", width)
    with page.expect_download() as download:
        page.click("text=Unduh laporan (CSV)")
    report = tmp_path / "laporan.csv"
    download.value.save_as(report)
    lines = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig")), delimiter=";"))
    assert lines[0] == ["Baris", "Hasil", "Keterangan"]
    assert [line[:2] for line in lines[1:]] == [
        ["2", "terdaftar"], ["3", "bermasalah"], ["4", "sudah ada"], ["5", "bermasalah"],
        ["6", "terdaftar"], ["7", "bermasalah"],
    ]  # fmt: skip
    page.click("text=Lihat daftar pegawai")
    assert "Daftar (3 orang)" in page.inner_text("main")


def test_poster_and_figures(
    browser_page: Any, screenshot_dir: Path, width: str, live_server: str
) -> None:
    page = browser_page
    page.click("nav >> text=Poster")
    link = page.get_attribute(".poster a", "href")
    assert link == "https://wa.me/6281100000000?text=DAFTAR%20DINKES"
    assert page.locator("svg.qr").count() == 1
    assert "BERHENTI" in page.inner_text(".notice")
    assert_accessible(page)
    _shot(page, screenshot_dir, "poster", width)
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()
    page.emulate_media(media="screen")
    page.click("nav >> text=Angka OPD")
    assert "Angka agregat" in page.inner_text("h1")
    assert_accessible(page)


def test_another_opds_pages_are_not_found(browser_page: Any, live_server: str) -> None:
    page = browser_page
    for path in ("", "/impor", "/poster", "/angka", "/impor/templat.xlsx"):
        response = page.goto(f"{live_server}/console/opd/BAPPEDA{path}")
        assert response is not None
        assert response.status == 404, path
        assert "tidak ditemukan" in page.inner_text("main")
    assert_accessible(page)


def test_the_accessibility_check_itself_finds_a_violation(chromium_path: str) -> None:
    from playwright.sync_api import sync_playwright

    from tests.axe import violations

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content('<html lang="id"><main><input type="text"></main></html>')
            assert "label" in {v["id"] for v in violations(page)}
        finally:
            browser.close()
