"""The cells of a system of linked tables, their marks, and how a marked cell is shown.

What each mark means, and the rules that assign them, are in `app.stats.suppression`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

COMPLEMENTARY_MARKER = "x"


class Mark(StrEnum):
    """Whether a cell is published, withheld as small ("<k"), or withheld as "x"."""

    published = "published"
    small = "small"
    complementary = "complementary"


def small_marker(k: int) -> str:
    """How a primary-suppressed count is shown: "<5" for k = 5."""
    return f"<{k}"


def display(value: int, mark: Mark, *, k: int) -> int | str:
    """The value as published: the number, "<k" or "x"."""
    if mark is Mark.published:
        return value
    return small_marker(k) if mark is Mark.small else COMPLEMENTARY_MARKER


@dataclass
class System:
    """Cells and the additive equations that link them."""

    values: list[int] = field(default_factory=list)
    is_total: list[bool] = field(default_factory=list)
    equations: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)

    def cell(self, value: int, *, total: bool = False) -> int:
        """Add a cell; returns its id."""
        if value < 0:
            raise ValueError("counts are never negative")
        self.values.append(int(value))
        self.is_total.append(total)
        return len(self.values) - 1

    def equation(self, total: int, parts: Sequence[int]) -> None:
        """Declare values[total] == sum(values[parts]); refuses an equation that does not hold."""
        parts = tuple(parts)
        if not parts or total in parts or len(set(parts)) != len(parts):
            raise ValueError("an equation needs distinct parts other than its total")
        if self.values[total] != sum(self.values[p] for p in parts):
            raise ValueError("equation does not hold for the given values")
        self.equations.append((total, parts))

    def members(self) -> list[list[tuple[int, int]]]:
        """Each equation as signed members: +1 for the total, -1 for the parts (sum = 0)."""
        return [[(t, 1), *((p, -1) for p in parts)] for t, parts in self.equations]
