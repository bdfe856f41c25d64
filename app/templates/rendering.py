"""Indonesian date formatting and positional ``{{n}}`` placeholder rendering for template bodies."""

from __future__ import annotations

import re
from datetime import date

MONTHS_ID: tuple[str, ...] = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)

# Anything between double braces, so malformed placeholders like {{ 1 }} or {{nama}} are caught
# here rather than by Meta's template review.
_BRACES = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_POSITIONAL = re.compile(r"[1-9][0-9]*")
# Meta rejects parameter values with line breaks, tabs or more than four consecutive spaces.
_BAD_VALUE = re.compile(r"[\n\r\t]| {5,}")


def format_date_id(d: date) -> str:
    """Format a date the Indonesian way, e.g. "31 Oktober 2026", without touching the locale."""
    return f"{d.day} {MONTHS_ID[d.month - 1]} {d.year}"


def placeholder_count(body: str) -> int:
    """Count the distinct positional placeholders, which must run {{1}}..{{n}} without gaps."""
    numbers: set[int] = set()
    for m in _BRACES.finditer(body):
        inner = m.group(1)
        if not _POSITIONAL.fullmatch(inner):
            raise ValueError(
                f"malformed placeholder {m.group()!r} at offset {m.start()}: "
                "use {{1}}, {{2}}, ... without spaces or names"
            )
        numbers.add(int(inner))
    expected = set(range(1, len(numbers) + 1))
    if numbers != expected:
        missing = sorted(expected - numbers)
        raise ValueError(
            f"placeholders must be consecutive from {{{{1}}}}: found "
            f"{', '.join(f'{{{{{n}}}}}' for n in sorted(numbers))}; "
            f"missing {', '.join(f'{{{{{n}}}}}' for n in missing)}"
        )
    return len(numbers)


def render_body(body: str, values: list[str]) -> str:
    """Fill {{1}}..{{n}} with values in order; the number of values must match exactly."""
    count = placeholder_count(body)
    if len(values) != count:
        raise ValueError(f"template has {count} placeholder(s) but {len(values)} value(s) given")
    for index, value in enumerate(values, start=1):
        if not value.strip():
            raise ValueError(f"value for {{{{{index}}}}} is empty")
        if _BAD_VALUE.search(value):
            raise ValueError(
                f"value for {{{{{index}}}}} contains a line break, tab or more than four spaces"
            )
    # One pass, so a value that itself contains "{{2}}" is not expanded again.
    return _BRACES.sub(lambda m: values[int(m.group(1)) - 1], body)
