"""Benders (capacity) cuts from the attacker LPs' duals: what any pattern must hide to stop an attack."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import ProtectionProblem
from aggregator.disclosure.suppression.attack import (
    Attack,
    attacker_rooms,
    find_attacks,
    spans,
    tolerance,
)
from aggregator.disclosure.suppression.structure import Structure
from aggregator.errors import DisclosureError


@dataclass
class Cut:
    cells: np.ndarray
    coefs: np.ndarray
    rhs: float
    cell: int  # the primary cell it protects


def cut_from_attack(s: Structure, a: Attack, x: np.ndarray) -> Cut:
    """Benders cut sum_i (r+_i * up_i + r-_i * down_i) x_i >= required, r = sign*e_p - M^T lambda.

    Valid for every pattern by weak duality of the attacker LP; HiGHS's dual sign convention is not relied
    on: both signs of lambda give valid cuts, and we keep the one violated by the current pattern.
    """
    best: Cut | None = None
    best_slack = math.inf
    for lam_sign in (1.0, -1.0):
        cut = cut_for_multipliers(s, a, lam_sign * a.duals)
        slack = float(cut.coefs @ x[cut.cells]) - cut.rhs
        if slack < best_slack:
            best, best_slack = cut, slack
    assert best is not None
    return best


def cut_for_multipliers(s, a: Attack, lam) -> Cut:
    used = np.abs(lam) >= 1e-12
    rel_ids, mult = a.rel_ids[used], lam[used]
    pos = spans(s.rel_ptr, rel_ids)
    entry_cells = np.concatenate(([a.cell], s.rel_idx[pos]))
    lengths = s.rel_ptr[rel_ids + 1] - s.rel_ptr[rel_ids]
    terms = np.concatenate(([float(a.sign)], -np.repeat(mult, lengths) * s.rel_val[pos]))
    # r = sign*e_p - M^T lambda, summed in entry order (np.add.at is unbuffered and sequential)
    touched, where = np.unique(entry_cells, return_inverse=True)
    r = np.zeros(len(touched))
    np.add.at(r, where, terms)
    ups, downs = attacker_rooms(s, a.attacker, touched)
    coef = np.where(r > 0, r * ups, -r * downs)
    is_p = touched == a.cell
    rhs = a.required - float(coef[is_p].sum())  # x_p = 1 for a primary cell
    keep = ~is_p & (coef > 1e-9 * max(1.0, a.required)) & ~s.problem.fixed[touched]
    coefs_arr = np.minimum(coef[keep], max(rhs, 0.0))  # x is binary: cap at the rhs
    return Cut(touched[keep].astype(np.int64), coefs_arr, rhs, a.cell)


def raise_unprotectable(s: Structure, cut: Cut, attack: Attack) -> None:
    key = s.problem.keys[cut.cell].describe()
    who = "an outsider" if attack.attacker < 0 else f"contributor {s.contributors[attack.attacker]}"
    side = "upward" if attack.sign > 0 else "downward"
    reach = attack.required - cut.rhs + float(cut.coefs.sum())  # the most any pattern can give
    raise DisclosureError(
        f"cell {key} cannot be protected: whatever else is hidden, {who} can narrow it {side} to within "
        f"{reach:.6g} of its value (required: {attack.required:.6g}), because the cells that could hide it "
        "are already published or too small",
        hint="merge the cell into a larger category, or review which cells were published before",
    )


def needs_partner(problem: ProtectionProblem, h: int) -> bool:
    """A hidden cell that is alone in a relation is found by subtraction. That matters for a cell that needs
    protection or that is meant to protect another (secondary); not for a helper cell (primary with no
    requirement, e.g. the overlap of company counts), which is never published and may well be derivable."""
    return not (problem.primary[h] and problem.upl[h] <= 0 and problem.lpl[h] <= 0)


def attacks_on_pattern(s: Structure, hidden: np.ndarray) -> list[Attack]:
    """Attacks on a 0/1 pattern: the audit says which cells fail, we find the cuts."""
    failing, named = _audit_failing_cells(s, hidden)
    if not failing.any():
        return []
    # attack each failing cell only with the attackers the audit named (the others found nothing there)
    attacks = find_attacks(s, hidden.astype(float), only=failing, attackers=named)
    if not attacks:
        # the audit and our check disagree (tolerances): check every cell before giving up
        attacks = find_attacks(s, hidden.astype(float))
    return attacks


def _audit_failing_cells(s: Structure, hidden: np.ndarray) -> tuple[np.ndarray, dict[int, set[int]]]:
    """Primary cells the audit finds wanting, and per cell the insiders (contributor indices) it names."""
    problem = s.problem
    failing = np.zeros(problem.size, dtype=bool)
    index = {name: k for k, name in enumerate(s.contributors)}
    named: dict[int, set[int]] = {}
    for cell, who, *_ in audit(problem, hidden, cache=s.audit_cache, verdict_only=True).failures:
        failing[cell] = True
        if who in index:
            named.setdefault(cell, set()).add(index[who])
    return failing & problem.primary, named


def feasible_cuts(s: Structure, attacks: list[Attack], x: np.ndarray) -> list[Cut]:
    """Cuts for the attacks (their requirements capped at prior knowledge already); a cut no pattern can
    satisfy is refused, naming the cell."""
    cuts = []
    for a in attacks:
        cut = cut_from_attack(s, a, x)
        if float(cut.coefs.sum()) < cut.rhs - tolerance(cut.rhs):
            raise_unprotectable(s, cut, a)
        cuts.append(cut)
    return cuts


def separate(s: Structure, x: np.ndarray, insiders: bool = True, integral: bool = False) -> list[Cut]:
    attacks = attacks_on_pattern(s, x > 0.5) if integral else find_attacks(s, x, insiders)
    return [c for c in feasible_cuts(s, attacks, x) if float(c.coefs @ x[c.cells]) < c.rhs - tolerance(c.rhs)]
