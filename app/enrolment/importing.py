"""Bulk enrolment from a coordinator's CSV/XLSX, in batches, with a row-level report."""

import contextlib
import json
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time
from itertools import islice
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.audit import service as audit_service
from app.auth.principal import Principal
from app.config import Settings
from app.db import copy_rows, is_postgresql, utcnow
from app.enrolment import service as enrolment_service
from app.enrolment.import_staging import InvalidRow, Sealed, Staged, Staging
from app.enrolment.models import Enrolment, EnrolmentStatus
from app.enrolment.phones import InvalidPhone, mask_phone, normalise_phone
from app.enrolment.rows import RawRow, parse_consent_date, parse_consent_method
from app.enrolment.schemas import ImportSummary, clean_label
from app.errors import Invalid
from app.opds.models import Opd
from app.security import PhoneVault

# No outcome depends on another OPD's list or on the suppression list (invariant 6): a
# suppressed number is listed like any other and simply never messaged.
ENROLLED, DUPLICATE, INVALID = "enrolled", "duplicate", "invalid"
ALREADY_LISTED = "already on this OPD's list"
# Rows per write transaction on SQLite: its one write lock is held for about 50 ms at a time,
# so a webhook or the worker queued behind a batch is served at once.
SQLITE_WRITE_BATCH = 500
# One import at a time per process. Checking and encrypting rows is CPU work under the GIL;
# several imports at once starve the event loop (worker, webhooks) and every request. Uploads
# wait here holding no database lock, and the time is the same in total.
_one_import_at_a_time = threading.Lock()


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
        """Each row's outcome, in file order; rows of an import that was not applied say so."""
        self._spool.seek(0)
        for line in self._spool:
            row, outcome, reason = json.loads(line)
            if outcome == ENROLLED and not self.summary.applied:
                outcome, reason = "not_applied", "valid, but nothing was enrolled (all_or_nothing)"
            yield {"row": row, "outcome": outcome, "reason": reason}

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


@dataclass
class _Candidate:
    row: int
    e164: str
    index: str
    label: str | None
    method: str
    recorded_at: datetime


_Checked = _Candidate | InvalidRow


@dataclass
class ImportOptions:
    regions: frozenset[str]
    notice_version: str
    batch_size: int  # SPI_IMPORT_BATCH_SIZE
    default_consent_method: str | None = None
    all_or_nothing: bool = False

    @classmethod
    def from_settings(
        cls, settings: Settings, *, all_or_nothing: bool, default_consent_method: str | None
    ) -> "ImportOptions":
        """The options of one import: the configured regions, notice version and batch size."""
        return cls(
            regions=settings.phone_regions,
            notice_version=settings.privacy_notice_version,
            default_consent_method=default_consent_method,
            all_or_nothing=all_or_nothing,
            batch_size=settings.import_batch_size,
        )


def _validate(
    raw: RawRow, *, vault: PhoneVault, opts: ImportOptions, tz: ZoneInfo, now: datetime
) -> _Candidate | str:
    """A candidate for enrolment, or the reason the row is invalid."""
    if not (raw.phone or "").strip():
        return "phone: the cell is empty"
    try:
        e164 = normalise_phone(raw.phone, allowed_regions=opts.regions)
    except InvalidPhone as exc:
        return f"phone: {exc}"
    try:
        label = clean_label(raw.label)
    except ValueError as exc:
        return f"label: {exc}"
    method = parse_consent_method(raw.consent_method) if raw.consent_method else None
    if raw.consent_method and method is None:
        return f"consent: unknown method {raw.consent_method!r} (use paper_form or digital_form)"
    method = method or opts.default_consent_method
    if method is None:
        return "consent: no consent method in the row and no default given"
    recorded_at = now
    if raw.consent_date:
        try:
            day = parse_consent_date(raw.consent_date)
        except ValueError as exc:
            return f"consent date: {exc}"
        if day is not None:
            recorded_at = datetime.combine(day, time(0), tzinfo=tz)
            if recorded_at > now:
                return "consent date: lies in the future"
    return _Candidate(raw.row_number, e164, vault.blind_index(e164), label, method, recorded_at)


def _check(
    raw: RawRow, *, vault: PhoneVault, opts: ImportOptions, tz: ZoneInfo, now: datetime
) -> _Checked:
    result = _validate(raw, vault=vault, opts=opts, tz=tz, now=now)
    return InvalidRow(raw.row_number, result) if isinstance(result, str) else result


def _batches(items: Iterator[Staged], size: int) -> Iterator[list[Staged]]:
    # itertools.batched arrives only with Python 3.12.
    while batch := list(islice(items, size)):
        yield batch


def _seal(vault: PhoneVault, item: _Checked) -> Staged:
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
    if opts.default_consent_method not in (None, "paper_form", "digital_form"):
        # A file may never claim WhatsApp consent (only the webhook's YA reply records it).
        raise Invalid("the default consent method must be paper_form or digital_form")
    session.commit()
    with _one_import_at_a_time:
        _read_and_apply(
            session, vault=vault, actor=actor, opd=opd, rows=rows, opts=opts, report=report
        )
    _audit(session, actor=actor, opd=opd, summary=report.summary)
    return report.summary


def _read_and_apply(
    session: Session,
    *,
    vault: PhoneVault,
    actor: Principal,
    opd: Opd,
    rows: Iterable[RawRow],
    opts: ImportOptions,
    report: ImportReport,
) -> None:
    tz = ZoneInfo(opd.timezone)
    now = utcnow()
    staging = Staging()
    try:
        invalid = 0
        for raw in rows:
            item = _seal(vault, _check(raw, vault=vault, opts=opts, tz=tz, now=now))
            invalid += isinstance(item, InvalidRow)
            staging.add(item)
        if opts.all_or_nothing and invalid:
            _refuse(staging, report)
        else:
            _apply(session, staging, actor=actor, opd=opd, opts=opts, report=report, now=now)
    finally:
        staging.close()


def _refuse(staging: Staging, report: ImportReport) -> None:
    """Report every row of an all_or_nothing import that is not applied."""
    for item in staging:
        if isinstance(item, InvalidRow):
            report.add(item.row, INVALID, item.reason)
        else:
            report.add(item.row, ENROLLED)
    summary = report.summary
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
    try:
        for batch in _batches(iter(staging), size):
            _apply_batch(session, batch, actor=actor, opd=opd, opts=opts, report=report, now=now)
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


def _apply_batch(
    session: Session,
    batch: list[Staged],
    *,
    actor: Principal,
    opd: Opd,
    opts: ImportOptions,
    report: ImportReport,
    now: datetime,
) -> None:
    """Apply one batch in its own transaction (committed here) and report its rows."""
    assert opd.id is not None
    sealed = [c for c in batch if isinstance(c, Sealed)]
    indexes = {c.index for c in sealed}
    suppressed = enrolment_service.suppressed_among(session, indexes)
    taken = enrolment_service.listed_in_opd_among(session, opd_id=opd.id, indexes=indexes)
    outcomes: dict[int, tuple[str, str | None]] = {}
    fresh: list[Sealed] = []
    for c in sealed:
        if c.index in taken:
            outcomes[c.row] = (DUPLICATE, ALREADY_LISTED)
        else:
            taken.add(c.index)
            fresh.append(c)
    enrolled = 0
    for c, ok in _insert(session, fresh, suppressed, actor=actor, opd=opd, opts=opts):
        outcomes[c.row] = (ENROLLED, None) if ok else (DUPLICATE, ALREADY_LISTED)
        enrolled += ok
    # In the batch's transaction, so the tally counts exactly the rows stored.
    enrolment_service.tally(session, opd_id=opd.id, event="enrolled", at=now, amount=enrolled)
    session.commit()
    for item in batch:
        if isinstance(item, Sealed):
            report.add(item.row, *outcomes[item.row])
        else:
            report.add(item.row, INVALID, item.reason)


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
