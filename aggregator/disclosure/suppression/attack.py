"""The attacker model: every protection requirement that some attacker (the outsider or one insider) can
break in a pattern, found with one LP per hidden component and attacker."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import highspy
import numpy as np

from aggregator.disclosure.highs import largest_bound, pass_lp, run_warm_then_cold, silent_highs
from aggregator.disclosure.model import insider_floor
from aggregator.disclosure.suppression.structure import Structure
from aggregator.errors import DisclosureError

# Relative to the requirement, and so never looser than the audit's tolerance (audit.REL_TOL of the problem's
# largest magnitude, which bounds every requirement): with 1e-6 a shortfall of a millionth of a large cell's
# requirement passed here, failed the audit, and protect() gave up on a table it could protect.
_ABS_TOL = 1e-9


@dataclass
class Attack:
    """One unmet protection requirement, with what is needed to build its cut."""

    cell: int
    attacker: int  # -1 = outsider, else contributor index
    sign: int  # +1: upper protection, -1: lower protection
    value: float  # how far the attacker can move the cell in that direction
    required: float
    rel_ids: np.ndarray  # relations of the attacker LP
    duals: np.ndarray  # their dual values


def attacker_rooms(s: Structure, attacker: int, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far each of `cells` may move up / down for this attacker (insiders know their own figures)."""
    up, down = s.up_room[cells].copy(), s.down_room[cells].copy()
    if attacker < 0:
        return up, down
    has, amount = s.own_at(attacker, cells)
    lower, values = s.problem.lower[cells], s.problem.values[cells]
    # it knows its own share, not whether it is alone (the audit's insider_floor)
    down = np.where(has, np.maximum(0.0, values - insider_floor(lower, amount, values)), down)
    return up, down


def requirement(s: Structure, p: int, sign: int, up_p: float, down_p: float, attacker: int) -> float:
    # Reaching the outsider's a-priori bound is full protection (as in aggregator.disclosure.audit); an
    # attacker whose prior knowledge keeps it from the requirement needs only what it could reach before
    # (prior_cap, applied to the sides that fall short).
    return float(min(s.problem.upl[p], up_p) if sign > 0 else min(s.problem.lpl[p], down_p))


def _prior_reach(s: Structure, attacker: int, p: int, sign: int) -> float:
    """How far the attacker can move cell p with every cell hidden but those published before p's release."""
    epoch = int(s.epoch[p])
    if epoch not in s.prior_groups:
        unknown = ~(s.problem.fixed & (s.epoch < epoch))
        s.prior_groups[epoch] = {int(c): group for group in hidden_components(s, unknown) for c in group.tolist()}
    group = s.prior_groups[epoch].get(p, np.array([p], dtype=np.int64))
    up, down = attacker_rooms(s, attacker, group)
    return AttackerLP(s, group, up, -down).solve(p, sign)[0]


def prior_cap(s: Structure, attacker: int, p: int, sign: int) -> float:
    """The most the attacker can be asked for on cell p's side `sign` (inf: the requirement as it is).

    The audit holds no release to what was known before it, so a requirement is capped at what the attacker
    could reach before p's release (a hair below, for rounding): asking more makes the model infeasible or
    hides cells for nothing. With nothing published before, the outsider's requirement is capped at the
    bounds already; an insider's is capped only where it is capped at a bound, which its own figures may
    keep it from (as in the audit). Asked only of a side that falls short: an LP per attacker, cell and
    side, cached."""
    key = (attacker, p, sign)
    if key not in s.prior_caps:
        epoch = int(s.epoch[p])
        if epoch not in s.published_before:
            s.published_before[epoch] = bool((s.problem.fixed & (s.epoch < epoch)).any())
        capped_at_bound = attacker >= 0 and _requirement_at_bound(s, p, sign)
        reach = _prior_reach(s, attacker, p, sign) if s.published_before[epoch] or capped_at_bound else math.inf
        s.prior_caps[key] = max(0.0, reach - tolerance(reach)) if math.isfinite(reach) else math.inf
    return s.prior_caps[key]


def _capped_if_short(s: Structure, attacker: int, p: int, sign: int, value: float, req: float) -> float:
    """The requirement, capped at the attacker's prior reach when `value` (its reach now) falls short of it."""
    return min(req, prior_cap(s, attacker, p, sign)) if value < req - tolerance(req) else req


def _requirement_at_bound(s: Structure, p: int, sign: int) -> bool:
    room = s.up_room[p] if sign > 0 else s.down_room[p]
    asked = s.problem.upl[p] if sign > 0 else s.problem.lpl[p]
    return bool(asked >= room - tolerance(room))


def known_before(s: Structure, p: int) -> bool:
    """Whether releases before p's pinned it exactly: no pattern can protect such a cell and none has to."""
    return all(prior_cap(s, -1, p, sign) <= _ABS_TOL for sign in (1, -1))


def tolerance(required: float) -> float:
    return _ABS_TOL * max(1.0, abs(required))


class AttackerLP:
    """The attacker's LP over one group of hidden cells: variables are the moves z_i = y_i - a_i."""

    def __init__(self, s: Structure, cells: np.ndarray, hi: np.ndarray, lo: np.ndarray):
        self.cells = cells
        self.local = dict(zip(cells.tolist(), range(len(cells)), strict=True))
        self.rel_ids = np.unique(s.cell_rel[spans(s.cell_ptr, cells)])
        start, index, value = rows_over(s, self.rel_ids, cells)
        # presolve off keeps the basis between targets (warm starts)
        self.h = silent_highs(largest_bound(lo, hi), presolve="off")
        m = len(self.rel_ids)
        pass_lp(self.h, np.zeros(len(cells)), lo, hi, np.zeros(m), np.zeros(m), start, index, value)
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self._costed = np.zeros(0, dtype=np.int32)  # columns with a non-zero objective coefficient

    def solve(self, p: int, sign: int) -> tuple[float, np.ndarray, np.ndarray]:
        """Max of sign * z_p; returns the value, the move vector (local) and the row duals."""
        k = self.local[p]
        self.h.changeColsCost(len(self._costed), self._costed, np.zeros(len(self._costed)))
        self._costed = np.array([k], dtype=np.int32)
        self.h.changeColsCost(1, self._costed, np.array([float(sign)]))
        status = run_warm_then_cold(self.h)
        if status != highspy.HighsModelStatus.kOptimal:
            raise DisclosureError(f"the attacker model could not be solved (HiGHS: {status})")
        sol = self.h.getSolution()
        z = np.array(sol.col_value, dtype=float)
        return float(sign * z[k]), z, np.array(sol.row_dual, dtype=float)


def spans(ptr: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Positions ptr[i]..ptr[i+1]-1 of every i in items, concatenated in that order (a CSR gather)."""
    starts, stops = ptr[items], ptr[items + 1]
    lengths = stops - starts
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(int(lengths.sum()))


def rows_over(s: Structure, rel_ids: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR rows (start, local column, coefficient) of relations `rel_ids` restricted to `cells`, entries in
    relation order."""
    pos = spans(s.rel_ptr, rel_ids)
    row = np.repeat(np.arange(len(rel_ids)), s.rel_ptr[rel_ids + 1] - s.rel_ptr[rel_ids])
    order = np.argsort(cells, kind="stable")
    at = np.minimum(np.searchsorted(cells, s.rel_idx[pos], sorter=order), len(cells) - 1)
    inside = cells[order[at]] == s.rel_idx[pos] if len(cells) else np.zeros(len(pos), dtype=bool)
    start = np.zeros(len(rel_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row[inside], minlength=len(rel_ids)), out=start[1:])
    return start, order[at[inside]], s.rel_val[pos][inside]


def hidden_components(s: Structure, hidden: np.ndarray) -> list[np.ndarray]:
    """Groups of hidden cells linked through relations; attackers work on each group separately."""
    parent = {int(i): int(i) for i in np.flatnonzero(hidden)}

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    rel_hidden = hidden[s.rel_idx]
    for r in range(len(s.rel_ptr) - 1):
        lo, hi = s.rel_ptr[r], s.rel_ptr[r + 1]
        cells = s.rel_idx[lo:hi][rel_hidden[lo:hi]]
        if len(cells) > 1:
            root = find(int(cells[0]))
            for c in cells[1:]:
                other = find(int(c))
                if other != root:
                    parent[max(root, other)] = min(root, other)
                    root = min(root, other)
    groups: dict[int, list[int]] = {}
    for i in parent:
        groups.setdefault(find(i), []).append(i)
    return [np.array(sorted(g), dtype=np.int64) for _, g in sorted(groups.items())]


def find_attacks(
    s: Structure,
    x: np.ndarray,
    insiders: bool = True,
    only: np.ndarray | None = None,
    attackers: dict[int, set[int]] | None = None,
) -> list[Attack]:
    """Every unmet requirement for pattern x (0/1, or fractional inside the cut loop of the LP bound).

    only: restrict the targets to these primary cells (those the audit module found wanting).
    attackers: with `only`, the insiders (contributor indices) to attack each target with, e.g. those the audit
    named; the others are not tried on it. This only chooses which cuts to look for: the audit has the last word.
    """
    hidden = x > 1e-9
    targets = hidden & s.problem.primary
    if only is not None:
        targets &= only
    attacks: list[Attack] = []
    for comp in hidden_components(s, hidden):
        prim = comp[targets[comp]]
        if len(prim) == 0:
            continue
        prim = prim[np.argsort(s.rank[prim], kind="stable")]
        attacks += _attack_component(s, comp, prim, x, insiders, attackers)
    return attacks


def _attack_component(s, comp, prim, x, insiders, attackers=None) -> list[Attack]:
    attacks: list[Attack] = []
    up, down = attacker_rooms(s, -1, comp)
    scale = x[comp]
    lp = AttackerLP(s, comp, up * scale, -down * scale)
    points: list[np.ndarray] = []  # feasible moves found so far: certificates for other targets
    witnessed: list[tuple[int, int, int, float]] = []  # (p, sign, point, gain) of each outsider pass
    for p, sign in itertools.product(prim.tolist(), (1, -1)):
        k = lp.local[p]
        req = requirement(s, p, sign, up[k], down[k], -1)
        if req <= tolerance(req):
            continue
        w = _witness(points, k, sign, req)
        if w is None:
            value, z, duals = lp.solve(p, sign)
            points.append(z.copy())
            req = _capped_if_short(s, -1, p, sign, value, req)
            if value < req - tolerance(req):
                attacks.append(Attack(p, -1, sign, value, req, lp.rel_ids, duals))
                continue
            w = len(points) - 1
        witnessed.append((p, sign, w, sign * float(points[w][k])))
    if insiders and witnessed:
        attacks += _insider_attacks(s, comp, x, np.array(points), witnessed, attackers)
    return attacks


def _witness(points: list[np.ndarray], k: int, sign: int, req: float) -> int | None:
    for w, z in enumerate(points):
        if sign * z[k] >= req - tolerance(req):
            return w
    return None


def _insider_attacks(s, comp, x, points, witnessed, attackers=None) -> list[Attack]:
    """Each contributor with a record in a hidden cell of this group attacks with its own figures known
    (with `attackers`: only on the targets it is named for)."""
    involved = np.unique(s.owner_who[spans(s.owner_ptr, comp)]).tolist()
    attacks: list[Attack] = []
    for c in involved:
        mine = witnessed if attackers is None else [w for w in witnessed if c in attackers.get(w[0], ())]
        if mine:
            attacks += _one_insider(s, c, comp, x, points, mine)
    return attacks


def _one_insider(s, c: int, comp: np.ndarray, x, points, witnessed) -> list[Attack]:
    """An outsider's move shrunk towards zero until it respects what the insider knows is still a move the
    insider cannot exclude; only the targets such moves leave short need the insider's own LP."""
    known = _positions_held(comp, s.own_cells(c))
    up_k, down_k = attacker_rooms(s, c, comp[known])
    scale = x[comp[known]]
    shrink = _shrink_factors(points[:, known], up_k * scale, -down_k * scale)
    lp: AttackerLP | None = None
    mine: list[np.ndarray] = []  # the insider's own optima: certificates for its other targets
    attacks: list[Attack] = []
    for p, sign, w, gain in witnessed:
        if s.own_at(c, np.array([p]))[1][0] != 0:
            continue  # a cell it contributes to: the primary rules' protection already models this attacker
        req = requirement(s, p, sign, s.up_room[p], s.down_room[p], c)
        if req <= tolerance(req) or shrink[w] * gain >= req - tolerance(req):
            continue
        if lp is None:
            up_all, down_all = attacker_rooms(s, c, comp)
            lp = AttackerLP(s, comp, up_all * x[comp], -down_all * x[comp])
        elif _witness(mine, lp.local[p], sign, req) is not None:
            continue
        value, z, duals = lp.solve(p, sign)
        mine.append(z)
        req = _capped_if_short(s, c, p, sign, value, req)
        if value < req - tolerance(req):
            attacks.append(Attack(p, c, sign, value, req, lp.rel_ids, duals))
    return attacks


def _positions_held(comp: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Positions in `comp` of its cells that are in `held` (ascending cell indices, often much longer)."""
    if len(held) == 0:
        return np.zeros(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(held, comp), len(held) - 1)
    return np.flatnonzero(held[at] == comp)


def _shrink_factors(z: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Per point, the largest t in [0, 1] with lo <= t*z <= hi on the insider's cells."""
    if z.shape[1] == 0:
        return np.ones(z.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(z > hi + 1e-12, hi / z, 1.0)
        under = np.where(z < lo - 1e-12, lo / z, 1.0)
    return np.clip(np.minimum(over.min(axis=1), under.min(axis=1)), 0.0, 1.0)
