"""Published ranges: for every hidden cell, the interval any reader of the release can already derive.

A reader holds the published cells as printed (a sum rounded to its last digit lies within half of it; a count
is exact), knows how the cells of a table add up (the relations) and that non-negative quantities are at least
their public lower bound; of a cell it is not shown (a hidden cell, a ratio's numerator) it knows nothing
else. Minimising and maximising each hidden cell
over exactly that (one LP per hidden component, HiGHS re-solving warm) gives an interval that adds nothing to
the release: anyone can compute it. No a-priori upper bound is assumed (the audit's is derived from the
largest cell, which may be hidden), so a cell that no published total bounds has no upper end.

The audit's intervals are not used: they assume knowledge a reader may not have (the a-priori upper bound,
an insider's own figures) and must stay in the secretariat's report.
"""

from __future__ import annotations

import math

import highspy
import numpy as np

from aggregator.disclosure.highs import largest_bound, pass_lp, run_warm_then_cold, silent_highs
from aggregator.disclosure.model import ProtectionProblem
from aggregator.errors import DisclosureError


def public_intervals(problem: ProtectionProblem, shown: np.ndarray, slack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per cell that is not shown: NaN for shown cells, -inf/inf where nothing bounds a side.

    shown: each cell's value as the release prints it (rounded), NaN where the release shows no value (a
    hidden cell, a helper cell, a ratio's numerator or denominator). slack: how far the true value may lie
    from the printed one (half the last printed digit; 0 where the reader knows the value is exact, e.g. a
    count). The reader knows nothing else of a cell it is not shown.
    """
    shown = np.asarray(shown, dtype=float)
    unknown = np.isnan(shown)
    lo, hi = np.full(problem.size, np.nan), np.full(problem.size, np.nan)
    lower = np.where(problem.lower >= 0, problem.lower, -np.inf)  # a negative bound is derived from the data
    low = np.where(unknown, lower, np.maximum(shown - slack, lower))
    high = np.where(unknown, np.inf, shown + slack)
    variable = unknown | (slack > 0)
    rows = _variable_rows(problem, variable, np.where(variable, 0.0, shown))
    for cells, block in _components(np.flatnonzero(variable), rows):
        targets = unknown[cells]
        if targets.any():
            found_lo, found_hi = _component_intervals(cells, block, low[cells], high[cells], targets)
            lo[cells[targets]], hi[cells[targets]] = found_lo, found_hi
    return lo, hi


def outward(lo: float, hi: float, decimals: int) -> tuple[float | None, float | None]:
    """The interval rounded outward to `decimals` (never narrower than derived); None for an open side."""
    scale = 10.0**decimals
    # LP noise (120.0000000001) must not widen a clean bound by a whole unit
    low = None if not math.isfinite(lo) else math.floor(round(lo * scale, 6)) / scale
    high = None if not math.isfinite(hi) else math.ceil(round(hi * scale, 6)) / scale
    return low, high


def _variable_rows(problem: ProtectionProblem, variable: np.ndarray, known: np.ndarray) -> list:
    """Each relation with a variable cell as (variable cells, coefficients, right-hand side): cells the reader
    knows exactly are moved to the right."""
    rows = []
    for total, parts in problem.relations:
        cells = np.array([total, *parts], dtype=np.int64)
        coefs = np.array([1.0] + [-1.0] * len(parts))
        mask = variable[cells]
        if mask.any():
            rows.append((cells[mask], coefs[mask], -float(coefs[~mask] @ known[cells[~mask]])))
    return rows


def _components(cells: np.ndarray, rows: list) -> list[tuple[np.ndarray, list]]:
    """Hidden cells grouped by the relations that link them, each with its rows, in cell order."""
    parent = {int(c): int(c) for c in cells}

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for members, _, _ in rows:
        root = find(int(members[0]))
        for m in members[1:]:
            other = find(int(m))
            if other != root:
                parent[max(other, root)] = min(other, root)
                root = min(other, root)
    groups: dict[int, list[int]] = {}
    for c in cells.tolist():
        groups.setdefault(find(c), []).append(c)
    row_groups: dict[int, list] = {}
    for row in rows:
        row_groups.setdefault(find(int(row[0][0])), []).append(row)
    return [(np.array(members), row_groups.get(root, [])) for root, members in sorted(groups.items())]


def _component_intervals(
    cells: np.ndarray, rows: list, low: np.ndarray, high: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Least and greatest value of each target cell of one component."""
    if not rows:
        return low[targets], high[targets]
    solver = _component_lp(cells, rows, low, high)
    columns = np.flatnonzero(targets)
    lo, hi = np.empty(len(columns)), np.empty(len(columns))
    for k, col in enumerate(columns.tolist()):
        lo[k] = _optimise(solver, col, len(cells), sense=1.0)
        hi[k] = _optimise(solver, col, len(cells), sense=-1.0)
    return lo, hi


def _component_lp(cells: np.ndarray, rows: list, low: np.ndarray, high: np.ndarray) -> highspy.Highs:
    column = {int(c): k for k, c in enumerate(cells)}
    start, index, value, rhs = [0], [], [], []
    for members, coefs, constant in rows:
        index += [column[int(m)] for m in members]
        value += coefs.tolist()
        start.append(len(index))
        rhs.append(constant)
    # presolve would drop the basis between objectives
    solver = silent_highs(largest_bound(low, high, rhs), presolve="off")
    inf = highspy.kHighsInf
    pass_lp(solver, np.zeros(len(cells)), np.maximum(low, -inf), np.minimum(high, inf), rhs, rhs, start, index, value)
    return solver


def _optimise(solver: highspy.Highs, col: int, size: int, sense: float) -> float:
    """min (sense 1) or -max (sense -1) of one column; +-inf when the LP is unbounded that way."""
    cost = np.zeros(size)
    cost[col] = sense
    solver.changeColsCost(size, np.arange(size, dtype=np.int32), cost)
    status = run_warm_then_cold(solver)
    if status == highspy.HighsModelStatus.kOptimal:
        return float(solver.getInfo().objective_function_value) * sense
    if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return -np.inf * sense
    raise DisclosureError(
        f"the published-range LP of a hidden cell ended '{solver.modelStatusToString(status)}'",
        hint="report this as a bug with the protection problem attached",
    )
