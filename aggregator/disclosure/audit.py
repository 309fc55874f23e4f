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
- insiders are judged only on cells at stake (a primary cell whose requirement, capped at the bounds, reaches
  beyond its value: a helper cell without a requirement cannot fail), so components without such cells cost
  nothing; points that respect every insider's floors at once settle most sides for all insiders together, and
  only the insiders whose floors cut off a point reaching the requirement get LPs of their own
  (docs/rules.md, "Insider pruning");
- a component's HiGHS model is built on first use (cached components are never solved again);
- `verdict_only` (repair loops) judges only cells at stake and stops at proof: a point that reaches a
  requirement within every insider's floors settles it for the outsider and all insiders at once; moves along
  the relations found by earlier LPs, scaled either way, settle further sides without an LP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import highspy
import numpy as np

from aggregator.disclosure.highs import largest_bound, run_warm_then_cold, silent_highs
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
_SHOWN = 5
_BATCH_MIN = 4  # fewer unsettled sides than this are solved one by one
_BATCH_GAIN = 8  # keep batching while one LP settles at least 1/8 of the unsettled sides

OUTSIDER = "outsider"
_INSIDERS = ("insiders",)  # cache key prefix of a component's insider failures
_MOVES = ("moves",)  # cache key of moves along the relations found by earlier audits of the problem
_MOVES_KEPT = 256  # the most recent moves kept (sparse: cells and amounts)
_RELATIONS = ("relations",)  # cache key of the flattened relations
_RELATION_SUMS = ("relation sums",)  # cache key of their residuals and magnitudes


def audit(
    problem: ProtectionProblem,
    suppressed: np.ndarray,
    *,
    insiders: bool = True,
    cache: dict | None = None,
    verdict_only: bool = False,
    insider_pruning: bool = True,
) -> AuditResult:
    """Compute attacker intervals for every suppressed cell and check each primary cell's protection.

    Returns an AuditResult (outsider intervals, every failure as (cell, attacker, lo, hi, reason)).
    Raises DisclosureError when the problem is inconsistent (values outside their bounds, a relation
    that does not add up, non-finite bounds) or a linear program cannot be solved.

    `cache`: pass the same dict to repeated audits of one problem (a repair loop). An attacker's result on
    a component depends only on the component's hidden cells, so unchanged components are not solved again.

    `verdict_only`: the same failures, but outsider intervals only for the primary cells whose requirement
    reaches beyond their value (the only cells that can fail), and only as far as needed: each side holds a
    value the outsider provably reaches (the requirement, once a point reaching it is found), exact for a cell
    that falls short. lo/hi stay NaN for the other hidden cells and `exact_disclosures` counts only failing
    cells. For repair loops, which need the verdict, not a report.

    `insider_pruning=False`: every insider solves its own min and max for every cell it is judged on (the
    reference the pruned audit is tested against; same verdicts, many more LPs).
    """
    hidden = _check_problem(problem, suppressed, cache)
    auditor = _Auditor(problem, hidden, cache, verdict_only, insider_pruning, insiders)
    auditor.run_outsider()
    if insiders:
        auditor.run_insiders()
    return auditor.result()


@dataclass(frozen=True, order=True)
class InsiderInterval:
    """One insider's own interval for a hidden primary cell it is judged on, and whether it met the cell's
    protection (an interval within what the insider knew before the release passes too)."""

    cell: int
    insider: str
    lo: float
    hi: float
    passed: bool


def insider_intervals(problem: ProtectionProblem, suppressed: np.ndarray) -> list[InsiderInterval]:
    """Every insider's interval for every hidden primary cell it is judged on (a contributor to a linked hidden
    cell with no part in this one, docs/rules.md), sorted by cell and insider: the exhaustive insider audit's
    own min and max, for the secretariat's report. Two LPs per insider and cell, where audit() proves the same
    verdicts with far fewer; a cell the outsider already narrows too far gets no insider rows."""
    auditor = _Auditor(problem, _check_problem(problem, suppressed), pruning=False)
    auditor.intervals = []
    auditor.run_outsider()
    auditor.run_insiders()
    return sorted(auditor.intervals)


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


def _new_highs(magnitude: float) -> highspy.Highs:
    return silent_highs(
        magnitude,
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
            self._highs = _new_highs(largest_bound(self.lower, self.upper, self.comp.rhs))
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


class _Auditor:
    def __init__(
        self,
        problem: ProtectionProblem,
        hidden: np.ndarray,
        cache: dict | None = None,
        verdict_only: bool = False,
        pruning: bool = True,
        insiders: bool = True,
    ):
        self.problem = problem
        self.pruning = pruning
        self.with_insiders = insiders
        self._records: tuple[np.ndarray, ...] | None = None  # insider records in hidden cells, by cell
        # per component: the sides a verdict-only outsider pass left to the insiders (see _verdict_component)
        self._phase2: dict[int, tuple[set, dict, dict]] = {}
        self.cache = cache
        self.verdict_only = verdict_only
        # Moves along the relations (x - truth of LP solutions, as global cells and amounts): A(x - truth) = 0 for
        # every relation whatever the pattern, so they stay moves in later audits of the problem (a repair loop
        # hides more cells), usable wherever their cells are all hidden in one component.
        self.moves: list[tuple[np.ndarray, np.ndarray]] = (
            self.cache.setdefault(_MOVES, []) if self.cache is not None else []
        )
        self.epoch = problem.epochs()
        self._prior: dict[int, dict[int, _Component]] = {}  # epoch -> cell -> its component in the prior model
        self._prior_lps: dict[tuple[int, int], _ComponentLP] = {}
        self.hidden = hidden
        self.eps = _tolerance(problem)
        self.lower = np.asarray(problem.lower, dtype=float)
        self.upper = np.asarray(problem.upper, dtype=float)
        self.values = values = np.asarray(problem.values, dtype=float)
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
        self.intervals: list[InsiderInterval] | None = None  # every insider's interval, when asked for
        self.insiders_checked = 0
        self.exact_disclosures = 0
        components, self.isolated = _build_components(problem, hidden, cache)
        self.lps = [_ComponentLP(c, self.lower[c.cells], self.upper[c.cells]) for c in components]
        self.component_of = np.full(problem.size, -1, dtype=np.int64)
        for number, lp in enumerate(self.lps):
            self.component_of[lp.comp.cells] = number
        self.stake_cols = [np.flatnonzero(self.at_stake[lp.comp.cells]) for lp in self.lps]

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
                self.lo[lp.comp.cells], self.hi[lp.comp.cells] = found
            elif self.verdict_only:
                self._verdict_component(lp)
                if self.cache is not None:
                    self.cache[keys[-1]] = (self.lo[lp.comp.cells].copy(), self.hi[lp.comp.cells].copy())
            else:
                self._outsider_component(lp)
                if self.cache is not None:
                    self.cache[keys[-1]] = (self.lo[lp.comp.cells].copy(), self.hi[lp.comp.cells].copy())
        for cell in np.flatnonzero(self.hidden & ~(np.isnan(self.lo) & np.isnan(self.hi))):
            self._judge(int(cell), OUTSIDER, self.lo[cell], self.hi[cell], exact_counts=True)

    def _outsider_component(self, lp: _ComponentLP) -> None:
        """The outsider's exact interval for every cell of the component (a full audit; see _verdict_component)."""
        lo, hi = np.full(lp.size, np.nan), np.full(lp.size, np.nan)
        for col in range(lp.size):
            for maximise, bound in ((False, lo), (True, hi)):
                if not np.isnan(bound[col]):
                    continue
                value, x = lp.optimise(col, maximise)
                self._settle(lp, x, lo, hi, col, maximise, value)
        self.lo[lp.comp.cells] = np.maximum(lo, lp.lower)
        self.hi[lp.comp.cells] = np.minimum(hi, lp.upper)

    def _verdict_component(self, lp: _ComponentLP) -> None:
        """The outsider's verdict on the component's cells at stake, sharing work with the insiders.

        Points that respect every insider's floors settle most sides for the outsider and every insider at
        once (_universal_phase); only the sides left get the outsider's own LP. lo/hi then hold, per cell at
        stake, a value the outsider can provably reach on each side (the requirement, or the truth where the
        side needs nothing), exact optima where a side falls short (both sides of such a cell)."""
        number = int(self.component_of[lp.comp.cells[0]])
        cells = lp.comp.cells
        truth = self.values[cells]
        stake = self.stake_cols[number]
        part = self._component_records(lp, self._hidden_records()) if self.with_insiders else None
        top = self._top_floor(lp, part) if part is not None and len(part[0]) else lp.lower.copy()
        sides = self._sides(cells, truth, stake)
        pending, universal = self._universal_phase(lp, sides, top)
        lo, hi = np.full(lp.size, np.nan), np.full(lp.size, np.nan)
        lo[stake], hi[stake] = truth[stake], truth[stake]
        for col, maximise in sides - pending:
            (hi if maximise else lo)[col] = self._need(int(cells[col]), maximise)
        outsider_x: dict[tuple[int, bool], np.ndarray] = {}
        for col, maximise in sorted(pending):
            value, outsider_x[(col, maximise)] = lp.optimise(col, maximise)
            (hi if maximise else lo)[col] = value
        for col in stake.tolist():  # a cell that falls short on a side is reported with its exact interval
            short = not (
                self._side_met(int(cells[col]), hi[col], True) and self._side_met(int(cells[col]), lo[col], False)
            )
            if short:
                for maximise, bound in ((True, hi), (False, lo)):
                    if (col, maximise) not in outsider_x:
                        bound[col] = lp.optimise(col, maximise)[0]
        self.lo[cells] = lo
        self.hi[cells] = hi
        self._phase2[number] = (pending, universal, outsider_x)

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
        """Judge every hidden primary cell against every insider without a part in it (docs/rules.md).

        An insider's LP is the outsider's with its own floors as lower bounds. Any point of the outsider's
        polytope that respects an insider's floors and reaches a requirement proves that side met for that
        insider, whatever its optimum. So, per component: points feasible for every insider at once (all floors
        at their maximum) settle most sides for all insiders together; for the rest, a point that reaches the
        requirement and breaks only a few insiders' floors names the only insiders that still need their own
        LP ("Insider pruning" in docs/rules.md). `insider_pruning=False` solves every insider's LPs instead."""
        outsider_failed = {cell for cell, *_ in self.failures}
        recs = self._hidden_records()
        self.insiders_checked = len(np.unique(recs[1]))
        if len(recs[0]) == 0:
            return
        names = self.problem.insiders.names
        for number, lp in enumerate(self.lps):
            if len(self.stake_cols[number]) == 0:
                continue  # nothing in it can fail
            key = (_INSIDERS, self.pruning, lp.comp.cells.tobytes())
            if self.cache is not None and key in self.cache:
                self.failures.extend(self.cache[key])
                continue
            before = len(self.failures)
            part = self._component_records(lp, recs)
            targets = np.array(
                [c for c in self.stake_cols[number].tolist() if int(lp.comp.cells[c]) not in outsider_failed],
                dtype=np.int64,
            )
            if len(targets) and len(part[0]):
                if self.pruning and number in self._phase2:  # the universal phase ran with the outsider's
                    pending, universal, outsider_x = self._phase2.pop(number)
                    kept = set(targets.tolist())
                    pending = {side for side in pending if side[0] in kept}
                    self._suspect_phase(lp, pending, universal, part, names, outsider_x)
                elif self.pruning:
                    self._insiders_pruned(lp, targets, part, names)
                else:
                    self._insiders_exhaustive(lp, targets, part, names)
            if self.cache is not None:
                self.cache[key] = self.failures[before:]

    def _hidden_records(self) -> tuple[np.ndarray, ...]:
        """Every insider record in a hidden cell, sorted by cell: (cell, contributor, own amount, floor)."""
        if self._records is None:
            self._records = self._find_hidden_records()
        return self._records

    def _find_hidden_records(self) -> tuple[np.ndarray, ...]:
        own = self.problem.insiders
        keep = self.hidden[own.cell] if len(own.cell) else np.zeros(0, dtype=bool)
        cell, who, amount = own.cell[keep], own.who[keep], own.value[keep]
        order = np.lexsort((who, cell))
        cell, who, amount = cell[order], who[order], amount[order]
        floor = insider_floor(self.lower[cell], amount, self.values[cell])
        return cell, who, amount, floor

    def _component_records(self, lp: _ComponentLP, recs) -> tuple[np.ndarray, ...]:
        """The records in the component's cells, with local columns: (col, contributor, own amount, floor)."""
        cell, who, amount, floor = recs
        lo = np.searchsorted(cell, lp.comp.cells, side="left")
        hi = np.searchsorted(cell, lp.comp.cells, side="right")
        pos = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)])
        pos = pos.astype(np.int64)
        cols = np.repeat(np.arange(lp.size), hi - lo)
        return cols, who[pos], amount[pos], floor[pos]

    def _need(self, cell: int, maximise: bool) -> float:
        return float(self.need_hi[cell] if maximise else self.need_lo[cell])

    def _insiders_exhaustive(self, lp: _ComponentLP, targets: np.ndarray, part, names) -> None:
        """The reference: every insider's own min and max LP for every target it has no part in."""
        cols, who, amount, floor = part
        for w in np.unique(who).tolist():
            mine = who == w
            mcols, mfloor = cols[mine], floor[mine]
            owned = set(mcols[amount[mine] != 0].tolist())
            judged = [c for c in targets.tolist() if c not in owned]
            if not judged:
                continue
            lp.set_bounds(mcols, mfloor, lp.upper[mcols])
            try:
                for col in judged:
                    lo = lp.optimise(col, False)[0]
                    hi = lp.optimise(col, True)[0]
                    cell = int(lp.comp.cells[col])
                    passed = self._judge(cell, str(names[w]), lo, hi)
                    if self.intervals is not None:
                        self.intervals.append(InsiderInterval(cell, str(names[w]), float(lo), float(hi), passed))
            finally:
                lp.set_bounds(mcols, lp.lower[mcols], lp.upper[mcols])

    def _insiders_pruned(self, lp: _ComponentLP, targets: np.ndarray, part, names) -> None:
        cells = lp.comp.cells
        truth = self.values[cells]
        sides = self._sides(cells, truth, targets)
        pending, universal = self._universal_phase(lp, sides, self._top_floor(lp, part))
        self._suspect_phase(lp, pending, universal, part, names, {})

    def _sides(self, cells: np.ndarray, truth: np.ndarray, targets: np.ndarray) -> set[tuple[int, bool]]:
        """The (column, maximise) sides of the targets that need a move at all (the truth is feasible for every
        attacker)."""
        met = self._side_met
        return {(int(c), m) for c in targets.tolist() for m in (True, False) if not met(int(cells[c]), truth[c], m)}

    @staticmethod
    def _top_floor(lp: _ComponentLP, part) -> np.ndarray:
        """Every insider's floor at once: the largest floor per column (the outsider's lower bound without)."""
        top = lp.lower.copy()
        np.maximum.at(top, part[0], part[3])
        return top

    def _universal_phase(
        self, lp: _ComponentLP, sides: set, top: np.ndarray
    ) -> tuple[set, dict[tuple[int, bool], np.ndarray]]:
        """Settle sides with points that respect `top` (every insider's floor) on every cell but the side's own:
        such a point is feasible for the outsider and for every insider with no part in the cell. Returns the
        sides left and, for each, the optimum found under those floors."""
        cells = lp.comp.cells
        truth = self.values[cells]
        pending = set(sides)
        universal: dict[tuple[int, bool], np.ndarray] = {}
        if not pending:
            return pending, universal
        room_up, room_down = lp.upper - truth, truth - top

        def settle_with(x: np.ndarray) -> None:
            # x - truth is a move along the relations; scaled (both ways) within every insider's floors it
            # settles every side it reaches, for every insider
            self._settle_by_move(pending, x - truth, room_up, room_down, cells, truth)

        in_comp = np.zeros(self.problem.size, dtype=bool)
        in_comp[cells] = True
        for move_cells, amounts in list(self.moves):  # moves found before: no LP
            if not pending:
                break
            if in_comp[move_cells].all():
                move = np.zeros(lp.size)
                move[np.searchsorted(cells, move_cells)] = amounts
                self._settle_by_move(pending, move, room_up, room_down, cells, truth)
        lp.set_bounds(np.arange(lp.size), top, lp.upper)
        try:
            for maximise in (True, False):
                self._push_all(lp, pending, cells, truth, maximise, settle_with)
            for col, maximise in sorted(pending):
                if (col, maximise) not in pending:
                    continue
                if not maximise:  # non-owners of the target know nothing of it: its floor is the outsider's
                    lp.set_bounds(np.array([col]), lp.lower[[col]], lp.upper[[col]])
                value, x = lp.optimise(col, maximise)
                if not maximise:
                    lp.set_bounds(np.array([col]), top[[col]], lp.upper[[col]])
                if self._side_met(int(cells[col]), value, maximise):
                    pending.discard((col, maximise))
                else:
                    universal[(col, maximise)] = x
                settle_with(x)
                self._keep_move(lp, x - truth)
        finally:
            lp.set_bounds(np.arange(lp.size), lp.lower, lp.upper)
        return pending, universal

    def _keep_move(self, lp: _ComponentLP, move: np.ndarray) -> None:
        """Remember a move for later audits of the problem (not from rows relaxed for rounding)."""
        if lp._relaxed:
            return
        moved = np.abs(move) > self.eps * 1e-3
        self.moves.append((lp.comp.cells[moved], move[moved]))
        del self.moves[:-_MOVES_KEPT]

    def _suspect_phase(self, lp: _ComponentLP, pending: set, universal: dict, part, names, outsider_x: dict) -> None:
        """Phase 2: points between what every insider allows (the truth, the universal optimum) and the
        outsider's optimum reach the requirement; only insiders whose floors they all break are suspects,
        tested in groups (one LP with the floors of a whole group; halved while it falls short).
        `outsider_x`: the outsider's optima already found, per side."""
        if not pending:
            return
        cols, who, amount, floor = part
        tol = self.eps * 1e-3
        cells = lp.comp.cells
        truth = self.values[cells]
        order = np.argsort(who, kind="stable")
        by_who = (who[order], cols[order], floor[order])
        failing: dict[int, list[tuple[int, bool]]] = {}
        moves = [x - truth for x in universal.values()]  # moves along the relations found so far
        for col, maximise in sorted(pending):
            x_out = outsider_x[(col, maximise)] if (col, maximise) in outsider_x else lp.optimise(col, maximise)[1]
            owners = set(who[(cols == col) & (amount != 0)].tolist())
            if not self._side_met(int(cells[col]), x_out[col], maximise):
                # the outsider passed short of the requirement (prior knowledge): every insider is a suspect
                suspects = set(np.unique(who).tolist())
            else:
                suspects = set(np.unique(who).tolist())
                for point in self._candidate_points(
                    truth, universal[(col, maximise)], x_out, moves, col, int(cells[col]), maximise
                ):
                    suspects &= set(np.unique(who[floor > point[cols] + tol]).tolist())
                    if not suspects - owners:
                        break
            moves.append(x_out - truth)
            for w in self._group_test(lp, col, maximise, sorted(suspects - owners), by_who):
                failing.setdefault(w, []).append((col, maximise))
        for w in sorted(failing):
            self._one_insider(lp, str(names[w]), cols[who == w], floor[who == w], failing[w])

    def _settle_by_move(self, pending: set, move: np.ndarray, room_up, room_down, cells, truth) -> None:
        """Settle every pending side that truth + s * move reaches for some s in [-1, 1] within the rooms.

        `move` is the difference of two points that satisfy the relations, so truth + s * move satisfies them
        too (|s| <= 1 keeps the solver's row residual at most that of the points); the rooms (bounds and
        floors) are checked on every cell but the side's own, whose requirement lies within its a-priori
        bounds already."""
        if not pending:
            return
        side = np.array(sorted(pending), dtype=np.int64).reshape(-1, 2)
        col, up = side[:, 0], side[:, 1].astype(bool)
        gap = np.where(up, self.need_hi[cells[col]], self.need_lo[cells[col]]) - truth[col]
        tiny = self.eps * 1e-3
        for sign in (1.0, -1.0):
            d = sign * move
            with np.errstate(divide="ignore", invalid="ignore"):
                limit = np.where(d > tiny, room_up / d, np.where(d < -tiny, room_down / -d, np.inf))
            limit = np.maximum(limit, 0.0)
            if len(limit) > 1:
                first = int(np.argmin(limit))
                low1 = limit[first]
                low2 = np.partition(limit, 1)[1]
            else:
                first, low1, low2 = 0, np.inf, np.inf
            reach = np.where(col == first, low2, low1)  # the largest scale the other cells allow
            dc = d[col]
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(np.abs(dc) > tiny, gap / dc, np.inf)
            ok = (scale >= 0) & (scale <= np.minimum(reach, 1.0))
            for c, m in zip(col[ok].tolist(), up[ok].tolist(), strict=True):
                pending.discard((c, bool(m)))

    def _candidate_points(self, truth, x_all, x_out, moves, col: int, cell: int, maximise: bool):
        """Points that satisfy the relations and reach the side's requirement on the cell: on the segments from
        the truth and from the universal optimum towards the outsider's optimum, and truth + s * move for the
        earlier moves that reach it with 0 < |s| <= 1; each is then checked against the insiders' floors."""
        tol = self.eps * 1e-3
        yield self._reaching_point(truth, x_out, col, maximise, cell, tol)
        yield self._reaching_point(x_all, x_out, col, maximise, cell, tol)
        gap = self._need(cell, maximise) - truth[col]
        comp = self.lps[self.component_of[cell]].comp.cells
        lower, upper = self.lower[comp], self.upper[comp]
        for move in moves:
            if abs(move[col]) > tol and abs(gap / move[col]) <= 1.0:
                point = truth + (gap / move[col]) * move
                if np.all(point >= lower - tol) and np.all(point <= upper + tol):  # a reflection may leave them
                    yield point

    def _reaching_point(self, base: np.ndarray, far: np.ndarray, col: int, maximise: bool, cell: int, tol: float):
        """The point on the segment from `base` towards `far` that just reaches the cell's requirement."""
        span = far[col] - base[col]
        lam = 1.0 if abs(span) <= tol else min(1.0, max(0.0, (self._need(cell, maximise) - base[col]) / span))
        return base + lam * (far - base)

    def _group_test(self, lp: _ComponentLP, col: int, maximise: bool, group: list[int], by_who) -> list[int]:
        """The insiders of `group` that fall short of the side: one LP with every floor of a group at once
        (the largest per cell) settles the whole group when it reaches the requirement; else it is halved."""
        who_s, cols_s, floor_s = by_who
        failing: list[int] = []
        stack = [group] if group else []
        while stack:
            g = stack.pop()
            lo = np.searchsorted(who_s, g, side="left")
            hi = np.searchsorted(who_s, g, side="right")
            pos = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)])
            gcols, gfloor = cols_s[pos.astype(np.int64)], floor_s[pos.astype(np.int64)]
            touched = np.unique(gcols)
            bound = lp.lower.copy()
            np.maximum.at(bound, gcols, gfloor)
            lp.set_bounds(touched, bound[touched], lp.upper[touched])
            try:
                value, _ = lp.optimise(col, maximise)
            finally:
                lp.set_bounds(touched, lp.lower[touched], lp.upper[touched])
            if self._side_met(int(lp.comp.cells[col]), value, maximise):
                continue
            if len(g) == 1:
                failing.append(g[0])
            else:
                stack += [g[len(g) // 2 :], g[: len(g) // 2]]
        return sorted(failing)

    def _push_all(self, lp: _ComponentLP, pending: set, cells, truth, maximise: bool, settle_with) -> None:
        """Push all pending sides of one direction at once (one LP), while that settles a good share."""
        while True:
            side = sorted(c for c, m in pending if m == maximise)
            if len(side) < _BATCH_MIN:
                return
            cols = np.array(side, dtype=np.int64)
            need = (self.need_hi if maximise else self.need_lo)[cells[cols]]
            # Weight each cell by the distance it must move, so small cells count as much as large ones.
            weights = 1.0 / np.maximum(np.abs(need - truth[cols]), self.eps)
            x = lp.optimise_sum(cols, weights, maximise)
            before = len(pending)
            settle_with(x)
            if (before - len(pending)) * _BATCH_GAIN < len(side):
                return

    def _one_insider(self, lp: _ComponentLP, who: str, mcols: np.ndarray, mfloor: np.ndarray, sides) -> None:
        """The insider's own LPs for the sides only it might fail; judged as the outsider is."""
        cells = lp.comp.cells
        lp.set_bounds(mcols, mfloor, lp.upper[mcols])
        try:
            open_sides = set(sides)
            judged: set[int] = set()
            for col, maximise in sorted(sides):
                if (col, maximise) not in open_sides or col in judged:
                    continue
                value, x = lp.optimise(col, maximise)
                for c, m in list(open_sides):  # the insider's own point settles every side it reaches
                    if self._side_met(int(cells[c]), x[c], m):
                        open_sides.discard((c, m))
                if self._side_met(int(cells[col]), value, maximise):
                    continue
                lo = lp.optimise(col, False)[0] if maximise else value
                hi = value if maximise else lp.optimise(col, True)[0]
                self._judge(int(cells[col]), who, lo, hi)
                judged.add(col)
        finally:
            lp.set_bounds(mcols, lp.lower[mcols], lp.upper[mcols])

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
        # Only a cell short of its requirement is asked about, so one in a relation: a cell in none has its
        # a-priori bounds for interval, where every requirement is capped.
        comp = self._prior[epoch][cell]
        cells = comp.cells
        lower = insider_floor(self.lower[cells], self.problem.insiders.values_at(who, cells), self.values[cells])
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
