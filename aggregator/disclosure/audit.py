"""The attacker's view of a release: the tightest interval an attacker can derive for every hidden cell.

For each hidden cell i we minimise and maximise y_i subject to every additivity relation, the published
values and the a-priori bounds (two linear programs), first as an outsider and then, per contributor, with
that contributor's own contributions known. What counts as protected is documented in docs/rules.md.

Speed matters (50,000+ cells, thousands hidden), so:
- published cells are substituted into the relations: only hidden cells are LP variables;
- the hidden cells split into connected components (cells linked through relations); each component gets
  one HiGHS model, built once, and every min/max re-solves it warm from the previous basis;
- a hidden cell in no relation gets its a-priori bounds without any LP;
- an LP solution in which another cell sits at its a-priori bound settles that cell's bound for free;
- an insider is only re-solved where the outsider's optimal solutions are not already feasible for it, and
  only for cells at stake (a primary cell whose requirement, capped at the bounds, reaches beyond its value:
  a helper cell without a requirement cannot fail), so components without such cells cost nothing;
- a component's HiGHS model is built on first use (cached components are never solved again);
- `verdict_only` (repair loops) solves the outsider only for cells at stake: the same failures, fewer LPs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import highspy
import numpy as np

from aggregator.disclosure.highs import run_warm_then_cold, silent_highs
from aggregator.disclosure.model import AuditResult, ProtectionProblem, insider_floor
from aggregator.errors import DisclosureError

ABS_TOL = 1e-7  # absolute part of the tolerance used for every interval comparison
REL_TOL = 1e-9  # relative part, scaled by the largest magnitude in the problem
# Exact 6-decimal values near 10**10 become doubles whose margins disagree by ~1e-5, which the solver
# (tolerance 1e-7) calls contradictory. Only then (equality rows solve faster, and exactly where they can)
# each row may miss its right-hand side by this fraction of the relation's magnitude (about 450 units in the
# last place, for the rounding of the sums) plus twice the true values' own residual. Intervals widen by far
# less than REL_TOL, below what any comparison here can notice.
LP_ROW_SLACK = 1e-13
_WITNESS_BUDGET = 25_000_000  # floats kept per component to spare insider re-solves (~200 MB at most)
_SHOWN = 5
_BATCH_MIN = 4  # fewer unmet insider checks than this are solved one by one
_BATCH_GAIN = 8  # keep batching while one LP settles at least 1/8 of the unmet checks

OUTSIDER = "outsider"
_RELATIONS = ("relations",)  # cache key of the flattened relations
_RELATION_SUMS = ("relation sums",)  # cache key of their residuals and magnitudes


def audit(
    problem: ProtectionProblem,
    suppressed: np.ndarray,
    *,
    insiders: bool = True,
    cache: dict | None = None,
    verdict_only: bool = False,
) -> AuditResult:
    """Compute attacker intervals for every suppressed cell and check each primary cell's protection.

    Returns an AuditResult (outsider intervals, every failure as (cell, attacker, lo, hi, reason)).
    Raises DisclosureError when the problem is inconsistent (values outside their bounds, a relation
    that does not add up, non-finite bounds) or a linear program cannot be solved.

    `cache`: pass the same dict to repeated audits of one problem (a repair loop). An attacker's result on
    a component depends only on the component's hidden cells, so unchanged components are not solved again.

    `verdict_only`: the same failures, but outsider intervals only for the primary cells whose requirement
    reaches beyond their value (the only cells that can fail); lo/hi stay NaN for the other hidden cells and
    `exact_disclosures` counts only the cells solved. For repair loops, which need the verdict, not a report.
    """
    hidden = _check_problem(problem, suppressed, cache)
    auditor = _Auditor(problem, hidden, cache, verdict_only)
    auditor.run_outsider()
    if insiders:
        auditor.run_insiders()
    return auditor.result()


# --------------------------------------------------------------------------- input checks


def _tolerance(problem: ProtectionProblem) -> float:
    scale = max(
        float(np.max(np.abs(problem.values), initial=0.0)),
        float(np.max(np.abs(problem.upper), initial=0.0)),
        float(np.max(np.abs(problem.lower), initial=0.0)),
    )
    return ABS_TOL + REL_TOL * scale


def _check_problem(problem: ProtectionProblem, suppressed: np.ndarray, cache: dict | None = None) -> np.ndarray:
    size = problem.size
    hidden = np.asarray(suppressed, dtype=bool)
    for name in ("values", "lower", "upper", "upl", "lpl", "primary"):
        if len(getattr(problem, name)) != size:
            raise ValueError(f"ProtectionProblem.{name} has {len(getattr(problem, name))} entries, not {size}")
    if hidden.shape != (size,):
        raise ValueError(f"suppressed must be a bool array of {size} cells, got shape {hidden.shape}")
    _check_bounds(problem)
    _check_relations(problem, _tolerance(problem), cache)
    return hidden


def _name_cells(problem: ProtectionProblem, cells: np.ndarray) -> str:
    names = ", ".join(problem.keys[int(c)].describe() for c in cells[:_SHOWN])
    return names + (f" and {len(cells) - _SHOWN} more" if len(cells) > _SHOWN else "")


def _check_bounds(problem: ProtectionProblem) -> None:
    bad = np.flatnonzero(~(np.isfinite(problem.lower) & np.isfinite(problem.upper)))
    if len(bad):
        raise DisclosureError(
            f"a-priori bounds must be finite; not so for {_name_cells(problem, bad)}",
            hint="give every cell a finite lower and upper bound (the protocol default is 0 to 1.5 x the largest cell)",
        )
    eps = _tolerance(problem)
    outside = np.flatnonzero((problem.values < problem.lower - eps) | (problem.values > problem.upper + eps))
    if len(outside):
        raise DisclosureError(
            f"cell values lie outside their a-priori bounds: {_name_cells(problem, outside)}",
            hint="widen the bounds in the protocol (negative data needs a negative lower bound)",
        )


def _check_relations(problem: ProtectionProblem, eps: float, cache: dict | None = None) -> None:
    residual, scale = _relation_sums(problem, cache)
    broken = np.flatnonzero(np.abs(residual) > eps + REL_TOL * scale)
    if len(broken):
        totals = np.array([problem.relations[r][0] for r in broken])
        raise DisclosureError(
            f"{len(broken)} total(s) do not equal the sum of their parts, e.g. {_name_cells(problem, totals)}",
            hint="the aggregation must produce additive tables; rebuild the release cells",
        )


# --------------------------------------------------------------------------- substitution and components


@dataclass
class _Component:
    """Hidden cells linked by relations, with the relations rewritten over those cells only."""

    cells: np.ndarray  # global indices of the hidden cells (LP columns), ascending
    row_start: np.ndarray  # CSR over the component's relations
    row_cols: np.ndarray  # local column indices
    row_coefs: np.ndarray
    rhs: np.ndarray  # each row: sum(coef * y) == rhs (published cells moved to the right-hand side) ...
    slack: np.ndarray  # ... to within this much, if the exact rows prove infeasible (LP_ROW_SLACK)


def _flatten_relations(problem: ProtectionProblem, cache: dict | None = None) -> tuple[np.ndarray, ...]:
    """Relations as (relation id, cell, coefficient) triples: +1 for the total, -1 for each part.

    Kept in `cache` (one problem per cache): the relations never change between audits of a repair loop."""
    if cache is not None and _RELATIONS in cache:
        return cache[_RELATIONS]
    lengths = np.fromiter((1 + len(parts) for _, parts in problem.relations), dtype=np.int64)
    cells = np.fromiter(
        (c for total, parts in problem.relations for c in (total, *parts)),
        dtype=np.int64,
        count=lengths.sum(),
    )
    rel = np.repeat(np.arange(len(lengths)), lengths)
    coef = -np.ones(len(cells))
    coef[np.cumsum(lengths) - lengths] = 1.0
    if cache is not None:
        cache[_RELATIONS] = (rel, cells, coef)
    return rel, cells, coef


def _relation_sums(problem: ProtectionProblem, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per relation: total minus parts of the true values (its residual) and the sum of their magnitudes.
    Kept in `cache` with the relations: they depend on the values only, never on the pattern."""
    if cache is not None and _RELATION_SUMS in cache:
        return cache[_RELATION_SUMS]
    rel, cells, coef = _flatten_relations(problem, cache)
    terms = coef * np.asarray(problem.values, dtype=float)[cells]
    sums = (
        np.bincount(rel, weights=terms, minlength=len(problem.relations)),
        np.bincount(rel, weights=np.abs(terms), minlength=len(problem.relations)),
    )
    if cache is not None:
        cache[_RELATION_SUMS] = sums
    return sums


def _label_components(n_cells: int, rel: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Union-find over hidden cells sharing a relation; returns a root per cell (-1: in no relation)."""
    parent = np.full(n_cells, -1, dtype=np.int64)
    parent[cells] = cells

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    order = np.argsort(rel, kind="stable")
    rel_sorted, cells_sorted = rel[order], cells[order]
    for start, stop in _runs(rel_sorted):
        first = find(int(cells_sorted[start]))
        for c in cells_sorted[start + 1 : stop]:
            other = find(int(c))
            if other != first:
                parent[max(first, other)] = min(first, other)  # smallest cell as root: deterministic
                first = min(first, other)
    return np.array([find(i) if parent[i] >= 0 else -1 for i in range(n_cells)], dtype=np.int64)


def _runs(sorted_keys: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, stop) of each run of equal keys in a sorted array."""
    if len(sorted_keys) == 0:
        return
    cuts = np.flatnonzero(np.diff(sorted_keys)) + 1
    starts = np.concatenate(([0], cuts))
    stops = np.concatenate((cuts, [len(sorted_keys)]))
    yield from zip(starts.tolist(), stops.tolist(), strict=True)


def _build_components(
    problem: ProtectionProblem, hidden: np.ndarray, cache: dict | None = None
) -> tuple[list[_Component], np.ndarray]:
    """Substitute published cells and split the hidden ones into components; also return isolated cells."""
    rel, cells, coef = _flatten_relations(problem, cache)
    is_hidden = hidden[cells]
    terms = coef[~is_hidden] * problem.values[cells[~is_hidden]]
    published_sum = np.bincount(rel[~is_hidden], weights=terms, minlength=len(problem.relations))
    residual, magnitude = _relation_sums(problem, cache)
    slack = LP_ROW_SLACK * magnitude + 2 * np.abs(residual)
    rel, cells, coef = rel[is_hidden], cells[is_hidden], coef[is_hidden]
    root = _label_components(problem.size, rel, cells)
    isolated = np.flatnonzero(hidden & (root < 0))
    # One sort groups entries by component, then relation, then cell; duplicates are merged after.
    order = np.lexsort((cells, rel, root[cells]))
    rel, cells, coef = rel[order], cells[order], coef[order]
    comps = [_one_component(rel[a:b], cells[a:b], coef[a:b], published_sum, slack) for a, b in _runs(root[cells])]
    return comps, isolated


def _one_component(
    rel: np.ndarray, cells: np.ndarray, coef: np.ndarray, published_sum: np.ndarray, slack: np.ndarray
) -> _Component:
    members = np.unique(cells)
    local = np.searchsorted(members, cells)
    # A cell listed twice in one relation (or as total and part) gets one summed coefficient.
    _, first = np.unique(rel * (len(members) + 1) + local, return_index=True)
    summed = np.add.reduceat(coef, first) if len(first) else coef[:0]
    keep = summed != 0
    rel_u, local_u, coef_u = rel[first][keep], local[first][keep], summed[keep]
    rows, row_of_entry = np.unique(rel_u, return_inverse=True)
    row_start = np.concatenate(([0], np.cumsum(np.bincount(row_of_entry, minlength=len(rows)))))
    return _Component(members, row_start, local_u, coef_u, -published_sum[rows], slack[rows])


# --------------------------------------------------------------------------- one LP per component


def _new_highs() -> highspy.Highs:
    return silent_highs(
        solver="simplex",
        presolve="off",  # keeps the basis between re-solves (warm start)
        simplex_strategy=4,  # primal: after an objective change the old basis stays feasible
    )


class _ComponentLP:
    """One HiGHS model of one component; min/max of any column re-solve warm from the last basis."""

    def __init__(self, comp: _Component, lower: np.ndarray, upper: np.ndarray):
        self.comp = comp
        self.lower = lower.astype(float).copy()
        self.upper = upper.astype(float).copy()
        self.size = len(comp.cells)
        self.solves = 0
        self._objective_cols = np.zeros(0, dtype=np.int32)
        self._highs: highspy.Highs | None = None
        self._relaxed = False

    @property
    def _solver(self) -> highspy.Highs:
        # Built on first use: in a repair loop most components come from the cache and are never solved.
        if self._highs is None:
            self._highs = _new_highs()
            self._highs.passModel(self._lp())
        return self._highs

    def _lp(self) -> highspy.HighsLp:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.size, len(self.comp.rhs)
        lp.col_cost_ = np.zeros(self.size)
        lp.col_lower_, lp.col_upper_ = self.lower, self.upper
        lp.row_lower_ = lp.row_upper_ = self.comp.rhs.astype(float)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = self.comp.row_start.astype(np.int32)
        lp.a_matrix_.index_ = self.comp.row_cols.astype(np.int32)
        lp.a_matrix_.value_ = self.comp.row_coefs.astype(float)
        return lp

    def set_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        self._solver.changeColsBounds(len(cols), cols.astype(np.int32), lower.astype(float), upper.astype(float))

    def optimise(self, col: int, maximise: bool) -> tuple[float, np.ndarray]:
        """Optimal value of column `col` (max or min) and the full solution vector."""
        x = self.optimise_sum(np.array([col]), np.ones(1), maximise)
        return float(x[col]), x

    def optimise_sum(self, cols: np.ndarray, weights: np.ndarray, maximise: bool) -> np.ndarray:
        """A solution vector optimising sum(weights * y[cols])."""
        self._solver.changeColsCost(
            len(self._objective_cols), self._objective_cols, np.zeros(len(self._objective_cols))
        )
        self._objective_cols = cols.astype(np.int32)
        self._solver.changeColsCost(len(cols), self._objective_cols, weights.astype(float))
        sense = highspy.ObjSense.kMaximize if maximise else highspy.ObjSense.kMinimize
        self._solver.changeObjectiveSense(sense)
        status = run_warm_then_cold(self._solver)
        self.solves += 1
        if status != highspy.HighsModelStatus.kOptimal and not self._relaxed and self.comp.slack.any():
            self._relaxed = True  # rounding, not a contradiction (see LP_ROW_SLACK); kept for later solves
            rows = np.arange(len(self.comp.rhs), dtype=np.int32)
            lower, upper = self.comp.rhs - self.comp.slack, self.comp.rhs + self.comp.slack
            self._solver.changeRowsBounds(len(rows), rows, lower.astype(float), upper.astype(float))
            status = run_warm_then_cold(self._solver)
        if status != highspy.HighsModelStatus.kOptimal:
            raise self._failure(status)
        return np.asarray(self._solver.getSolution().col_value, dtype=float)

    def _failure(self, status: highspy.HighsModelStatus) -> DisclosureError:
        what = {
            highspy.HighsModelStatus.kInfeasible: "has no solution (the published values contradict the "
            "relations or bounds)",
            highspy.HighsModelStatus.kUnbounded: "is unbounded",
        }.get(status, f"stopped with status {status.name}")
        return DisclosureError(
            f"the audit linear program for {self.size} linked hidden cells {what}",
            hint="check that the release cells are additive and within their a-priori bounds",
        )


# --------------------------------------------------------------------------- the audit itself


@dataclass
class _Witnesses:
    """Outsider optimal solutions attaining some bound of a cell at stake, to spare insider re-solves."""

    stake_cols: np.ndarray  # local columns of the component's cells at stake (Auditor.at_stake)
    points: np.ndarray  # (k, component size) solution vectors


class _Auditor:
    def __init__(
        self, problem: ProtectionProblem, hidden: np.ndarray, cache: dict | None = None, verdict_only: bool = False
    ):
        self.problem = problem
        self.cache = cache
        self.verdict_only = verdict_only
        self.epoch = problem.epochs()
        self._prior: dict[int, dict[int, _Component]] = {}  # epoch -> cell -> its component in the prior model
        self._prior_lps: dict[tuple[int, int], _ComponentLP] = {}
        self.hidden = hidden
        self.eps = _tolerance(problem)
        self.lower = np.asarray(problem.lower, dtype=float)
        self.upper = np.asarray(problem.upper, dtype=float)
        values = np.asarray(problem.values, dtype=float)
        # A requirement beyond the a-priori bounds can never be met, so it is capped at them (docs/rules.md).
        self.need_hi = np.minimum(values + problem.upl, self.upper)
        self.need_lo = np.maximum(values - problem.lpl, self.lower)
        self.primary = np.asarray(problem.primary, dtype=bool) & hidden
        # Hidden primary cells whose requirement reaches beyond the true value: the only ones an attacker can
        # fail. A helper cell (no requirement) passes whatever the attacker knows, so insiders skip it.
        self.at_stake = self.primary & ((self.need_hi > values + self.eps) | (self.need_lo < values - self.eps))
        self.lo = np.full(problem.size, np.nan)
        self.hi = np.full(problem.size, np.nan)
        self.failures: list[tuple[int, str, float, float, str]] = []
        self.insiders_checked = 0
        self.exact_disclosures = 0
        components, self.isolated = _build_components(problem, hidden, cache)
        self.lps = [_ComponentLP(c, self.lower[c.cells], self.upper[c.cells]) for c in components]
        self.component_of = np.full(problem.size, -1, dtype=np.int64)
        for number, lp in enumerate(self.lps):
            self.component_of[lp.comp.cells] = number
        self.stake_cols = [np.flatnonzero(self.at_stake[lp.comp.cells]) for lp in self.lps]
        self.witnesses: list[_Witnesses | None] = []

    # ---- outsider

    def run_outsider(self) -> None:
        self.lo[self.isolated] = self.lower[self.isolated]
        self.hi[self.isolated] = self.upper[self.isolated]
        for lp in self.lps:
            cells = lp.comp.cells.tobytes()
            # a full result also answers a verdict-only audit; not the other way round
            keys = [(OUTSIDER, cells), (OUTSIDER, "verdict", cells)][: 2 if self.verdict_only else 1]
            found = next((self.cache[k] for k in keys if self.cache is not None and k in self.cache), None)
            if found is not None:
                lo, hi, witnesses = found
                self.lo[lp.comp.cells], self.hi[lp.comp.cells] = lo, hi
            else:
                witnesses = self._outsider_component(lp)
                if self.cache is not None:
                    self.cache[keys[-1]] = (self.lo[lp.comp.cells].copy(), self.hi[lp.comp.cells].copy(), witnesses)
            self.witnesses.append(witnesses)
        for cell in np.flatnonzero(self.hidden & ~(np.isnan(self.lo) & np.isnan(self.hi))):
            self._judge(int(cell), OUTSIDER, self.lo[cell], self.hi[cell], exact_counts=True)

    def _outsider_component(self, lp: _ComponentLP) -> _Witnesses | None:
        lo, hi = np.full(lp.size, np.nan), np.full(lp.size, np.nan)
        stake_cols = self.stake_cols[self.component_of[lp.comp.cells[0]]]
        at_stake = self.at_stake[lp.comp.cells]
        kept: list[np.ndarray] = []
        keep = len(stake_cols) * 2 * lp.size <= _WITNESS_BUDGET
        for col in stake_cols.tolist() if self.verdict_only else range(lp.size):
            for maximise, bound in ((False, lo), (True, hi)):
                if not np.isnan(bound[col]):
                    continue
                value, x = lp.optimise(col, maximise)
                settled = self._settle(lp, x, lo, hi, col, maximise, value)
                if keep and (at_stake[settled[0]].any() or at_stake[settled[1]].any()):
                    kept.append(x)
        self.lo[lp.comp.cells] = np.maximum(lo, lp.lower)
        self.hi[lp.comp.cells] = np.minimum(hi, lp.upper)
        if not keep:
            return None
        points = np.array(kept) if kept else np.zeros((0, lp.size))
        return _Witnesses(stake_cols, points)

    def _settle(
        self,
        lp: _ComponentLP,
        x: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        col: int,
        maximise: bool,
        value: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Record the solved bound, and every other cell this solution shows sits at an a-priori bound."""
        tol = self.eps * 1e-3
        new_lo = np.isnan(lo) & (x <= lp.lower + tol)
        new_hi = np.isnan(hi) & (x >= lp.upper - tol)
        (new_hi if maximise else new_lo)[col] = True
        lo[new_lo] = lp.lower[new_lo]
        hi[new_hi] = lp.upper[new_hi]
        (hi if maximise else lo)[col] = value
        return np.flatnonzero(new_lo), np.flatnonzero(new_hi)

    def _judge(self, cell: int, attacker: str, lo: float, hi: float, exact_counts: bool = False) -> bool:
        """Record a failure when the interval discloses the cell; True when it passes.

        A side falls short when it misses the requirement and also what the attacker could reach from prior
        knowledge alone (its own figures, the bounds and what earlier releases published): a release cannot
        hide what was known before it, only add nothing to it."""
        exact = hi - lo <= self.eps
        if exact and exact_counts:
            self.exact_disclosures += 1
        if not self.primary[cell]:
            return True
        short_hi = hi < self.need_hi[cell] - self.eps and self._beyond_prior(attacker, cell, hi, True)
        short_lo = lo > self.need_lo[cell] + self.eps and self._beyond_prior(attacker, cell, lo, False)
        # Only a cell that needs protection can be disclosed: an exactly computable secondary or helper cell is
        # counted in exact_disclosures (it protects nothing) but leaks nothing confidential.
        if exact and (short_hi or short_lo):
            reason = "exact disclosure"
        elif short_hi or short_lo:
            reason = " and ".join(s for s, bad in (("upper", short_hi), ("lower", short_lo)) if bad)
            reason += " protection not met"
        else:
            return True
        self.failures.append((cell, attacker, float(lo), float(hi), reason))
        return False

    # ---- insiders

    def run_insiders(self) -> None:
        outsider_failed = {cell for cell, *_ in self.failures}
        for contributor in self.problem.insiders.contributors:
            cells, amounts = self._own_figures(contributor)
            mine = self.hidden[cells]
            if mine.any():
                self.insiders_checked += 1
                self._check_insider(str(contributor), cells[mine], amounts[mine], outsider_failed)

    def _own_figures(self, contributor: str) -> tuple[np.ndarray, np.ndarray]:
        """The contributor's cells (ascending) and its own amounts in them."""
        return self.problem.insiders.of_contributor(contributor)

    def _insider_bounds(self, cells: np.ndarray, amount: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New lower and upper bounds of the contributor's cells from its knowledge."""
        values = np.asarray(self.problem.values, dtype=float)[cells]
        # A contributor knows its own figures, not whether it is alone in a cell (insider_floor). Nothing more
        # is assumed.
        return insider_floor(self.lower[cells], amount, values), self.upper[cells].copy()

    def _check_insider(self, who: str, cells: np.ndarray, amounts: np.ndarray, skip: set[int]) -> None:
        new_lo, new_hi = self._insider_bounds(cells, amounts)
        # Judge only hidden cells the insider has no part in. In a cell it contributes to, the protection the
        # primary rules ask for already models a contributor attacking the others (p% coalition, dominance);
        # measuring that cell against the insider's own share would demand the impossible for the largest
        # contributor's own cell. Its knowledge still bounds those cells in the LP below.
        skip = skip | set(cells[amounts != 0].tolist())
        alone = np.flatnonzero((self.component_of[cells] < 0) & self.primary[cells])
        for k in alone.tolist():
            if int(cells[k]) not in skip:
                self._judge(int(cells[k]), who, new_lo[k], new_hi[k])
        comp_ids = self.component_of[cells]
        for number in np.unique(comp_ids[comp_ids >= 0]).tolist():
            if len(self.stake_cols[number]) == 0:
                continue  # nothing in it can fail
            mine = comp_ids == number
            key = (who, self.lps[number].comp.cells.tobytes())
            if self.cache is not None and key in self.cache:
                self.failures.extend(self.cache[key])
                continue
            before = len(self.failures)
            self._insider_component(who, number, cells[mine], new_lo[mine], new_hi[mine], skip)
            if self.cache is not None:
                self.cache[key] = self.failures[before:]

    def _insider_component(
        self, who: str, number: int, cells: np.ndarray, new_lo: np.ndarray, new_hi: np.ndarray, skip: set[int]
    ) -> None:
        lp = self.lps[number]
        cols = np.searchsorted(lp.comp.cells, cells)
        targets = np.array(
            [c for c in self.stake_cols[number].tolist() if lp.comp.cells[c] not in skip], dtype=np.int64
        )
        if len(targets) == 0:
            return
        best_lo, best_hi = self._witnessed(number, cols, new_lo, new_hi)
        if self._all_met(lp.comp.cells[targets], best_lo[targets], best_hi[targets]):
            return  # the witnesses settle every target: no LP, so the model keeps the outsider's bounds
        lp.set_bounds(cols, new_lo, new_hi)
        try:
            self._batch_witnesses(lp, targets, best_lo, best_hi)
            for col in targets.tolist():
                self._insider_cell(who, lp, col, best_lo, best_hi)
        finally:
            lp.set_bounds(cols, lp.lower[cols], lp.upper[cols])

    def _witnessed(
        self, number: int, cols: np.ndarray, new_lo: np.ndarray, new_hi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lowest / highest values per column over points the insider cannot rule out.

        The true values are such a point. Each stored outsider optimum x is pulled towards the truth v just
        far enough to respect the insider's bounds: v + t (x - v) is feasible for both (the feasible set is
        convex), so it witnesses how far each cell can move without any new LP.
        """
        lp = self.lps[number]
        truth = np.asarray(self.problem.values, dtype=float)[lp.comp.cells]
        best_lo, best_hi = truth.copy(), truth.copy()
        found = self.witnesses[number]
        if found is None or len(found.points) == 0:
            return best_lo, best_hi
        step = found.points[:, cols] - truth[cols]
        room = np.where(step < 0, new_lo - truth[cols], new_hi - truth[cols])
        with np.errstate(divide="ignore", invalid="ignore"):
            limit = np.where(np.abs(step) > self.eps, room / step, np.inf)
        t = np.clip(limit.min(axis=1, initial=1.0), 0.0, 1.0)
        useful = t > 0  # t = 0 gives back the truth, e.g. when the point moves a cell the insider owns alone
        shown = found.stake_cols
        points = truth[shown] + t[useful, None] * (found.points[np.ix_(useful, shown)] - truth[shown])
        if len(points):
            best_lo[shown] = np.minimum(best_lo[shown], points.min(axis=0))
            best_hi[shown] = np.maximum(best_hi[shown], points.max(axis=0))
        return best_lo, best_hi

    def _batch_witnesses(self, lp: _ComponentLP, targets: np.ndarray, best_lo: np.ndarray, best_hi: np.ndarray) -> None:
        """Push all unmet cells up at once (one LP), then all down, while that settles a good share."""
        cells = lp.comp.cells[targets]
        truth = np.asarray(self.problem.values, dtype=float)[cells]
        # Weight each cell by the distance it must move, so small cells count as much as large ones.
        weight_hi = 1.0 / np.maximum(self.need_hi[cells] - truth, self.eps)
        weight_lo = 1.0 / np.maximum(truth - self.need_lo[cells], self.eps)
        active = {True: True, False: True}
        while any(active.values()):
            for maximise in (True, False):
                if not active[maximise]:
                    continue
                if maximise:
                    unmet = best_hi[targets] < self.need_hi[cells] - self.eps
                else:
                    unmet = best_lo[targets] > self.need_lo[cells] + self.eps
                pending = int(unmet.sum())
                if pending < _BATCH_MIN:
                    active[maximise] = False
                    continue
                weights = (weight_hi if maximise else weight_lo)[unmet]
                x = lp.optimise_sum(targets[unmet], weights, maximise)
                np.minimum(best_lo, x, out=best_lo)
                np.maximum(best_hi, x, out=best_hi)
                reached = x[targets[unmet]]
                need = (self.need_hi if maximise else self.need_lo)[cells[unmet]]
                settled = int((reached >= need - self.eps).sum() if maximise else (reached <= need + self.eps).sum())
                active[maximise] = settled * _BATCH_GAIN >= pending

    def _insider_cell(self, who: str, lp: _ComponentLP, col: int, best_lo: np.ndarray, best_hi: np.ndarray) -> None:
        cell = int(lp.comp.cells[col])
        for maximise, best in ((True, best_hi), (False, best_lo)):
            if self._side_met(cell, best[col], maximise):
                continue
            _, x = lp.optimise(col, maximise)
            np.copyto(best_lo, np.minimum(best_lo, x))
            np.copyto(best_hi, np.maximum(best_hi, x))
            if not self._side_met(cell, best[col], maximise):
                lo = lp.optimise(col, False)[0] if maximise else best_lo[col]
                hi = best_hi[col] if maximise else lp.optimise(col, True)[0]
                self._judge(cell, who, lo, hi)
                return

    def _beyond_prior(self, who: str, cell: int, reached: float, maximise: bool) -> bool:
        """True when the attacker's bound is tighter than what it could reach before the cell's release."""
        if not self._has_prior(cell):
            # Nothing published before: the outsider's prior reach is the a-priori bounds, at which every
            # requirement is capped already. An insider is relaxed only where the requirement is capped at a
            # bound (its own figures may keep it from that bound); elsewhere it is held to the requirement,
            # which is at most stricter and spares an LP over the whole table per shortfall.
            capped = (
                self.need_hi[cell] >= self.upper[cell] - self.eps
                if maximise
                else self.need_lo[cell] <= self.lower[cell] + self.eps
            )
            if who == OUTSIDER or not capped:
                return True
        reach = self._prior_reach(who, cell, maximise)
        return reached < reach - self.eps if maximise else reached > reach + self.eps

    def _has_prior(self, cell: int) -> bool:
        return bool((self.problem.fixed & (self.epoch < self.epoch[cell])).any())

    def _prior_reach(self, who: str, cell: int, maximise: bool) -> float:
        """max (or min) of the cell from prior knowledge alone: the relations, the a-priori bounds, the
        attacker's own figures and the cells published before the cell's release (fixed, smaller epoch)."""
        epoch = int(self.epoch[cell])
        if epoch not in self._prior:
            known = self.problem.fixed & (self.epoch < epoch)
            components, _ = _build_components(self.problem, ~known, self.cache)
            self._prior[epoch] = {int(c): comp for comp in components for c in comp.cells}
        comp = self._prior[epoch].get(cell)
        own = self.problem.insiders
        values = np.asarray(self.problem.values, dtype=float)
        if comp is None:  # in no relation: only its own bounds
            floor = insider_floor(self.lower[[cell]], own.values_at(who, [cell]), values[[cell]])[0]
            return float(self.upper[cell] if maximise else floor)
        cells = comp.cells
        lower = insider_floor(self.lower[cells], own.values_at(who, cells), values[cells])
        key = (epoch, int(cells[0]))
        if key not in self._prior_lps:  # one model per component, re-bounded for each attacker
            self._prior_lps[key] = _ComponentLP(comp, self.lower[cells], self.upper[cells])
        lp = self._prior_lps[key]
        cols = np.arange(len(cells))
        lp.set_bounds(cols, lower, self.upper[cells])
        try:
            return lp.optimise(int(np.searchsorted(cells, cell)), maximise)[0]
        finally:
            lp.set_bounds(cols, self.lower[cells], self.upper[cells])

    def _all_met(self, cells: np.ndarray, best_lo: np.ndarray, best_hi: np.ndarray) -> bool:
        return bool(
            np.all(best_hi >= self.need_hi[cells] - self.eps) and np.all(best_lo <= self.need_lo[cells] + self.eps)
        )

    def _side_met(self, cell: int, reached: float, maximise: bool) -> bool:
        if maximise:
            return reached >= self.need_hi[cell] - self.eps
        return reached <= self.need_lo[cell] + self.eps

    # ---- result

    def result(self) -> AuditResult:
        self.failures.sort(key=lambda f: (f[0], f[1] != OUTSIDER, f[1]))
        return AuditResult(
            lo=self.lo,
            hi=self.hi,
            failures=self.failures,
            exact_disclosures=self.exact_disclosures,
            insiders_checked=self.insiders_checked,
            lp_solves=sum(lp.solves for lp in self.lps),
        )
