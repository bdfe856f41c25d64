"""One import row: its check, and its outcome against the OPD's list (shared by check and apply).

The console's check page and the import itself sort rows with the same functions here, so the
check shows exactly the rows and reasons the import will report. No outcome depends on another
OPD's list or on the suppression list (invariant 6): a suppressed number is listed like any
other and simply never messaged.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session

from app.config import Settings
from app.enrolment import service as enrolment_service
from app.enrolment.import_staging import InvalidRow
from app.enrolment.phones import InvalidPhone, normalise_phone
from app.enrolment.rows import RawRow, parse_consent_date, parse_consent_method
from app.enrolment.schemas import clean_label
from app.errors import Invalid
from app.security import PhoneVault

ENROLLED, DUPLICATE, INVALID = "enrolled", "duplicate", "invalid"
ALREADY_LISTED = "already on this OPD's list"
# One import (or check) at a time per process. Checking and encrypting rows is CPU work under
# the GIL; several at once starve the event loop (worker, webhooks) and every request. Uploads
# wait here holding no database lock, and the time is the same in total.
one_at_a_time = threading.Lock()


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

    def refuse_bad(self) -> None:
        """A file may never claim WhatsApp consent (only the webhook's YA reply records it)."""
        if self.default_consent_method not in (None, "paper_form", "digital_form"):
            raise Invalid("metode persetujuan bawaan harus paper_form atau digital_form")


@dataclass
class Candidate:
    """A valid row, before its number is encrypted."""

    row: int
    e164: str
    index: str
    label: str | None
    method: str
    recorded_at: datetime


Checked = Candidate | InvalidRow


def _validate(
    raw: RawRow, *, vault: PhoneVault, opts: ImportOptions, tz: ZoneInfo, now: datetime
) -> Candidate | str:
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
    return Candidate(raw.row_number, e164, vault.blind_index(e164), label, method, recorded_at)


def check_row(
    raw: RawRow, *, vault: PhoneVault, opts: ImportOptions, tz: ZoneInfo, now: datetime
) -> Checked:
    """The row as a candidate, or as invalid with its reason."""
    result = _validate(raw, vault=vault, opts=opts, tz=tz, now=now)
    return InvalidRow(raw.row_number, result) if isinstance(result, str) else result


class _Indexed(Protocol):
    @property
    def row(self) -> int: ...
    @property
    def index(self) -> str: ...


R = TypeVar("R", bound=_Indexed)
Outcomes = dict[int, tuple[str, str | None]]


def sort_batch(
    session: Session, valid: Sequence[R], *, opd_id: int, seen: set[str]
) -> tuple[Outcomes, list[R]]:
    """The duplicates among a batch's valid rows, and the rest (to be enrolled), in file order.

    A duplicate is a number already on this OPD's list, in `seen` (numbers of earlier rows
    that are not written yet) or earlier in the batch. Only this OPD's list is read.
    """
    indexes = {c.index for c in valid}
    taken = enrolment_service.listed_in_opd_among(session, opd_id=opd_id, indexes=indexes)
    taken |= seen & indexes
    outcomes: Outcomes = {}
    fresh: list[R] = []
    for c in valid:
        if c.index in taken:
            outcomes[c.row] = (DUPLICATE, ALREADY_LISTED)
        else:
            taken.add(c.index)
            fresh.append(c)
    return outcomes, fresh
