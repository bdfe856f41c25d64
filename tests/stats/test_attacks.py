"""The five attack classes of invariant 5, each played by an exact attacker (docs/privacy.md).

Hypothesis draws several OPDs' histories; the published rows are made by the very code the API
uses (`app.stats.service`: grouping of small OPDs, rounding, caps, totals as sums). The attacker
reads them as an inspector or as a coordinator who also knows their own list exactly, writes down
every relation that holds between true counts, and asks integer programming whether any
protected quantity has only one possible value. None may.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.campaigns.models import Campaign
from app.stats import service
from app.stats.figures import FIELDS, MEASURES, Scope
from app.stats.queries import OpdRef
from tests.stats.worlds import FIRST, Reader, as_series, protected_targets, var, worlds

KEY = b"attack-test-key!" * 2
GROUP_MIN = 10
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _scope(world: list[list[dict[str, int]]], coordinator: int | None = None) -> Scope:
    days = len(world[0])
    campaign = Campaign(
        id=7, name="uji", first_day=FIRST, last_day=FIRST + timedelta(days=30), template_id=1
    )
    opds = [OpdRef(i + 1, f"OPD{i}", f"OPD {i}") for i in range(len(world))]
    own = opds[coordinator] if coordinator is not None else None
    return Scope(campaign, opds, None, own, FIRST + timedelta(days=days - 1))


def _published(world: list[list[dict[str, int]]], coordinator: int | None = None):  # type: ignore[no-untyped-def]
    """(members as OPD indexes, published figures per day) for every row a viewer gets."""
    scope = _scope(world, coordinator)
    series = {i + 1: as_series(history) for i, history in enumerate(world)}
    computed = service._publish(scope, series, GROUP_MIN, KEY)
    rows = [
        (
            tuple(m - 1 for m in unit.members),
            [{f: int(v) for f, v in zip(FIELDS, day, strict=True)} for day in figures],
        )
        for unit, figures in zip(computed.units, computed.series, strict=True)
    ]
    # The total row and the daily totals are sums of these rows: nothing a reader could not add.
    for t in range(len(world[0])):
        total = {m: sum(f[t][m] for _, f in rows) for m in MEASURES}
        assert all(v % 5 == 0 for v in total.values())
    return rows


def _inspector(world: list[list[dict[str, int]]], *, last_day_only: bool = False) -> Reader:
    reader = Reader(world)
    last = len(world[0]) - 1
    for members, figures in _published(world):
        if last_day_only:
            reader.saw(members, figures[-1:], first=last)
        else:
            reader.saw(members, figures)
    return reader


def _coordinator_with_export(world: list[list[dict[str, int]]]) -> Reader:
    reader = _inspector(world)
    for members, figures in _published(world, coordinator=0):
        reader.saw(members, figures)
    reader.knows_own_list(0)
    return reader


@SETTINGS
@given(worlds())
def test_1_relations_inside_one_row_pin_nothing(world: list[list[dict[str, int]]]) -> None:
    reader = _inspector(world, last_day_only=True)
    last = len(world[0]) - 1
    targets = [
        t
        for t in protected_targets(world, range(len(world)))
        if all(name.endswith(f"_{last}") for name in t)
    ]
    assert reader.pinned(targets) == []


@SETTINGS
@given(worlds())
def test_2_rows_columns_and_totals_pin_nothing(world: list[list[dict[str, int]]]) -> None:
    reader = _inspector(world)
    assert reader.pinned(protected_targets(world, range(len(world)))) == []


@SETTINGS
@given(worlds())
def test_3_a_coordinator_with_anyones_export_pins_nothing(
    world: list[list[dict[str, int]]],
) -> None:
    reader = _coordinator_with_export(world)
    assert reader.pinned(protected_targets(world, range(len(world)))) == []


@SETTINGS
@given(worlds())
def test_4_two_readings_around_events_pin_no_change(world: list[list[dict[str, int]]]) -> None:
    reader = _coordinator_with_export(world)
    changes = [t for t in protected_targets(world, range(len(world))) if len(t) == 2]
    assert reader.pinned(changes) == []


@SETTINGS
@given(worlds())
def test_5_no_zero_or_everyone_cell_describes_a_whole_group(
    world: list[list[dict[str, int]]],
) -> None:
    reader = _coordinator_with_export(world)
    gaps = []
    for o, history in enumerate(world):
        for t, day in enumerate(history):
            if day["reminder_population"]:
                # nobody left out of the rounds / nobody reached / everyone reached
                gaps.append({var(o, "scheduled", t): 1})
                gaps.append({var(o, "delivered", t): 1, var(o, "scheduled", t): -1})
            if day["ever_listed"]:
                gaps.append({var(o, "opted_out", t): 1})
    assert reader.pinned(gaps) == []


@SETTINGS
@given(worlds(), st.data())
def test_one_stop_between_two_readings_stays_hidden(
    world: list[list[dict[str, int]]], data: st.DataObject
) -> None:
    # The coordinator talks to someone, then reads again the next day: exactly one more STOP.
    opd = data.draw(st.integers(0, len(world) - 1))
    last = dict(world[opd][-1])
    last["opted_out"] += 1
    last["ever_listed"] = max(last["ever_listed"], last["opted_out"])
    grown = [[*h, dict(h[-1])] for h in world]
    grown[opd][-1] = last
    reader = _coordinator_with_export(grown)
    t = len(grown[0]) - 1
    change = {var(opd, "opted_out", t): 1, var(opd, "opted_out", t - 1): -1}
    low, high = reader.know.range_of(change)
    assert low <= 1 <= high
    assert low < high
