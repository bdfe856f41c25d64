"""Bulk enrolment import through the API and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from app.auth.models import Role
from app.cli import cli
from app.config import Settings
from app.enrolment.models import Enrolment, EnrolmentStatus, Suppression
from app.main import create_app
from app.opds.models import Opd
from app.security import PhoneVault
from tests.factories import add_opd, add_token, bearer

OPD = "DINKES"
ID_HEADER = "nomor_hp;nama;metode_persetujuan;tanggal_persetujuan"
EN_HEADER = "phone,label,consent_method,consent_date"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- helpers ------------------------------------------------------------------------------


def e164(n: int) -> str:
    """A distinct valid Indonesian mobile number in E.164 (n < 100)."""
    return f"+62812345678{n:02d}"


def local(n: int) -> str:
    """The same number as a coordinator usually writes it."""
    return f"0812-3456-78{n:02d}"


def many(n: int) -> str:
    """A distinct valid mobile number for large files (n < 10**8)."""
    return f"0812{n:08d}"


def csv_bytes(lines: list[str], *, newline: str = "\n", bom: bool = False) -> bytes:
    """Join lines into a CSV file body."""
    data = (newline.join(lines) + newline).encode()
    return b"\xef\xbb\xbf" + data if bom else data


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    """A one-sheet workbook written by openpyxl."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(
    client: TestClient,
    secret: str,
    data: bytes,
    *,
    filename: str = "pegawai.csv",
    code: str = OPD,
    all_or_nothing: bool | None = None,
    default_consent_method: str | None = None,
) -> httpx.Response:
    """POST a file to the import endpoint."""
    form: dict[str, str] = {}
    if all_or_nothing is not None:
        form["all_or_nothing"] = "true" if all_or_nothing else "false"
    if default_consent_method is not None:
        form["default_consent_method"] = default_consent_method
    content_type = XLSX_TYPE if filename.endswith(".xlsx") else "text/csv"
    return client.post(
        f"/api/v1/opds/{code}/enrolments/import",
        headers=bearer(secret),
        files={"file": (filename, data, content_type)},
        data=form,
    )


def outcomes(body: dict[str, Any]) -> list[tuple[int, str]]:
    """(row, outcome) pairs of a report, in file order."""
    return [(r["row"], r["outcome"]) for r in body["rows"]]


def reasons(body: dict[str, Any]) -> dict[int, str | None]:
    """Row number -> reason."""
    return {r["row"]: r["reason"] for r in body["rows"]}


def codes(body: dict[str, Any]) -> dict[int, str | None]:
    """Row number -> machine code of the reason."""
    return {r["row"]: r["code"] for r in body["rows"]}


def active_count(engine: Engine) -> int:
    """Active enrolments in the database."""
    with Session(engine) as s:
        return s.exec(
            select(func.count())
            .select_from(Enrolment)
            .where(col(Enrolment.status) == EnrolmentStatus.active)
        ).one()


def enrolled_numbers(engine: Engine, vault: PhoneVault) -> set[str]:
    """The decrypted numbers of all active enrolments."""
    with Session(engine) as s:
        rows = s.exec(
            select(Enrolment.phone_ciphertext).where(
                col(Enrolment.status) == EnrolmentStatus.active
            )
        ).all()
    return {vault.decrypt(c) for c in rows if c is not None}


def stored(engine: Engine, vault: PhoneVault, number: str) -> Enrolment:
    """The enrolment row of one number, found through the blind index."""
    with Session(engine) as s:
        return s.exec(
            select(Enrolment).where(col(Enrolment.phone_index) == vault.blind_index(number))
        ).one()


def suppress(engine: Engine, vault: PhoneVault, number: str) -> None:
    """Put a number on the suppression list, as a STOP reply would."""
    with Session(engine) as s:
        s.add(Suppression(phone_index=vault.blind_index(number), source="stop"))
        s.commit()


def summary(
    total: int,
    *,
    enrolled: int = 0,
    duplicate: int = 0,
    invalid: int = 0,
    not_applied: int = 0,
    applied: bool = True,
) -> dict[str, Any]:
    return {
        "total_rows": total,
        "enrolled": enrolled,
        "duplicate": duplicate,
        "invalid": invalid,
        "not_applied": not_applied,
        "applied": applied,
    }


@pytest.fixture
def secret(engine: Engine) -> str:
    """A coordinator token for DINKES."""
    add_opd(engine, OPD)
    return add_token(engine, Role.coordinator, OPD)


# --- formats ------------------------------------------------------------------------------


def test_comma_csv_with_english_headers(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    data = csv_bytes(
        [
            EN_HEADER,
            f"{local(1)},Budi,paper_form,2025-01-15",
            f"{e164(2)},Sari,digital_form,15/01/2025",
            f"{local(3)},,paper,",
        ]
    )
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["opd"] == OPD
    assert body["summary"] == summary(3, enrolled=3)
    assert outcomes(body) == [(2, "enrolled"), (3, "enrolled"), (4, "enrolled")]
    assert enrolled_numbers(engine, vault) == {e164(1), e164(2), e164(3)}
    first = stored(engine, vault, e164(1))
    assert first.consent_method == "paper_form"
    assert first.label_ciphertext is not None
    assert vault.decrypt(first.label_ciphertext) == "Budi"
    # A consent day is midnight in the OPD's own time zone (WIB, UTC+7).
    assert first.consent_recorded_at == datetime(2025, 1, 14, 17, 0, tzinfo=UTC)
    assert stored(engine, vault, e164(2)).consent_method == "digital_form"
    assert stored(engine, vault, e164(3)).label_ciphertext is None


def test_semicolon_csv_with_indonesian_headers(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    data = csv_bytes(
        [
            ID_HEADER,
            f"{local(1)};Budi Santoso;formulir kertas;15/01/2025",
            "+62 812 3456 7802;Sari;formulir digital;2025-01-15",
            "6281234567803;Andi;kertas;",
        ]
    )
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == summary(3, enrolled=3)
    assert outcomes(body) == [(2, "enrolled"), (3, "enrolled"), (4, "enrolled")]
    assert enrolled_numbers(engine, vault) == {e164(1), e164(2), e164(3)}
    assert stored(engine, vault, e164(2)).consent_method == "digital_form"
    label = stored(engine, vault, e164(1)).label_ciphertext
    assert label is not None
    assert vault.decrypt(label) == "Budi Santoso"


def test_utf8_bom_and_crlf_line_endings(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    data = csv_bytes(
        [ID_HEADER, f"{local(1)};Dewi Ayu;kertas;", f"{local(2)};Rina;kertas;"],
        newline="\r\n",
        bom=True,
    )
    assert data.startswith(b"\xef\xbb\xbfnomor_hp;")
    assert b"\r\n" in data
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == summary(2, enrolled=2)
    assert outcomes(body) == [(2, "enrolled"), (3, "enrolled")]
    # Neither the BOM nor the CR leaks into the stored values.
    assert enrolled_numbers(engine, vault) == {e164(1), e164(2)}
    label = stored(engine, vault, e164(2)).label_ciphertext
    assert label is not None
    assert vault.decrypt(label) == "Rina"
    assert stored(engine, vault, e164(2)).consent_method == "paper_form"


def test_quoted_fields_keep_delimiters_quotes_and_row_numbers(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    data = csv_bytes(
        [
            EN_HEADER,
            f'"{local(1)}","Siregar, Budi","paper_form","2025-01-15"',
            f'"{local(2)}","Ani ""Ibu"" Lestari",paper_form,',
            # A line break inside quotes is one spreadsheet row; a label cannot hold it.
            f'{local(3)},"Baris\nkedua",paper_form,',
            f"{local(4)},Joko,paper_form,",
        ]
    )
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert outcomes(body) == [(2, "enrolled"), (3, "enrolled"), (4, "invalid"), (5, "enrolled")]
    assert codes(body)[4] == "import.label_control"
    assert reasons(body)[4] == "Nama/label memuat karakter yang tidak dapat ditampilkan."
    first = stored(engine, vault, e164(1)).label_ciphertext
    second = stored(engine, vault, e164(2)).label_ciphertext
    assert first is not None
    assert second is not None
    assert vault.decrypt(first) == "Siregar, Budi"
    assert vault.decrypt(second) == 'Ani "Ibu" Lestari'
    assert enrolled_numbers(engine, vault) == {e164(1), e164(2), e164(4)}


def test_xlsx_upload(client: TestClient, secret: str, engine: Engine, vault: PhoneVault) -> None:
    data = xlsx_bytes(
        [
            ["DAFTAR PEGAWAI DINAS KESEHATAN"],
            [],
            ["No", "Nomor HP", "Nama", "Metode Persetujuan", "Tanggal Persetujuan"],
            [1, local(1), "Budi", "Formulir Kertas", datetime(2025, 1, 15)],
            [2, 6281234567802, "Sari", "digital", "15/01/2025"],  # a numeric cell
            [3, "12345", "Andi", "kertas", None],
            [4, f"+{e164(4)[1:]}", None, "kertas", None],
        ]
    )
    response = upload(client, secret, data, filename="pegawai.xlsx")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == summary(4, enrolled=3, invalid=1)
    # Row numbers are the spreadsheet's own, below the title and header rows.
    assert outcomes(body) == [(4, "enrolled"), (5, "enrolled"), (6, "invalid"), (7, "enrolled")]
    assert enrolled_numbers(engine, vault) == {e164(1), e164(2), e164(4)}
    assert stored(engine, vault, e164(2)).consent_method == "digital_form"
    assert stored(engine, vault, e164(1)).consent_recorded_at == datetime(
        2025, 1, 14, 17, 0, tzinfo=UTC
    )


# --- row outcomes -------------------------------------------------------------------------


def test_mixed_rows_report_exact_row_numbers_and_outcomes(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    suppress(engine, vault, e164(9))
    data = csv_bytes(
        [
            ID_HEADER,  # row 1
            f"{local(1)};Budi;kertas;",  # 2 enrolled
            "0812-34ab-cd;Sari;kertas;",  # 3 invalid phone
            "021-5551234;Kantor;kertas;",  # 4 landline
            ";Tanpa Nomor;kertas;",  # 5 empty phone cell
            f"{local(6)};Andi;lisan;",  # 6 unknown consent method
            f"{local(7)};{'x' * 81};kertas;",  # 7 label too long
            "+62 812-3456-7801;Budi lagi;kertas;",  # 8 same number as row 2
            f"{local(9)};Opted Out;kertas;",  # 9 suppressed: listed like any other
            "",  # 10 blank line: skipped, not counted
            f"{local(11)};Joko;kertas;01/01/2099",  # 11 consent in the future
            f"{local(12)};Rina;digital;",  # 12 enrolled
        ]
    )
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert outcomes(body) == [
        (2, "enrolled"),
        (3, "invalid"),
        (4, "invalid"),
        (5, "invalid"),
        (6, "invalid"),
        (7, "invalid"),
        (8, "duplicate"),
        (9, "enrolled"),
        (11, "invalid"),
        (12, "enrolled"),
    ]
    assert body["summary"] == summary(10, enrolled=3, duplicate=1, invalid=6)
    # Scripts read the machine code; the coordinator reads the reason, in Bahasa Indonesia.
    assert codes(body) == {
        2: None,
        3: "invalid_phone.unparseable",
        4: "invalid_phone.landline",
        5: "invalid_phone.empty",
        6: "import.consent_method_unknown",
        7: "import.label_too_long",
        8: "duplicate",
        9: None,
        11: "import.consent_date_future",
        12: None,
    }
    why = reasons(body)
    assert why[2] is None
    assert why[12] is None
    assert "tidak dapat dibaca" in (why[3] or "")
    assert "telepon rumah/kantor" in (why[4] or "")
    assert why[5] == "Nomor HP kosong."
    assert "formulir kertas" in (why[6] or "")
    assert "80" in (why[7] or "")
    assert why[8] == "Sudah ada di daftar OPD Anda; tidak didaftarkan dua kali."
    assert why[9] is None
    assert "masa depan" in (why[11] or "")
    # The suppressed number is listed without its ciphertext.
    assert enrolled_numbers(engine, vault) == {e164(1), e164(12)}
    assert active_count(engine) == 3
    # The report never repeats a number, not even a rejected one.
    for raw in ("3456-7801", "34567801", "5551234", "3456-7809", "34567809"):
        assert raw not in response.text


def test_duplicates_across_batches_and_suppression_in_any_spelling(
    client: TestClient, settings: Settings, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    settings.import_batch_size = 2
    suppress(engine, vault, e164(5))
    data = csv_bytes(
        [
            ID_HEADER,
            f"{local(1)};A;kertas;",
            f"{local(2)};B;kertas;",
            f"{local(3)};C;kertas;",
            "6281234567801;A lagi;kertas;",  # row 2's number, in a later batch
            "+62 812 3456 7805;E;kertas;",  # suppressed: listed like any other
            f"{local(3)};C lagi;kertas;",  # row 4's number
        ]
    )
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert outcomes(body) == [
        (2, "enrolled"),
        (3, "enrolled"),
        (4, "enrolled"),
        (5, "duplicate"),
        (6, "enrolled"),
        (7, "duplicate"),
    ]
    assert active_count(engine) == 4


def test_an_ended_enrolment_of_the_same_number_does_not_block_it(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    with Session(engine) as s:
        opd_id = s.exec(select(Opd.id).where(col(Opd.code) == OPD)).one()
        assert opd_id is not None
        s.add(
            Enrolment(
                public_id="ended-enrolment-01",
                opd_id=opd_id,
                phone_ciphertext=vault.encrypt(e164(1)),
                phone_index=vault.blind_index(e164(1)),
                consent_method="paper_form",
                consent_recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
                consent_notice_version="2025-1",
                consent_recorded_by="test",
                status=EnrolmentStatus.withdrawn,
            )
        )
        s.commit()
    data = csv_bytes([ID_HEADER, f"{local(1)};A;kertas;", f"{local(2)};B;kertas;"])
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    assert outcomes(response.json()) == [(2, "enrolled"), (3, "enrolled")]
    assert active_count(engine) == 2


def test_a_number_enrolled_concurrently_is_reported_duplicate_and_the_rest_enrolled(
    client: TestClient,
    secret: str,
    engine: Engine,
    vault: PhoneVault,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Row 3's number gets enrolled after the importer looked (by another request; here in the
    # importer's own transaction, as SQLite has one writer): the bulk insert (COPY on
    # PostgreSQL) hits the unique index, and the batch is retried row by row.
    from app.enrolment import service as enrolment_service

    looked_up = enrolment_service.listed_in_opd_among

    def then_raced(session: Session, *, opd_id: int, indexes: Any) -> set[str]:
        found = looked_up(session, opd_id=opd_id, indexes=indexes)
        opd_id = session.exec(select(Opd.id).where(col(Opd.code) == OPD)).one()
        assert opd_id is not None
        with session.begin_nested():
            session.add(
                Enrolment(
                    public_id="concurrent-enrolment",
                    opd_id=opd_id,
                    phone_ciphertext=vault.encrypt(e164(2)),
                    phone_index=vault.blind_index(e164(2)),
                    consent_method="paper_form",
                    consent_recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
                    consent_notice_version="2026-1",
                    consent_recorded_by="other request",
                )
            )
        return found

    monkeypatch.setattr(enrolment_service, "listed_in_opd_among", then_raced)
    data = csv_bytes(
        [ID_HEADER, f"{local(1)};A;kertas;", f"{local(2)};B;kertas;", f"{local(3)};;kertas;"]
    )
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    assert outcomes(response.json()) == [(2, "enrolled"), (3, "duplicate"), (4, "enrolled")]
    assert enrolled_numbers(engine, vault) == {e164(1), e164(2), e164(3)}
    assert stored(engine, vault, e164(2)).consent_recorded_by == "other request"


def test_imported_rows_keep_label_consent_date_and_zone(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    data = csv_bytes([ID_HEADER, f"{local(1)};Ibu Sari;digital;15/07/2025", f"{local(2)};;kertas;"])
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    first, second = stored(engine, vault, e164(1)), stored(engine, vault, e164(2))
    assert first.label_ciphertext is not None
    assert vault.decrypt(first.label_ciphertext) == "Ibu Sari"
    assert first.consent_method == "digital_form"
    # Midnight in the OPD's zone (Asia/Jakarta, UTC+7) is 17:00 UTC the day before.
    assert first.consent_recorded_at == datetime(2025, 7, 14, 17, 0, tzinfo=UTC)
    assert second.label_ciphertext is None
    assert second.consent_method == "paper_form"
    assert second.enrolled_at.tzinfo is not None


def test_default_consent_method_applies_to_rows_without_one(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    data = csv_bytes(["nomor_hp;nama;metode_persetujuan", f"{local(1)};A;", f"{local(2)};B;kertas"])
    without = upload(client, secret, data)
    assert without.status_code == 200, without.text
    assert outcomes(without.json()) == [(2, "invalid"), (3, "enrolled")]
    assert codes(without.json())[2] == "import.consent_method_missing"
    assert "Metode persetujuan kosong" in (reasons(without.json())[2] or "")

    data = csv_bytes(["nomor_hp;nama", f"{local(3)};C", f"{local(4)};D"])
    applied = upload(client, secret, data, default_consent_method="digital_form")
    assert applied.status_code == 200, applied.text
    assert applied.json()["summary"] == summary(2, enrolled=2)
    assert stored(engine, vault, e164(3)).consent_method == "digital_form"
    assert stored(engine, vault, e164(4)).consent_method == "digital_form"

    # A method written in the row wins over the default.
    data = csv_bytes(["nomor_hp;nama;metode_persetujuan", f"{local(5)};E;kertas"])
    explicit = upload(client, secret, data, default_consent_method="digital_form")
    assert explicit.status_code == 200, explicit.text
    assert stored(engine, vault, e164(5)).consent_method == "paper_form"


def test_default_consent_method_cannot_claim_whatsapp(
    client: TestClient, secret: str, engine: Engine
) -> None:
    data = csv_bytes(["nomor_hp;nama", f"{local(1)};A"])
    response = upload(client, secret, data, default_consent_method="whatsapp")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    assert active_count(engine) == 0


# --- all or nothing, re-upload ------------------------------------------------------------


def test_all_or_nothing_with_one_bad_row_enrols_nothing(
    client: TestClient, settings: Settings, secret: str, engine: Engine
) -> None:
    settings.import_batch_size = 2  # the rollback must span several inserted batches
    data = csv_bytes(
        [
            ID_HEADER,
            f"{local(1)};A;kertas;",
            f"{local(2)};B;kertas;",
            f"{local(3)};C;kertas;",
            "0812;D;kertas;",
            f"{local(5)};E;kertas;",
        ]
    )
    response = upload(client, secret, data, all_or_nothing=True)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "import_rejected"
    # Nothing was stored, so the summary must not claim any row as enrolled.
    assert body["summary"] == summary(5, invalid=1, not_applied=4, applied=False)
    assert outcomes(body) == [
        (2, "not_applied"),
        (3, "not_applied"),
        (4, "not_applied"),
        (5, "invalid"),
        (6, "not_applied"),
    ]
    assert codes(body)[2] == "not_applied"
    assert "tidak ada yang didaftarkan" in (reasons(body)[2] or "")
    assert "tidak ada yang didaftarkan" in body["error"]["message"]
    assert active_count(engine) == 0

    # The same rows without the bad one go through, so nothing was left half-inserted.
    good = csv_bytes([ID_HEADER, *[f"{local(n)};X;kertas;" for n in (1, 2, 3, 5)]])
    retry = upload(client, secret, good, all_or_nothing=True)
    assert retry.status_code == 200, retry.text
    assert retry.json()["summary"] == summary(4, enrolled=4)
    assert active_count(engine) == 4


def test_all_or_nothing_lists_a_suppressed_row_like_any_other(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    suppress(engine, vault, e164(2))
    data = csv_bytes([ID_HEADER, f"{local(1)};A;kertas;", f"{local(2)};B;kertas;"])
    response = upload(client, secret, data, all_or_nothing=True)
    assert response.status_code == 200, response.text
    assert outcomes(response.json()) == [(2, "enrolled"), (3, "enrolled")]
    assert active_count(engine) == 2
    assert stored(engine, vault, e164(2)).phone_ciphertext is None


def test_reupload_of_the_same_file_enrols_nothing_new(
    client: TestClient, secret: str, engine: Engine
) -> None:
    data = csv_bytes([ID_HEADER, *[f"{local(n)};P{n};kertas;" for n in range(1, 6)]])
    first = upload(client, secret, data)
    assert first.status_code == 200, first.text
    assert first.json()["summary"] == summary(5, enrolled=5)
    again = upload(client, secret, data)
    assert again.status_code == 200, again.text
    assert again.json()["summary"] == summary(5, duplicate=5)
    assert {o for _, o in outcomes(again.json())} == {"duplicate"}
    assert active_count(engine) == 5


# --- refused uploads ----------------------------------------------------------------------


@pytest.fixture
def small_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """An app whose import limit is 2,000 bytes."""
    settings.max_import_bytes = 2000
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


def test_oversize_file_is_refused_with_the_limit(
    small_client: TestClient, secret: str, engine: Engine
) -> None:
    small = csv_bytes([ID_HEADER, f"{local(1)};A;kertas;"])
    accepted = upload(small_client, secret, small)
    assert accepted.status_code == 200, accepted.text

    big = csv_bytes([ID_HEADER, *[f"{local(n)};Pegawai {n};kertas;" for n in range(2, 100)]])
    assert len(big) > 2000
    response = upload(small_client, secret, big)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert "2000" in error["message"]
    assert active_count(engine) == 1


def test_oversize_stream_without_content_length_is_refused(
    small_client: TestClient, secret: str, engine: Engine
) -> None:
    boundary = "spiboundary"
    rows = "".join(f"{local(n)};Pegawai {n};kertas;\n" for n in range(1, 100))
    payload = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="pegawai.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
        f"{ID_HEADER}\n{rows}\r\n--{boundary}--\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 500):
            yield payload[i : i + 500]

    response = small_client.post(
        f"/api/v1/opds/{OPD}/enrolments/import",
        headers={**bearer(secret), "content-type": f"multipart/form-data; boundary={boundary}"},
        content=chunks(),
    )
    assert response.status_code == 413
    assert "2000" in response.json()["error"]["message"]
    assert active_count(engine) == 0


@pytest.mark.parametrize(
    ("data", "filename", "hint"),
    [
        (bytes(range(256)) * 4, "pegawai.csv", "bukan tabel CSV"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "foto.png", "bukan tabel CSV"),
        (b"bukan excel", "pegawai.xlsx", "xlsx"),
        (b"PK\x03\x04 broken zip", "pegawai.xlsx", "rusak"),
        (b"nama;jabatan\nBudi;Staf\nSari;Kepala\n", "pegawai.csv", "nomor HP"),
        (b"", "pegawai.csv", "kosong"),
    ],
    ids=["garbage", "image", "not-xlsx", "broken-zip", "no-phone-column", "empty"],
)
def test_unreadable_file_is_422(
    client: TestClient, secret: str, engine: Engine, data: bytes, filename: str, hint: str
) -> None:
    response = upload(client, secret, data, filename=filename)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unreadable_file"
    assert hint.casefold() in error["message"].casefold()
    assert active_count(engine) == 0


def test_unreadable_xlsx_without_phone_column(
    client: TestClient, secret: str, engine: Engine
) -> None:
    data = xlsx_bytes([["Nama", "Jabatan"], ["Budi", "Staf"]])
    response = upload(client, secret, data, filename="pegawai.xlsx")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "unreadable_file"
    assert active_count(engine) == 0


def test_file_that_breaks_after_inserted_batches_enrols_nothing(
    client: TestClient, settings: Settings, secret: str, engine: Engine
) -> None:
    settings.import_batch_size = 10
    lines = [ID_HEADER, *[f"{many(n)};P;kertas;" for n in range(30)]]
    # A cell over the CSV field limit, after three batches went into the database.
    lines.append(f"{many(99)};{'x' * 200_000};kertas;")
    response = upload(client, secret, csv_bytes(lines))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unreadable_file"
    assert "32" in error["message"]  # the row that broke
    assert active_count(engine) == 0


def test_unclosed_quote_late_in_file_is_not_silently_swallowed(
    client: TestClient, secret: str, engine: Engine
) -> None:
    lines = [ID_HEADER, *[f"{many(n)};P;kertas;" for n in range(40)]]
    lines[30] = '"' + lines[30]  # row 31 opens a quote that never closes
    response = upload(client, secret, csv_bytes(lines))
    # The rest of the file must not silently become one giant last cell.
    assert response.status_code == 422, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "unreadable_file"
    assert "Baris 31" in error["message"]  # where the open quote starts
    assert active_count(engine) == 0


def test_coordinator_of_another_opd_is_forbidden(
    client: TestClient, secret: str, engine: Engine
) -> None:
    add_opd(engine, "BAPPEDA")
    other = add_token(engine, Role.coordinator, "BAPPEDA")
    inspectorate = add_token(engine, Role.inspectorate)
    data = csv_bytes([ID_HEADER, f"{local(1)};A;kertas;"])
    response = upload(client, other, data)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert upload(client, inspectorate, data).status_code == 403
    assert active_count(engine) == 0
    # The same file from DINKES's own coordinator is accepted.
    assert upload(client, secret, data).status_code == 200
    assert active_count(engine) == 1


# --- scale and storage --------------------------------------------------------------------


def test_twenty_thousand_rows_import_completely(
    client: TestClient, secret: str, engine: Engine
) -> None:
    n = 20_000
    data = csv_bytes([ID_HEADER, *[f"{many(i)};Pegawai {i};kertas;" for i in range(n)]])
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert body["summary"] == summary(n, enrolled=n)
    assert len(body["rows"]) == n
    enrolled = {"outcome": "enrolled", "code": None, "reason": None}
    assert body["rows"][0] == {"row": 2, **enrolled}
    assert body["rows"][-1] == {"row": n + 1, **enrolled}
    assert active_count(engine) == n


def test_numbers_are_stored_encrypted(
    client: TestClient, secret: str, engine: Engine, vault: PhoneVault
) -> None:
    data = csv_bytes([ID_HEADER, f"{local(1)};Budi Santoso;kertas;"])
    assert upload(client, secret, data).status_code == 200
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM enrolment")).mappings().one()
    cells = " ".join(str(v) for v in row.values())
    for plain in (e164(1), e164(1)[1:], "81234567801", local(1), "Budi Santoso"):
        assert plain not in cells
    assert vault.decrypt(row["phone_ciphertext"]) == e164(1)
    assert row["phone_index"] == vault.blind_index(e164(1))


# --- CLI ----------------------------------------------------------------------------------


def test_cli_import_with_report(
    cli_env: None, tmp_path: Path, engine: Engine, vault: PhoneVault
) -> None:
    add_opd(engine, OPD)
    suppress(engine, vault, e164(4))
    source = tmp_path / "pegawai.csv"
    source.write_bytes(
        csv_bytes(
            [
                ID_HEADER,
                f"{local(1)};A;kertas;",
                "021-5551234;Kantor;kertas;",
                f"{local(3)};C;;",
                f"{local(4)};D;kertas;",
                f"{local(1)};A lagi;kertas;",
            ],
            newline="\r\n",
            bom=True,
        )
    )
    report_path = tmp_path / "laporan.json"
    result = CliRunner().invoke(
        cli,
        [
            "enrol",
            "import",
            str(source),
            "--opd",
            OPD.lower(),
            "--default-consent-method",
            "digital_form",
            "--report",
            str(report_path),
        ],
    )
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert json.loads(last) == summary(5, enrolled=3, duplicate=1, invalid=1)
    assert "row 3: invalid" in result.output
    assert "row 5:" not in result.output  # the suppressed number is listed like any other
    assert "row 6: duplicate" in result.output
    assert "5551234" not in result.output
    assert "34567804" not in result.output
    report = json.loads(report_path.read_text())
    assert report["opd"] == OPD
    assert outcomes(report) == [
        (2, "enrolled"),
        (3, "invalid"),
        (4, "enrolled"),
        (5, "enrolled"),
        (6, "duplicate"),
    ]
    assert enrolled_numbers(engine, vault) == {e164(1), e164(3)}
    assert stored(engine, vault, e164(3)).consent_method == "digital_form"


def test_cli_all_or_nothing_exits_nonzero_and_enrols_nothing(
    cli_env: None, tmp_path: Path, engine: Engine
) -> None:
    add_opd(engine, OPD)
    source = tmp_path / "pegawai.xlsx"
    source.write_bytes(
        xlsx_bytes(
            [
                ["nomor_hp", "nama", "metode_persetujuan"],
                [local(1), "A", "kertas"],
                ["0812", "B", "kertas"],
            ]
        )
    )
    result = CliRunner().invoke(
        cli, ["enrol", "import", str(source), "--opd", OPD, "--all-or-nothing"]
    )
    assert result.exit_code == 1, result.output
    assert "row 3: invalid" in result.output
    assert json.loads(result.output.strip().splitlines()[-1])["applied"] is False
    assert active_count(engine) == 0


def test_cli_refuses_unreadable_file_and_unknown_opd(
    cli_env: None, tmp_path: Path, engine: Engine
) -> None:
    add_opd(engine, OPD)
    source = tmp_path / "pegawai.csv"
    source.write_bytes(b"nama;jabatan\nBudi;Staf\n")
    result = CliRunner().invoke(cli, ["enrol", "import", str(source), "--opd", OPD])
    assert result.exit_code == 2
    assert "phone" in result.output.casefold()
    source.write_bytes(csv_bytes([ID_HEADER, f"{local(1)};A;kertas;"]))
    result = CliRunner().invoke(cli, ["enrol", "import", str(source), "--opd", "NOPE"])
    assert result.exit_code == 2
    assert active_count(engine) == 0


@pytest.mark.parametrize("method", ["whatsapp", "lisan"])
def test_cli_refuses_an_unknown_default_consent_method(
    cli_env: None, tmp_path: Path, engine: Engine, method: str
) -> None:
    add_opd(engine, OPD)
    source = tmp_path / "pegawai.csv"
    source.write_bytes(csv_bytes(["nomor_hp;nama", f"{local(1)};A"]))
    result = CliRunner().invoke(
        cli,
        ["enrol", "import", str(source), "--opd", OPD, "--default-consent-method", method],
    )
    assert result.exit_code == 2, result.output
    assert active_count(engine) == 0
