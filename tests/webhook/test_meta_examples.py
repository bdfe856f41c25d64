"""Every example under paths./whatsapp/webhooks in Meta's spec: signed, 200, and only the
changes it should cause (none of them carries statuses; see test_statuses for those)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, text

from app.auth.principal import cli_principal
from app.config import Settings
from app.db import session_scope
from app.enrolment import service as enrolment_service
from app.opds import service as opd_service
from app.security import PhoneVault
from tests.messaging.spec_examples import webhook_examples
from tests.webhook import payloads
from tests.webhook.conftest import FakeWhatsApp
from tests.webhook.helpers import all_stored_text

EXAMPLES = webhook_examples()
SENDER = "+16505551234"  # the number in Meta's examples
NEW_NUMBER = "+12195555358"  # user_changed_number target in the System Message example
QUIET = {"webhook_inbound_seen"}
NEUTRAL = {"webhook_inbound_seen", "webhook_auto_reply"}
EXPECTED: dict[str, set[str]] = {
    # The quick-reply payload "Unsubscribe" is a STOP.
    # A STOP changes no listing (invariant 6): only the suppression list and the tallies.
    "Button Message": {"webhook_inbound_seen", "suppression", "enrolment_tally"},
    "System Message": {"webhook_inbound_seen", "enrolment"},
    "Reaction Message": QUIET,
    "Group Create Message": set(),
    "Group Settings Update": set(),
    "Group Remove Participants": set(),
}


def _snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    with engine.connect() as conn:
        return {
            table: sorted(
                tuple(str(v) for v in row) for row in conn.execute(text(f"SELECT * FROM {table}"))
            )
            for table in inspect(conn).get_table_names()
        }


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_the_spec_has_the_sixteen_examples() -> None:
    assert len(EXAMPLES) == 16
    assert all("statuses" not in json.dumps(p) for _, p in EXAMPLES)


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_meta_example_is_accepted_and_changes_only_what_it_should(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    wa: FakeWhatsApp,
    opd: str,
    name: str,
    example: dict[str, Any],
) -> None:
    with session_scope(engine) as s:
        enrolment_service.enrol(
            s,
            vault=vault,
            actor=cli_principal(),
            opd=opd_service.get_by_code(s, code=opd),
            phone=SENDER,
            label=None,
            consent_method="paper_form",
            consent_recorded_at=None,
            notice_version="2026-1",
            regions=frozenset({"US"}),
        )
    before = _snapshot(engine)
    response = payloads.post(client, settings, example)
    assert response.status_code == 200, response.text
    after = _snapshot(engine)
    changed = {t for t in after if after[t] != before.get(t)}
    assert changed == EXPECTED.get(name, NEUTRAL)

    stored = all_stored_text(engine)
    # Nothing of the payload is kept: not its texts, ids, names, nor the numbers in clear.
    for value in _strings(example):
        if len(value) >= 6 and value not in ("whatsapp_business_account", "messages"):
            assert value not in stored, (name, value)
    for number in (SENDER, SENDER[1:], NEW_NUMBER[1:]):
        assert number not in stored
    if name == "System Message":
        with session_scope(engine) as s:
            row = s.exec(text("SELECT phone_index FROM enrolment")).one()  # type: ignore[call-overload]
        assert row[0] == vault.blind_index(NEW_NUMBER)
    if name.startswith("Group") or name == "Reaction Message" or name == "System Message":
        assert wa.replies == []
    else:
        assert len(wa.replies) == 1
