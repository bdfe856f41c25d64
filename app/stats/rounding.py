"""Keyed random rounding to base 5 with a population cap: the rule of docs/privacy.md.

Every published count `v = 5q + r` becomes `5q` or `5q + 5`, rounding up with probability `r/5`.
The coin is an HMAC of the cell's identity and its true value under a secret key, so the same cell
with the same value always gets the same figure (no averaging over repeated queries, the same
answer for every viewer and surface), and a change of one person draws a fresh coin. A reader who
knows the rule learns only that the truth lies in `[max(0, p - 4), p + 4]`.

The cap keeps a day's figures from saying "everyone": a series is published day by day, and a
figure rounded up is rounded down instead whenever its lower bound (raised by the figures of
earlier days, since cumulative counts never fall) — or the sum of the lower bounds of the parts of
a whole — would reach the population the reader knows. Rounding down is always a valid rounding,
so the published figure stays within 4 of the truth.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

BASE = 5
_KEY_PURPOSE = b"pengingat-spi/stats-rounding/v1"


def rounding_key(index_key: bytes) -> bytes:
    """The rounding secret, derived from the blind-index key (never the key itself)."""
    return hmac.new(index_key, _KEY_PURPOSE, hashlib.sha256).digest()


def _coin(key: bytes, cell: str, value: int) -> float:
    # Keyed BLAKE2b is a MAC (RFC 7693) and several times cheaper than HMAC-SHA256 here,
    # where a dashboard page draws tens of thousands of coins.
    digest = hashlib.blake2b(f"{cell}|{value}".encode(), key=key[:64], digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def round_down(value: int) -> int:
    """The multiple of 5 at or below a count."""
    return value - value % BASE


def random_round(value: int, *, key: bytes, cell: str) -> int:
    """The published figure of one count: unbiased, and the same for the same cell and value."""
    if value < 0:
        raise ValueError("counts are never negative")
    rest = value % BASE
    if rest == 0:
        return value
    up = _coin(key, cell, value) < rest / BASE
    return value - rest + (BASE if up else 0)


def lower_bound(published: int) -> int:
    """The least true value a reader who knows the rule can infer from a published figure."""
    return max(0, published - (BASE - 1))


def upper_bound(published: int) -> int:
    """The greatest true value a reader who knows the rule can infer from a published figure."""
    return published + (BASE - 1)


@dataclass(frozen=True, slots=True)
class Cap:
    """Parts whose lower bounds together must stay below a population a reader may know."""

    parts: tuple[str, ...]
    population: str


@dataclass
class SeriesRule:
    """Which measures of a series are cumulative (never fall) and which caps apply."""

    monotone: frozenset[str]
    caps: Sequence[Cap] = field(default_factory=tuple)


def publish_series(
    days: Sequence[Mapping[str, int]], *, key: bytes, cell: str, rule: SeriesRule
) -> list[dict[str, int]]:
    """Published figures of a day-by-day series of true counts (populations are not published).

    `days` holds, per day and in order, the true value of every measure and of every population
    a cap names. Day d's figures depend on days 0..d only, so a figure never changes once its
    day has closed. The coin depends on the measure and its value, not on the day: a value that
    stays the same keeps its figure, so a reader cannot collect fresh coins of one value day
    after day and average the rounding away.
    """
    populations = {cap.population for cap in rule.caps}
    floors: dict[str, int] = {}
    published_days: list[dict[str, int]] = []
    for truth in days:
        published = {
            m: random_round(v, key=key, cell=f"{cell}|{m}")
            for m, v in truth.items()
            if m not in populations
        }
        for cap in rule.caps:
            _apply_cap(cap, truth, published, floors)
        for m in rule.monotone & published.keys():
            floors[m] = max(floors.get(m, 0), lower_bound(published[m]))
        published_days.append(published)
    return published_days


def _apply_cap(
    cap: Cap, truth: Mapping[str, int], published: dict[str, int], floors: Mapping[str, int]
) -> None:
    """Round parts down, largest lower bound first, until their lower bounds leave room."""

    def bound(m: str) -> int:
        return max(floors.get(m, 0), lower_bound(published[m]))

    population = truth[cap.population]
    while population > 0 and sum(bound(m) for m in cap.parts) >= population:
        raised = [m for m in cap.parts if published[m] > truth[m]]
        if not raised:
            # Only earlier days' figures hold the bound up. They were capped against a
            # population at most this one, so this happens only when the counters break the
            # relation themselves (a delivery counted twice): then nothing can be pinned anyway.
            return
        worst = max(raised, key=lambda m: (bound(m), m))
        published[worst] = round_down(truth[worst])
