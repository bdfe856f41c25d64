"""Recognise the employee keywords in inbound text; the text itself is never kept.

Normalisation: Unicode NFKC and case folding; every character that is not a letter or a digit
(punctuation, emoji, symbols) becomes a space; runs of a repeated letter count as one letter
("Stoppp", "berhentiii"); courtesy words are dropped wherever they stand (see `FILLERS`: tolong,
mohon, saya, mau, pak/bu, terima kasih, "SPI", "pengingat" …), and so is a trailing "ya".

Multi-word rule: a message is a command only when nothing but one command phrase is left after
that. Any other word, and in particular a negation ("jangan berhenti berdoa", "saya tidak mau
berhenti") or a longer sentence ("berhenti merokok"), makes it ordinary text, which gets the
once-a-day neutral reply that lists the keywords. Words are compared whole: "STOPWATCH" is not
STOP. `DAFTAR` is the one command with an argument: everything after it is the OPD code.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    stop = "stop"
    resume = "resume"
    help = "help"
    data = "data"
    erase = "erase"
    signup = "signup"
    confirm = "confirm"
    other = "other"


_REPEATS = re.compile(r"(.)\1+")


def _collapse(word: str) -> str:
    """One letter per run of repeats: 'stoppp' -> 'stop' (no keyword has a double letter)."""
    return _REPEATS.sub(r"\1", word)


def _phrases(command: Command, *phrases: str) -> dict[str, Command]:
    return {" ".join(_collapse(w) for w in p.split()): command for p in phrases}


PHRASES: dict[str, Command] = {
    **_phrases(
        Command.stop,
        "stop",
        "berhenti",
        "unsubscribe",
        "unsub",
        "keluar",
        "batal",
        "hentikan",
        "unreg",
        "opt out",
        "optout",
        "berhenti berlangganan",
        "stop promotions",
        "stop promotion",
        "stop promosi",
        "berhenti promosi",
    ),
    **_phrases(Command.resume, "mulai", "mulai lagi", "start", "lanjut", "lanjutkan", "resume"),
    **_phrases(Command.help, "bantuan", "help", "info", "informasi", "menu"),
    **_phrases(Command.data, "data", "cek data", "lihat data", "data apa"),
    **_phrases(
        Command.erase,
        "hapus",
        "hapus data",
        "hapus semua data",
        "hapus nomor",
        "hapuskan",
        "hapus semua",
        "delete",
        "delete data",
    ),
    **_phrases(Command.confirm, "ya", "iya", "yes", "setuju", "ya setuju", "iya setuju"),
}
SIGNUP_WORDS = frozenset({"daftar", "register"})
# Courtesy and filler words that never change what a message asks for. Negations are never here.
FILLERS = frozenset(
    _collapse(w)
    for w in [
        "tolong",
        "mohon",
        "please",
        "pls",
        "plis",
        "saya",
        "aku",
        "sy",
        "mau",
        "ingin",
        "pengen",
        "minta",
        "pak",
        "bu",
        "bapak",
        "ibu",
        "kak",
        "kakak",
        "mas",
        "mbak",
        "min",
        "admin",
        "terima",
        "kasih",
        "makasih",
        "trims",
        "thanks",
        "thank",
        "thx",
        "aja",
        "saja",
        "dong",
        "deh",
        "sekarang",
        "spi",
        "pengingat",
        "reminder",
    ]
)
_SOFTENER = "ya"  # "stop ya", "hapus ya pak": a trailing particle, not a confirmation


@dataclass(frozen=True)
class Parsed:
    """The recognised command; for `signup`, the words after DAFTAR (upper case)."""

    command: Command
    argument: tuple[str, ...] = ()


OTHER = Parsed(Command.other)


def words(text: str) -> list[str]:
    """Case-folded words of the text, with punctuation, symbols and emoji removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    cleaned = "".join(ch if unicodedata.category(ch)[0] in "LN" else " " for ch in folded)
    return cleaned.split()


def classify(text: str | None) -> Parsed:
    """What a piece of inbound text asks for; anything unrecognised is `other`."""
    if not text:
        return OTHER
    raw = words(text)
    collapsed = [_collapse(w) for w in raw]
    start = 0
    while start < len(collapsed) and collapsed[start] in FILLERS:
        start += 1
    if start < len(collapsed) and collapsed[start] in SIGNUP_WORDS:
        return Parsed(Command.signup, tuple(w.upper() for w in raw[start + 1 :]))

    kept: list[str] = []
    for word in collapsed[start:]:
        if word in FILLERS or (kept and kept[-1] == word):
            continue
        kept.append(word)
    if len(kept) > 1 and kept[-1] == _SOFTENER:
        kept.pop()
    command = PHRASES.get(" ".join(kept))
    return Parsed(command) if command is not None else OTHER


def classify_any(*candidates: str | None) -> Parsed:
    """The first candidate that is a command (button text, then its payload or id)."""
    for candidate in candidates:
        parsed = classify(candidate)
        if parsed.command is not Command.other:
            return parsed
    return OTHER
