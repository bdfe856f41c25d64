"""Bulk enrolment from a coordinator's CSV/XLSX, in batches, with a row-level report."""

import contextlib
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import IO, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.db import begin_reads, copy_rows, is_postgresql, utcnow
from app.enrolment import reasons
from app.enrolment import service as enrolment_service
from app.enrolment.import_rows import (
    ALREADY_LISTED,
    DUPLICATE,
    ENROLLED,
    INVALID,
    Checked,
    ImportOptions,
    Outcomes,
    check_row,
    one_at_a_time,
    sort_batch,
)
from app.enrolment.import_staging import InvalidRow, Sealed, Staged, Staging
from app.enrolment.models import Enrolment, EnrolmentStatus
from app.enrolment.phones import mask_phone
from app.enrolment.rows import RawRow
from app.enrolment.schemas import ImportSummary
from app.opds.models import Opd
from app.security import PhoneVault

__all__ = ["ImportOptions", "ImportReport", "check_enrolments", "import_enrolments"]
# Rows per write transaction on SQLite: its one write lock is held for about 50 ms at a time,
# so a webhook or the worker queued behind a batch is served at once.
SQLITE_WRITE_BATCH = 500
T = TypeVar("T")


class ImportReport:
    """Row outcomes spooled to a temporary file, so memory stays flat for any file size."""

    def __init__(self) -> None:
        self.summary = ImportSummary()
        # Closed by close(), once the streamed response has been sent.
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115

    def add(self, row: int, outcome: str, reason: str | None = None) -> None:
        """Record one row's outcome."""
        self.summary.total_rows += 1
        setattr(self.summary, outcome, getattr(self.summary, outcome) + 1)
        if reason is None:  # most rows; the outcome is one of this module's constants
            self._spool.write(b'[%d, "%s", null]\n' % (row, outcome.encode()))
        else:
            self._spool.write(json.dumps([row, outcome, reason]).encode() + b"\n")

    def iter_rows(self) -> Iterator[dict[str, object]]:
        """Each row's outcome, in file order; rows of an import that was not applied say so.

        A row that was not enrolled carries a machine `code` and its `reason` in Indonesian.
        """
        self._spool.seek(0)
        for line in self._spool:
            row, outcome, reason = json.loads(line)
            if outcome == ENROLLED and not self.summary.applied:
                outcome = "not_applied"
            code, text = reasons.describe(outcome, reason)
            yield {"row": row, "outcome": outcome, "code": code, "reason": text}

    def iter_json(self, head: dict[str, object] | None = None) -> Iterator[bytes]:
        """The report as one JSON document, produced piece by piece."""
        doc = dict(head or {})
        doc["summary"] = self.summary.model_dump()
        yield json.dumps(doc)[:-1].encode() + b', "rows": ['
        # Some hundred rows per chunk: every chunk of a streamed response is a trip through
        # the thread pool, which a busy server makes slow.
        chunk: list[bytes] = []
        for i, row in enumerate(self.iter_rows()):
            chunk.append((b"," if i else b"") + json.dumps(row).encode())
            if len(chunk) == 500:
                yield b"".join(chunk)
                chunk = []
        yield b"".join(chunk) + b"]}"

    def close(self) -> None:
        """Drop the spooled rows."""
        self._spool.close()


def _batches(items: Iterator[T], size: int) -> Iterator[list[T]]:
    # itertools.batched arrives only with Python 3.12.
    while batch := list(islice(items, size)):
        yield batch


def _seal(vault: PhoneVault, item: Checked) -> Staged:
    """Encrypt a valid row's number and label (every row: the work must not depend on whether
    the number is suppressed)."""
    if isinstance(item, InvalidRow):
        return item
    label_ciphertext = vault.encrypt(item.label) if item.label else None
    return Sealed(
        item.row,
        item.index,
        mask_phone(item.e164),
        vault.encrypt(item.e164),
        label_ciphertext,
        item.method,
        item.recorded_at,
    )


def import_enrolments(
    session: Session,
    *,
    vault: PhoneVault,
    actor: Principal,
    opd: Opd,
    rows: Iterable[RawRow],
    opts: ImportOptions,
    report: ImportReport,
) -> ImportSummary:
    """Enrol every valid row; with all_or_nothing, enrol nothing if any row is bad.

    Commits: the caller's open transaction first, then each batch in a short transaction of
    its own, so that no import holds SQLite's single write lock for long. The whole file is
    read, checked and encrypted before anything is written, so a file that turns out bad
    (or, with all_or_nothing, has a bad row) enrols nothing. Every batch is applied once:
    an import cut short can be uploaded again, and its applied rows come back as duplicates.
    """
    assert opd.id is not None
    opts.refuse_bad()
    session.commit()
    tz = ZoneInfo(opd.timezone)
    now = utcnow()
    staging = Staging()
    try:
        with one_at_a_time:
            invalid = 0
            for raw in rows:
                item = _seal(vault, check_row(raw, vault=vault, opts=opts, tz=tz, now=now))
                invalid += isinstance(item, InvalidRow)
                staging.add(item)
            if opts.all_or_nothing and invalid:
                _refuse(session, staging, opd_id=opd.id, size=opts.batch_size, report=report)
            else:
                _apply(session, staging, actor=actor, opd=opd, opts=opts, report=report, now=now)
    finally:
        staging.close()
    _audit(session, actor=actor, opd=opd, summary=report.summary)
    return report.summary


def check_enrolments(
    session: Session,
    *,
    vault: PhoneVault,
    opd: Opd,
    rows: Iterable[RawRow],
    opts: ImportOptions,
    report: ImportReport,
) -> ImportSummary:
    """What import_enrolments would report for these rows now, writing nothing (a dry run).

    The same row checks and the same duplicate lookups (this OPD's list, numbers earlier in
    the file), in file order, so the outcomes and reasons are the import's. Nothing is
    encrypted, written, tallied or audited. Commits the caller's transaction first and then
    only reads, without SQLite's write lock, so a long check keeps no writer waiting.
    """
    assert opd.id is not None
    opts.refuse_bad()
    opd_id, tz = opd.id, ZoneInfo(opd.timezone)
    begin_reads(session)
    now = utcnow()
    with one_at_a_time:
        checked = (check_row(raw, vault=vault, opts=opts, tz=tz, now=now) for raw in rows)
        _sort_without_writing(session, checked, opd_id=opd_id, size=opts.batch_size, report=report)
    if opts.all_or_nothing and report.summary.invalid:
        _not_applied(report.summary)
    return report.summary


def _sort_without_writing(
    session: Session,
    items: Iterator[Checked] | Iterator[Staged],
    *,
    opd_id: int,
    size: int,
    report: ImportReport,
) -> None:
    """Report each row's outcome as the import would, batch by batch, writing nothing."""
    # Numbers of rows that the import would have enrolled by then (not written here).
    seen: set[str] = set()
    for batch in _batches(items, size):
        valid = [c for c in batch if not isinstance(c, InvalidRow)]
        outcomes, fresh = sort_batch(session, valid, opd_id=opd_id, seen=seen)
        for c in fresh:
            seen.add(c.index)
            outcomes[c.row] = (ENROLLED, None)
        _report_batch(report, batch, outcomes)


def _refuse(
    session: Session, staging: Staging, *, opd_id: int, size: int, report: ImportReport
) -> None:
    """Report every row of an all_or_nothing import that has a bad row: nothing is applied."""
    begin_reads(session)
    _sort_without_writing(session, iter(staging), opd_id=opd_id, size=size, report=report)
    _not_applied(report.summary)


def _not_applied(summary: ImportSummary) -> None:
    summary.applied = False
    summary.not_applied, summary.enrolled = summary.enrolled, 0


def _apply(
    session: Session,
    staging: Staging,
    *,
    actor: Principal,
    opd: Opd,
    opts: ImportOptions,
    report: ImportReport,
    now: datetime,
) -> None:
    size = opts.batch_size if is_postgresql(session) else min(opts.batch_size, SQLITE_WRITE_BATCH)
    assert opd.id is not None
    try:
        for batch in _batches(iter(staging), size):
            sealed = [c for c in batch if isinstance(c, Sealed)]
            outcomes, enrolled = _write_batch(session, sealed, actor=actor, opd=opd, opts=opts)
            # In the batch's transaction, so the tally counts exactly the rows stored.
            enrolment_service.tally(
                session, opd_id=opd.id, event="enrolled", at=now, amount=enrolled
            )
            session.commit()
            _report_batch(report, batch, outcomes)
    except BaseException:
        session.rollback()
        # What was committed stays (each row once); the audit trail says the import stopped.
        with contextlib.suppress(Exception):
            _audit(session, actor=actor, opd=opd, summary=report.summary, outcome="interrupted")
            session.commit()
        raise


def _audit(
    session: Session,
    *,
    actor: Principal,
    opd: Opd,
    summary: ImportSummary,
    outcome: str | None = None,
) -> None:
    audit_service.record(
        session,
        actor=actor,
        action="enrolment.import",
        object_type="opd",
        object_id=opd.code,
        outcome=outcome or ("ok" if summary.applied else "refused"),
        detail=summary.model_dump(),
    )


def _write_batch(
    session: Session, sealed: list[Sealed], *, actor: Principal, opd: Opd, opts: ImportOptions
) -> tuple[Outcomes, int]:
    """Insert a batch's new numbers; each row's outcome, and how many were enrolled."""
    assert opd.id is not None
    suppressed = enrolment_service.suppressed_among(session, {c.index for c in sealed})
    outcomes, fresh = sort_batch(session, sealed, opd_id=opd.id, seen=set())
    enrolled = 0
    for c, ok in _insert(session, fresh, suppressed, actor=actor, opd=opd, opts=opts):
        outcomes[c.row] = (ENROLLED, None) if ok else (DUPLICATE, ALREADY_LISTED)
        enrolled += ok
    return outcomes, enrolled


def _report_batch(
    report: ImportReport, batch: Sequence[Checked | Staged], outcomes: Outcomes
) -> None:
    for item in batch:
        if isinstance(item, InvalidRow):
            report.add(item.row, INVALID, item.reason)
        else:
            report.add(item.row, *outcomes[item.row])


def _insert(
    session: Session,
    fresh: list[Sealed],
    suppressed: set[str],
    *,
    actor: Principal,
    opd: Opd,
    opts: ImportOptions,
) -> Iterator[tuple[Sealed, bool]]:
    """Insert in one statement; if a concurrent enrolment raced us, fall back row by row."""
    if not fresh:
        return
    now = utcnow()
    values = [
        {
            "public_id": enrolment_service.new_public_id(),
            "opd_id": opd.id,
            # A suppressed number is listed without its ciphertext: the list needs none.
            "phone_ciphertext": None if c.index in suppressed else c.phone_ciphertext,
            "phone_masked": c.masked,
            "phone_index": c.index,
            "label_ciphertext": c.label_ciphertext,
            "consent_method": c.method,
            "consent_recorded_at": c.recorded_at,
            "consent_notice_version": opts.notice_version,
            "consent_recorded_by": actor.name,
            "status": EnrolmentStatus.active.value,
            "enrolled_at": now,
        }
        for c in fresh
    ]
    table = Enrolment.__table__  # type: ignore[attr-defined]
    try:
        with session.begin_nested():
            copy_rows(session, table, values)
    except IntegrityError:
        for c, v in zip(fresh, values, strict=True):
            try:
                with session.begin_nested():
                    session.execute(insert(table), [v])
                yield c, True
            except IntegrityError:
                yield c, False
        return
    for c in fresh:
        yield c, True
