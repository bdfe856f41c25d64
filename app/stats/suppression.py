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
   (``app.stats.lp``; the checks are in ``app.stats.disclosure``); a cell that cannot is
   treated as disclosed. Larger groups (big tables with many small cells, where the published
   totals leave ample slack) get the propagation only. The tests confirm on small tables, by
   exhaustive integer search, that every withheld cell keeps at least two possible values.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.stats import disclosure
from app.stats.cells import Mark, System


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
        disclosure.fix_single_withheld(eq_members, cell_eqs, marks, cost)
        disclosed: dict[int, int | None] = dict.fromkeys(
            disclosure.linearly_determined(eq_members, marks)
        )
        slack = not disclosed
        if not disclosed:
            disclosed = dict(disclosure.pinned_by_bounds(values, marks, eq_members, k))
        if not disclosed:
            disclosed = dict.fromkeys(disclosure.pinned_by_lp(values, marks, eq_members, k))
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
