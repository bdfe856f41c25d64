"""An exact attacker: integer programming over everything a reader knows about true counts.

A reader who knows the rounding rule (docs/privacy.md) knows that each published figure p hides
a true count in [max(0, p - 4), p + 4]; add the relations that hold between true counts and the
facts the reader knows exactly (a coordinator's own list), and ask, for each protected quantity,
for its least and greatest feasible value. A quantity with equal bounds is disclosed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from app.stats.rounding import lower_bound, upper_bound

Term = Mapping[str, int]  # variable name -> coefficient
# No count here exceeds this; a finite box keeps every program bounded.
MAX_COUNT = 10**6


@dataclass
class Knowledge:
    """Integer variables with bounds, and linear relations lo <= sum(coef * var) <= hi."""

    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    relations: list[tuple[Term, float, float]] = field(default_factory=list)

    def variable(self, name: str, lo: float = 0, hi: float = MAX_COUNT) -> None:
        old_lo, old_hi = self.bounds.get(name, (0, MAX_COUNT))
        self.bounds[name] = (max(old_lo, lo), min(old_hi, hi))

    def published(self, name: str, figure: int) -> None:
        """The reader saw `figure` for this true count."""
        self.variable(name, lower_bound(figure), upper_bound(figure))

    def published_sum(self, names: list[str], figure: int) -> None:
        """The reader saw `figure` for the sum of these true counts (a group's row)."""
        self.relations.append((dict.fromkeys(names, 1), lower_bound(figure), upper_bound(figure)))

    def exact(self, name: str, value: int) -> None:
        """The reader knows this count exactly."""
        self.variable(name, value, value)

    def at_most(self, small: Term, large: Term) -> None:
        """sum(small) <= sum(large)."""
        term = dict(small)
        for name, coef in large.items():
            term[name] = term.get(name, 0) - coef
        self.relations.append((term, -np.inf, 0))

    def equal(self, left: Term, right: Term) -> None:
        """sum(left) == sum(right)."""
        term = dict(left)
        for name, coef in right.items():
            term[name] = term.get(name, 0) - coef
        self.relations.append((term, 0, 0))

    def range_of(self, target: Term) -> tuple[float, float]:
        """Least and greatest value of sum(coef * var) over all integer solutions."""
        names = sorted(self.bounds)
        index = {n: i for i, n in enumerate(names)}
        lo = np.array([self.bounds[n][0] for n in names], dtype=float)
        hi = np.array([self.bounds[n][1] for n in names], dtype=float)
        constraints = []
        if self.relations:
            matrix = np.zeros((len(self.relations), len(names)))
            lows, highs = [], []
            for row, (term, low, high) in enumerate(self.relations):
                for name, coef in term.items():
                    matrix[row, index[name]] += coef
                lows.append(low)
                highs.append(high)
            constraints.append(LinearConstraint(matrix, lows, highs))
        objective = np.zeros(len(names))
        for name, coef in target.items():
            objective[index[name]] = coef
        integrality = np.ones(len(names))
        found = []
        for sign in (1, -1):
            result = milp(
                sign * objective,
                constraints=constraints,
                integrality=integrality,
                bounds=Bounds(lo, hi),
            )
            assert result.status == 0, f"the truth must be feasible: {result.message}"
            found.append(sign * result.fun)
        return found[0], found[1]

    def determined(self, targets: Sequence[Term]) -> list[Term]:
        """The targets whose value is the same in every solution."""
        return [t for t in targets if (r := self.range_of(t))[0] == r[1]]
