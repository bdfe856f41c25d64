"""Which withheld cells a reader could pin down with linear programming (guarantee 4 of
`app.stats.suppression`), for components small enough to afford it.

A reader knows the published cells, the equations A x = b between them, and bounds on each
withheld cell ("<k": 1..k-1, "x": ≥ 0). The true table v is one solution. A withheld cell x_c
can take another value iff some direction d with A d = 0 and d_c ≠ 0 keeps v + t·d inside the
bounds for a small t > 0, i.e. d lies in the cone C = {A d = 0, d_j ≥ 0 where v_j sits at its
lower bound, d_j ≤ 0 where it sits at its upper bound}. Let T* be the bound-tight cells that
move in some direction of C (one LP: maximise Σ s_j with 0 ≤ s_j ≤ 1, s_j ≤ ±d_j). Every
direction of C leaves the other tight cells at 0, and any d in
V = {A d = 0, d_j = 0 for tight j outside T*} is a direction of C after adding a small
multiple of the LP's optimum, so the cells that can move are exactly those not determined by
the linear system of V: one exact rank computation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

_EPS = 1e-9


def _maximize(c: list[float], a: list[list[float]], b: list[float]) -> list[float]:
    """max c·x subject to a·x ≤ b, x ≥ 0, for b ≥ 0 (the origin is feasible) and a bounded
    optimum; dense tableau simplex with Bland's rule (no cycling on degenerate vertices)."""
    m, n = len(a), len(c)
    rows = [[*a[i], *(1.0 if j == i else 0.0 for j in range(m)), b[i]] for i in range(m)]
    basis = [n + i for i in range(m)]
    reduced = [*c, *([0.0] * m), 0.0]
    while True:
        entering = next((j for j in range(n + m) if reduced[j] > _EPS), None)
        if entering is None:
            break
        leave: int | None = None
        best = math.inf
        for i in range(m):
            coef = rows[i][entering]
            if coef > _EPS:
                ratio = rows[i][-1] / coef
                if ratio < best - _EPS or (
                    abs(ratio - best) <= _EPS and leave is not None and basis[i] < basis[leave]
                ):
                    best, leave = ratio, i
        if leave is None:  # unbounded: cannot happen for the bounded problems built here
            break
        pivot_row = rows[leave]
        pv = pivot_row[entering]
        pivot_row[:] = [v / pv for v in pivot_row]
        for i in range(m):
            if i != leave:
                f = rows[i][entering]
                if f:
                    row = rows[i]
                    rows[i] = [x - f * y for x, y in zip(row, pivot_row, strict=True)]
        f = reduced[entering]
        reduced = [x - f * y for x, y in zip(reduced, pivot_row, strict=True)]
        basis[leave] = entering
    x = [0.0] * (n + m)
    for i, j in enumerate(basis):
        x[j] = rows[i][-1]
    return x[:n]


def rref(
    rows: Sequence[dict[int, int]], variables: Sequence[int]
) -> dict[int, dict[int, Fraction]]:
    """Exact reduced row echelon form: pivot variable -> row (pivot coefficient 1)."""
    pivots: dict[int, dict[int, Fraction]] = {}
    for raw in rows:
        row = {v: Fraction(x) for v, x in raw.items() if x}
        for pv in [v for v in row if v in pivots]:
            f = row.get(pv)
            if not f:
                continue
            for v, x in pivots[pv].items():
                nv = row.get(v, Fraction(0)) - f * x
                if nv:
                    row[v] = nv
                else:
                    row.pop(v, None)
        if not row:
            continue
        p = min(row, key=variables.index)
        inv = 1 / row[p]
        row = {v: x * inv for v, x in row.items()}
        for other in pivots.values():
            f = other.get(p)
            if f:
                for v, x in row.items():
                    nv = other.get(v, Fraction(0)) - f * x
                    if nv:
                        other[v] = nv
                    else:
                        other.pop(v, None)
        pivots[p] = row
    return pivots


def pinned_in_component(
    cells: Sequence[int],
    rows: Sequence[dict[int, int]],
    lower_tight: set[int],
    upper_tight: set[int],
) -> list[int]:
    """Cells of one withheld component that no feasible direction moves.

    rows: the homogeneous equations restricted to `cells` (A d = 0); lower_tight / upper_tight:
    cells whose true value sits at the lower / upper end of what the reader knows about them.
    """
    order = list(cells)
    pivots = rref(rows, order)
    free = [v for v in order if v not in pivots]
    # Null-space basis: d = N z, one column per free variable.
    basis: dict[int, list[float]] = {}
    for v in order:
        if v in pivots:
            basis[v] = [-float(pivots[v].get(f, 0)) for f in free]
        else:
            basis[v] = [1.0 if f == v else 0.0 for f in free]
    fixed = lower_tight & upper_tight
    one_sided = [v for v in order if (v in lower_tight) != (v in upper_tight)]
    moving: set[int] = set()
    if one_sided and free:
        nf, nt = len(free), len(one_sided)
        a: list[list[float]] = []
        b: list[float] = []
        for t, v in enumerate(one_sided):
            sign = 1.0 if v in lower_tight else -1.0
            n_row = basis[v]
            # s_t - sign * N_v (z+ - z-) <= 0
            a.append(
                [*(-sign * x for x in n_row), *(sign * x for x in n_row)]
                + [1.0 if u == t else 0.0 for u in range(nt)]
            )
            b.append(0.0)
            a.append([0.0] * (2 * nf) + [1.0 if u == t else 0.0 for u in range(nt)])
            b.append(1.0)
        for v in fixed:
            n_row = basis[v]
            a.append([*n_row, *(-x for x in n_row), *([0.0] * nt)])
            b.append(0.0)
            a.append([*(-x for x in n_row), *n_row, *([0.0] * nt)])
            b.append(0.0)
        objective = [0.0] * (2 * nf) + [1.0] * nt
        solution = _maximize(objective, a, b)
        moving = {v for t, v in enumerate(one_sided) if solution[2 * nf + t] > 0.5}
    stuck = fixed | (set(one_sided) - moving)
    extended = [*rows, *({v: 1} for v in stuck)]
    reduced = rref(extended, order)
    determined = {p for p, r in reduced.items() if len(r) == 1}
    return sorted(determined | stuck)
