"""Hypothesis strategies for plausible OPD histories, and the attacker's view of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from hypothesis import strategies as st

from app.stats.figures import FIELDS, MEASURES
from tests.stats.attacker import Knowledge

Day = dict[str, int]
FIRST = date(2026, 3, 2)
MONOTONE = ("scheduled", "delivered", "not_delivered", "opted_out", "expired", "billed")
SENSITIVE = ("scheduled", "delivered", "not_delivered", "opted_out", "expired", "billed")
# What became of the reminders scheduled: together never more than scheduled.
ENDS = ("delivered", "not_delivered", "expired")


@st.composite
def histories(draw: st.DrawFn, *, days: int | None = None) -> list[Day]:
    """One OPD's cumulative history: counts only grow, parts never exceed their wholes."""
    rows: list[Day] = []
    listed = ever = population = scheduled = delivered = not_delivered = opted_out = 0
    expired = billed = 0
    for _ in range(days if days is not None else draw(st.integers(1, 4))):
        joined = draw(st.integers(0, 14))
        left = draw(st.integers(0, listed))
        listed += joined - left
        ever += joined
        opted_out += draw(st.integers(0, max(0, ever - opted_out)))
        if draw(st.booleans()) and listed:
            population += listed
            scheduled += draw(st.integers(0, listed))
        waiting = scheduled - delivered - not_delivered - expired
        done = draw(st.integers(0, waiting))
        failed = draw(st.integers(0, done))
        lapsed = draw(st.integers(0, done - failed))
        delivered += done - failed - lapsed
        # Meta bills most delivered reminders (a part of them, in time, is free).
        billed += draw(st.integers(0, delivered - billed))
        not_delivered += failed
        expired += lapsed
        rows.append(
            {
                "enrolled": listed,
                "scheduled": scheduled,
                "delivered": delivered,
                "not_delivered": not_delivered,
                "opted_out": opted_out,
                "expired": expired,
                "billed": billed,
                "reminder_population": population,
                "ever_listed": ever,
            }
        )
    return rows


@st.composite
def worlds(draw: st.DrawFn) -> list[list[Day]]:
    """Two to five OPDs over the same one to four closed days."""
    n_days = draw(st.integers(1, 4))
    return draw(st.lists(histories(days=n_days), min_size=2, max_size=5))


def as_series(history: list[Day]) -> np.ndarray:
    """A history as the statistics hold it: (days, FIELDS) cumulative counts."""
    return np.array([[day[f] for f in FIELDS] for day in history], dtype=np.int64)


def days_of(world: list[list[Day]]) -> list[date]:
    return [FIRST + timedelta(days=i) for i in range(len(world[0]))]


def var(opd: int, measure: str, day: int) -> str:
    return f"o{opd}_{measure}_{day}"


@dataclass
class Reader:
    """What one reader has learnt, as linear knowledge over the OPDs' true counts."""

    world: list[list[Day]]
    know: Knowledge = field(default_factory=Knowledge)

    def __post_init__(self) -> None:
        for o, history in enumerate(self.world):
            for t in range(len(history)):
                for m in MEASURES:
                    self.know.variable(var(o, m, t))
                # Facts true of any history, which a reader who knows the service may use.
                self.know.at_most(
                    {var(o, m, t): 1 for m in ENDS},
                    {var(o, "scheduled", t): 1},
                )
                self.know.at_most({var(o, "billed", t): 1}, {var(o, "delivered", t): 1})
                if t:
                    for m in MONOTONE:
                        self.know.at_most({var(o, m, t - 1): 1}, {var(o, m, t): 1})

    def saw(
        self, members: tuple[int, ...], figures: list[dict[str, int]], *, first: int = 0
    ) -> None:
        """A published row (one OPD or a group) for every day from day `first` on."""
        for t, seen in enumerate(figures, start=first):
            for m in MEASURES:
                if len(members) == 1:
                    self.know.published(var(members[0], m, t), seen[m])
                else:
                    self.know.published_sum([var(o, m, t) for o in members], seen[m])

    def knows_own_list(self, opd: int) -> None:
        """A coordinator knows their list, its history and the rounds exactly."""
        for t, day in enumerate(self.world[opd]):
            self.know.exact(var(opd, "enrolled", t), day["enrolled"])
            self.know.variable(var(opd, "scheduled", t), 0, day["reminder_population"])
            self.know.variable(var(opd, "opted_out", t), 0, day["ever_listed"])

    def pinned(self, targets: list[dict[str, int]]) -> list[dict[str, int]]:
        return self.know.determined(targets)


def protected_targets(world: list[list[Day]], opds: range | list[int]) -> list[dict[str, int]]:
    """Counts, day-to-day changes, and "everyone" gaps of OPDs whose group is not empty."""
    found: list[dict[str, int]] = []
    for o in opds:
        history = world[o]
        for t, day in enumerate(history):
            if day["reminder_population"]:
                found += [{var(o, m, t): 1} for m in ("scheduled", *ENDS, "billed")]
            if day["ever_listed"]:
                found.append({var(o, "opted_out", t): 1})
            if t and history[t - 1]["ever_listed"]:
                found.append({var(o, "opted_out", t): 1, var(o, "opted_out", t - 1): -1})
            if t and history[t - 1]["reminder_population"]:
                for m in ("not_delivered", "expired"):
                    found.append({var(o, m, t): 1, var(o, m, t - 1): -1})
    return found
