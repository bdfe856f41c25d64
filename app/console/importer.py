"""The console's spreadsheet import, the GOV.UK Notify way: upload, check every row, confirm.

The check is the importer's dry run (`app.enrolment.importing.check_enrolments`): the same row
checks and duplicate lookups as the import (`app.enrolment.import_rows`), writing nothing, so the
check page shows exactly what the real import will do (invalid rows and "already on your list")
and enrols nobody. Confirm runs the API's own importer (`import_enrolments`), which commits in
short batches only after every row has been checked.

The uploaded file is not kept. What the confirm step needs — the rows as written, which the
confirm step gives to the same importer again — goes back in the check page's form, compressed
while the rows stream past (about 12 bytes a row) and encrypted under a key derived from the
blind-index key (Fernet, so it is also authenticated), bound to the OPD and the person who
checked it, and valid for 30 minutes. Nothing of the upload is stored on
the server, several API replicas need no shared storage, and there is nothing to purge: an
abandoned check simply expires. Confirming twice enrols nobody twice (the second time every row
is "already on your list"), as with the API.
"""

import base64
import hashlib
import hmac
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from cryptography.fernet import Fernet, InvalidToken
from sqlmodel import Session

from app.auth.principal import Principal
from app.console import messages
from app.enrolment.importing import (
    ImportOptions,
    ImportReport,
    check_enrolments,
    import_enrolments,
)
from app.enrolment.limits import LimitExceeded, SpreadsheetLimits
from app.enrolment.rows import FileFormatError, RawRow, iter_rows
from app.enrolment.schemas import ImportSummary
from app.opds.models import Opd
from app.security import PhoneVault

TOKEN_TTL_SECONDS = 30 * 60
WILL_ENROL = "enrolled"


class UnreadableFile(Exception):
    """The upload as a whole cannot be read as a staff list."""

    def __init__(self, message: str, *, limit: str | None = None) -> None:
        super().__init__(message)
        # The bound it went over, in Bahasa Indonesia, when that is why (it names the limit).
        self.limit = limit


class TokenRefused(Exception):
    """The confirm form's token is expired, altered, or someone else's."""


@dataclass(frozen=True)
class RowProblem:
    row: int
    outcome: str  # "invalid" or "duplicate"
    text: str  # Bahasa Indonesia


@dataclass
class CheckResult:
    total: int = 0
    ready: int = 0
    duplicate: int = 0
    invalid: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    token: str = ""


@dataclass
class ImportResult:
    enrolled: int
    duplicate: int
    invalid: int
    not_applied: int
    problems: list[RowProblem]
    report_token: str


def _fernet(vault: PhoneVault) -> Fernet:
    # A separate HMAC label keeps this key apart from the blind index and the session cookie.
    key = hmac.new(vault.index_key, b"console-import", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


class _Sealer:
    """JSON lines compressed as they come: a header line, then one line per item."""

    def __init__(self, purpose: str, opd: Opd, actor: Principal, **header: Any) -> None:
        self._zip = zlib.compressobj(6)
        self._chunks: list[bytes] = []
        self.add({"p": purpose, "o": opd.code, "a": _actor_key(actor), **header})

    def add(self, item: object) -> None:
        self._chunks.append(self._zip.compress(json.dumps(item).encode() + b"\n"))

    def seal(self, vault: PhoneVault) -> str:
        self._chunks.append(self._zip.flush())
        return _fernet(vault).encrypt(b"".join(self._chunks)).decode()


def _actor_key(actor: Principal) -> str:
    return f"{actor.token_id}:{actor.name}"


def unseal(
    vault: PhoneVault, token: str, *, purpose: str, opd: Opd, actor: Principal
) -> tuple[dict[str, Any], Iterator[Any]]:
    """The header and items of a token made for this purpose, OPD and person, if still valid."""
    try:
        lines = zlib.decompress(_fernet(vault).decrypt(token.encode(), ttl=TOKEN_TTL_SECONDS))
        first, _, rest = lines.partition(b"\n")
        header = json.loads(first)
    except (InvalidToken, ValueError, zlib.error) as exc:
        raise TokenRefused from exc
    if (header.get("p"), header.get("o"), header.get("a")) != (
        purpose,
        opd.code,
        _actor_key(actor),
    ):
        raise TokenRefused
    return header, (json.loads(line) for line in rest.splitlines())


def _problem(row: dict[str, Any]) -> RowProblem:
    # The report's reason is already Indonesian (app/enrolment/reasons.py).
    text = str(row["reason"] or "") if row["outcome"] == "invalid" else ""
    return RowProblem(
        int(str(row["row"])), str(row["outcome"]), text or messages.text_for(str(row["outcome"]))
    )


def _run(
    session: Session,
    *,
    vault: PhoneVault,
    actor: Principal,
    opd: Opd,
    rows: Iterable[RawRow],
    opts: ImportOptions,
    report: ImportReport,
    dry_run: bool,
) -> ImportSummary:
    try:
        if dry_run:
            return check_enrolments(
                session, vault=vault, opd=opd, rows=rows, opts=opts, report=report
            )
        return import_enrolments(
            session, vault=vault, actor=actor, opd=opd, rows=rows, opts=opts, report=report
        )
    except LimitExceeded as exc:
        raise UnreadableFile(str(exc), limit=str(exc)) from exc
    except FileFormatError as exc:
        raise UnreadableFile(str(exc)) from exc


def check_upload(
    session: Session,
    *,
    vault: PhoneVault,
    actor: Principal,
    opd: Opd,
    stream: BinaryIO,
    filename: str | None,
    opts: ImportOptions,
    limits: SpreadsheetLimits,
) -> CheckResult:
    """Every row's outcome if the file were imported now; enrols nobody."""
    sealer = _Sealer(
        "confirm", opd, actor, aon=opts.all_or_nothing, default=opts.default_consent_method
    )

    def remember(rows: Iterable[RawRow]) -> Iterator[RawRow]:
        for raw in rows:
            sealer.add([raw.row_number, raw.phone, raw.label, raw.consent_method, raw.consent_date])
            yield raw

    report = ImportReport()
    result = CheckResult()
    try:
        summary = _run(
            session,
            vault=vault,
            actor=actor,
            opd=opd,
            rows=remember(iter_rows(stream, filename=filename, limits=limits)),
            opts=replace(opts, all_or_nothing=False),
            report=report,
            dry_run=True,
        )
        result.problems = [_problem(r) for r in report.iter_rows() if r["outcome"] != WILL_ENROL]
    finally:
        report.close()
    result.total, result.ready = summary.total_rows, summary.enrolled
    result.duplicate, result.invalid = summary.duplicate, summary.invalid
    result.token = sealer.seal(vault)
    return result


def confirm_import(
    session: Session,
    *,
    vault: PhoneVault,
    actor: Principal,
    opd: Opd,
    token: str,
    opts: ImportOptions,
) -> ImportResult:
    """Import the checked rows again, for real: the same outcomes the check page showed."""
    header, items = unseal(vault, token, purpose="confirm", opd=opd, actor=actor)
    opts = replace(
        opts, all_or_nothing=bool(header["aon"]), default_consent_method=header["default"]
    )
    report = ImportReport()
    sealer = _Sealer("report", opd, actor)
    try:
        summary = _run(
            session,
            vault=vault,
            actor=actor,
            opd=opd,
            rows=(RawRow(*item) for item in items),
            opts=opts,
            report=report,
            dry_run=False,
        )
        problems = []
        for row in report.iter_rows():
            outcome = str(row["outcome"])
            if outcome == WILL_ENROL or outcome == "not_applied":
                sealer.add([row["row"], outcome, messages.text_for(outcome)])
                continue
            problem = _problem(row)
            problems.append(problem)
            sealer.add([problem.row, problem.outcome, problem.text])
    finally:
        report.close()
    return ImportResult(
        enrolled=summary.enrolled,
        duplicate=summary.duplicate,
        invalid=summary.invalid,
        not_applied=summary.not_applied,
        problems=problems,
        report_token=sealer.seal(vault),
    )


def report_rows(
    vault: PhoneVault, token: str, *, opd: Opd, actor: Principal
) -> Iterator[tuple[int, str, str]]:
    """The rows of a finished import's report: row number, outcome, reason (no numbers)."""
    _, items = unseal(vault, token, purpose="report", opd=opd, actor=actor)
    return ((int(r), str(o), str(t)) for r, o, t in items)
