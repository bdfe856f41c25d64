"""The console's spreadsheet import, the GOV.UK Notify way: upload, check every row, confirm.

Both steps run the API's own importer (`app.enrolment.importing.import_enrolments`) with the same
limits, batches and outcomes. The check runs it inside a savepoint that is rolled back, so the
check page shows exactly what the real import will do (invalid rows and "already on your list"),
from the same code, and enrols nobody.

The uploaded file is not kept. What the confirm step needs — the rows that will be enrolled, as
written, and the problems found — goes back in the check page's form, compressed and encrypted
under a key derived from the blind-index key (Fernet, so it is also authenticated), bound to the
OPD and the person who checked it, and valid for 30 minutes. Nothing of the upload is stored on
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
from app.enrolment.importing import ImportOptions, ImportReport, import_enrolments
from app.enrolment.rows import FileFormatError, RawRow, iter_rows
from app.opds.models import Opd
from app.security import PhoneVault

TOKEN_TTL_SECONDS = 30 * 60
WILL_ENROL = "enrolled"


class UnreadableFile(Exception):
    """The upload as a whole cannot be read as a staff list."""


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
    problems: list[RowProblem] = field(default_factory=list)
    token: str = ""

    @property
    def invalid(self) -> int:
        return sum(1 for p in self.problems if p.outcome == "invalid")


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


def _actor_key(actor: Principal) -> str:
    return f"{actor.token_id}:{actor.name}"


def seal(vault: PhoneVault, payload: dict[str, Any]) -> str:
    """Compress and encrypt a payload for a hidden form field."""
    raw = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 6)
    return _fernet(vault).encrypt(raw).decode()


def unseal(vault: PhoneVault, token: str, *, purpose: str, opd: Opd, actor: Principal) -> Any:
    """The payload of a token made for this purpose, OPD and person within its lifetime."""
    try:
        raw = _fernet(vault).decrypt(token.encode(), ttl=TOKEN_TTL_SECONDS)
        payload = json.loads(zlib.decompress(raw))
    except (InvalidToken, ValueError, zlib.error) as exc:
        raise TokenRefused from exc
    if (payload.get("p"), payload.get("o"), payload.get("a")) != (
        purpose,
        opd.code,
        _actor_key(actor),
    ):
        raise TokenRefused
    return payload


def _problem(row: dict[str, Any]) -> RowProblem:
    reason = str(row["reason"] or "")
    text = messages.reason_text(reason) if row["outcome"] == "invalid" else ""
    return RowProblem(
        int(row["row"]), str(row["outcome"]), text or messages.text_for(str(row["outcome"]))
    )


def check_upload(
    session: Session,
    *,
    vault: PhoneVault,
    actor: Principal,
    opd: Opd,
    stream: BinaryIO,
    filename: str | None,
    opts: ImportOptions,
) -> CheckResult:
    """Every row's outcome if the file were imported now; enrols nobody."""
    written: dict[int, RawRow] = {}

    def remember(rows: Iterable[RawRow]) -> Iterator[RawRow]:
        for raw in rows:
            written[raw.row_number] = raw
            yield raw

    report = ImportReport()
    result = CheckResult()
    ready: list[list[Any]] = []
    try:
        savepoint = session.begin_nested()
        try:
            import_enrolments(
                session,
                vault=vault,
                actor=actor,
                opd=opd,
                rows=remember(iter_rows(stream, filename=filename)),
                opts=replace(opts, all_or_nothing=False),
                report=report,
            )
        except FileFormatError as exc:
            raise UnreadableFile(str(exc)) from exc
        finally:
            if savepoint.is_active:
                savepoint.rollback()
        for row in report.iter_rows():
            result.total += 1
            if row["outcome"] == WILL_ENROL:
                raw = written[int(str(row["row"]))]
                ready.append(
                    [raw.row_number, raw.phone, raw.label, raw.consent_method, raw.consent_date]
                )
            else:
                result.problems.append(_problem(row))
    finally:
        report.close()
    written.clear()
    result.ready = len(ready)
    result.duplicate = result.total - result.ready - result.invalid
    result.token = seal(
        vault,
        {
            "p": "confirm",
            "o": opd.code,
            "a": _actor_key(actor),
            "aon": opts.all_or_nothing,
            "default": opts.default_consent_method,
            "rows": ready,
            "problems": [[p.row, p.outcome, p.text] for p in result.problems],
        },
    )
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
    """Enrol the rows a check found ready (none, all or nothing with any problem)."""
    payload = unseal(vault, token, purpose="confirm", opd=opd, actor=actor)
    checked = [RowProblem(int(r), str(o), str(t)) for r, o, t in payload["problems"]]
    invalid = sum(1 for p in checked if p.outcome == "invalid")
    opts = replace(
        opts, all_or_nothing=bool(payload["aon"]), default_consent_method=payload["default"]
    )
    rows: list[RawRow] = []
    if not (opts.all_or_nothing and invalid):
        rows = [RawRow(*r) for r in payload["rows"]]
    report = ImportReport()
    try:
        summary = import_enrolments(
            session, vault=vault, actor=actor, opd=opd, rows=rows, opts=opts, report=report
        )
        found = [_problem(r) for r in report.iter_rows() if r["outcome"] != WILL_ENROL]
    finally:
        report.close()
    problems = sorted(checked + found, key=lambda p: p.row)
    skipped = opts.all_or_nothing and invalid > 0
    by_row = {p.row: p for p in found}
    lines: list[tuple[int, str, str]] = [(p.row, p.outcome, p.text) for p in checked]
    for r in payload["rows"]:
        if r[0] in by_row and not skipped:
            lines.append((r[0], by_row[r[0]].outcome, by_row[r[0]].text))
            continue
        outcome = "not_applied" if skipped else WILL_ENROL
        lines.append((r[0], outcome, messages.text_for(outcome)))
    lines.sort(key=lambda line: line[0])
    return ImportResult(
        enrolled=summary.enrolled,
        duplicate=sum(1 for p in problems if p.outcome == "duplicate"),
        invalid=invalid,
        not_applied=len(payload["rows"]) if skipped else 0,
        problems=problems,
        report_token=seal(
            vault, {"p": "report", "o": opd.code, "a": _actor_key(actor), "rows": lines}
        ),
    )


def report_rows(
    vault: PhoneVault, token: str, *, opd: Opd, actor: Principal
) -> list[tuple[int, str, str]]:
    """The rows of a finished import's report: row number, outcome, reason (no numbers)."""
    payload = unseal(vault, token, purpose="report", opd=opd, actor=actor)
    return [(int(r), str(o), str(t)) for r, o, t in payload["rows"]]
