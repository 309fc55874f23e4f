"""The exact model: a 0/1 master in HiGHS (Fischetti & Salazar-Gonzalez, 2001) whose protection
constraints are generated as cuts until none is violated."""

from __future__ import annotations

import math
import time

import highspy
import numpy as np

from aggregator.disclosure.highs import pass_lp, row_scale, silent_highs
from aggregator.disclosure.suppression.attack import known_before
from aggregator.disclosure.suppression.cuts import Cut, needs_partner, separate
from aggregator.disclosure.suppression.structure import Structure
from aggregator.errors import DisclosureError

_MAX_MIP_ROUNDS = 40  # cut rounds on the integer master before the exact model gives way to the fast pattern
_MIP_MAX_NODES = 50_000  # a deterministic work limit instead of a wall-clock one
_LP_CUT_ROUNDS = 30


class Master:
    """The 0/1 master problem: min cost.x subject to the partner rows and the cuts found so far."""

    def __init__(self, s: Structure):
        self.s = s
        p = s.problem
        n = p.size
        # primary cells are hidden anyway: the objective is the secondary cost (plus a tie-breaking charge)
        self.cost = np.where(p.primary, 0.0, p.cost.astype(float) + tie_weight(p.cost))
        self.lower = p.primary.astype(float)
        self.upper = np.where(p.fixed | (s.stuck & ~p.primary), 0.0, 1.0)
        self.rows: list[tuple[np.ndarray, np.ndarray, float]] = _partner_rows(s)
        self.n = n

    def add(self, cuts: list[Cut]) -> None:
        for c in cuts:
            # cuts carry amounts (1e10 in euros) against 0/1 columns; HiGHS's absolute tolerances need them scaled
            factor = row_scale(max(abs(c.rhs), float(np.abs(c.coefs).max(initial=0.0))))
            self.rows.append((c.cells, c.coefs * factor, c.rhs * factor))

    def solve(self, integer: bool, start: np.ndarray | None = None) -> tuple[np.ndarray, float, bool]:
        h = silent_highs()
        start_ptr, index, value, lo = [0], [], [], []
        for cells, coefs, rhs in self.rows:
            index += list(cells)
            value += list(coefs)
            start_ptr.append(len(index))
            lo.append(rhs)
        m = len(lo)
        row_hi = np.full(m, highspy.kHighsInf)
        pass_lp(h, self.cost, self.lower, self.upper, lo, row_hi, start_ptr, index, value, integer=integer)
        if integer:
            h.setOptionValue("mip_max_nodes", _MIP_MAX_NODES)
            h.setOptionValue("mip_rel_gap", 1e-6)
            if start is not None:
                h.setSolution(self.n, np.arange(self.n, dtype=np.int32), start.astype(float))
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            raise DisclosureError(
                "no suppression pattern can protect every primary cell given the cells already published",
                hint="review which cells were published before, or merge small categories",
            )
        x = np.asarray(h.getSolution().col_value)
        if len(x) != self.n:  # stopped without any solution (numerical trouble): nothing to round
            raise DisclosureError(f"the suppression model could not be solved (HiGHS: {status.name})")
        info = h.getInfo()
        bound = float(info.mip_dual_bound) if integer else float(info.objective_function_value)
        proven = status == highspy.HighsModelStatus.kOptimal
        if integer:
            x = np.round(x)
        return np.clip(x, 0.0, 1.0), bound, proven


def tie_weight(cost: np.ndarray) -> float:
    """A tiny per-cell charge so that among equally cheap patterns the one with fewer cells wins."""
    return 1e-7 * max(1.0, float(np.abs(cost).max(initial=0.0)))


def _partner_rows(s: Structure) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """x_h <= sum of the other cells of each relation of h (a lone hidden cell is found by subtraction)."""
    rows = []
    n_rel = len(s.rel_ptr) - 1
    for r in range(n_rel):
        cells = s.cells_of(r)
        for h in cells:
            # a cell earlier releases pinned exactly is alone wherever it is: nothing to protect
            if not needs_partner(s.problem, h) or (s.problem.primary[h] and known_before(s, h)):
                continue
            others = cells[cells != h]
            rows.append((np.append(others, h), np.append(np.ones(len(others)), -1.0), 0.0))
    return rows


def lp_cut_loop(s: Structure, master: Master, deadline: float | None = None) -> tuple[float, int]:
    """Strengthen the master with cuts separated at fractional LP points; returns the LP bound.

    Only the benchmark's lp_lower_bound passes a deadline: a pattern must never depend on timing."""
    bound = -math.inf
    for rounds in range(1, _LP_CUT_ROUNDS + 1):
        x, bound, _ = master.solve(integer=False)
        cuts = separate(s, x)
        if not cuts or (deadline is not None and time.monotonic() > deadline):
            return bound, rounds
        master.add(cuts)
    return bound, _LP_CUT_ROUNDS


class RoundsUp(Exception):
    """The exact model needed more cut rounds than allowed: a deterministic reason to keep the fast pattern."""


def optimal_pattern(s: Structure, deadline: float, start: np.ndarray) -> tuple[np.ndarray, float, bool, int]:
    master = Master(s)
    _, rounds = lp_cut_loop(s, master)
    for _ in range(_MAX_MIP_ROUNDS):
        if time.monotonic() > deadline:
            raise DisclosureError(
                f"the optimal suppression model did not finish within the time limit ({s.problem.size} cells)",
                hint='set suppression = "fast" in the protocol for tables this large',
            )
        rounds += 1
        # the fast pattern is safe, so it satisfies every cut: a valid incumbent for each re-solve
        x, bound, proven = master.solve(integer=True, start=start.astype(float))
        cuts = separate(s, x, integral=True)
        if not cuts:
            return x > 0.5, bound, proven, rounds
        master.add(cuts)
    raise RoundsUp
