"""Invariant 1: a staff label names a person or unit; it never carries a survey note or a link."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from app.templates.neutrality import check_label
from tests.enrolment.test_import import (
    OPD,
    active_count,
    csv_bytes,
    local,
    reasons,
    upload,
    xlsx_bytes,
)
from tests.factories import add_opd, add_token, bearer

REFUSED = [
    "SUDAH ISI SPI",
    "belum mengisi - tegur",
    "Budi (sudah)",
    "tidak mengisi",
    "jawaban: sangat setuju",
    "Sari - kirim screenshot",
    "spi.kpk.go.id/abc",
    "https://s.id/survei",
    "wajib diingatkan",
]
ACCEPTED = [
    "Budi Santoso",
    "Ibu Sari - Bagian Umum",
    "Kasubbag Perencanaan",
    "Bidang Penilaian Kinerja",
    "Sub Bagian Hukum",
    "Rina (Dinas Pendidikan)",
]


@pytest.mark.parametrize("label", REFUSED)
def test_completion_answer_pressure_and_link_wording_is_found(label: str) -> None:
    assert check_label(label), label


@pytest.mark.parametrize("label", ACCEPTED)
def test_names_positions_and_units_pass(label: str) -> None:
    assert check_label(label) == []


@pytest.fixture
def secret(engine: Engine) -> str:
    add_opd(engine, OPD)
    return add_token(engine, Role.coordinator, OPD)


@pytest.mark.parametrize("label", ["SUDAH ISI SPI", "belum mengisi - tegur", "lihat s.id/x"])
def test_api_refuses_a_note_as_label_with_an_indonesian_reason(
    client: TestClient, secret: str, engine: Engine, label: str
) -> None:
    response = client.post(
        f"/api/v1/opds/{OPD}/enrolments",
        headers=bearer(secret),
        json={"phone": local(1), "label": label, "consent": {"method": "paper_form"}},
    )
    assert response.status_code == 422, response.text
    assert "label hanya untuk mengenali pegawai" in response.text
    assert active_count(engine) == 0


def test_api_accepts_a_plain_label(client: TestClient, secret: str, engine: Engine) -> None:
    response = client.post(
        f"/api/v1/opds/{OPD}/enrolments",
        headers=bearer(secret),
        json={
            "phone": local(1),
            "label": "Ibu Sari - Bagian Umum",
            "consent": {"method": "paper_form"},
        },
    )
    assert response.status_code == 201, response.text
    assert active_count(engine) == 1


def test_csv_rows_with_note_labels_are_refused_row_by_row(
    client: TestClient, secret: str, engine: Engine
) -> None:
    data = csv_bytes(
        [
            "phone,label,consent_method",
            f"{local(1)},Budi Santoso,kertas",
            f"{local(2)},SUDAH ISI SPI,kertas",
            f"{local(3)},belum mengisi - tegur,kertas",
        ]
    )
    response = upload(client, secret, data)
    assert response.status_code == 200, response.text
    why = reasons(response.json())
    codes = {r["row"]: r["code"] for r in response.json()["rows"]}
    assert why[2] is None
    for row in (3, 4):
        assert codes[row] == "import.label_not_neutral"
        assert "label hanya untuk mengenali pegawai" in (why[row] or "")
    assert active_count(engine) == 1


def test_xlsx_rows_with_note_labels_are_refused(
    client: TestClient, secret: str, engine: Engine
) -> None:
    data = xlsx_bytes(
        [
            ["Nomor HP", "Nama", "Metode Persetujuan"],
            [local(1), "Jawaban: setuju", "kertas"],
            [local(2), "Rina", "kertas"],
        ]
    )
    response = upload(client, secret, data, filename="pegawai.xlsx")
    assert response.status_code == 200, response.text
    why = reasons(response.json())
    assert "label hanya untuk mengenali pegawai" in (why[2] or "")
    assert why[3] is None
    assert active_count(engine) == 1


def test_every_label_rule_still_finds_its_own_term() -> None:
    """The substring prefilter never hides a rule: each term, in any case, is still refused."""
    from app.templates.neutrality import _config

    rules = _config().label_rules
    assert len(rules) > 20
    for rule in rules:
        for label in (rule.term, f"Budi ({rule.term.upper()})", f"x {rule.term.title()} y"):
            assert any(f.term == rule.term for f in check_label(label)), (rule.term, label)
