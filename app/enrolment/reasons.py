"""The import report's row reasons as a machine code and a sentence in Bahasa Indonesia.

The importer notes why a row was not enrolled as `field: detail` (phone, label, consent, consent
date). A coordinator reads the report (the API's JSON, the console's check page and CSV), so each
row carries the code for scripts and the Indonesian sentence for people.
"""

from typing import get_args

from app.enrolment.phones import InvalidPhone, InvalidPhoneReason
from app.enrolment.schemas import LABEL_CONTROL, LABEL_MAX, LABEL_TOO_LONG

UNKNOWN = "Baris ini tidak dapat diproses. Periksa isinya lalu coba lagi."

PHONE_TEXTS: dict[str, str] = {
    f"invalid_phone.{reason}": InvalidPhone(reason).message
    for reason in get_args(InvalidPhoneReason)
}
ROW_TEXTS: dict[str, str] = {
    # Row outcomes.
    "enrolled": "Terdaftar.",
    "duplicate": "Sudah ada di daftar OPD Anda; tidak didaftarkan dua kali.",
    "not_applied": (
        "Baris ini valid, tetapi tidak ada yang didaftarkan (semua atau tidak sama sekali)."
    ),
    # Row problems.
    "import.label_too_long": f"Nama/label terlalu panjang (paling banyak {LABEL_MAX} karakter).",
    "import.label_control": "Nama/label memuat karakter yang tidak dapat ditampilkan.",
    "import.label_not_neutral": (
        "Nama/label hanya untuk mengenali pegawai (nama, jabatan, unit), bukan catatan "
        "pengisian SPI, jawaban, teguran atau tautan."
    ),
    "import.consent_method_unknown": (
        "Metode persetujuan tidak dikenal; tulis “formulir kertas” atau “formulir digital”."
    ),
    "import.consent_method_missing": (
        "Metode persetujuan kosong dan tidak ada metode bawaan yang dipilih."
    ),
    "import.consent_date_unreadable": (
        "Tanggal persetujuan tidak dapat dibaca; tulis seperti 15/07/2026 (hari dahulu)."
    ),
    "import.consent_date_future": "Tanggal persetujuan tidak boleh di masa depan.",
    "import.unknown": UNKNOWN,
} | PHONE_TEXTS

# The phone sentences back to their reason codes (the sentence is all a row keeps).
_PHONE_BY_MESSAGE = {text: code for code, text in PHONE_TEXTS.items()}


def reason_code(reason: str) -> str:
    """Classify one of the importer's row reasons into a code of `ROW_TEXTS`."""
    field, _, detail = reason.partition(": ")
    if field == "phone":
        if detail == "the cell is empty":
            return "invalid_phone.empty"
        return _PHONE_BY_MESSAGE.get(detail, "invalid_phone.unparseable")
    if field == "label":
        if detail == LABEL_TOO_LONG:
            return "import.label_too_long"
        if detail == LABEL_CONTROL:
            return "import.label_control"
        return "import.label_not_neutral"
    if field == "consent":
        if detail.startswith("unknown method"):
            return "import.consent_method_unknown"
        return "import.consent_method_missing"
    if field == "consent date":
        if "future" in detail:
            return "import.consent_date_future"
        return "import.consent_date_unreadable"
    if reason.startswith("already on"):
        return "duplicate"
    return "import.unknown"


def reason_text(reason: str) -> str:
    """An importer's row reason in Bahasa Indonesia."""
    code = reason_code(reason)
    if code == "import.label_not_neutral":
        # clean_label already speaks Indonesian and names the words it found.
        return reason.partition(": ")[2]
    return ROW_TEXTS[code]


def describe(outcome: str, reason: str | None) -> tuple[str | None, str | None]:
    """A report row's (code, Indonesian reason); (None, None) for an enrolled row.

    A valid row of an import that was not applied (all_or_nothing) is `not_applied`.
    """
    if outcome == "not_applied":
        return outcome, ROW_TEXTS[outcome]
    if reason is None:
        return None, None
    return reason_code(reason), reason_text(reason)
