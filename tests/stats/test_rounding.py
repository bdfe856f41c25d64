"""The rounding rule of docs/privacy.md against an exact attacker (invariant 5).

Hypothesis draws one OPD's day-by-day history (listing, rounds, deliveries, failures, STOPs);
the attacker is a coordinator who knows their own list exactly at every moment and reads every
published figure of every day. Integer programming then looks for any protected quantity that
all that knowledge pins to one value: a count, the people left out of the rounds, or a day's
change (the two readings around one event).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.stats.rounding import (
    Cap,
    SeriesRule,
    lower_bound,
    publish_array,
    publish_arrays,
    publish_series,
    random_round,
    round_down,
    upper_bound,
)
from tests.stats.attacker import Knowledge

KEY = b"k" * 32
RULE = SeriesRule(
    monotone=frozenset({"scheduled", "delivered", "not_delivered", "opted_out"}),
    caps=(
        Cap(("scheduled",), "reminder_population"),
        Cap(("delivered", "not_delivered"), "reminder_population"),
        Cap(("opted_out",), "ever_listed"),
    ),
)
SENSITIVE = ("scheduled", "delivered", "not_delivered", "opted_out")


@dataclass
class Day:
    listed: int  # on the list at the end of the day (the coordinator knows it)
    ever_listed: int
    reminder_population: int  # sum over the rounds so far of the people listed at the round
    scheduled: int
    delivered: int
    not_delivered: int
    opted_out: int


@st.composite
def histories(draw: st.DrawFn) -> list[Day]:
    """A plausible cumulative history: counts only grow, parts never exceed their wholes."""
    days: list[Day] = []
    listed = ever = population = scheduled = delivered = not_delivered = opted_out = 0
    for _ in range(draw(st.integers(1, 4))):
        joined = draw(st.integers(0, 12))
        left = draw(st.integers(0, listed))
        listed += joined - left
        ever += joined
        opted_out += draw(st.integers(0, max(0, ever - opted_out)))
        if draw(st.booleans()) and listed:
            population += listed
            scheduled += draw(st.integers(0, listed))
        waiting = scheduled - delivered - not_delivered
        done = draw(st.integers(0, waiting))
        failed = draw(st.integers(0, done))
        delivered += done - failed
        not_delivered += failed
        days.append(Day(listed, ever, population, scheduled, delivered, not_delivered, opted_out))
    return days


def published(days: list[Day], key: bytes = KEY) -> list[dict[str, int]]:
    truth = [
        {
            "scheduled": d.scheduled,
            "delivered": d.delivered,
            "not_delivered": d.not_delivered,
            "opted_out": d.opted_out,
            "reminder_population": d.reminder_population,
            "ever_listed": d.ever_listed,
        }
        for d in days
    ]
    return publish_series(truth, key=key, cell="campaign-1|DINKES", rule=RULE)


def coordinator_knowledge(days: list[Day], figures: list[dict[str, int]]) -> Knowledge:
    know = Knowledge()
    for t, (day, seen) in enumerate(zip(days, figures, strict=True)):
        for m in SENSITIVE:
            know.published(f"{m}{t}", seen[m])
            if t:
                know.at_most({f"{m}{t - 1}": 1}, {f"{m}{t}": 1})
        know.at_most({f"delivered{t}": 1, f"not_delivered{t}": 1}, {f"scheduled{t}": 1})
        know.variable(f"scheduled{t}", 0, day.reminder_population)
        know.variable(f"opted_out{t}", 0, day.ever_listed)
    return know


def targets(days: list[Day]) -> list[dict[str, int]]:
    """Every protected quantity whose group is not empty (nothing to learn about nobody)."""
    found: list[dict[str, int]] = []
    for t, day in enumerate(days):
        if day.reminder_population:
            found += [{f"{m}{t}": 1} for m in ("scheduled", "delivered", "not_delivered")]
        if day.ever_listed:
            found.append({f"opted_out{t}": 1})
        if t and days[t - 1].ever_listed:
            found.append({f"opted_out{t}": 1, f"opted_out{t - 1}": -1})
        if t and days[t - 1].reminder_population:
            found += [{f"{m}{t}": 1, f"{m}{t - 1}": -1} for m in ("scheduled", "not_delivered")]
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_no_protected_quantity_is_determined(days: list[Day]) -> None:
    figures = published(days)
    know = coordinator_knowledge(days, figures)
    assert know.determined(targets(days)) == []


@settings(max_examples=200, deadline=None)
@given(histories())
def test_every_figure_is_a_multiple_of_five_within_four_of_the_truth(days: list[Day]) -> None:
    for day, seen in zip(days, published(days), strict=True):
        for m in SENSITIVE:
            assert seen[m] % 5 == 0
            assert lower_bound(seen[m]) <= getattr(day, m) <= upper_bound(seen[m])
        assert "reminder_population" not in seen


FIELDS = (*SENSITIVE, "reminder_population", "ever_listed")
NO_CAPS = SeriesRule(monotone=RULE.monotone)


def test_a_page_published_together_equals_each_cell_published_alone() -> None:
    # The statistics publish all OPDs of a page in one call; no cell may get other figures
    # than it gets alone. Everyone is scheduled in every cell, so caps bind in many of them.
    rng = np.random.default_rng(20261202)
    capped = 0
    for page in range(100):
        truths = np.zeros((4, 3, len(FIELDS)), dtype=np.int64)
        population = np.cumsum(rng.integers(1, 12, size=(4, 3)), axis=1)
        for name in ("reminder_population", "ever_listed", "scheduled"):
            truths[:, :, FIELDS.index(name)] = population
        truths[:, :, FIELDS.index("delivered")] = population // 2
        names = [f"campaign-{page}|OPD{i}" for i in range(4)]
        together = publish_arrays(truths, FIELDS, key=KEY, cells=names, rule=RULE)
        uncapped = publish_arrays(truths, FIELDS, key=KEY, cells=names, rule=NO_CAPS)
        for i, name in enumerate(names):
            alone = publish_array(truths[i], FIELDS, key=KEY, cell=name, rule=RULE)
            assert together[i].tolist() == alone.tolist()
            capped += together[i].tolist() != uncapped[i].tolist()
    assert capped > 50  # the comparison covered cells whose caps bound


@settings(max_examples=100, deadline=None)
@given(histories())
def test_caps_keep_everyone_cells_open(days: list[Day]) -> None:
    for day, seen in zip(days, published(days), strict=True):
        if day.reminder_population:
            assert lower_bound(seen["scheduled"]) < day.reminder_population
            parts = lower_bound(seen["delivered"]) + lower_bound(seen["not_delivered"])
            assert parts < day.reminder_population
        if day.ever_listed:
            assert lower_bound(seen["opted_out"]) < day.ever_listed


def test_the_same_cell_and_value_always_give_the_same_figure() -> None:
    figures = {random_round(13, key=KEY, cell="c|opted_out|0") for _ in range(20)}
    assert len(figures) == 1


def test_rounding_is_unbiased_over_many_cells() -> None:
    total = sum(random_round(7, key=KEY, cell=f"cell-{i}") for i in range(5000))
    assert total / 5000 == pytest.approx(7, abs=0.15)


def test_another_key_gives_other_coins() -> None:
    cells = [f"cell-{i}" for i in range(200)]
    ours = [random_round(7, key=KEY, cell=c) for c in cells]
    theirs = [random_round(7, key=b"z" * 32, cell=c) for c in cells]
    assert ours != theirs


def test_everyone_stopped_is_not_published_as_such() -> None:
    # Eleven people, all of whom stopped: a figure of 15 would tell the coordinator so.
    truth = [
        {
            "scheduled": 0,
            "delivered": 0,
            "not_delivered": 0,
            "opted_out": 11,
            "reminder_population": 0,
            "ever_listed": 11,
        }
    ]
    for i in range(40):
        seen = publish_series(truth, key=bytes([i]) * 32, cell="c", rule=RULE)[0]
        assert seen["opted_out"] in (10, round_down(11))


def test_a_stop_between_two_readings_leaves_the_change_open() -> None:
    before = Day(12, 12, 12, 12, 9, 0, 0)
    after = Day(12, 12, 12, 12, 9, 0, 1)
    figures = published([before, after])
    know = coordinator_knowledge([before, after], figures)
    low, high = know.range_of({"opted_out1": 1, "opted_out0": -1})
    assert low < 1 or high > 1
    assert low <= 1 <= high
