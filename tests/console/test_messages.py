"""Every machine code the API and the importer emit has Indonesian text for the console."""

import re
from datetime import date, timedelta
from pathlib import Path
from typing import get_args

from sqlmodel import Session

from app.auth.principal import cli_principal
from app.console import messages
from app.enrolment.importing import ImportOptions, ImportReport, import_enrolments
from app.enrolment.phones import InvalidPhoneReason
from app.enrolment.rows import RawRow
from app.http import _STATUS_CODES
from app.opds import service as opd_service
from app.security import PhoneVault
from tests.factories import add_opd

APP = Path(__file__).resolve().parents[2] / "app"
# code="x", code = "x", error_body("x", "code": "x" anywhere in the application.
_CODE_LITERALS = re.compile(
    r"""(?:\bcode\s*=\s*|error_body\(\s*|["']code["']\s*:\s*)["']([a-z][a-z0-9_.]*)["']"""
)


def emitted_codes() -> set[str]:
    """The machine codes written in app/ (the console's own mapping aside)."""
    codes: set[str] = set(_STATUS_CODES.values()) | {"error"}
    for path in APP.rglob("*.py"):
        if "console" in path.parts:
            continue
        codes |= set(_CODE_LITERALS.findall(path.read_text(encoding="utf-8")))
    codes |= {f"invalid_phone.{reason}" for reason in get_args(InvalidPhoneReason)}
    codes |= {"enrolled", "duplicate", "invalid", "not_applied"}
    return codes - {"code"}


def test_the_scan_finds_the_codes_it_should() -> None:
    codes = emitted_codes()
    # A scan that found nothing would make the next test pass vacuously.
    assert {"already_enrolled", "unreadable_file", "import_rejected", "campaign_not_found"} <= codes
    assert "invalid_phone.excel_scientific" in codes
    assert len(codes) > 60


def test_every_emitted_code_has_indonesian_text() -> None:
    missing = sorted(code for code in emitted_codes() if code not in messages.TEXTS)
    assert missing == [], f"add Indonesian text in app/console/messages.py for: {missing}"


TOMORROW = (date.today() + timedelta(days=2)).strftime("%d/%m/%Y")
BAD_ROWS = {
    "invalid_phone.empty": {"phone": " "},
    "invalid_phone.excel_scientific": {"phone": "6,28123E+12"},
    "invalid_phone.short_code": {"phone": "112"},
    "invalid_phone.landline": {"phone": "021-5551234"},
    "invalid_phone.too_short": {"phone": "0812345"},
    "import.label_too_long": {"label": "x" * 81},
    "import.label_control": {"label": "Budi\x07"},
    "import.consent_method_unknown": {"consent_method": "lisan"},
    "import.consent_method_missing": {"consent_method": None},
    "import.consent_date_unreadable": {"consent_date": "kemarin"},
    "import.consent_date_future": {"consent_date": TOMORROW},
}


BAD_ROWS["import.label_not_neutral"] = {"label": "sudah isi SPI"}


def _reasons(session: Session, vault: PhoneVault) -> dict[str, str]:
    """Each bad row of BAD_ROWS through the importer the API uses: the reason it gives."""
    add_opd(session.get_bind(), "DINKES")  # type: ignore[arg-type]
    opd = opd_service.get_by_code(session, code="DINKES")
    rows = []
    for number, fields in enumerate(BAD_ROWS.values(), start=2):
        cells: dict[str, str | None] = {
            "phone": "081234567890",
            "label": None,
            "consent_method": "formulir kertas",
            "consent_date": None,
        }
        rows.append(RawRow(row_number=number, **(cells | fields)))  # type: ignore[arg-type]
    report = ImportReport()
    opts = ImportOptions(regions=frozenset({"ID"}), notice_version="1", batch_size=10)
    import_enrolments(
        session, vault=vault, actor=cli_principal(), opd=opd, rows=rows, opts=opts, report=report
    )
    found = {int(str(r["row"])): (str(r["code"]), str(r["reason"])) for r in report.iter_rows()}
    report.close()
    return {code: found[n] for n, code in enumerate(BAD_ROWS, start=2)}


def test_each_import_reason_reads_in_indonesian(session: Session, vault: PhoneVault) -> None:
    reasons = _reasons(session, vault)
    for code, (reported_code, reason) in reasons.items():
        # The report itself carries the machine code and the Indonesian sentence.
        assert reported_code == code, reason
        if code != "import.label_not_neutral":
            assert reason == messages.TEXTS[code]
    # clean_label already speaks Indonesian and names the words it found: that text is kept.
    assert "label hanya untuk mengenali pegawai" in reasons["import.label_not_neutral"][1]
    assert "«sudah»" in reasons["import.label_not_neutral"][1]
