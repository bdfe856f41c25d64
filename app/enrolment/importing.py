"""Bulk enrolment from a coordinator's CSV/XLSX, in batches, with a row-level report."""

import json
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
from app.db import copy_rows, utcnow
from app.enrolment import reasons
from app.enrolment import service as enrolment_service
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
        for i, row in enumerate(self.iter_rows()):
            yield (b"," if i else b"") + json.dumps(row).encode()
        yield b"]}"

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


@dataclass
class _Invalid:
    row: int
    reason: str


_Checked = _Candidate | _Invalid
_Sealed = dict[int, tuple[str, str | None]]


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
    return _Invalid(raw.row_number, result) if isinstance(result, str) else result


def _batches(items: Iterator[_Checked], size: int) -> Iterator[list[_Checked]]:
    # itertools.batched arrives only with Python 3.12.
    while batch := list(islice(items, size)):
        yield batch


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
    """Enrol every valid row; with all_or_nothing, enrol nothing if any row is bad."""
    assert opd.id is not None
    if opts.default_consent_method not in (None, "paper_form", "digital_form"):
        # A file may never claim WhatsApp consent (only the webhook's YA reply records it).
        raise Invalid("metode persetujuan bawaan harus paper_form atau digital_form")
    tz = ZoneInfo(opd.timezone)
    now = utcnow()
    outer = session.begin_nested()
    checked = (_check(raw, vault=vault, opts=opts, tz=tz, now=now) for raw in rows)
    # Encryption is the importer's largest CPU cost. A helper thread seals each batch while this
    # thread looks its numbers up in the database (the GIL is released during those waits), so
    # the two overlap. Sealing one batch ahead instead was slower: both threads then compete for
    # the GIL while rows are being validated.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-seal") as sealer:
        for batch in _batches(checked, opts.batch_size):
            sealed = sealer.submit(_seal, vault, batch)
            _apply_batch(session, batch, sealed, actor=actor, opd=opd, opts=opts, report=report)
    summary = report.summary
    if opts.all_or_nothing and summary.invalid:
        outer.rollback()
        summary.applied = False
        summary.not_applied, summary.enrolled = summary.enrolled, 0
    else:
        outer.commit()
        enrolment_service.tally(
            session, opd_id=opd.id, event="enrolled", at=now, amount=summary.enrolled
        )
    audit_service.record(
        session,
        actor=actor,
        action="enrolment.import",
        object_type="opd",
        object_id=opd.code,
        outcome="ok" if summary.applied else "refused",
        detail=summary.model_dump(),
    )
    return summary


def _apply_batch(
    session: Session,
    batch: list[_Checked],
    sealed: Future[_Sealed],
    *,
    actor: Principal,
    opd: Opd,
    opts: ImportOptions,
    report: ImportReport,
) -> None:
    assert opd.id is not None
    candidates = [c for c in batch if isinstance(c, _Candidate)]
    indexes = {c.index for c in candidates}
    suppressed = enrolment_service.suppressed_among(session, indexes)
    taken = enrolment_service.listed_in_opd_among(session, opd_id=opd.id, indexes=indexes)
    outcomes: dict[int, tuple[str, str | None]] = {}
    fresh: list[_Candidate] = []
    for c in candidates:
        if c.index in taken:
            outcomes[c.row] = (DUPLICATE, ALREADY_LISTED)
        else:
            taken.add(c.index)
            fresh.append(c)
    rows = _insert(session, fresh, sealed.result(), suppressed, actor=actor, opd=opd, opts=opts)
    for c, ok in rows:
        outcomes[c.row] = (ENROLLED, None) if ok else (DUPLICATE, ALREADY_LISTED)
    for item in batch:
        if isinstance(item, _Candidate):
            report.add(item.row, *outcomes[item.row])
        else:
            report.add(item.row, INVALID, item.reason)


def _seal(vault: PhoneVault, batch: list[_Checked]) -> _Sealed:
    """Number and label ciphertexts per valid row (every row: the work must not depend on
    whether the number is suppressed)."""
    return {
        c.row: (vault.encrypt(c.e164), vault.encrypt(c.label) if c.label else None)
        for c in batch
        if isinstance(c, _Candidate)
    }


def _insert(
    session: Session,
    fresh: list[_Candidate],
    ciphertexts: _Sealed,
    suppressed: set[str],
    *,
    actor: Principal,
    opd: Opd,
    opts: ImportOptions,
) -> Iterator[tuple[_Candidate, bool]]:
    """Insert in one statement; if a concurrent enrolment raced us, fall back row by row."""
    if not fresh:
        return
    now = utcnow()
    values = [
        {
            "public_id": enrolment_service.new_public_id(),
            "opd_id": opd.id,
            # A suppressed number is listed without its ciphertext: the list needs none.
            "phone_ciphertext": None if c.index in suppressed else ciphertexts[c.row][0],
            "phone_masked": mask_phone(c.e164),
            "phone_index": c.index,
            "label_ciphertext": ciphertexts[c.row][1],
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
