"""The import's dry run (the console's check page) reports what the import does, writing nothing.

Imports commit batch by batch, so the check can no longer be an import rolled back at the end:
`check_enrolments` sorts the rows with the import's own functions and only reads. These tests
pin that check and import agree row for row and reason for reason (bad rows, duplicates within
the file across batches, numbers already listed, numbers listed elsewhere, opted out or
erased), that the check writes nothing, and that it keeps no write lock while it runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, SQLModel, col, select

from app import db_sqlite
from app.audit.models import AuditEvent
from app.auth.principal import cli_principal
from app.db import session_scope, utcnow
from app.enrolment import erasure, optout
from app.enrolment.importing import (
    ImportOptions,
    ImportReport,
    check_enrolments,
    import_enrolments,
)
from app.enrolment.models import Enrolment, EnrolmentTally
from app.enrolment.rows import RawRow
from app.opds import service as opd_service
from app.opds.models import Opd
from app.security import PhoneVault
from tests.factories import add_opd, enrol_number

# A batch smaller than the file, so duplicates meet across batch boundaries.
BATCH = 3
LISTED_HERE, LISTED_ELSEWHERE = "+6281211110001", "+6281211110002"
OPTED_OUT, ERASED = "+6281211110003", "+6281211110004"
# (phone, consent method): row numbers start at 2, as under a header line.
FILE = [
    ("081211110010", "kertas"),  # new
    ("081211110001", "kertas"),  # already on this OPD's list
    ("12", "kertas"),  # invalid number
    ("081211110002", "kertas"),  # listed by another OPD
    ("081211110010", "kertas"),  # duplicate of row 2, next batch
    ("081211110003", "kertas"),  # opted out (STOP)
    ("081211110004", "kertas"),  # erased (HAPUS)
    ("081211110011", "lisan"),  # unknown consent method
    ("0812-1111-0011", "kertas"),  # new, the number of the row before
    ("+62 812 1111 0011", "kertas"),  # duplicate of row 10 in another spelling
]


def _rows() -> list[RawRow]:
    return [
        RawRow(row_number=n, phone=phone, label=None, consent_method=method, consent_date=None)
        for n, (phone, method) in enumerate(FILE, start=2)
    ]


@pytest.fixture
def arranged(engine: Engine, vault: PhoneVault) -> Engine:
    for code in ("DINKES", "LAIN"):
        add_opd(engine, code)
    enrol_number(engine, vault, "DINKES", LISTED_HERE)
    for number in (LISTED_ELSEWHERE, OPTED_OUT, ERASED):
        enrol_number(engine, vault, "LAIN", number)
    with session_scope(engine) as s:
        optout.stop(s, index=vault.blind_index(OPTED_OUT), now=utcnow())
        erasure.erase(s, index=vault.blind_index(ERASED), now=utcnow())
    return engine


def _options(*, all_or_nothing: bool) -> ImportOptions:
    return ImportOptions(
        regions=frozenset({"ID"}),
        notice_version="2026-1",
        batch_size=BATCH,
        all_or_nothing=all_or_nothing,
    )


def _counts(engine: Engine) -> tuple[int, ...]:
    """Rows in every table the import writes (listings, tallies, audit)."""
    with Session(engine) as s:
        return tuple(
            s.exec(select(func.count()).select_from(table)).one()
            for table in (Enrolment, EnrolmentTally, AuditEvent)
        )


def _run(
    engine: Engine, vault: PhoneVault, *, dry_run: bool, all_or_nothing: bool
) -> tuple[dict[str, object], list[dict[str, object]]]:
    report = ImportReport()
    try:
        with session_scope(engine) as s:
            opd = opd_service.get_by_code(s, code="DINKES")
            opts = _options(all_or_nothing=all_or_nothing)
            if dry_run:
                summary = check_enrolments(
                    s, vault=vault, opd=opd, rows=_rows(), opts=opts, report=report
                )
            else:
                summary = import_enrolments(
                    s,
                    vault=vault,
                    actor=cli_principal(),
                    opd=opd,
                    rows=_rows(),
                    opts=opts,
                    report=report,
                )
        return summary.model_dump(), list(report.iter_rows())
    finally:
        report.close()


def test_the_check_reports_row_for_row_what_the_import_then_does(
    arranged: Engine, vault: PhoneVault
) -> None:
    before = _counts(arranged)
    checked = _run(arranged, vault, dry_run=True, all_or_nothing=False)
    assert _counts(arranged) == before, "the check wrote something"
    imported = _run(arranged, vault, dry_run=False, all_or_nothing=False)
    assert checked == imported
    summary, rows = checked
    assert [(r["row"], r["outcome"]) for r in rows] == [
        (2, "enrolled"),
        (3, "duplicate"),
        (4, "invalid"),
        (5, "enrolled"),
        (6, "duplicate"),
        (7, "enrolled"),
        (8, "enrolled"),
        (9, "invalid"),
        (10, "enrolled"),
        (11, "duplicate"),
    ]
    assert (summary["enrolled"], summary["duplicate"], summary["invalid"]) == (5, 3, 2)
    assert summary["applied"] is True


def test_all_or_nothing_check_and_import_agree_and_apply_nothing(
    arranged: Engine, vault: PhoneVault
) -> None:
    before = _counts(arranged)
    checked = _run(arranged, vault, dry_run=True, all_or_nothing=True)
    assert _counts(arranged) == before
    imported = _run(arranged, vault, dry_run=False, all_or_nothing=True)
    assert checked == imported
    summary, rows = checked
    assert summary["applied"] is False
    assert (summary["enrolled"], summary["not_applied"]) == (0, 5)
    assert {r["outcome"] for r in rows} == {"not_applied", "duplicate", "invalid"}
    listings, tallies, audits = _counts(arranged)
    # Nothing listed or tallied; only the refusal is audited.
    assert (listings, tallies, audits) == (before[0], before[1], before[2] + 1)


def _writes_meanwhile(engine: Engine, rows: list[RawRow], outcome: list[str]) -> Iterator[RawRow]:
    """The rows, with another writer committing a change once the check's reads have begun."""
    for raw in rows:
        if raw.row_number == 2 + BATCH + 1:  # the first batch has been looked up
            with session_scope(engine) as other:
                other.add(Opd(code="BARU", name="Dinas Baru", timezone="Asia/Jakarta"))
            outcome.append("written")
        yield raw


def test_a_check_keeps_no_write_lock_while_it_runs(
    arranged: Engine, vault: PhoneVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writer that has to wait gives up after 1 s, instead of SQLite's 30 s.
    monkeypatch.setattr(db_sqlite, "BUSY_TIMEOUT_SECONDS", 1.0)
    outcome: list[str] = []
    report = ImportReport()
    try:
        # Like a console request: its session has begun (on SQLite: holding the write lock).
        with session_scope(arranged) as s:
            opd = opd_service.get_by_code(s, code="DINKES")
            summary = check_enrolments(
                s,
                vault=vault,
                opd=opd,
                rows=_writes_meanwhile(arranged, _rows(), outcome),
                opts=_options(all_or_nothing=False),
                report=report,
            )
    finally:
        report.close()
    assert outcome == ["written"]
    assert summary.total_rows == len(FILE)
    with Session(arranged) as s:
        assert s.exec(select(Opd).where(col(Opd.code) == "BARU")).one()


def test_the_check_touches_only_the_tables_it_reads(arranged: Engine, vault: PhoneVault) -> None:
    # Every table, not only the three the import writes: a dry run leaves the database as it was.
    def everything() -> list[tuple[str, int]]:
        with Session(arranged) as s:
            return [
                (t.name, s.exec(select(func.count()).select_from(t)).one())
                for t in SQLModel.metadata.sorted_tables
            ]

    before = everything()
    _run(arranged, vault, dry_run=True, all_or_nothing=False)
    _run(arranged, vault, dry_run=True, all_or_nothing=True)
    assert everything() == before
