"""Meta's messaging-limit tiers and throughput levels, as numbers the service can plan with.

The messaging limit caps how many unique people the business portfolio may message outside a
service window in a moving 24 h. Meta writes it as a tier word (`TIER_2K`) in reads and most
webhooks, but `business_capability_update` sends a number, with -1 for unlimited.
"""

from __future__ import annotations

from typing import Any

from app.messaging.values import integer

UNLIMITED_TIER = "TIER_UNLIMITED"
NOT_SET_TIER = "TIER_NOT_SET"
# People per moving 24 h; None = unlimited.
TIER_LIMITS: dict[str, int | None] = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
    UNLIMITED_TIER: None,
}
_WORDS = {limit: word for word, limit in TIER_LIMITS.items() if limit is not None}
# A new business portfolio starts here; assumed until Meta says otherwise.
DEFAULT_MESSAGING_LIMIT = 250

# Messages per second per business number (inbound and outbound together).
STANDARD_THROUGHPUT = 80
HIGH_THROUGHPUT = 1_000
COEXISTENCE_THROUGHPUT = 20
HIGH_THROUGHPUT_LEVEL = "HIGH"


def tier_word(value: Any) -> str | None:
    """The tier word of a limit as Meta writes it anywhere: `TIER_2K`, 2000, "2000" or -1."""
    if isinstance(value, str) and value.strip().upper().startswith("TIER_"):
        word = value.strip().upper()
        return word if word in TIER_LIMITS or word == NOT_SET_TIER else None
    number = -1 if value in (-1, "-1") else integer(value)
    if number is None:
        return None
    if number < 0:
        return UNLIMITED_TIER
    return _WORDS.get(number, f"TIER_{number}")


def known_limit(word: str | None) -> bool:
    """Whether the tier word says how many people may be messaged (NOT_SET and None do not)."""
    return word is not None and (word in TIER_LIMITS or _custom_limit(word) is not None)


def limit_of(word: str | None) -> int | None:
    """People per moving 24 h for a known tier word; None = unlimited (check `known_limit`)."""
    if word is None:
        return DEFAULT_MESSAGING_LIMIT
    if word in TIER_LIMITS:
        return TIER_LIMITS[word]
    custom = _custom_limit(word)
    return custom if custom is not None else DEFAULT_MESSAGING_LIMIT


def _custom_limit(word: str) -> int | None:
    digits = word.removeprefix("TIER_")
    return int(digits) if digits.isdigit() else None


def throughput_of(level: str | None, *, coexistence: bool) -> int:
    """Messages per second of a number: 20 when it is also on the Business app, else by level."""
    if coexistence:
        return COEXISTENCE_THROUGHPUT
    return HIGH_THROUGHPUT if level == HIGH_THROUGHPUT_LEVEL else STANDARD_THROUGHPUT
