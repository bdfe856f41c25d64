"""Small-cell suppression for linked tables of counts (invariant 5).

Model. A *system* is a list of non-negative integer cells linked by additive equations
``total = part_1 + … + part_n``: a column of OPD rows and its total, a row's parts and its
row total (e.g. scheduled = accepted + failed … + pending), a day-by-day table whose column sums
are the campaign totals of another table. Tables published together go into one system, so
that no value withheld in one of them can be worked out with the help of the other.

Marks.
- ``small`` (primary): ``0 < value < k``; shown as ``"<k"`` (``"<5"`` by default).
- ``complementary``: withheld so that no small value can be worked out; shown as ``"x"``,
  which promises nothing about the value. Usually a publishable value (showing it as ``"<5"``
  would be false); occasionally a small value whose ``"<k"`` label would itself give too much
  away (e.g. a 2x2 table of ones: four ``"<5"`` cells and a ``"<5"`` total force every cell
  to be 1, so the total is shown as ``"x"``).
- ``published``: shown as is. **Zeros are published**, as in official statistics practice: a 0
  says "nobody in this group", which discloses nothing about an identifiable person that the
  group's own members do not already know, and withholding zeros would force withholding most
  of every sparse table. A 0 never helps to recover a withheld value beyond what the
  guarantees below already rule out, because the checks treat every published cell, zeros
  included, as known to the reader.

What ``protect`` guarantees (``tests/stats/test_suppression.py`` checks each with hypothesis
on random tables with many small values):

1. every count ``0 < c < k`` is withheld;
2. no equation has exactly one withheld cell: subtracting the published parts from a published
   total (row, column or grand total) never yields a withheld value;
3. no withheld cell is a *linear consequence* of the published cells: there is a second real
   solution of all equations that agrees on every published cell and differs in that cell.
   Checked exactly: the equations restricted to the withheld cells are brought to reduced row
   echelon form; cell x is determined iff some reduced row is the unit vector e_x (the tests
   redo this over the rationals; here it is done modulo a 61-bit prime);
4. no withheld cell is pinned to one value by *interval reasoning* of a reader who knows this
   rule (a ``"<k"`` cell lies in 1..k-1, an ``"x"`` cell is some count ≥ 0): bounds are
   propagated through every equation until stable, and for every connected group of at most
   ``LP_MAX_CELLS`` withheld cells a linear program decides exactly which cells can move at all
   (``app.stats.lp``); a cell that cannot is treated as disclosed. Larger groups (big tables
   with many small cells, where the published totals leave ample slack) get the propagation
   only. The tests confirm on small tables, by exhaustive integer search, that every withheld
   cell keeps at least two possible values.

Whenever a check finds a disclosed cell, the smallest published cell of the equation that
disclosed it is withheld too (non-zero before zero, parts before totals); for a cell pinned by
bounds, where a withheld 0 adds no room, a ``"<k"`` label in that equation becomes ``"x"``
instead when the equation has no non-zero published cell; failing both, the same is done in
the equations nearest to it. All checks then run again until none finds anything. Each round
withholds a cell or drops a label, so the loop ends. (With k = 2 a ``"<2"`` cell is a 1, so
every small cell ends up shown as ``"x"``: k should be at least 3.)

Not covered: differencing across time (a figure read today and tomorrow) and across viewers
(a coordinator's own-OPD table next to the inspectorate's all-OPD table); each response is
protected on its own, for the tables one viewer gets together.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from app.stats import lp

_PRIME = (1 << 61) - 1
LP_MAX_CELLS = 40
_MAX_PROPAGATION_ROUNDS = 200
COMPLEMENTARY_MARKER = "x"


class Mark(StrEnum):
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


def protect(system: System, *, k: int) -> list[Mark]:
    """Mark every cell published, small or complementary so that guarantees 1-4 hold."""
    if k < 1:
        raise ValueError("k must be at least 1")
    values = system.values
    marks = [Mark.small if 0 < v < k else Mark.published for v in values]
    eq_members = system.members()
    cell_eqs: list[list[int]] = [[] for _ in values]
    for e, members in enumerate(eq_members):
        for c, _ in members:
            cell_eqs[c].append(e)

    def cost(c: int) -> tuple[bool, bool, int, int]:
        return (values[c] == 0, system.is_total[c], values[c], c)

    def nearby(start: int, wanted: Callable[[int], bool]) -> list[int]:
        """Cells satisfying `wanted` in the equations nearest to `start` (breadth first)."""
        seen_cells = {start}
        seen_eqs: set[int] = set()
        frontier = [start]
        while frontier:
            found: set[int] = set()
            nxt: list[int] = []
            for c in frontier:
                for e in cell_eqs[c]:
                    if e in seen_eqs:
                        continue
                    seen_eqs.add(e)
                    for m, _ in eq_members[e]:
                        if wanted(m):
                            found.add(m)
                        if marks[m] is not Mark.published and m not in seen_cells:
                            seen_cells.add(m)
                            nxt.append(m)
            if found:
                return sorted(found)
            frontier = nxt
        return []

    def repair(cell: int, cause: int | None, *, slack: bool) -> int | None:
        """Withhold the cheapest published cell of the equation that disclosed `cell`, or
        stop claiming that one of its withheld cells is small (shown "x" instead of "<k"),
        or, failing both, do either near it. With `slack` (a cell pinned by bounds) a
        withheld 0 would not help, so only non-zero cells are candidates, and loosening a
        "<k" label in the pinning equation comes before hiding a cell further away.
        Returns the cell changed."""

        def candidate(m: int) -> bool:
            return marks[m] is Mark.published and not (slack and values[m] == 0)

        def small_in(cells: list[int]) -> int | None:
            if marks[cell] is Mark.small and cell in cells:
                return cell
            smalls = [m for m in cells if marks[m] is Mark.small]
            return max(smalls, key=cost) if smalls else None

        local = [m for m, _ in eq_members[cause]] if cause is not None else []
        chosen: int | None = None
        published = [m for m in local if candidate(m)]
        if published:
            chosen = min(published, key=cost)
        elif slack and local:
            chosen = small_in(local)
        if chosen is None:
            published = nearby(cell, candidate)
            if published:
                chosen = min(published, key=cost)
            else:
                chosen = small_in([cell, *nearby(cell, lambda m: marks[m] is Mark.small)])
        if chosen is None:
            return None
        marks[chosen] = Mark.complementary
        return chosen

    while True:
        _fix_single_withheld(eq_members, cell_eqs, marks, cost)
        disclosed: dict[int, int | None] = dict.fromkeys(_linearly_determined(eq_members, marks))
        slack = not disclosed
        if not disclosed:
            disclosed = dict(_pinned_by_bounds(values, marks, eq_members, k))
        if not disclosed:
            disclosed = dict.fromkeys(_pinned_by_lp(values, marks, eq_members, k))
        if not disclosed:
            return marks
        # Repair several disclosed cells per round, but only ones whose disclosing equation
        # (or, if unknown, any of whose equations) no repair of this round has touched: one
        # new withheld cell often protects a whole line.
        touched: set[int] = set()
        repaired = False
        for c, cause in sorted(disclosed.items()):
            guard = {cause} if cause is not None else set(cell_eqs[c])
            if touched & guard:
                continue
            changed = repair(c, cause, slack=slack)
            if changed is None:
                continue
            repaired = True
            touched |= guard
            touched.update(cell_eqs[changed])
        if not repaired:
            return marks  # everything around them is withheld and unlabelled already


def _fix_single_withheld(
    eq_members: list[list[tuple[int, int]]],
    cell_eqs: list[list[int]],
    marks: list[Mark],
    cost: Callable[[int], tuple[bool, bool, int, int]],
) -> None:
    """Guarantee 2, cheaply: give every equation with one withheld cell a second one."""
    count = [sum(marks[c] is not Mark.published for c, _ in m) for m in eq_members]
    queue = deque(e for e, n in enumerate(count) if n == 1)
    while queue:
        e = queue.popleft()
        if count[e] != 1:
            continue
        candidates = [c for c, _ in eq_members[e] if marks[c] is Mark.published]
        if not candidates:
            continue
        chosen = min(candidates, key=cost)
        marks[chosen] = Mark.complementary
        for e2 in cell_eqs[chosen]:
            count[e2] += 1
            if count[e2] == 1:
                queue.append(e2)


def _linearly_determined(eq_members: list[list[tuple[int, int]]], marks: list[Mark]) -> list[int]:
    """Withheld cells fixed by the equations alone (reduced row echelon form mod a prime)."""
    rows: list[dict[int, int]] = []
    frequency: dict[int, int] = {}
    for members in eq_members:
        raw: dict[int, int] = {}
        for c, coef in members:
            if marks[c] is not Mark.published:
                raw[c] = (raw.get(c, 0) + coef) % _PRIME
        raw = {c: v for c, v in raw.items() if v}
        if raw:
            rows.append(raw)
            for c in raw:
                frequency[c] = frequency.get(c, 0) + 1
    # Short rows first and, as pivot, the variable in the fewest equations: little fill-in.
    rows.sort(key=len)
    pivots: dict[int, dict[int, int]] = {}
    occurs: dict[int, set[int]] = {}  # variable -> pivots whose row mentions it
    for row in rows:
        for pv in [c for c in row if c in pivots]:
            factor = row.get(pv, 0)
            if not factor:
                continue
            for c, v in pivots[pv].items():
                nv = (row.get(c, 0) - factor * v) % _PRIME
                if nv:
                    row[c] = nv
                else:
                    row.pop(c, None)
        if not row:
            continue
        p = min(row, key=lambda c: (frequency[c], c))
        inv = pow(row[p], _PRIME - 2, _PRIME)
        row = {c: v * inv % _PRIME for c, v in row.items()}
        for q in list(occurs.get(p, ())):
            other = pivots[q]
            factor = other[p]
            for c, v in row.items():
                nv = (other.get(c, 0) - factor * v) % _PRIME
                if nv:
                    if c not in other:
                        occurs.setdefault(c, set()).add(q)
                    other[c] = nv
                elif c in other:
                    del other[c]
                    occurs[c].discard(q)
        pivots[p] = row
        for c in row:
            occurs.setdefault(c, set()).add(p)
    return [p for p, r in pivots.items() if len(r) == 1]


def _pinned_by_bounds(
    values: list[int], marks: list[Mark], eq_members: list[list[tuple[int, int]]], k: int
) -> dict[int, int]:
    """Withheld cells whose possible range, as a reader who knows the rule sees it, is one
    value; each with the equation that pinned it."""
    inf = math.inf
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    for c, mark in enumerate(marks):
        if mark is Mark.small:
            lo[c], hi[c] = 1, k - 1
        elif mark is Mark.complementary:
            lo[c], hi[c] = 0, inf
    lines: dict[int, tuple[int, list[tuple[int, int]]]] = {}
    lines_of: dict[int, list[int]] = {}
    for e, members in enumerate(eq_members):
        withheld = [(c, coef) for c, coef in members if marks[c] is not Mark.published]
        if withheld:
            rest = -sum(coef * values[c] for c, coef in members if marks[c] is Mark.published)
            lines[e] = (rest, withheld)
            for c, _ in withheld:
                lines_of.setdefault(c, []).append(e)
    pinned: dict[int, int] = {}
    queue = deque(lines)
    queued = set(lines)
    budget = _MAX_PROPAGATION_ROUNDS * max(1, len(lines))
    while queue and budget > 0:
        budget -= 1
        e = queue.popleft()
        queued.discard(e)
        rest, withheld = lines[e]
        # sum(coef * x) == rest; the range of each term, then of the others' sum
        t_lo = [coef * lo[c] if coef > 0 else -hi[c] for c, coef in withheld]
        t_hi = [coef * hi[c] if coef > 0 else -lo[c] for c, coef in withheld]
        lo_inf = sum(1 for v in t_lo if v == -inf)
        hi_inf = sum(1 for v in t_hi if v == inf)
        lo_fin = sum(v for v in t_lo if v != -inf)
        hi_fin = sum(v for v in t_hi if v != inf)
        for i, (c, coef) in enumerate(withheld):
            if lo_inf - (t_lo[i] == -inf):
                others_lo = -inf
            else:
                others_lo = lo_fin - (t_lo[i] if t_lo[i] != -inf else 0)
            if hi_inf - (t_hi[i] == inf):
                others_hi = inf
            else:
                others_hi = hi_fin - (t_hi[i] if t_hi[i] != inf else 0)
            term_lo, term_hi = rest - others_hi, rest - others_lo
            new_lo, new_hi = (term_lo, term_hi) if coef > 0 else (-term_hi, -term_lo)
            new_lo = max(lo[c], math.ceil(new_lo) if new_lo != -inf else -inf)
            new_hi = min(hi[c], math.floor(new_hi) if new_hi != inf else inf)
            if new_lo > new_hi:  # inconsistent: cannot happen for tables that add up
                return {}
            if new_lo != lo[c] or new_hi != hi[c]:
                lo[c], hi[c] = new_lo, new_hi
                if new_lo == new_hi and c not in pinned:
                    pinned[c] = e
                for e2 in lines_of[c]:
                    if e2 != e and e2 not in queued:
                        queue.append(e2)
                        queued.add(e2)
    return pinned


def _pinned_by_lp(
    values: list[int], marks: list[Mark], eq_members: list[list[tuple[int, int]]], k: int
) -> list[int]:
    """Guarantee 4 in full (linear programming) for withheld components of at most
    LP_MAX_CELLS cells; larger ones rely on the bounds propagation above."""
    parent: dict[int, int] = {c: c for c, m in enumerate(marks) if m is not Mark.published}

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    rows: list[dict[int, int]] = []
    for members in eq_members:
        row: dict[int, int] = {}
        for c, coef in members:
            if marks[c] is not Mark.published:
                row[c] = row.get(c, 0) + coef
        if row:
            rows.append(row)
            first, *rest = row
            for c in rest:
                parent[find(c)] = find(first)
    components: dict[int, list[int]] = {}
    for c in parent:
        components.setdefault(find(c), []).append(c)
    by_root: dict[int, list[dict[int, int]]] = {}
    for row in rows:
        by_root.setdefault(find(next(iter(row))), []).append(row)
    pinned: list[int] = []
    for root, cells in components.items():
        if len(cells) > LP_MAX_CELLS:
            continue
        lower = {c for c in cells if values[c] == (1 if marks[c] is Mark.small else 0)}
        upper = {c for c in cells if marks[c] is Mark.small and values[c] == k - 1}
        if not lower and not upper:
            continue  # no bound is tight: the linear check already decided
        pinned += lp.pinned_in_component(cells, by_root.get(root, []), lower, upper)
    return pinned


@dataclass(frozen=True)
class TableIds:
    """Cell ids of one table inside a system: rows x columns, the total row, row totals."""

    cells: list[list[int]]
    total_row: list[int]
    row_totals: list[int] | None = None
    grand_total: int | None = None


def add_table(
    system: System,
    rows: Sequence[Sequence[int]],
    *,
    relations: Sequence[tuple[int, Sequence[int]]] = (),
    total_row: Sequence[int] | None = None,
    row_totals: bool = False,
) -> TableIds:
    """Add a table (rows of equal width) with its column totals to `system`.

    relations: (total column, part columns) that hold in every row, the total row included;
    an equation is added only for rows where it holds (callers may clamp derived values).
    total_row: ids of existing cells that are this table's column totals (shared with a table
    published alongside); otherwise a total row is created (or, for a single row, the row is
    its own total). row_totals: add a total column summing each row, and a grand total.
    """
    width = len(rows[0]) if rows else (len(total_row) if total_row is not None else 0)
    if any(len(r) != width for r in rows):
        raise ValueError("rows must have the same width")
    cells = [[system.cell(v) for v in r] for r in rows]
    if total_row is not None:
        totals = list(total_row)
        if len(totals) != width:
            raise ValueError("total_row must match the table width")
        own_totals = False
    elif len(rows) == 1:
        totals = cells[0]
        own_totals = False
    else:
        totals = [system.cell(sum(r[j] for r in rows), total=True) for j in range(width)]
        own_totals = True
    if len(rows) > 1 or total_row is not None:
        for j in range(width):
            if rows:
                system.equation(totals[j], [r[j] for r in cells])
    relation_rows = [*cells, totals] if own_totals else cells
    for row in relation_rows:
        for t, parts in relations:
            if system.values[row[t]] == sum(system.values[row[p]] for p in parts):
                system.equation(row[t], [row[p] for p in parts])
    row_total_ids: list[int] | None = None
    grand: int | None = None
    if row_totals and width > 1:
        row_total_ids = []
        for r in cells:
            rt = system.cell(sum(system.values[c] for c in r), total=True)
            system.equation(rt, r)
            row_total_ids.append(rt)
        if totals is cells[0]:
            grand = row_total_ids[0]
        else:
            grand = system.cell(sum(system.values[c] for c in totals), total=True)
            system.equation(grand, totals)
            if len(row_total_ids) > 1:
                system.equation(grand, row_total_ids)
    return TableIds(cells=cells, total_row=totals, row_totals=row_total_ids, grand_total=grand)


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
    """Protect one table (rows = OPDs, columns = measures) with its totals."""
    system = System()
    ids = add_table(system, rows, relations=relations, row_totals=row_totals)
    marks = protect(system, k=k)
    return TableMarks(
        cells=[[marks[c] for c in r] for r in ids.cells],
        column_totals=[marks[c] for c in ids.total_row],
        row_totals=None if ids.row_totals is None else [marks[c] for c in ids.row_totals],
        grand_total=None if ids.grand_total is None else marks[ids.grand_total],
    )
