"""The door: `protect(problem, method)`, solved per independent block and confirmed by the audit."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import AuditResult, ProtectionProblem
from aggregator.disclosure.suppression.attack import find_attacks
from aggregator.disclosure.suppression.fast import fast_pattern
from aggregator.disclosure.suppression.optimal import Master, RoundsUp, lp_cut_loop, optimal_pattern, tie_weight
from aggregator.disclosure.suppression.structure import build_structure
from aggregator.errors import DisclosureError

AUTO_OPTIMAL_MAX_CELLS = 1000  # "auto" uses the exact model up to this many cells (per independent block)


@dataclass
class SuppressionResult:
    """A suppression pattern and how it was found."""

    suppressed: np.ndarray  # bool, primary cells included
    secondary: np.ndarray  # bool, the extra cells hidden to protect the primary ones
    method: str  # "optimal" or "fast" (the method that produced the pattern)
    cost: float  # sum of problem.cost over the secondary cells
    lower_bound: float  # proven lower bound on the secondary cost (NaN when unknown)
    optimal: bool  # True when the pattern is proven cost-minimal under the attacker model
    iterations: int  # cut rounds (optimal) or repair rounds (fast)
    seconds: float
    audit: AuditResult | None = field(default=None, repr=False)  # the confirming audit, when available

    @property
    def n_secondary(self) -> int:
        return int(self.secondary.sum())


def protect(problem: ProtectionProblem, method: str = "auto", *, time_limit: float = 600.0) -> SuppressionResult:
    """Choose the secondary cells that protect every primary cell; return the full pattern.

    method: "optimal" (exact cost minimum, for up to a few thousand cells), "fast" (heuristic, any size)
    or "auto" (optimal up to AUTO_OPTIMAL_MAX_CELLS cells, decided per independent block). The result never
    depends on timing: when the exact model needs more than a fixed number of cut rounds, the fast pattern is
    kept (method "fast", optimal False); `time_limit` (seconds) only guards against runaway runs, raising
    DisclosureError instead of returning a timing-dependent pattern.
    Raises DisclosureError when a primary cell cannot be protected (for instance because the cells around
    it were published already) or the pattern fails the audit.

    Cells that share no relation, directly or through others, cannot help protect each other (every
    attacker LP and every cut lives inside one block), so each block is solved on its own: the union of
    per-block optima is the optimum of the whole, found much faster.
    """
    if method not in ("auto", "optimal", "fast"):
        raise DisclosureError(f"unknown suppression method '{method}'", hint="use 'auto', 'optimal' or 'fast'")
    blocks = independent_blocks(problem)
    if len(blocks) == 1:
        return _protect_block(problem, method, time_limit)
    t0 = time.monotonic()
    # each block's pattern is confirmed by the audit's verdict; the caller audits the whole release for the report
    parts = [(b, _protect_block(subproblem(problem, b), method, time_limit, report=False)) for b in blocks]
    return _merge_results(problem, parts, time.monotonic() - t0)


def independent_blocks(problem: ProtectionProblem) -> list[np.ndarray]:
    """Cell indices grouped by the connected components of the relations; cells in no relation form one block."""
    parent = np.arange(problem.size)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for total, parts in problem.relations:
        root = find(total)
        for p in parts:
            other = find(p)
            if other != root:
                parent[max(other, root)] = min(other, root)
                root = min(other, root)
    roots = np.array([find(i) for i in range(problem.size)])
    related = np.zeros(problem.size, dtype=bool)
    for total, parts in problem.relations:
        related[total] = True
        related[list(parts)] = True
    roots[~related] = -1
    return [np.flatnonzero(roots == r) for r in np.unique(roots)]


def subproblem(problem: ProtectionProblem, cells: np.ndarray) -> ProtectionProblem:
    """The problem restricted to `cells` (which must be closed under the relations)."""
    position = {int(c): k for k, c in enumerate(cells)}
    relations = [
        (position[t], tuple(position[p] for p in parts)) for t, parts in problem.relations if int(t) in position
    ]
    return ProtectionProblem(
        keys=[problem.keys[c] for c in cells],
        values=problem.values[cells],
        relations=relations,
        lower=problem.lower[cells],
        upper=problem.upper[cells],
        upl=problem.upl[cells],
        lpl=problem.lpl[cells],
        primary=problem.primary[cells],
        cost=problem.cost[cells],
        fixed=problem.fixed[cells],
        insiders=problem.insiders.restricted(cells),
        epoch=None if problem.epoch is None else problem.epochs()[cells],
    )


def _merge_results(problem: ProtectionProblem, parts, seconds: float) -> SuppressionResult:
    hidden = np.zeros(problem.size, dtype=bool)
    for cells, result in parts:
        hidden[cells] = result.suppressed
    secondary = hidden & ~problem.primary
    results = [r for _, r in parts]
    bounds = [r.lower_bound for r in results]
    methods = sorted({r.method for r in results})
    return SuppressionResult(
        suppressed=hidden,
        secondary=secondary,
        method=methods[0] if len(methods) == 1 else "+".join(methods),
        cost=float(problem.cost[secondary].sum()),
        lower_bound=math.nan if any(math.isnan(b) for b in bounds) else float(sum(bounds)),
        optimal=all(r.optimal for r in results),
        iterations=sum(r.iterations for r in results),
        seconds=seconds,
        audit=None,  # per-block audits passed; the caller audits the whole release
    )


def _protect_block(
    problem: ProtectionProblem, method: str, time_limit: float, *, report: bool = True
) -> SuppressionResult:
    t0 = time.monotonic()
    deadline = t0 + time_limit
    s = build_structure(problem)
    if method == "auto":
        method = "optimal" if problem.size <= AUTO_OPTIMAL_MAX_CELLS else "fast"
    fast_hidden, fast_rounds = fast_pattern(s)
    hidden, bound, proven, rounds, used = fast_hidden, math.nan, False, fast_rounds, "fast"
    if method == "optimal" and problem.primary.any():
        try:
            hidden, bound, proven, rounds = optimal_pattern(s, deadline, fast_hidden)
            used = "optimal"
        except RoundsUp:
            pass
    if not problem.primary.any():
        bound, proven = 0.0, True
    return _result(s, hidden, used, bound, proven, rounds, time.monotonic() - t0, report)


def _result(s, hidden, used, bound, proven, rounds, seconds, report: bool) -> SuppressionResult:
    p = s.problem
    hidden, verdict = _confirm_with_audit(p, hidden, s.audit_cache, report)
    secondary = hidden & ~p.primary
    return SuppressionResult(
        suppressed=hidden.copy(),
        secondary=secondary,
        method=used,
        cost=float(p.cost[secondary].sum()),
        lower_bound=math.nan if math.isnan(bound) else _secondary_bound(bound, p),
        optimal=bool(proven and used == "optimal") or not p.primary.any(),
        iterations=int(rounds),
        seconds=float(seconds),
        audit=verdict,
    )


def _confirm_with_audit(
    problem: ProtectionProblem, hidden: np.ndarray, cache: dict, report: bool
) -> tuple[np.ndarray, AuditResult | None]:
    """The independent audit has the last word on the pattern.

    report: return the full audit (every hidden cell's interval); else only its verdict is checked (the
    verdict is the same, and None is returned as the audit).
    """
    verdict = audit(problem, hidden, cache=cache, verdict_only=not report)
    if not verdict.passed:
        cell, who, lo, hi, reason = verdict.failures[0]
        raise DisclosureError(
            f"the suppression pattern failed the audit: cell {problem.keys[cell].describe()} is narrowed to "
            f"[{lo:.6g}, {hi:.6g}] by {who} ({reason})",
            hint="report this as a bug with the protection problem attached",
        )
    return hidden, verdict if report else None


def check_pattern(problem: ProtectionProblem, suppressed: np.ndarray, *, insiders: bool = True) -> list[tuple]:
    """Our own attacker check: (cell, attacker, direction, reach, required) for every unmet requirement.

    The attacker model is the one `protect` optimises against (docs/suppression.md); the audit module is the
    independent check.
    """
    s = build_structure(problem)
    out = []
    for a in find_attacks(s, np.asarray(suppressed, dtype=float), insiders):
        who = "outsider" if a.attacker < 0 else s.contributors[a.attacker]
        out.append((a.cell, who, "up" if a.sign > 0 else "down", a.value, a.required))
    return out


def lp_lower_bound(problem: ProtectionProblem, *, time_limit: float = 60.0) -> float:
    """Lower bound on the secondary cost: the LP relaxation of the master with the cuts it separates."""
    s = build_structure(problem)
    if not problem.primary.any():
        return 0.0
    master = Master(s)
    bound, _ = lp_cut_loop(s, master, time.monotonic() + time_limit)
    return _secondary_bound(bound, problem)


def _secondary_bound(master_bound: float, problem: ProtectionProblem) -> float:
    """The master's bound minus the most the tie-breaking charge can add: a bound on the secondary cost."""
    return max(0.0, master_bound - tie_weight(problem.cost) * problem.size)
