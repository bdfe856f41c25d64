"""Invariant 6 on the console: every page a coordinator sees is the same whatever the number did.

Whether a number is new, listed by another OPD, opted out (STOP) or erased (HAPUS), the pages
for adding it, adding it again, searching it, listing, withdrawing, and importing it (check,
confirm, report; with and without "semua atau tidak sama sekali") are byte for byte the same
once CSRF values, encrypted form tokens, listing ids and the OPD's code are normalised.
"""

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth.models import Role
from app.db import session_scope, utcnow
from app.enrolment import erasure, optout
from app.security import PhoneVault
from tests.console.conftest import csrf_of, login
from tests.factories import add_opd, enrol_number

STATES = ("new", "other_opd", "opted_out", "erased")
# Different numbers with the same masked form (+62812****5432), as in tests/enrolment.
BASELINE, PROBED = "+6281211115432", "+6281299995432"
_HIDDEN = re.compile(r'name="(csrf|token)" value="[^"]+"')
_LISTING = re.compile(r"/tarik/([A-Za-z0-9_-]+)")


def _put_in_state(engine: Engine, vault: PhoneVault, number: str, state: str) -> None:
    if state == "new":
        return
    enrol_number(engine, vault, "LAIN", number)
    with session_scope(engine) as s:
        index = vault.blind_index(number)
        if state == "opted_out":
            optout.stop(s, index=index, now=utcnow())
        elif state == "erased":
            erasure.erase(s, index=index, now=utcnow())


def _transcript(client: TestClient, engine: Engine, code: str, number: str) -> str:
    """Every page a coordinator of `code` sees while adding, finding, withdrawing, importing."""
    csrf = login(client, engine, Role.coordinator, code)
    home = f"/console/opd/{code}"
    local = "0" + number[3:]
    seen: list[str] = []

    def note(response: object) -> str:
        text = response.text  # type: ignore[attr-defined]
        seen.append(f"{response.status_code} {text}")  # type: ignore[attr-defined]
        return str(text)

    def withdraw_all() -> None:
        for public_id in dict.fromkeys(_LISTING.findall(client.get(home).text)):
            note(client.get(f"{home}/tarik/{public_id}"))
            note(client.post(f"{home}/tarik/{public_id}", data={"csrf": csrf}))

    add = {"csrf": csrf, "nama": "Bagian Umum", "metode": "paper_form", "bukti": "ya"}
    note(client.post(f"{home}/tambah", data=add | {"nomor": number}))
    note(client.post(f"{home}/tambah", data=add | {"nomor": local}))
    for written in (number, local, local[:4] + "-" + local[4:8] + "-" + local[8:]):
        note(client.post(f"{home}/cari", data={"csrf": csrf, "nomor": written}))
    withdraw_all()
    note(client.post(f"{home}/cari", data={"csrf": csrf, "nomor": number}))
    rows = f"nomor_hp;nama;persetujuan\n{local};Bagian Umum;kertas\n{number};Lagi;kertas\n"
    for all_or_nothing in ("ya", ""):
        check = note(
            client.post(
                f"{home}/impor/periksa",
                data={"csrf": csrf, "semua_atau_tidak": all_or_nothing},
                files={"berkas": ("pegawai.csv", rows.encode(), "text/csv")},
            )
        )
        token = re.search(r'name="token" value="([^"]+)"', check)
        assert token, "the check offers a confirmation"
        result = note(
            client.post(f"{home}/impor/konfirmasi", data={"csrf": csrf, "token": token[1]})
        )
        report = re.search(r'name="token" value="([^"]+)"', result)
        assert report
        note(client.post(f"{home}/impor/laporan", data={"csrf": csrf, "token": report[1]}))
        note(client.get(home))
        withdraw_all()
    assert csrf_of(client.get(home).text) == csrf
    text = _HIDDEN.sub(r'name="\1" value="<v>"', "\n".join(seen))
    for n, public_id in enumerate(dict.fromkeys(_LISTING.findall(text))):
        text = text.replace(public_id, f"<id{n}>")
    # The add form is re-filled with what the coordinator typed: their own input, not an answer.
    for written in (number, local):
        text = text.replace(f'value="{written}"', 'value="<typed>"')
    return text.replace(code, "<OPD>")


@pytest.mark.parametrize("state", STATES)
def test_every_console_page_is_the_same_whatever_the_number_did(
    client: TestClient, engine: Engine, vault: PhoneVault, state: str
) -> None:
    for code in ("LAIN", "DINKES", "BAPPEDA"):
        add_opd(engine, code)
    baseline = _transcript(client, engine, "DINKES", BASELINE)
    _put_in_state(engine, vault, PROBED, state)
    probed = _transcript(client, engine, "BAPPEDA", PROBED)
    assert "+62812****5432" in baseline
    assert "sudah ada di daftar OPD Anda" in baseline  # the caller's own list: the one refusal
    assert "Ya, nomor ini ada di daftar Anda" in baseline
    assert probed == baseline
