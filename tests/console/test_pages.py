"""The console over HTTP: who may open what, CSRF, headers, and each flow's effect."""

import io
import re

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import func, select

from app.auth.models import Role
from app.console import pages
from app.db import session_scope
from app.enrolment.models import Enrolment, EnrolmentStatus
from app.security import PhoneVault
from tests.console.conftest import login
from tests.factories import add_enrolments, add_opd, enrol_number

HOME = "/console/opd/DINKES"


@pytest.fixture
def opds(engine: Engine) -> None:
    add_opd(engine, "DINKES", "Dinas Kesehatan")
    add_opd(engine, "BAPPEDA", "Badan Perencanaan")


def _listed(engine: Engine, code: str = "DINKES") -> int:
    with session_scope(engine) as s:
        from app.opds import service as opd_service

        opd = opd_service.get_by_code(s, code=code)
        return int(
            s.exec(
                select(func.count())
                .select_from(Enrolment)
                .where(Enrolment.opd_id == opd.id, Enrolment.status == EnrolmentStatus.active)
            ).one()
        )


def _token(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "no token in the form"
    return match.group(1)


def _xlsx(client: TestClient, rows: list[list[str]]) -> bytes:
    template = client.get(f"{HOME}/impor/templat.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(template.content))
    sheet = book["Daftar"]
    for n, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            sheet.cell(row=n, column=c, value=value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.usefixtures("opds")
def test_without_a_session_every_page_goes_to_the_login(client: TestClient) -> None:
    for path in ("/console", HOME, f"{HOME}/impor", f"{HOME}/poster", f"{HOME}/angka"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/dashboard/login"


@pytest.mark.usefixtures("opds")
def test_a_coordinator_reaches_only_their_own_opd(client: TestClient, engine: Engine) -> None:
    csrf = login(client, engine, Role.coordinator, "DINKES")
    assert client.get("/console").url.path == HOME
    other = "/console/opd/BAPPEDA"
    for path in (other, f"{other}/impor", f"{other}/poster", f"{other}/angka",
                 f"{other}/impor/templat.xlsx", "/console/opd/NOSUCH"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 404, path
        assert "tidak ditemukan" in response.text
    posted = client.post(
        "/console/opd/BAPPEDA/tambah",
        data={"csrf": csrf, "nomor": "081234567890", "metode": "paper_form", "bukti": "ya"},
    )
    assert posted.status_code == 404
    assert _listed(engine, "BAPPEDA") == 0


@pytest.mark.usefixtures("opds")
def test_a_coordinator_cannot_withdraw_another_opds_listing(
    client: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    enrol_number(engine, vault, "BAPPEDA", "081299990000")
    with session_scope(engine) as s:
        public_id = s.exec(select(Enrolment.public_id)).one()
    csrf = login(client, engine, Role.coordinator, "DINKES")
    # Through their own OPD's URL: the listing is not theirs, so it does not exist.
    assert client.get(f"{HOME}/tarik/{public_id}").status_code == 404
    assert client.post(f"{HOME}/tarik/{public_id}", data={"csrf": csrf}).status_code == 404
    assert _listed(engine, "BAPPEDA") == 1


@pytest.mark.usefixtures("opds")
def test_the_inspectorate_has_no_enrolment_pages(client: TestClient, engine: Engine) -> None:
    login(client, engine, Role.inspectorate)
    assert client.get("/console").status_code == 403
    assert client.get(HOME).status_code == 403
    assert client.get(f"{HOME}/impor").status_code == 403


@pytest.mark.usefixtures("opds")
def test_an_admin_chooses_an_opd_and_manages_it(client: TestClient, engine: Engine) -> None:
    csrf = login(client, engine, Role.admin)
    chooser = client.get("/console")
    assert 'href="/console/opd/BAPPEDA"' in chooser.text
    assert 'href="/console/opd/DINKES"' in chooser.text
    added = client.post(
        "/console/opd/BAPPEDA/tambah",
        data={"csrf": csrf, "nomor": "0812 3456 7890", "metode": "digital_form", "bukti": "ya"},
    )
    assert added.status_code == 200
    assert _listed(engine, "BAPPEDA") == 1


@pytest.mark.usefixtures("opds")
def test_every_form_is_refused_without_the_csrf_value(client: TestClient, engine: Engine) -> None:
    login(client, engine, Role.coordinator, "DINKES")
    add = {"nomor": "081234567890", "metode": "paper_form", "bukti": "ya"}
    for data in ({}, {"csrf": "salah"}):
        assert client.post(f"{HOME}/tambah", data=add | data).status_code == 403
        assert client.post(f"{HOME}/cari", data={"nomor": "0812"} | data).status_code == 403
        upload = client.post(
            f"{HOME}/impor/periksa",
            data=data,
            files={"berkas": ("a.csv", b"nomor_hp\n081234567890\n", "text/csv")},
        )
        assert upload.status_code == 403
        assert client.post(f"{HOME}/impor/konfirmasi", data=data).status_code == 403
        assert client.post(f"{HOME}/impor/laporan", data=data).status_code == 403
    assert _listed(engine) == 0


@pytest.mark.usefixtures("opds")
def test_pages_carry_the_security_headers_and_load_nothing_from_elsewhere(
    client: TestClient, engine: Engine
) -> None:
    login(client, engine, Role.coordinator, "DINKES")
    css = "/console/static/console.css"
    for path in (HOME, f"{HOME}/impor", f"{HOME}/poster", f"{HOME}/angka", css):
        response = client.get(path)
        assert response.headers["content-security-policy"] == pages.CSP
        assert "frame-ancestors 'none'" in pages.CSP
        assert "script-src" not in pages.CSP  # default-src 'none': no script at all
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        if path.endswith(".css"):
            continue
        assert "<script" not in response.text
        assert ' style="' not in response.text
        for url in re.findall(r'(?:src|href|action)="([^"]+)"', response.text):
            assert url.startswith(("/", "#", "?", "https://wa.me/", "data:,")), url


@pytest.mark.usefixtures("opds")
def test_add_search_and_withdraw(client: TestClient, engine: Engine) -> None:
    csrf = login(client, engine, Role.coordinator, "DINKES")
    added = client.post(
        f"{HOME}/tambah",
        data={
            "csrf": csrf,
            "nomor": "0812-3456-7890",
            "nama": "Budi, Bagian Umum",
            "metode": "paper_form",
            "tanggal": "2026-07-15",
            "bukti": "ya",
        },
    )
    assert "Pegawai berhasil ditambahkan" in added.text
    assert "+62812****7890" in added.text
    assert "081234567890" not in added.text
    assert "15/07/2026" in added.text
    assert "formulir kertas" in added.text
    for written in ("6281234567890", "+62 812-3456-7890", "0812.3456.7890"):
        found = client.post(f"{HOME}/cari", data={"csrf": csrf, "nomor": written})
        assert "Ya, nomor ini ada di daftar Anda" in found.text, written
    absent = client.post(f"{HOME}/cari", data={"csrf": csrf, "nomor": "0813-0000-1111"})
    assert "tidak ada di daftar OPD Anda" in absent.text
    unreadable = client.post(f"{HOME}/cari", data={"csrf": csrf, "nomor": "112"})
    assert unreadable.status_code == 422
    assert "nomor layanan singkat" in unreadable.text
    again = client.post(
        f"{HOME}/tambah",
        data={"csrf": csrf, "nomor": "+6281234567890", "metode": "paper_form", "bukti": "ya"},
    )
    assert again.status_code == 409
    assert "sudah ada di daftar OPD Anda" in again.text
    with session_scope(engine) as s:
        public_id = s.exec(select(Enrolment.public_id)).one()
    confirm = client.get(f"{HOME}/tarik/{public_id}")
    assert "Tarik pegawai dari daftar?" in confirm.text
    done = client.post(f"{HOME}/tarik/{public_id}", data={"csrf": csrf})
    assert "sudah ditarik" in done.text
    assert _listed(engine) == 0
    gone = client.post(f"{HOME}/cari", data={"csrf": csrf, "nomor": "081234567890"})
    assert "tidak ada di daftar OPD Anda" in gone.text


@pytest.mark.usefixtures("opds")
def test_add_refuses_without_consent_evidence_or_with_a_bad_label(
    client: TestClient, engine: Engine
) -> None:
    csrf = login(client, engine, Role.coordinator, "DINKES")
    base = {"csrf": csrf, "nomor": "081234567890", "metode": "paper_form", "bukti": "ya"}
    no_evidence = client.post(f"{HOME}/tambah", data=base | {"bukti": ""})
    assert no_evidence.status_code == 422
    assert "bukti persetujuan" in no_evidence.text
    no_method = client.post(f"{HOME}/tambah", data=base | {"metode": ""})
    assert no_method.status_code == 422
    assert "Metode persetujuan tidak dikenal" in no_method.text
    future = client.post(f"{HOME}/tambah", data=base | {"tanggal": "2999-01-01"})
    assert future.status_code == 422
    assert "masa depan" in future.text
    note = client.post(f"{HOME}/tambah", data=base | {"nama": "Budi sudah isi SPI"})
    assert note.status_code == 422
    assert "bukan catatan pengisian SPI" in note.text
    assert _listed(engine) == 0


@pytest.mark.usefixtures("opds")
def test_the_list_is_paginated(client: TestClient, engine: Engine, vault: PhoneVault) -> None:
    add_enrolments(engine, vault, "DINKES", 120)
    login(client, engine, Role.coordinator, "DINKES")
    first = client.get(HOME)
    assert "Daftar (120 orang)" in first.text
    assert "Halaman 1 dari 3" in first.text
    assert first.text.count("/tarik/") == 50
    last = client.get(f"{HOME}?halaman=3")
    assert last.text.count("/tarik/") == 20


@pytest.mark.usefixtures("opds")
def test_the_template_keeps_numbers_as_text_and_explains_itself(
    client: TestClient, engine: Engine
) -> None:
    login(client, engine, Role.coordinator, "DINKES")
    response = client.get(f"{HOME}/impor/templat.xlsx")
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames[0] == "Daftar"  # the importer reads the first sheet
    sheet = book["Daftar"]
    assert [c.value for c in sheet[1]] == [
        "Nomor HP",
        "Nama",
        "Metode Persetujuan",
        "Tanggal Persetujuan",
    ]
    assert sheet.column_dimensions["A"].number_format == "@"
    assert sheet.column_dimensions["D"].number_format == "@"
    guide = " ".join(str(c.value) for row in book["Petunjuk"].iter_rows() for c in row if c.value)
    assert "6,28E+12" in guide
    assert "formulir kertas" in guide


@pytest.mark.usefixtures("opds")
def test_import_check_confirm_and_report(
    client: TestClient, engine: Engine, vault: PhoneVault
) -> None:
    enrol_number(engine, vault, "DINKES", "081277776666")
    csrf = login(client, engine, Role.coordinator, "DINKES")
    data = _xlsx(client, [
        ["0812-1111-2222", "Ani", "formulir kertas", "01/07/2026"],
        ["6,28123E+12", "Budi", "formulir kertas", ""],
        ["0812-7777-6666", "Pegawai lama", "formulir digital", ""],
        ["0813 2222 3333", "Citra", "lisan", ""],
        ["+62 813 4444 5555", "Dewi", "formulir digital", ""],
    ])  # fmt: skip
    check = client.post(
        f"{HOME}/impor/periksa",
        data={"csrf": csrf},
        files={"berkas": ("pegawai.xlsx", data, "application/octet-stream")},
    )
    assert check.status_code == 200, check.text
    assert "<strong>2</strong> siap didaftarkan" in check.text
    assert "<strong>2</strong> bermasalah" in check.text
    assert "<strong>1</strong> sudah ada" in check.text
    assert re.search(r">3</td>.*notasi ilmiah", check.text)
    assert re.search(r">5</td>.*Metode persetujuan tidak dikenal", check.text)
    assert re.search(r">4</td>.*sudah ada", check.text)
    assert _listed(engine) == 1  # the check enrols nobody
    token = _token(check.text)
    assert "0812" not in token
    assert "Ani" not in token
    result = client.post(f"{HOME}/impor/konfirmasi", data={"csrf": csrf, "token": token})
    assert "<strong>2</strong> pegawai didaftarkan" in result.text
    assert _listed(engine) == 3
    report = client.post(f"{HOME}/impor/laporan", data={"csrf": csrf, "token": _token(result.text)})
    assert report.headers["content-type"].startswith("text/csv")
    lines = report.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Baris;Hasil;Keterangan"
    assert [line.split(";")[:2] for line in lines[1:]] == [
        ["2", "terdaftar"], ["3", "bermasalah"], ["4", "sudah ada"], ["5", "bermasalah"],
        ["6", "terdaftar"],
    ]  # fmt: skip
    assert not re.search(r"\d{6}", report.text)  # no number in the report
    # Confirming the same check again enrols nobody twice.
    again = client.post(f"{HOME}/impor/konfirmasi", data={"csrf": csrf, "token": token})
    assert "<strong>0</strong> pegawai didaftarkan" in again.text
    assert _listed(engine) == 3


@pytest.mark.usefixtures("opds")
def test_all_or_nothing_enrols_nobody_when_a_row_is_bad(client: TestClient, engine: Engine) -> None:
    csrf = login(client, engine, Role.coordinator, "DINKES")
    csv = "Nomor HP;Nama;Metode Persetujuan\n081211112222;Ani;kertas\n12;Budi;kertas\n"
    check = client.post(
        f"{HOME}/impor/periksa",
        data={"csrf": csrf, "semua_atau_tidak": "ya"},
        files={"berkas": ("pegawai.csv", csv.encode(), "text/csv")},
    )
    assert "tidak ada yang akan didaftarkan" in check.text
    assert 'name="token"' not in check.text
    assert _listed(engine) == 0


@pytest.mark.usefixtures("opds")
def test_a_default_consent_method_fills_empty_cells(client: TestClient, engine: Engine) -> None:
    csrf = login(client, engine, Role.coordinator, "DINKES")
    csv = "nomor_hp;nama\n081211112222;Ani\n"
    check = client.post(
        f"{HOME}/impor/periksa",
        data={"csrf": csrf, "metode_bawaan": "digital_form"},
        files={"berkas": ("pegawai.csv", csv.encode(), "text/csv")},
    )
    client.post(f"{HOME}/impor/konfirmasi", data={"csrf": csrf, "token": _token(check.text)})
    with session_scope(engine) as s:
        assert s.exec(select(Enrolment.consent_method)).all() == ["digital_form"]


@pytest.mark.usefixtures("opds")
def test_an_unreadable_file_gets_a_reason_in_indonesian(client: TestClient, engine: Engine) -> None:
    csrf = login(client, engine, Role.coordinator, "DINKES")
    for name, body in (
        ("a.xlsx", b"not a zip"),
        ("a.xls", b"\xd0\xcf\x11\xe0rest"),
        ("a.csv", b""),
    ):
        response = client.post(
            f"{HOME}/impor/periksa", data={"csrf": csrf}, files={"berkas": (name, body, "x/y")}
        )
        assert response.status_code == 422, name
        assert "Berkas tidak dapat dibaca sebagai daftar pegawai" in response.text


@pytest.mark.usefixtures("opds")
def test_a_check_token_is_bound_to_its_opd_and_person(client: TestClient, engine: Engine) -> None:
    csrf = login(client, engine, Role.coordinator, "DINKES")
    check = client.post(
        f"{HOME}/impor/periksa",
        data={"csrf": csrf},
        files={"berkas": ("a.csv", b"nomor_hp;persetujuan\n081211112222;kertas\n", "text/csv")},
    )
    token = _token(check.text)
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    refused = client.post(f"{HOME}/impor/konfirmasi", data={"csrf": csrf, "token": tampered})
    assert refused.status_code == 400
    assert "kedaluwarsa" in refused.text
    admin_csrf = login(client, engine, Role.admin)
    other = client.post(f"{HOME}/impor/konfirmasi", data={"csrf": admin_csrf, "token": token})
    assert other.status_code == 400
    moved = client.post(
        "/console/opd/BAPPEDA/impor/konfirmasi", data={"csrf": admin_csrf, "token": token}
    )
    assert moved.status_code == 400
    assert _listed(engine) == 0
    assert _listed(engine, "BAPPEDA") == 0


@pytest.mark.usefixtures("opds")
def test_the_poster_links_whatsapp_with_daftar_and_the_opd_code(
    client: TestClient, engine: Engine, api: object
) -> None:
    api.state.settings.whatsapp_display_number = "+62 811-0000-0000"  # type: ignore[attr-defined]
    login(client, engine, Role.coordinator, "DINKES")
    page = client.get(f"{HOME}/poster")
    assert 'href="https://wa.me/6281100000000?text=DAFTAR%20DINKES"' in page.text
    assert "<svg" in page.text
    assert 'class="qr"' in page.text
    assert "BERHENTI" in page.text
    assert "STOP" in page.text
    assert "Privasi Anda" in page.text


def test_the_qr_code_encodes_the_link() -> None:
    import segno

    from app.console import poster

    link = poster.signup_link("081100000000", "DINKES")
    assert link == "https://wa.me/6281100000000?text=DAFTAR%20DINKES"
    # The same payload at the same error level gives the same symbol: the SVG is this link's.
    expected = segno.make(link, error="m").svg_inline(
        scale=4, border=4, title="t", svgclass="qr", omitsize=True
    )
    assert poster.qr_svg(link, title="t") == expected
