"""Published ranges: for every hidden cell, the interval any reader of the release can already derive.

A reader holds the published cells and knows how the cells of a table add up (the relations) and that
non-negative quantities are at least their public lower bound. Minimising and maximising each hidden cell
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

from aggregator.disclosure.highs import pass_lp, run_warm_then_cold, silent_highs
from aggregator.disclosure.model import ProtectionProblem
from aggregator.errors import DisclosureError


def public_intervals(problem: ProtectionProblem, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per cell: NaN for published cells, -inf/inf where a hidden cell has no bound on that side."""
    hidden = np.asarray(hidden, dtype=bool)
    lo, hi = np.full(problem.size, np.nan), np.full(problem.size, np.nan)
    lower = np.where(problem.lower >= 0, problem.lower, -np.inf)  # a negative bound is derived from the data
    rows = _hidden_rows(problem, hidden)
    for cells, block in _components(np.flatnonzero(hidden), rows):
        lo[cells], hi[cells] = _component_intervals(cells, block, lower[cells])
    return lo, hi


def outward(lo: float, hi: float, decimals: int) -> tuple[float | None, float | None]:
    """The interval rounded outward to `decimals` (never narrower than derived); None for an open side."""
    scale = 10.0**decimals
    # LP noise (120.0000000001) must not widen a clean bound by a whole unit
    low = None if not math.isfinite(lo) else math.floor(round(lo * scale, 6)) / scale
    high = None if not math.isfinite(hi) else math.ceil(round(hi * scale, 6)) / scale
    return low, high


def ratio_interval(numerator: tuple[float, float], denominator: tuple[float, float]) -> tuple[float, float]:
    """100 x numerator / denominator over two non-negative intervals (a ratio cell's two components)."""
    (n_lo, n_hi), (d_lo, d_hi) = numerator, denominator
    low = 0.0 if not math.isfinite(d_hi) or d_hi <= 0 else 100.0 * max(n_lo, 0.0) / d_hi
    high = math.inf if d_lo <= 0 or not math.isfinite(n_hi) else 100.0 * n_hi / d_lo
    return low, high


def _hidden_rows(problem: ProtectionProblem, hidden: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Each relation with a hidden cell as (hidden cells, coefficients, right-hand side): the published cells
    are moved to the right."""
    rows = []
    for total, parts in problem.relations:
        cells = np.array([total, *parts], dtype=np.int64)
        coefs = np.array([1.0] + [-1.0] * len(parts))
        mask = hidden[cells]
        if mask.any():
            rhs = -float(coefs[~mask] @ problem.values[cells[~mask]])
            rows.append((cells[mask], coefs[mask], rhs))
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


def _component_intervals(cells: np.ndarray, rows: list, lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return lower.copy(), np.full(len(cells), np.inf)
    solver = _component_lp(cells, rows, lower)
    lo, hi = np.empty(len(cells)), np.empty(len(cells))
    for col in range(len(cells)):
        lo[col] = _optimise(solver, col, len(cells), sense=1.0)
        hi[col] = _optimise(solver, col, len(cells), sense=-1.0)
    return lo, hi


def _component_lp(cells: np.ndarray, rows: list, lower: np.ndarray) -> highspy.Highs:
    column = {int(c): k for k, c in enumerate(cells)}
    start, index, value, rhs = [0], [], [], []
    for members, coefs, constant in rows:
        index += [column[int(m)] for m in members]
        value += coefs.tolist()
        start.append(len(index))
        rhs.append(constant)
    solver = silent_highs(presolve="off")  # presolve would drop the basis between objectives
    upper = np.full(len(cells), highspy.kHighsInf)
    low = np.where(np.isfinite(lower), lower, -highspy.kHighsInf)
    pass_lp(solver, np.zeros(len(cells)), low, upper, rhs, rhs, start, index, value)
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
