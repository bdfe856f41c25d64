"""Defensive readers for single values of Meta's webhook JSON: a wrong type reads as None."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_DIGITS = re.compile(r"\+?(\d{6,15})")
_ID_MAX = 256


def text_id(value: Any) -> str | None:
    """A non-empty string of at most 256 characters (ids, names, enum words), else None."""
    return value if isinstance(value, str) and value and len(value) <= _ID_MAX else None


def integer(value: Any) -> int | None:
    """An int, or a string of digits (Meta sends ids and codes both ways)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def graph_id(value: Any) -> str | None:
    """A Graph object id as a string, whether Meta sent it as a number or a string."""
    number = integer(value)
    return str(number) if number is not None else None


def phone_digits(value: Any) -> str | None:
    """A phone number as digits only (6 to 15, an optional '+' dropped), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    match = _DIGITS.fullmatch(value.strip())
    return match.group(1) if match else None


def timestamp(value: Any) -> datetime | None:
    """Unix seconds as a string (or number); milliseconds are recognised and converted."""
    seconds = integer(value)
    if seconds is None:
        return None
    if seconds > 10**11:  # milliseconds, seen "sometimes"
        seconds //= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def sub(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The object under `key`, or an empty one."""
    value = item.get(key)
    return value if isinstance(value, Mapping) else {}


def text_of(value: Any) -> str | None:
    """A string as is (inbound text for the caller's classifier), else None."""
    return value if isinstance(value, str) else None
