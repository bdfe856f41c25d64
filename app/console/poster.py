"""The self-enrolment poster: a WhatsApp link with `DAFTAR <kode OPD>` and its QR code.

The QR code is drawn here (segno, pure Python) as inline SVG: no image service ever learns
which OPD printed a poster, and the page loads nothing from another origin.
"""

import re
from dataclasses import dataclass
from urllib.parse import quote

import segno

SIGNUP_KEYWORD = "DAFTAR"  # the words app/webhook/keywords.py recognises as Command.signup
STOP_KEYWORDS = ("BERHENTI", "STOP")


@dataclass(frozen=True)
class Poster:
    opd_code: str
    opd_name: str
    institution: str
    message: str
    link: str | None
    qr_svg: str | None
    display_number: str | None


def wa_digits(number: str) -> str:
    """The business number as wa.me wants it: digits only, country code first, no '+'."""
    digits = re.sub(r"\D", "", number)
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return digits


def signup_link(number: str, opd_code: str) -> str:
    """https://wa.me/<number>?text=DAFTAR%20<KODE>: opens WhatsApp with the message typed."""
    return f"https://wa.me/{wa_digits(number)}?text={quote(f'{SIGNUP_KEYWORD} {opd_code}')}"


def qr_svg(data: str, *, title: str) -> str:
    """A QR code as inline SVG (no style attributes: the console's CSP allows none)."""
    code = segno.make(data, error="m")
    return str(code.svg_inline(scale=4, border=4, title=title, svgclass="qr", omitsize=True))


def poster(*, opd_code: str, opd_name: str, institution: str, number: str) -> Poster:
    """Everything the printable poster shows for one OPD."""
    message = f"{SIGNUP_KEYWORD} {opd_code}"
    if not wa_digits(number):
        return Poster(opd_code, opd_name, institution, message, None, None, None)
    link = signup_link(number, opd_code)
    title = f"Kode QR: kirim {message} lewat WhatsApp"
    display = "+" + wa_digits(number)
    return Poster(
        opd_code, opd_name, institution, message, link, qr_svg(link, title=title), display
    )
