"""How a reader could work out a withheld cell: the checks behind guarantees 2-4 of
`app.stats.suppression`. Each returns the withheld cells it finds disclosed (guarantee 2 is
cheap enough to repair on the spot, so that check withholds a second cell itself).
"""

import math
from collections import deque
from collections.abc import Callable

from app.stats import lp
from app.stats.cells import Mark

_PRIME = (1 << 61) - 1
LP_MAX_CELLS = 40
_MAX_PROPAGATION_ROUNDS = 200


def fix_single_withheld(
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


def linearly_determined(eq_members: list[list[tuple[int, int]]], marks: list[Mark]) -> list[int]:
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


def pinned_by_bounds(
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


def pinned_by_lp(
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
