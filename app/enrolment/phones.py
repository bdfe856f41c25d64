"""Phone number normalisation to E.164 and the single masking helper."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, shortnumberinfo

from app.security import mask_phone

__all__ = ["InvalidPhone", "mask_phone", "normalise_phone"]

InvalidPhoneReason = Literal[
    "empty",
    "unparseable",
    "excel_scientific",
    "invalid_country_code",
    "too_short",
    "too_long",
    "not_a_number",
    "short_code",
    "landline",
    "not_mobile",
    "region_not_allowed",
]

# Messages never echo the input: the API shows them and they may end up in logs. A coordinator
# reads them (the API's answer, the import report, the console), so they are Bahasa Indonesia;
# the reason is the machine code.
_MESSAGES: dict[InvalidPhoneReason, str] = {
    "empty": "Nomor HP kosong.",
    "unparseable": (
        "Nomor HP tidak dapat dibaca. Tulis dengan angka, boleh memakai spasi atau tanda "
        "hubung, misalnya 0812-3456-7890 atau +62 812 3456 7890."
    ),
    "excel_scientific": (
        "Excel mengubah nomor ini menjadi notasi ilmiah (seperti 6,28E+12) sehingga angka "
        "terakhirnya hilang. Format kolom nomor HP sebagai Teks, ketik ulang nomornya, lalu "
        "unggah lagi."
    ),
    "invalid_country_code": "Kode negara nomor ini tidak dikenal.",
    "too_short": "Nomor HP terlalu pendek.",
    "too_long": "Nomor HP terlalu panjang.",
    "not_a_number": "Ini bukan nomor telepon yang valid.",
    "short_code": "Ini nomor layanan singkat (seperti 112 atau 198), bukan nomor HP pribadi.",
    "landline": "Ini nomor telepon rumah/kantor; pengingat WhatsApp memerlukan nomor HP.",
    "not_mobile": "Ini bukan nomor HP (misalnya nomor bebas pulsa atau premium).",
    "region_not_allowed": "Nomor dari negara ini tidak diterima.",
}

_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
_EXCEL_TEXT_FORMULA = re.compile(r'=\s*"(.*)"')
# An Excel float rendered as text, e.g. "6281234567890.0": the digits are all there.
_TRAILING_ZERO_FRACTION = re.compile(r"(\d+)[.,]0+")
_SEPARATORS = re.compile(r"[\s.()\-‐‑‒–—]+")
_COMPACT = re.compile(r"(\+?)(\d+)")
# libphonenumber's Indonesian mobile pattern is 8[1-35-9]\d{7,10}: 9-12 national digits.
_ID_MOBILE_MIN, _ID_MOBILE_MAX = 9, 12
# The same pattern, used as a fast path that skips phonenumbers for the common case (it is
# about a third of a large import's time); tests pin that both paths agree.
_ID_MOBILE = re.compile(r"(?:\+62|0)(8[1-35-9]\d{7,10})")


class InvalidPhone(ValueError):
    """A phone number that cannot be used, with a machine-readable reason code."""

    def __init__(self, reason: InvalidPhoneReason, message: str | None = None) -> None:
        self.reason: InvalidPhoneReason = reason
        self.message: str = message or _MESSAGES[reason]
        super().__init__(self.message)


def normalise_phone(
    raw: str | int | float | None,
    *,
    allowed_regions: frozenset[str] = frozenset({"ID"}),
    default_region: str = "ID",
) -> str:
    """Normalise a spreadsheet or form phone value to E.164, accepting only mobile numbers."""
    default_region = default_region.upper()
    allowed = frozenset(region.upper() for region in allowed_regions)
    has_plus, digits = _compact(_to_text(raw))

    if digits.startswith("00"):
        has_plus, digits = True, digits[2:]
    if not has_plus and default_region == "ID":
        if digits.startswith("62"):
            has_plus = True
        elif digits.startswith("8") and _ID_MOBILE_MIN <= len(digits) <= _ID_MOBILE_MAX:
            # Excel drops the leading 0 when the column is numeric.
            digits = "0" + digits
        elif len(digits) <= 6 and not digits.startswith(("0", "8")):
            raise InvalidPhone("short_code")
    if has_plus and digits.startswith("620"):
        # "+62 (0)812..." keeps the national trunk 0 after the country code.
        digits = "62" + digits[3:].lstrip("0")
    if (
        not has_plus
        and len(digits) <= 6
        and shortnumberinfo.is_valid_short_number_for_region(
            _safe_parse(digits, default_region), default_region
        )
    ):
        raise InvalidPhone("short_code")

    candidate = ("+" if has_plus else "") + digits
    fast = _ID_MOBILE.fullmatch(candidate)
    if fast and "ID" in allowed and (has_plus or default_region == "ID"):
        return "+62" + fast.group(1)
    return _normalise_slowly(candidate, default_region=default_region, allowed=allowed)


def _normalise_slowly(candidate: str, *, default_region: str, allowed: frozenset[str]) -> str:
    """Parse and classify with libphonenumber (every number the fast path does not settle)."""
    number = _parse(candidate, default_region)
    national = str(number.national_number)
    if number.country_code == 62 and national.startswith("8"):
        if len(national) < _ID_MOBILE_MIN:
            raise InvalidPhone("too_short")
        if len(national) > _ID_MOBILE_MAX:
            raise InvalidPhone("too_long")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(_invalid_reason(number))

    region = phonenumbers.region_code_for_number(number)
    if region not in allowed:
        accepted = ", ".join(sorted(allowed)) or "tidak ada"
        raise InvalidPhone(
            "region_not_allowed",
            f"Nomor dari negara ini tidak diterima (yang diterima: {accepted}).",
        )
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.FIXED_LINE:
        raise InvalidPhone("landline")
    if kind not in _MOBILE_TYPES:
        raise InvalidPhone("not_mobile")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _to_text(raw: str | int | float | None) -> str:
    """Turn a cell value into cleaned text, rejecting empty and Excel-mangled values."""
    if raw is None:
        raise InvalidPhone("empty")
    if isinstance(raw, bool):
        raise InvalidPhone("unparseable")
    if isinstance(raw, int):
        if raw < 0:
            raise InvalidPhone("unparseable")
        return str(raw)
    if isinstance(raw, float):
        if math.isnan(raw):
            raise InvalidPhone("empty")
        if math.isinf(raw) or raw < 0 or not raw.is_integer():
            raise InvalidPhone("unparseable")
        return str(int(raw))
    text = raw
    if not text.isascii():  # the per-character work is only needed beyond ASCII
        text = unicodedata.normalize("NFKC", text)
        # Copying from WhatsApp or web pages brings invisible direction and zero-width marks.
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.strip()
    formula = _EXCEL_TEXT_FORMULA.fullmatch(text)
    if formula:
        text = formula.group(1).strip()
    text = text.removeprefix("'").strip()
    if not text:
        raise InvalidPhone("empty")
    if _SCIENTIFIC.fullmatch(text.replace(" ", "")):
        raise InvalidPhone("excel_scientific")
    whole = _TRAILING_ZERO_FRACTION.fullmatch(text)
    if whole and len(whole.group(1)) >= _ID_MOBILE_MIN:
        text = whole.group(1)
    return text


def _compact(text: str) -> tuple[bool, str]:
    """Strip separators and return (has leading plus, ASCII digits)."""
    if not text.isascii():
        text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
    match = _COMPACT.fullmatch(_SEPARATORS.sub("", text))
    if match is None:
        raise InvalidPhone("unparseable")
    return bool(match.group(1)), match.group(2)


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber:
    """Parse with phonenumbers, translating its errors into InvalidPhone reasons."""
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reasons: dict[int, InvalidPhoneReason] = {
            NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
            NumberParseException.TOO_SHORT_NSN: "too_short",
            NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
            NumberParseException.TOO_LONG: "too_long",
        }
        raise InvalidPhone(reasons.get(exc.error_type, "unparseable")) from None


def _safe_parse(digits: str, region: str) -> phonenumbers.PhoneNumber:
    """Parse for the short-number check only; failures yield an empty number."""
    try:
        return phonenumbers.parse(digits, region)
    except NumberParseException:
        return phonenumbers.PhoneNumber()


def _invalid_reason(number: phonenumbers.PhoneNumber) -> InvalidPhoneReason:
    """Explain why phonenumbers considers a parsed number invalid."""
    if shortnumberinfo.is_valid_short_number(number):
        return "short_code"
    result = phonenumbers.is_possible_number_with_reason(number)
    if result in (
        phonenumbers.ValidationResult.TOO_SHORT,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ):
        return "too_short"
    if result == phonenumbers.ValidationResult.TOO_LONG:
        return "too_long"
    if result == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        return "invalid_country_code"
    return "not_a_number"
