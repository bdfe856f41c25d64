"""Invariant 6: a coordinator gets the same answer for every number they list.

Whether the number is new, listed by another OPD, opted out (STOP) or erased (HAPUS), every
response a coordinator can get (enrol, import in both modes, CLI import, list, totals, delete)
is byte for byte the same once ids, timestamps and the OPD code are normalised.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.auth.models import Role
from app.cli import cli
from app.db import session_scope, utcnow
from app.enrolment import erasure, optout
from app.security import PhoneVault
from tests.factories import add_opd, add_token, bearer, enrol_number

STATES = ("new", "other_opd", "opted_out", "erased")
# Different numbers with the same masked form (+62812****5432), so the two transcripts of one
# test can be compared byte for byte.
BASELINE, PROBED = "+6281211115432", "+6281299995432"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def _put_in_state(engine: Engine, vault: PhoneVault, number: str, state: str) -> None:
    """Bring a number into one of STATES, through the services a STOP or HAPUS runs."""
    if state == "new":
        return
    enrol_number(engine, vault, "LAIN", number)
    with session_scope(engine) as s:
        index = vault.blind_index(number)
        if state == "opted_out":
            optout.stop(s, index=index, now=utcnow())
        elif state == "erased":
            erasure.erase(s, index=index, now=utcnow())


def _transcript(client: TestClient, engine: Engine, code: str, number: str, tmp_path: Path) -> str:
    """Everything a coordinator of `code` sees while listing, withdrawing and importing."""
    token = bearer(add_token(engine, Role.coordinator, code))
    url = f"/api/v1/opds/{code}/enrolments"
    local = "0" + number[3:]
    seen: list[str] = []
    ids: list[str] = []

    def note(response: object) -> None:
        seen.append(f"{response.status_code} {response.text}")  # type: ignore[attr-defined]

    def listed() -> None:
        page = client.get(url, headers=token)
        note(page)
        ids.extend(item["id"] for item in page.json()["items"])

    def withdraw_all() -> None:
        for item in client.get(url, headers=token).json()["items"]:
            note(client.delete(f"/api/v1/enrolments/{item['id']}", headers=token))

    created = client.post(
        url,
        json={"phone": number, "label": "Bagian Umum", "consent": {"method": "paper_form"}},
        headers=token,
    )
    note(created)
    ids.append(created.json()["id"])
    note(
        client.post(url, json={"phone": local, "consent": {"method": "paper_form"}}, headers=token)
    )
    listed()
    withdraw_all()
    listed()
    rows = f"phone,label,consent_method\n{local},Bagian Umum,paper_form\n{number},Lagi,paper_form\n"
    for all_or_nothing in ("true", "false"):
        note(
            client.post(
                f"{url}/import",
                headers=token,
                files={"file": ("pegawai.csv", rows.encode(), "text/csv")},
                data={"all_or_nothing": all_or_nothing},
            )
        )
        listed()
    withdraw_all()
    source = tmp_path / f"{code}.csv"
    source.write_text(rows)
    result = CliRunner().invoke(cli, ["enrol", "import", str(source), "--opd", code])
    seen.append(f"{result.exit_code} {result.output}")
    listed()
    text = "\n".join(seen)
    for n, public_id in enumerate(dict.fromkeys(ids)):
        text = text.replace(public_id, f"<id{n}>")
    return _TIME.sub("<time>", text).replace(code, "<OPD>")


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize("state", STATES)
def test_every_coordinator_answer_is_the_same_whatever_the_number_did(
    client: TestClient, engine: Engine, vault: PhoneVault, tmp_path: Path, state: str
) -> None:
    for code in ("LAIN", "DINKES", "BAPPEDA"):
        add_opd(engine, code)
    baseline = _transcript(client, engine, "DINKES", BASELINE, tmp_path)
    _put_in_state(engine, vault, PROBED, state)
    probed = _transcript(client, engine, "BAPPEDA", PROBED, tmp_path)
    assert "+62812****5432" in baseline
    assert "already_enrolled" in baseline  # the caller's own list is the one refusal
    assert probed == baseline
