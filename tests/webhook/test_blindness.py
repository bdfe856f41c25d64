"""What an owner's STOP, MULAI, DAFTAR and HAPUS leave behind for a coordinator to find.

Invariant 6: a suppressed number listed by a coordinator is kept without its ciphertext until
the owner writes again; the owner's acts leave no audit event; after HAPUS no id or timestamp
a coordinator saw survives anywhere in the database.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.config import Settings
from app.db import session_scope
from app.security import PhoneVault
from tests.factories import add_token, bearer, every_cell
from tests.webhook.conftest import FakeWhatsApp
from tests.webhook.helpers import NUMBER, enrolments, say


def _list(client: TestClient, token: dict[str, str], number: str) -> dict[str, object]:
    response = client.post(
        "/api/v1/opds/DINKES/enrolments",
        json={"phone": number, "label": "Bagian Umum", "consent": {"method": "paper_form"}},
        headers=token,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("suppress_with", "come_back_with"),
    [("STOP", ("MULAI",)), ("HAPUS", ("DAFTAR DINKES", "YA"))],
)
def test_a_suppressed_number_is_listed_without_ciphertext_until_the_owner_returns(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    opd: str,
    suppress_with: str,
    come_back_with: tuple[str, ...],
) -> None:
    token = bearer(add_token(engine, Role.coordinator, opd))
    say(client, settings, suppress_with)
    _list(client, token, NUMBER)
    [row] = enrolments(engine)
    assert (row.phone_ciphertext, row.phone_masked) == (None, "+62812****5432")
    assert row.phone_index == vault.blind_index(NUMBER)
    for text in come_back_with:
        say(client, settings, text)
    [row] = enrolments(engine)  # the coordinator's row, not a second one
    assert row.consent_method == "paper_form"
    assert row.phone_ciphertext is not None
    assert vault.decrypt(row.phone_ciphertext) == NUMBER


def test_the_owners_acts_leave_no_audit_event(
    client: TestClient, settings: Settings, engine: Engine, wa: FakeWhatsApp, opd: str
) -> None:
    token = bearer(add_token(engine, Role.coordinator, opd))
    _list(client, token, NUMBER)
    with session_scope(engine) as s:
        before = s.execute(select(AuditEvent.action, AuditEvent.object_id)).all()
    for text in ("STOP", "MULAI", "STOP", "DAFTAR DINKES", "YA", "DATA", "HAPUS"):
        say(client, settings, text)
    with session_scope(engine) as s:
        after = s.execute(select(AuditEvent.action, AuditEvent.object_id)).all()
    assert after == before
    # The coordinator's act is there, keyed by the OPD only.
    assert [a for a in before if a[0].startswith("enrolment.")] == [("enrolment.create", opd)]


def test_after_hapus_nothing_a_coordinator_saw_remains(
    client: TestClient, settings: Settings, engine: Engine, wa: FakeWhatsApp, opd: str
) -> None:
    token = bearer(add_token(engine, Role.coordinator, opd))
    seen = _list(client, token, NUMBER)
    say(client, settings, "STOP")
    say(client, settings, "HAPUS")
    times = {
        datetime.fromisoformat(str(seen[key]).replace("Z", "+00:00"))
        for key in ("enrolled_at", "consent_recorded_at")
    }
    cells = every_cell(engine)
    assert seen["id"] not in cells
    assert not [c for c in cells if isinstance(c, datetime) and c in times]
    assert not [c for c in cells if isinstance(c, str) and "5432" in c]
