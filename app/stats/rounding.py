"""Keyed random rounding to base 5 with a population cap: the rule of docs/privacy.md.

Every published count `v = 5q + r` becomes `5q` or `5q + 5`, rounding up with probability `r/5`.
The coin is a keyed pseudo-random function of the cell's identity and its true value, so the
same cell with the same value always gets the same figure (no averaging over repeated queries,
the same answer for every viewer and surface), and a change of one person draws a fresh coin. A
reader who knows the rule learns only that the truth lies in `[max(0, p - 4), p + 4]`.

The cap keeps a day's figures from saying "everyone": a series is published day by day, and a
figure rounded up is rounded down instead whenever its lower bound (raised by the figures of
earlier days, since cumulative counts never fall) — or the sum of the lower bounds of the parts
of a whole — would reach the population the reader knows. Rounding down is always a valid
rounding, so the published figure stays within 4 of the truth.

Coins. A cell and measure name a 11-byte stream id (keyed BLAKE2b); the coin of value v is the
first 8 bytes of AES-256 applied to `stream id ‖ v` (one block, a pseudo-random function of it),
so a whole series costs one AES call, which keeps a 200-OPD, 90-day page cheap.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BASE = 5
_KEY_PURPOSE = b"pengingat-spi/stats-rounding/v1"
_MAX_VALUE = 1 << 40  # five bytes of the block


def rounding_key(index_key: bytes) -> bytes:
    """The rounding secret, derived from the blind-index key (never the key itself)."""
    return hmac.new(index_key, _KEY_PURPOSE, hashlib.sha256).digest()


def _stream(key: bytes, cell: str) -> bytes:
    return hashlib.blake2b(cell.encode(), key=key[:32], digest_size=11, person=b"spi-cell").digest()


@functools.lru_cache(maxsize=8)
def _cipher(key: bytes) -> Cipher[modes.ECB]:
    aes_key = hashlib.blake2b(key, digest_size=32, person=b"spi-aes").digest()
    return Cipher(algorithms.AES(aes_key), modes.ECB())


def _coins(key: bytes, streams: Sequence[bytes], values: np.ndarray) -> np.ndarray:
    """A coin in [0, 1) per value of `values` (rows × one column per stream), the same for the
    same key, stream and value."""
    ids = np.frombuffer(b"".join(streams), dtype=np.uint8).reshape(1, len(streams), 11)
    return _coins_of_cells(key, ids, values[np.newaxis])[0]


def _coins_of_cells(key: bytes, stream_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Coins of several cells at once: `stream_ids` is (cells, width, 11) bytes and `values`
    (cells, rows, width); a coin depends only on its own stream id and value."""
    if values.size and (values.min() < 0 or values.max() >= _MAX_VALUE):
        raise ValueError("counts are never negative and fit in five bytes")
    cells, rows, width = values.shape
    blocks = np.zeros((cells, rows, width, 16), dtype=np.uint8)
    blocks[..., :11] = stream_ids[:, np.newaxis, :, :]
    as_bytes = values.astype(">u8").reshape(cells, rows, width, 1).view(np.uint8)
    blocks[..., 11:] = as_bytes[..., 3:]
    # ECB over distinct blocks is AES used as a pseudo-random function, one block per coin;
    # every cell, measure and day of a page goes through one call.
    encryptor = _cipher(key).encryptor()
    out = encryptor.update(blocks.tobytes()) + encryptor.finalize()
    first = np.frombuffer(out, dtype=">u8").reshape(-1, 2)[:, 0]
    return (first.astype(np.float64) / 2.0**64).reshape(cells, rows, width)


def _rounded(values: np.ndarray, coins: np.ndarray) -> np.ndarray:
    rest = values % BASE
    return values - rest + np.where(coins * BASE < rest, BASE, 0)


def round_values(values: np.ndarray, *, key: bytes, cell: str) -> np.ndarray:
    """The published figures of one cell's counts (any shape), each within 4 of its count."""
    values = np.asarray(values, dtype=np.int64)
    coins = _coins(key, [_stream(key, cell)], values.reshape(-1, 1)).reshape(values.shape)
    return _rounded(values, coins)


def random_round(value: int, *, key: bytes, cell: str) -> int:
    """The published figure of one count: unbiased, and the same for the same cell and value."""
    if value < 0:
        raise ValueError("counts are never negative")
    return int(round_values(np.array([value]), key=key, cell=cell)[0])


def round_down(value: int) -> int:
    """The multiple of 5 at or below a count."""
    return value - value % BASE


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
    """Which measures of a series are cumulative (never fall) and which caps apply.

    `within` names a measure that counts a part of another (billed messages are delivered
    ones): it takes its coin from that measure's cell, so the two agree whenever their values
    do (two coins for one value would narrow it), and it is rounded down where its figure would
    exceed the whole's.
    """

    monotone: frozenset[str]
    caps: Sequence[Cap] = field(default_factory=tuple)
    within: Mapping[str, str] = field(default_factory=dict)


def publish_array(
    truth: np.ndarray, fields: Sequence[str], *, key: bytes, cell: str, rule: SeriesRule
) -> np.ndarray:
    """Published figures of a day-by-day series: `truth` is (days, fields), populations included.

    The populations' columns come back as zeros: they are never published. Day d's figures
    depend on days 0..d only, so a figure never changes once its day has closed. The coin
    depends on the measure and its value, not on the day: a value that stays the same keeps its
    figure, so a reader cannot collect fresh coins of one value and average the rounding away.
    """
    return publish_arrays(truth[np.newaxis], fields, key=key, cells=[cell], rule=rule)[0]


def publish_arrays(
    truths: np.ndarray, fields: Sequence[str], *, key: bytes, cells: Sequence[str], rule: SeriesRule
) -> np.ndarray:
    """`publish_array` for several cells at once: `truths` is (cells, days, fields).

    Each cell's figures are exactly those `publish_array` gives it alone; doing a page's cells
    together costs one AES call and a few array operations instead of a loop per cell.
    """
    column = {name: i for i, name in enumerate(fields)}
    populations = {cap.population for cap in rule.caps}
    published = np.zeros_like(truths, dtype=np.int64)
    names = [name for name in column if name not in populations]
    measures = [column[name] for name in names]
    stream_ids = np.frombuffer(
        b"".join(
            _stream(key, f"{cell}|{rule.within.get(name, name)}")
            for cell in cells
            for name in names
        ),
        dtype=np.uint8,
    ).reshape(len(cells), len(names), 11)
    values = truths[:, :, measures].astype(np.int64)
    published[:, :, measures] = _rounded(values, _coins_of_cells(key, stream_ids, values))
    bound = np.zeros(len(cells), dtype=bool)
    for cap in rule.caps:
        bound |= _may_bind(cap, truths, column)
    for i in np.flatnonzero(bound):
        _apply_caps(truths[i], published[i], column, rule)
    for part, whole in rule.within.items():
        p, w = column[part], column[whole]
        over = (published[:, :, p] > published[:, :, w]) & (truths[:, :, p] <= truths[:, :, w])
        # Rounding down is always valid, and round_down(part) <= round_down(whole) <= whole's.
        published[:, :, p][over] = truths[:, :, p][over] - truths[:, :, p][over] % BASE
    return published


def _may_bind(cap: Cap, truths: np.ndarray, column: Mapping[str, int]) -> np.ndarray:
    """Per cell of (cells, days, fields): whether the cap can bind on any day.

    Every lower bound is at most its true value, so a cap can bind only on a day where the
    parts' true values reach the population.
    """
    parts = truths[:, :, [column[m] for m in cap.parts]].sum(axis=2)
    population = truths[:, :, column[cap.population]]
    return np.asarray(np.any((population > 0) & (parts >= population), axis=1))


def _apply_caps(
    truth: np.ndarray, published: np.ndarray, column: Mapping[str, int], rule: SeriesRule
) -> None:
    floors: dict[str, int] = {}
    for d in range(truth.shape[0]):
        for cap in rule.caps:
            _apply_cap(cap, truth[d], published[d], column, floors)
        for m in rule.monotone:
            if m in column:
                floors[m] = max(floors.get(m, 0), int(published[d, column[m]]) - (BASE - 1))


def _apply_cap(
    cap: Cap,
    truth: np.ndarray,
    published: np.ndarray,
    column: Mapping[str, int],
    floors: Mapping[str, int],
) -> None:
    """Round parts down, largest lower bound first, until their lower bounds leave room."""

    def bound(m: str) -> int:
        return max(floors.get(m, 0), int(published[column[m]]) - (BASE - 1))

    population = int(truth[column[cap.population]])
    while population > 0 and sum(bound(m) for m in cap.parts) >= population:
        raised = [m for m in cap.parts if published[column[m]] > truth[column[m]]]
        if not raised:
            # Only earlier days' figures hold the bound up. They were capped against a
            # population at most this one, so this happens only when the counters break the
            # relation themselves (a delivery counted twice): then nothing can be pinned anyway.
            return
        worst = max(raised, key=lambda m: (bound(m), m))
        published[column[worst]] = round_down(int(truth[column[worst]]))


def publish_series(
    days: Sequence[Mapping[str, int]], *, key: bytes, cell: str, rule: SeriesRule
) -> list[dict[str, int]]:
    """`publish_array` for a list of {field: count} days (populations left out of the result)."""
    if not days:
        return []
    fields = list(days[0])
    truth = np.array([[day[f] for f in fields] for day in days], dtype=np.int64)
    published = publish_array(truth, fields, key=key, cell=cell, rule=rule)
    populations = {cap.population for cap in rule.caps}
    return [
        {f: int(row[i]) for i, f in enumerate(fields) if f not in populations} for row in published
    ]
