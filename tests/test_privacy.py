"""Invariants 3 and 6 on the enrolment side: numbers encrypted, masked, suppression absolute."""

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, text
from sqlmodel import select
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.config import Settings, get_settings
from app.db import session_scope
from app.enrolment.models import Enrolment, EnrolmentTally, Suppression
from app.security import KeyMaterial, PhoneVault
from tests.factories import add_opd, add_token, bearer

NUMBER = "+6281298765432"
SPELLINGS = (NUMBER, "081298765432", "6281298765432", "81298765432", "98765432")
LABEL = "Siti Rahmawati Bagian Keuangan"


def _all_stored_text(engine: Engine) -> str:
    """Every value in every table, as text."""
    chunks = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)


def _sqlite_files(engine: Engine) -> bytes:
    path = Path(str(engine.url.database))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.fixture
def coordinator(engine: Engine) -> dict[str, str]:
    add_opd(engine, "DINKES")
    return bearer(add_token(engine, Role.coordinator, "DINKES"))


def test_number_and_label_are_stored_only_encrypted(
    client: TestClient,
    engine: Engine,
    coordinator: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "0812-9876-5432", "label": LABEL, "consent": {"method": "paper_form"}},
        headers=coordinator,
    )
    assert response.status_code == 201
    assert response.json()["phone_masked"] == "+62812****5432"
    csv = (
        f"nomor_hp;nama;metode_persetujuan\n0812-9876-0001;{LABEL};paper_form\n"
        "0812-9876-5432;x;kertas\n"
    )
    imported = client.post(
        "/api/v1/opds/DINKES/enrolments/import",
        files={"file": ("a.csv", csv.encode(), "text/csv")},
        headers=coordinator,
    )
    assert imported.status_code == 200
    listing = client.get("/api/v1/opds/DINKES/enrolments", headers=coordinator)
    stored = _all_stored_text(engine)
    for spelling in (*SPELLINGS, "81298760001"):
        assert spelling not in listing.text
    for spelling in (*SPELLINGS, "81298760001", LABEL):
        assert spelling not in stored
        assert spelling not in imported.text
        assert spelling not in caplog.text
    # The label is the coordinator's own note and is shown back to them, decrypted.
    assert LABEL in listing.text
    if engine.dialect.name == "sqlite":
        raw = _sqlite_files(engine)
        for spelling in (*SPELLINGS, LABEL):
            assert spelling.encode() not in raw


def test_stored_ciphertext_decrypts_to_the_number(
    client: TestClient, engine: Engine, coordinator: dict[str, str], vault: PhoneVault
) -> None:
    client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "+62 812 9876 5432", "consent": {"method": "digital_form"}},
        headers=coordinator,
    )
    with session_scope(engine) as s:
        row = s.exec(select(Enrolment)).one()
        assert row.phone_ciphertext is not None
        assert vault.decrypt(row.phone_ciphertext) == NUMBER
        assert row.phone_index == vault.blind_index(NUMBER)


def test_key_rotation_keeps_every_enrolment_readable(
    client: TestClient,
    engine: Engine,
    coordinator: dict[str, str],
    settings: Settings,
    keys: KeyMaterial,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for i in range(3):
        client.post(
            "/api/v1/opds/DINKES/enrolments",
            json={
                "phone": f"0812-9876-000{i}",
                "label": f"L{i}",
                "consent": {"method": "paper_form"},
            },
            headers=coordinator,
        )
    from cryptography.fernet import Fernet

    new_key = Fernet.generate_key().decode()
    rotated = KeyMaterial((new_key, *keys.encryption_keys), keys.blind_index_key)
    monkeypatch.setenv("SPI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SPI_ENCRYPTION_KEYS", ",".join(rotated.encryption_keys))
    monkeypatch.setenv("SPI_BLIND_INDEX_KEY", keys.blind_index_key.decode())
    monkeypatch.setenv("SPI_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        from app.cli import cli

        result = CliRunner().invoke(cli, ["keys", "rotate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "re-encrypted 3" in result.output
    only_new = PhoneVault(KeyMaterial((new_key,), keys.blind_index_key))
    with session_scope(engine) as s:
        rows = s.exec(select(Enrolment)).all()
        assert sorted(only_new.decrypt(r.phone_ciphertext or "") for r in rows) == [
            f"+6281298760{i:03d}" for i in range(3)
        ]
        assert sorted(only_new.decrypt(r.label_ciphertext or "") for r in rows) == [
            "L0",
            "L1",
            "L2",
        ]


@pytest.mark.parametrize("source", ["stop", "erase"])
def test_suppressed_number_is_listed_without_its_ciphertext_by_any_role(
    client: TestClient, engine: Engine, vault: PhoneVault, source: str
) -> None:
    add_opd(engine, "DINKES")
    add_opd(engine, "BAPPEDA")
    with session_scope(engine) as s:
        s.add(Suppression(phone_index=vault.blind_index(NUMBER), source=source))
    single = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "0812 9876 5432", "consent": {"method": "paper_form"}},
        headers=bearer(add_token(engine, Role.admin)),
    )
    assert single.status_code == 201, single.text
    assert single.json()["phone_masked"] == "+62812****5432"
    bulk = client.post(
        "/api/v1/opds/BAPPEDA/enrolments/import",
        files={"file": ("s.csv", b"phone,consent_method\n081298765432,paper_form\n", "text/csv")},
        headers=bearer(add_token(engine, Role.coordinator, "BAPPEDA")),
    )
    assert bulk.json()["rows"] == [{"row": 2, "outcome": "enrolled", "code": None, "reason": None}]
    with session_scope(engine) as s:
        rows = s.exec(select(Enrolment)).all()
        assert [(r.phone_ciphertext, r.phone_masked) for r in rows] == [
            (None, "+62812****5432")
        ] * 2
        assert {r.phone_index for r in rows} == {vault.blind_index(NUMBER)}
        refused = s.exec(select(AuditEvent).where(AuditEvent.outcome == "refused")).all()
        assert refused == []


def test_withdrawal_erases_number_and_label_and_is_tallied(
    client: TestClient, engine: Engine, coordinator: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "0812-9876-5432", "label": LABEL, "consent": {"method": "paper_form"}},
        headers=coordinator,
    ).json()
    assert (
        client.delete(f"/api/v1/enrolments/{created['id']}", headers=coordinator).status_code == 204
    )
    with session_scope(engine) as s:
        row = s.exec(select(Enrolment)).one()
        assert (row.status, row.phone_ciphertext, row.phone_index, row.label_ciphertext) == (
            "withdrawn",
            None,
            None,
            None,
        )
        tallies = {t.event: t.count for t in s.exec(select(EnrolmentTally)).all()}
        assert tallies == {"enrolled": 1, "withdrawn": 1}
    again = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "0812-9876-5432", "consent": {"method": "paper_form"}},
        headers=coordinator,
    )
    assert again.status_code == 201, "a withdrawn (not opted-out) number may be enrolled again"


def test_audit_records_changes_without_numbers_or_labels(
    client: TestClient, engine: Engine, coordinator: dict[str, str]
) -> None:
    client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "0812-9876-5432", "label": LABEL, "consent": {"method": "paper_form"}},
        headers=coordinator,
    )
    client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": "0812-9876-5432", "consent": {"method": "paper_form"}},
        headers=coordinator,
    )
    admin = bearer(add_token(engine, Role.admin))
    events = client.get("/api/v1/audit", headers=admin).json()
    actions = [(e["action"], e["outcome"], e["actor_name"]) for e in events]
    assert ("enrolment.create", "ok", "test coordinator") in actions
    assert ("enrolment.create", "refused", "test coordinator") in actions
    assert ("opd.create", "ok", "cli") in actions
    for spelling in (*SPELLINGS, LABEL):
        assert spelling not in str(events)
    only_refused = client.get(
        "/api/v1/audit",
        params={"actor_name": "test coordinator", "action": "enrolment.create"},
        headers=admin,
    ).json()
    assert {e["outcome"] for e in only_refused} == {"ok", "refused"}
    future = client.get("/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=admin)
    assert future.json() == []
