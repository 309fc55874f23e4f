"""A-priori bounds a reader derives before any value is published: the bounds of each cell and what the
relations imply about them (bound propagation).

A hidden count is at least 1 because the release shows it exists, so a region with three non-empty countries
is at least 3 whatever is hidden. No suppression pattern can hide that, so the requirement of a cell is capped
at these implied bounds just as it is capped at the cell's own a-priori bounds (docs/rules.md). The implied
bounds hold for every pattern (publishing a cell only adds facts), so both the audit and the suppression use
them as the cells' bounds.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from aggregator.disclosure.model import ProtectionProblem

_ROUNDS = 64  # propagation rounds; hierarchies converge in about twice their depth


def tightened(problem: ProtectionProblem) -> ProtectionProblem:
    """The problem with each cell's bounds tightened to what its relations and the other cells' bounds imply
    (total >= sum of the parts' lower bounds, part <= total's upper bound minus the others' lower bounds),
    never past its true value."""
    if not problem.relations:
        return problem
    lower, upper = implied_bounds(problem)
    if np.array_equal(lower, problem.lower) and np.array_equal(upper, problem.upper):
        return problem
    return replace(problem, lower=lower, upper=upper)


def implied_bounds(problem: ProtectionProblem) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of every cell implied by the relations (total = sum of parts) and the a-priori
    bounds, by propagation to a fixed point (or `_ROUNDS` rounds: every round's bounds are valid)."""
    rel, cells, coef = _entries(problem)
    values = np.asarray(problem.values, dtype=float)
    lower = np.minimum(np.asarray(problem.lower, dtype=float), values)
    upper = np.maximum(np.asarray(problem.upper, dtype=float), values)
    n_rel = len(problem.relations)
    scale = 1e-9 * max(1.0, float(np.abs(values).max(initial=0.0)))
    for _ in range(_ROUNDS):
        # each entry's least and greatest contribution to "total - sum(parts)"
        least = np.where(coef > 0, lower[cells], -upper[cells])
        most = np.where(coef > 0, upper[cells], -lower[cells])
        sum_least = np.bincount(rel, weights=least, minlength=n_rel)
        sum_most = np.bincount(rel, weights=most, minlength=n_rel)
        # 0 = coef * y + rest: y's room from the other entries' extremes
        rest_least, rest_most = sum_least[rel] - least, sum_most[rel] - most
        lo_entry = np.where(coef > 0, -rest_most, rest_least)
        hi_entry = np.where(coef > 0, -rest_least, rest_most)
        new_lower, new_upper = lower.copy(), upper.copy()
        np.maximum.at(new_lower, cells, lo_entry)
        np.minimum.at(new_upper, cells, hi_entry)
        new_lower = np.minimum(new_lower, values)  # rounding never moves a bound past the truth
        new_upper = np.maximum(new_upper, values)
        moved = (new_lower > lower + scale).any() or (new_upper < upper - scale).any()
        lower, upper = new_lower, new_upper
        if not moved:
            break
    return lower, upper


def _entries(problem: ProtectionProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(relation, cell, coefficient) per entry: +1 for the total, -1 for each part."""
    lengths = np.fromiter((1 + len(parts) for _, parts in problem.relations), dtype=np.int64)
    cells = np.fromiter(
        (c for total, parts in problem.relations for c in (total, *parts)), dtype=np.int64, count=int(lengths.sum())
    )
    rel = np.repeat(np.arange(len(lengths)), lengths)
    coef = -np.ones(len(cells))
    coef[np.cumsum(lengths) - lengths] = 1.0
    return rel, cells, coef
