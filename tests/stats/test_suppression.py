"""Small-cell suppression: examples, and hypothesis proofs that no withheld value can be recovered.

For random tables (and pairs of tables that share a total row, like the campaign and daily views)
the property tests check every guarantee of ``app.stats.suppression``:

1. every count 0 < c < k is withheld;
2. every equation (row, column or grand total with its parts) has 0 or >= 2 withheld cells;
3. exact linear algebra over the rationals: for every withheld cell there is no combination of
   the published equations that yields its value (no unit row in the reduced row echelon form
   of the equations restricted to the withheld cells);
4. on small tables, exhaustive integer search: knowing every published value, the equations,
   that "<k" cells lie in 1..k-1 and "x" cells are counts >= 0 (bounded above by the sum of all
   cells, which only helps the reader), every withheld cell still has a second possible value.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.stats.cells import Mark, System, display
from app.stats.suppression import add_table, protect

K = 5

# Counts with many small values, some zeros and some large ones.
counts = st.one_of(
    st.integers(1, K - 1), st.integers(1, K - 1), st.just(0), st.integers(K, 40), st.integers(K, 9)
)


@dataclass(frozen=True)
class TableMarks:
    """Marks of one table: cells, column totals, and row totals / grand total if any."""

    cells: list[list[Mark]]
    column_totals: list[Mark]
    row_totals: list[Mark] | None
    grand_total: Mark | None


def suppress_table(
    rows: Sequence[Sequence[int]],
    *,
    k: int,
    row_totals: bool = True,
    relations: Sequence[tuple[int, Sequence[int]]] = (),
) -> TableMarks:
    """Protect one table (rows = OPDs, columns = measures) with its totals (only tests protect
    a table on its own; the service protects linked tables as one system)."""
    system = System()
    ids = add_table(system, rows, relations=relations, row_totals=row_totals)
    marks = protect(system, k=k)
    return TableMarks(
        cells=[[marks[c] for c in r] for r in ids.cells],
        column_totals=[marks[c] for c in ids.total_row],
        row_totals=None if ids.row_totals is None else [marks[c] for c in ids.row_totals],
        grand_total=None if ids.grand_total is None else marks[ids.grand_total],
    )


# --- examples ---------------------------------------------------------------------------------


def test_small_counts_are_withheld_and_zeros_published() -> None:
    marks = suppress_table([[0, 12, 30], [20, 25, 40]], k=K)
    assert all(m is Mark.published for row in marks.cells for m in row)
    marks = suppress_table([[3, 12, 30], [20, 25, 40]], k=K)
    assert marks.cells[0][0] is Mark.small
    withheld = [
        (r, c) for r, row in enumerate(marks.cells) for c, m in enumerate(row) if m != "published"
    ]
    # the 3 needs a partner in its row and in its column: a 2x2 block at least
    assert len(withheld) >= 4


def test_single_suppressed_cell_in_a_column_gets_a_partner() -> None:
    marks = suppress_table([[2], [10], [11]], k=K, row_totals=False)
    col = [row[0] for row in marks.cells]
    assert col[0] is Mark.small
    assert col.count(Mark.complementary) == 1
    assert col[1] is Mark.complementary  # the smallest publishable cell is chosen


def test_total_below_k_is_withheld() -> None:
    marks = suppress_table([[1, 0], [2, 0]], k=K)
    assert marks.column_totals[0] is Mark.small
    assert marks.grand_total is Mark.small


def test_single_row_table_is_its_own_total() -> None:
    system = System()
    ids = add_table(system, [[3, 40, 43]], relations=[(2, (0, 1))])
    marks = protect(system, k=K)
    assert ids.total_row == ids.cells[0]
    # 43 = 3 + 40 : the 3 must not be recoverable from 43 - 40
    assert marks[ids.cells[0][0]] is Mark.small
    assert sum(m is not Mark.published for m in marks) >= 2


def test_display_markers_follow_k() -> None:
    assert display(7, Mark.published, k=5) == 7
    assert display(3, Mark.small, k=5) == "<5"
    assert display(3, Mark.small, k=10) == "<10"
    assert display(70, Mark.complementary, k=5) == "x"


def test_bridge_between_two_protected_blocks_is_caught() -> None:
    """Degree >= 2 on every line is not enough: a cell joining two blocks can be determined."""
    system = System()
    a, b, c, d = (system.cell(v) for v in (1, 1, 1, 1))
    e = system.cell(9)
    r1, r2 = system.cell(2, total=True), system.cell(2, total=True)
    system.equation(r1, [a, b])
    system.equation(r2, [c, d])
    # a + c + e is published, and so is b + d + e: e is not recoverable yet, but
    # with (a+b) and (c+d) published, e = ((a+c+e)+(b+d+e) - r1 - r2) / 2.
    s1 = system.cell(11, total=True)
    s2 = system.cell(11, total=True)
    system.equation(s1, [a, c, e])
    system.equation(s2, [b, d, e])
    marks = protect(system, k=K)
    withheld = {i for i, m in enumerate(marks) if m is not Mark.published}
    assert {a, b, c, d} <= withheld
    assert not _linearly_determined_exact(system, marks)


def test_inconsistent_equation_is_refused() -> None:
    system = System()
    with pytest.raises(ValueError, match="does not hold"):
        system.equation(system.cell(3), [system.cell(1), system.cell(1)])
    with pytest.raises(ValueError, match="never negative"):
        system.cell(-1)


# --- checkers (independent of the implementation) ---------------------------------------------


def _lines(system: System, marks: list[Mark]) -> list[tuple[int, list[tuple[int, int]]]]:
    """Each equation as (published rest, withheld signed members): sum(coef * x) == rest."""
    out = []
    for members in system.members():
        withheld = [(c, coef) for c, coef in members if marks[c] is not Mark.published]
        rest = -sum(coef * system.values[c] for c, coef in members if marks[c] is Mark.published)
        out.append((rest, withheld))
    return out


def _linearly_determined_exact(system: System, marks: list[Mark]) -> list[int]:
    """Gauss-Jordan over the rationals; a unit row e_x means x is determined."""
    withheld = sorted(i for i, m in enumerate(marks) if m is not Mark.published)
    index = {c: j for j, c in enumerate(withheld)}
    matrix: list[list[Fraction]] = []
    for _, members in _lines(system, marks):
        if members:
            row = [Fraction(0)] * len(withheld)
            for c, coef in members:
                row[index[c]] += coef
            matrix.append(row)
    pivots: list[tuple[int, int]] = []
    r = 0
    for col in range(len(withheld)):
        found = next((i for i in range(r, len(matrix)) if matrix[i][col] != 0), None)
        if found is None:
            continue
        matrix[r], matrix[found] = matrix[found], matrix[r]
        pv = matrix[r][col]
        matrix[r] = [v / pv for v in matrix[r]]
        for i in range(len(matrix)):
            if i != r and matrix[i][col] != 0:
                f = matrix[i][col]
                matrix[i] = [a - f * b for a, b in zip(matrix[i], matrix[r], strict=True)]
        pivots.append((col, r))
        r += 1
    return [withheld[col] for col, i in pivots if sum(1 for v in matrix[i] if v) == 1]


def _has_other_solution(system: System, marks: list[Mark], cell: int, k: int) -> bool:
    """Exhaustive search: is there an integer solution with `cell` != its true value?"""
    upper = sum(system.values)
    domains: dict[int, set[int]] = {}
    for c, m in enumerate(marks):
        if m is Mark.small:
            domains[c] = set(range(1, k))
        elif m is Mark.complementary:
            domains[c] = set(range(upper + 1))
    domains[cell] = domains[cell] - {system.values[cell]}
    lines = [(rest, w) for rest, w in _lines(system, marks) if w]
    return _search(domains, lines)


def _search(domains: dict[int, set[int]], lines: list[tuple[int, list[tuple[int, int]]]]) -> bool:
    domains = {c: set(d) for c, d in domains.items()}
    changed = True
    while changed:  # bounds propagation as pruning
        changed = False
        for rest, members in lines:
            mins = {c: (min(domains[c]) if coef > 0 else -max(domains[c])) for c, coef in members}
            maxs = {c: (max(domains[c]) if coef > 0 else -min(domains[c])) for c, coef in members}
            smin, smax = sum(mins.values()), sum(maxs.values())
            for c, coef in members:
                lo_t, hi_t = rest - (smax - maxs[c]), rest - (smin - mins[c])
                keep = {v for v in domains[c] if lo_t <= coef * v <= hi_t}
                if not keep:
                    return False
                if keep != domains[c]:
                    domains[c] = keep
                    changed = True
                    break
            if changed:
                break
    if all(len(d) == 1 for d in domains.values()):
        value = {c: next(iter(d)) for c, d in domains.items()}
        return all(sum(coef * value[c] for c, coef in w) == rest for rest, w in lines)
    var = min((c for c in domains if len(domains[c]) > 1), key=lambda c: len(domains[c]))
    for v in sorted(domains[var]):
        trial = dict(domains)
        trial[var] = {v}
        if _search(trial, lines):
            return True
    return False


def _check_guarantees(system: System, marks: list[Mark], *, k: int, exhaustive: bool) -> None:
    for value, mark in zip(system.values, marks, strict=True):
        if 0 < value < k:
            assert mark is not Mark.published
        if mark is Mark.small:
            assert 0 < value < k
    for rest, withheld in _lines(system, marks):
        assert len(withheld) != 1, "a withheld value equals a published total minus parts"
        del rest
    assert _linearly_determined_exact(system, marks) == []
    if exhaustive:
        for c, m in enumerate(marks):
            if m is not Mark.published:
                assert _has_other_solution(system, marks, c, k), f"cell {c} is pinned"


# --- properties -------------------------------------------------------------------------------


@st.composite
def tables(draw: st.DrawFn, max_rows: int, max_cols: int) -> list[list[int]]:
    n_rows = draw(st.integers(1, max_rows))
    n_cols = draw(st.integers(1, max_cols))
    return [[draw(counts) for _ in range(n_cols)] for _ in range(n_rows)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=tables(max_rows=8, max_cols=6), k=st.sampled_from([3, 5, 10]))
def test_table_with_row_and_column_totals_hides_every_small_cell(
    rows: list[list[int]], k: int
) -> None:
    system = System()
    add_table(system, rows, row_totals=True)
    marks = protect(system, k=k)
    _check_guarantees(system, marks, k=k, exhaustive=False)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=tables(max_rows=3, max_cols=3))
def test_small_tables_survive_exhaustive_integer_search(rows: list[list[int]]) -> None:
    system = System()
    add_table(system, rows, row_totals=True)
    marks = protect(system, k=K)
    _check_guarantees(system, marks, k=K, exhaustive=True)


@st.composite
def linked_views(draw: st.DrawFn) -> tuple[list[list[int]], list[list[int]]]:
    """A per-OPD table whose last column is the sum of the others, and a per-day table
    whose column sums are the per-OPD table's totals (like the stats and daily views)."""
    n_parts = draw(st.integers(1, 3))
    n_opds = draw(st.integers(1, 4))
    n_days = draw(st.integers(1, 4))
    # per (opd, day) counts, so both views add up consistently
    cube = [[[draw(counts) for _ in range(n_parts)] for _ in range(n_days)] for _ in range(n_opds)]
    per_opd = [
        [sum(cube[o][d][p] for d in range(n_days)) for p in range(n_parts)] for o in range(n_opds)
    ]
    per_day = [
        [sum(cube[o][d][p] for o in range(n_opds)) for p in range(n_parts)] for d in range(n_days)
    ]
    return [[*r, sum(r)] for r in per_opd], per_day


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(views=linked_views(), exhaustive=st.booleans())
def test_views_published_together_are_protected_together(
    views: tuple[list[list[int]], list[list[int]]], exhaustive: bool
) -> None:
    per_opd, per_day = views
    width = len(per_day[0])
    system = System()
    master = add_table(system, per_opd, relations=[(width, tuple(range(width)))])
    add_table(system, per_day, total_row=master.total_row[:width])
    marks = protect(system, k=K)
    small_enough = sum(m is not Mark.published for m in marks) <= 8
    _check_guarantees(system, marks, k=K, exhaustive=exhaustive and small_enough)


@settings(max_examples=25, deadline=None)
@given(rows=tables(max_rows=60, max_cols=10))
def test_large_tables_finish_and_hold(rows: list[list[int]]) -> None:
    system = System()
    add_table(system, rows, row_totals=True)
    marks = protect(system, k=K)
    _check_guarantees(system, marks, k=K, exhaustive=False)
