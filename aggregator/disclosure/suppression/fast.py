"""The fast pattern: a hidden partner in every relation, chosen by cost with a one-step look-ahead, then
audit-and-repair with the same cuts. Scales to 100k+ cells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aggregator.disclosure.suppression.attack import tolerance
from aggregator.disclosure.suppression.cuts import Cut, attacks_on_pattern, feasible_cuts, needs_partner
from aggregator.disclosure.suppression.structure import Structure
from aggregator.errors import DisclosureError

_MAX_REPAIR_ROUNDS = 60


class _Pattern:
    """A growing pattern with per-relation hidden counts (the greedy step's bookkeeping)."""

    def __init__(self, s: Structure, hidden: np.ndarray):
        self.s = s
        self.hidden = hidden.copy()
        self.count = _per_relation(np.add, s, hidden.astype(np.int64), 0)
        free = ~(s.problem.fixed | s.stuck)
        cost = s.problem.cost
        masked = np.where(free[s.rel_idx], cost[s.rel_idx], np.inf)
        self.rel_min = _per_relation(np.minimum, s, masked, np.inf, gathered=True)
        self.free = free

    def hide(self, i: int) -> None:
        if not self.hidden[i]:
            self.hidden[i] = True
            self.count[self.s.relations_of(i)] += 1


def _per_relation(ufunc, s: Structure, per_cell: np.ndarray, empty, gathered: bool = False) -> np.ndarray:
    """ufunc reduced over the cells of each relation (`gathered`: per_cell is already per entry)."""
    n_rel = len(s.rel_ptr) - 1
    if len(s.rel_idx) == 0:
        return np.full(n_rel, empty)
    entries = per_cell if gathered else per_cell[s.rel_idx]
    return ufunc.reduceat(entries, s.rel_ptr[:-1])


def _close_pattern(pat: _Pattern, seeds: Sequence[int]) -> None:
    """Until no hidden cell is the only hidden cell of a relation: give it the best partner there."""
    s = pat.s
    queue = sorted(seeds, key=lambda i: s.rank[i])
    while queue:
        nxt: list[int] = []
        for h in queue:
            if not needs_partner(s.problem, h):
                continue
            for r in s.relations_of(h):
                if pat.count[r] == 1:
                    nxt += _add_partner(pat, h, int(r))
        queue = sorted(set(nxt), key=lambda i: s.rank[i])


def _add_partner(pat: _Pattern, h: int, r: int) -> list[int]:
    s = pat.s
    cands = [int(c) for c in s.cells_of(r) if c != h and pat.free[c]]
    if not cands:
        if s.problem.primary[h]:
            raise DisclosureError(
                f"cell {s.problem.keys[h].describe()} cannot be protected: every other cell of one of its totals is "
                "already published, so it can be recomputed by subtraction",
                hint="merge the cell into a larger category, or review which cells were published before",
            )
        return []  # a secondary cell that ended up derivable; the audit decides whether it matters
    lone_singleton = s.sole[h] >= 0
    scored = sorted(cands, key=lambda c: (_partner_score(pat, c, r, lone_singleton and s.sole[c] >= 0), s.rank[c]))
    chosen = [scored[0]]
    if lone_singleton and s.sole[scored[0]] >= 0 and s.sole[scored[0]] != s.sole[h] and len(scored) > 1:
        chosen.append(scored[1])  # two single-contributor cells alone in a total would reveal each other
    for c in chosen:
        pat.hide(c)
    return chosen


def _partner_score(pat: _Pattern, c: int, r: int, singleton_pair: bool) -> float:
    """Cost of c plus the cheapest partners it will itself need in relations where nothing is hidden yet."""
    s = pat.s
    cascade = 0.0
    for r2 in s.relations_of(c):
        if r2 != r and pat.count[r2] == 0:
            cascade += pat.rel_min[r2] if np.isfinite(pat.rel_min[r2]) else 0.0
    score = float(s.problem.cost[c]) + cascade
    return score * 4.0 + 1.0 if singleton_pair else score


def _repair(pat: _Pattern, cuts: list[Cut]) -> list[int]:
    """Hide the cheapest cells (per unit of protection they add) until each violated cut is met."""
    s, cost = pat.s, pat.s.problem.cost
    added: list[int] = []
    for cut in cuts:
        have = float(cut.coefs @ pat.hidden[cut.cells])
        if have >= cut.rhs - tolerance(cut.rhs):
            continue
        ok = pat.free[cut.cells] & ~pat.hidden[cut.cells]
        cells, coefs = cut.cells[ok], cut.coefs[ok]
        need = cut.rhs - have
        order = sorted(range(len(cells)), key=lambda k: (cost[cells[k]] / min(coefs[k], need), s.rank[cells[k]]))
        for k in order:
            if have >= cut.rhs - tolerance(cut.rhs):
                break
            pat.hide(int(cells[k]))
            added.append(int(cells[k]))
            have += coefs[k]
    return added


def fast_pattern(s: Structure) -> tuple[np.ndarray, int]:
    pat = _Pattern(s, s.problem.primary.astype(bool))
    _close_pattern(pat, list(np.flatnonzero(pat.hidden)))
    for rounds in range(1, _MAX_REPAIR_ROUNDS + 1):
        attacks = attacks_on_pattern(s, pat.hidden)
        if not attacks:
            return pat.hidden, rounds
        cuts = feasible_cuts(s, attacks, pat.hidden.astype(float))
        added = _repair(pat, cuts)
        if not added:
            break
        _close_pattern(pat, added)
    failing = sorted({s.problem.keys[a.cell].describe() for a in attacks})
    named = ", ".join(failing[:5]) + (f" and {len(failing) - 5} more" if len(failing) > 5 else "")
    raise DisclosureError(
        f"no safe suppression pattern found after {rounds} repair round(s): {named} still narrowed too far",
        hint="try method='optimal' or merge small categories",
    )
