"""Secondary suppression: hide as little as possible so that no primary cell can be recomputed.

One door: `protect(problem, method)`. Two methods share one attacker model (docs/suppression.md):

- "optimal": a 0/1 model in HiGHS in the spirit of Fischetti & Salazar-Gonzalez (2001). Protection
  constraints are not written out; they are generated as Benders (capacity) cuts from the dual of the
  attacker LPs of the current pattern, for the outsider and for every insider, until no cut is violated.
- "fast": a greedy pattern (every hidden cell gets a hidden partner in each relation, chosen by cost with
  a one-step look-ahead) followed by audit-and-repair driven by the same cuts. Scales to 100k+ cells.

Both return a pattern that passes our attacker check (outsider and insiders); when
`aggregator.disclosure.audit` exists the final pattern is also confirmed by it.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np

from aggregator.disclosure.highs import run_warm_then_cold
from aggregator.disclosure.model import AuditResult, ProtectionProblem
from aggregator.errors import DisclosureError

AUTO_OPTIMAL_MAX_CELLS = 1000  # "auto" uses the exact model up to this many cells (per independent block)
_MAX_MIP_ROUNDS = 40  # cut rounds on the integer master before the exact model gives way to the fast pattern
_MAX_REPAIR_ROUNDS = 60
_MIP_MAX_NODES = 50_000  # a deterministic work limit instead of a wall-clock one
_LP_CUT_ROUNDS = 30
_ABS_TOL = 1e-6


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


# --------------------------------------------------------------------------------------------- HiGHS


_BANNER_LOCK = threading.Lock()
_banner_done = False


def _new_highs() -> highspy.Highs:
    """A silent, deterministic HiGHS instance.

    The plain C++ binding when available: `highspy.Highs()` registers Python callbacks for every solver event
    (a cost on each of the thousands of small solves) and prints its banner before any option can silence it.
    """
    try:
        from highspy._core import _Highs

        h = _Highs()
    except ImportError:  # a future highspy without the private binding
        h = _wrapped_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    return h


def _wrapped_highs() -> highspy.Highs:
    global _banner_done
    with _BANNER_LOCK:
        if _banner_done:
            return highspy.Highs()
        _banner_done = True
        return _construct_without_stdout()


def _construct_without_stdout() -> highspy.Highs:
    # the library must not print; HiGHS writes its banner straight to file descriptor 1
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _pass_lp(h: highspy.Highs, cost, lower, upper, row_lo, row_hi, start, index, value, integer=False):
    lp = highspy.HighsLp()
    lp.num_col_ = len(cost)
    lp.num_row_ = len(row_lo)
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(lower, dtype=float)
    lp.col_upper_ = np.asarray(upper, dtype=float)
    lp.row_lower_ = np.asarray(row_lo, dtype=float)
    lp.row_upper_ = np.asarray(row_hi, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.asarray(start, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value, dtype=float)
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * len(cost)
    h.passModel(lp)


# ------------------------------------------------------------------------------------------ structure


@dataclass
class _Structure:
    """Sparse views of a problem that every step needs (built once per `protect` call)."""

    problem: ProtectionProblem
    rel_ptr: np.ndarray  # CSR over relations: cells of relation r are rel_idx[rel_ptr[r]:rel_ptr[r+1]]
    rel_idx: np.ndarray
    rel_val: np.ndarray  # +1 for the total, -1 for the parts
    cell_ptr: np.ndarray  # CSR over cells: relations of cell i
    cell_rel: np.ndarray
    rank: np.ndarray  # position of each cell in key order (the tie-breaker)
    up_room: np.ndarray  # upper - value: how far an outsider may move a hidden cell up
    down_room: np.ndarray  # value - lower
    contributors: list[str]  # the insiders, by index
    # contributor c's own records: cells (ascending) and amounts own_cell/own_value[own_ptr[c]:own_ptr[c + 1]]
    own_ptr: np.ndarray
    own_cell: np.ndarray
    own_value: np.ndarray
    # cell i's contributors: owner_who[owner_ptr[i]:owner_ptr[i + 1]]
    owner_ptr: np.ndarray
    owner_who: np.ndarray
    sole: np.ndarray  # contributor index when a cell has exactly one contributor, else -1
    stuck: np.ndarray  # bool: in a relation whose other cells are all fixed: hiding it is useless
    epoch: np.ndarray  # per cell, when it became known (ProtectionProblem.epoch)
    audit_cache: dict = field(default_factory=dict)  # per-component audit results, reused across rounds
    # (attacker, cell, sign) -> requirement lowered to what that attacker could reach from prior knowledge
    caps: dict[tuple[int, int, int], float] = field(default_factory=dict)
    prior_groups: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)  # epoch -> cell -> group

    def relations_of(self, i: int) -> np.ndarray:
        return self.cell_rel[self.cell_ptr[i] : self.cell_ptr[i + 1]]

    def cells_of(self, r: int) -> np.ndarray:
        return self.rel_idx[self.rel_ptr[r] : self.rel_ptr[r + 1]]

    def own_cells(self, c: int) -> np.ndarray:
        return self.own_cell[self.own_ptr[c] : self.own_ptr[c + 1]]

    def own_at(self, c: int, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether contributor c has a record in each of `cells`, and its own amount there (0.0 where not)."""
        mine, amounts = self.own_cells(c), self.own_value[self.own_ptr[c] : self.own_ptr[c + 1]]
        if not len(mine):
            return np.zeros(len(cells), dtype=bool), np.zeros(len(cells))
        at = np.minimum(np.searchsorted(mine, cells), len(mine) - 1)
        has = mine[at] == cells
        return has, np.where(has, amounts[at], 0.0)


def _build_structure(problem: ProtectionProblem) -> _Structure:
    _validate(problem)
    n = problem.size
    sizes = np.array([1 + len(parts) for _, parts in problem.relations], dtype=np.int64)
    rel_ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=rel_ptr[1:])
    rel_idx = np.fromiter(
        itertools.chain.from_iterable((t, *parts) for t, parts in problem.relations), np.int64, rel_ptr[-1]
    )
    rel_val = -np.ones(len(rel_idx))
    rel_val[rel_ptr[:-1]] = 1.0
    rel_of_entry = np.repeat(np.arange(len(sizes)), sizes)
    order = np.argsort(rel_idx, kind="stable")
    cell_rel = rel_of_entry[order]
    cell_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rel_idx, minlength=n), out=cell_ptr[1:])
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(np.array(problem.keys, dtype=object), kind="stable")] = np.arange(n)
    insiders = problem.insiders
    own_ptr, own_cell, own_value = insiders.by_contributor()
    own_who = np.repeat(np.arange(len(insiders.names), dtype=np.int64), np.diff(own_ptr))
    by_cell = np.argsort(own_cell, kind="stable")  # within a cell, contributors in index order
    owner_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(own_cell, minlength=n), out=owner_ptr[1:])
    owner_who = own_who[by_cell]
    sole = np.full(n, -1, dtype=np.int64)
    alone = np.flatnonzero(np.diff(owner_ptr) == 1)
    sole[alone] = owner_who[owner_ptr[alone]]
    s = _Structure(
        problem,
        rel_ptr,
        rel_idx,
        rel_val,
        cell_ptr,
        cell_rel,
        rank,
        np.maximum(problem.upper - problem.values, 0.0),
        np.maximum(problem.values - problem.lower, 0.0),
        insiders.contributors,
        own_ptr,
        own_cell,
        own_value,
        owner_ptr,
        owner_who,
        sole,
        np.zeros(n, dtype=bool),
        problem.epochs(),
    )
    s.stuck = _stuck_cells(s)
    return s


def _validate(problem: ProtectionProblem) -> None:
    n = problem.size
    for name in ("values", "lower", "upper", "upl", "lpl", "primary", "cost", "fixed"):
        if len(getattr(problem, name)) != n:
            raise DisclosureError(f"protection problem field '{name}' has {len(getattr(problem, name))} entries")
    clash = np.flatnonzero(problem.primary & problem.fixed)
    if len(clash):
        key = problem.keys[int(clash[0])].describe()
        raise DisclosureError(
            f"cell {key} must be suppressed but was already published in an earlier release",
            hint="a published figure cannot be withdrawn; review the override or the earlier release",
        )


def _stuck_cells(s: _Structure) -> np.ndarray:
    """Cells in a relation whose every other cell is fixed: if hidden, an attacker subtracts them out."""
    fixed = s.problem.fixed
    free_per_rel = np.add.reduceat((~fixed[s.rel_idx]).astype(np.int64), s.rel_ptr[:-1]) if len(s.rel_idx) else []
    stuck = np.zeros(s.problem.size, dtype=bool)
    for r in np.flatnonzero(np.asarray(free_per_rel) == 1):
        cells = s.cells_of(int(r))
        stuck[cells[~fixed[cells]]] = True
    return stuck


# ------------------------------------------------------------------------------------------ attackers


@dataclass
class _Attack:
    """One unmet protection requirement, with what is needed to build its cut."""

    cell: int
    attacker: int  # -1 = outsider, else contributor index
    sign: int  # +1: upper protection, -1: lower protection
    value: float  # how far the attacker can move the cell in that direction
    required: float
    rel_ids: np.ndarray  # relations of the attacker LP
    duals: np.ndarray  # their dual values


def _attacker_rooms(s: _Structure, attacker: int, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far each of `cells` may move up / down for this attacker (insiders know their own figures)."""
    up, down = s.up_room[cells].copy(), s.down_room[cells].copy()
    if attacker < 0:
        return up, down
    has, amount = s.own_at(attacker, cells)
    lower, values = s.problem.lower[cells], s.problem.values[cells]
    # it knows its own share, not whether it is alone: the rest of the cell is non-negative
    down = np.where(has, np.maximum(0.0, values - np.maximum(lower, amount)), down)
    return up, down


def _requirement(s: _Structure, p: int, sign: int, up_p: float, down_p: float, attacker: int) -> float:
    # Reaching the outsider's a-priori bound is full protection (as in aggregator.disclosure.audit); an
    # attacker whose prior knowledge keeps it from the requirement needs only what it could reach before.
    base = min(s.problem.upl[p], up_p) if sign > 0 else min(s.problem.lpl[p], down_p)
    return float(min(base, s.caps.get((attacker, p, sign), math.inf)))


def _prior_reach(s: _Structure, attacker: int, p: int, sign: int) -> float:
    """How far the attacker can move cell p with every cell hidden but those published before p's release."""
    epoch = int(s.epoch[p])
    if epoch not in s.prior_groups:
        unknown = ~(s.problem.fixed & (s.epoch < epoch))
        s.prior_groups[epoch] = {int(c): group for group in _components(s, unknown) for c in group.tolist()}
    group = s.prior_groups[epoch].get(p, np.array([p], dtype=np.int64))
    up, down = _attacker_rooms(s, attacker, group)
    return _AttackerLP(s, group, up, -down).solve(p, sign)[0]


def _cap_at_prior_reach(s: _Structure, a: _Attack) -> bool:
    """Lower an unreachable requirement to the attacker's prior reach; False when it was reachable.

    With nothing published before, only an insider's requirement capped at a bound is relaxed (as in the
    audit): the outsider's is capped at the bounds already."""
    p = a.cell
    if not (s.problem.fixed & (s.epoch < s.epoch[p])).any():
        room = s.up_room[p] if a.sign > 0 else s.down_room[p]
        if a.attacker < 0 or a.required < room - _tolerance(room):
            return False
    reach = _prior_reach(s, a.attacker, a.cell, a.sign)
    if reach >= a.required - _tolerance(a.required):
        return False
    # a hair below the reach, so that hiding every free cell meets it despite rounding
    s.caps[(a.attacker, a.cell, a.sign)] = max(0.0, reach - _tolerance(reach))
    return True


def _tolerance(required: float) -> float:
    return _ABS_TOL * max(1.0, abs(required))


class _AttackerLP:
    """The attacker's LP over one group of hidden cells: variables are the moves z_i = y_i - a_i."""

    def __init__(self, s: _Structure, cells: np.ndarray, hi: np.ndarray, lo: np.ndarray):
        self.cells = cells
        self.local = dict(zip(cells.tolist(), range(len(cells)), strict=True))
        self.rel_ids = np.unique(s.cell_rel[_spans(s.cell_ptr, cells)])
        start, index, value = _rows_over(s, self.rel_ids, cells)
        self.h = _new_highs()
        self.h.setOptionValue("presolve", "off")  # keep the basis between targets (warm starts)
        m = len(self.rel_ids)
        _pass_lp(self.h, np.zeros(len(cells)), lo, hi, np.zeros(m), np.zeros(m), start, index, value)
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


def _spans(ptr: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Positions ptr[i]..ptr[i+1]-1 of every i in items, concatenated in that order (a CSR gather)."""
    starts, stops = ptr[items], ptr[items + 1]
    lengths = stops - starts
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(int(lengths.sum()))


def _rows_over(s: _Structure, rel_ids: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR rows (start, local column, coefficient) of relations `rel_ids` restricted to `cells`, entries in
    relation order."""
    pos = _spans(s.rel_ptr, rel_ids)
    row = np.repeat(np.arange(len(rel_ids)), s.rel_ptr[rel_ids + 1] - s.rel_ptr[rel_ids])
    order = np.argsort(cells, kind="stable")
    at = np.minimum(np.searchsorted(cells, s.rel_idx[pos], sorter=order), len(cells) - 1)
    inside = cells[order[at]] == s.rel_idx[pos] if len(cells) else np.zeros(len(pos), dtype=bool)
    start = np.zeros(len(rel_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row[inside], minlength=len(rel_ids)), out=start[1:])
    return start, order[at[inside]], s.rel_val[pos][inside]


def _components(s: _Structure, hidden: np.ndarray) -> list[np.ndarray]:
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


def _find_attacks(s: _Structure, x: np.ndarray, insiders: bool = True, only: np.ndarray | None = None) -> list[_Attack]:
    """Every unmet requirement for pattern x (0/1, or fractional inside the cut loop of the LP bound).

    only: restrict the targets to these primary cells (those the audit module found wanting).
    """
    hidden = x > 1e-9
    targets = hidden & s.problem.primary
    if only is not None:
        targets &= only
    attacks: list[_Attack] = []
    for comp in _components(s, hidden):
        prim = comp[targets[comp]]
        if len(prim) == 0:
            continue
        prim = prim[np.argsort(s.rank[prim], kind="stable")]
        attacks += _attack_component(s, comp, prim, x, insiders)
    return attacks


def _attack_component(s, comp, prim, x, insiders) -> list[_Attack]:
    attacks: list[_Attack] = []
    up, down = _attacker_rooms(s, -1, comp)
    scale = x[comp]
    lp = _AttackerLP(s, comp, up * scale, -down * scale)
    points: list[np.ndarray] = []  # feasible moves found so far: certificates for other targets
    witnessed: list[tuple[int, int, int, float]] = []  # (p, sign, point, gain) of each outsider pass
    for p, sign in itertools.product(prim.tolist(), (1, -1)):
        k = lp.local[p]
        req = _requirement(s, p, sign, up[k], down[k], -1)
        if req <= _tolerance(req):
            continue
        w = _witness(points, k, sign, req)
        if w is None:
            value, z, duals = lp.solve(p, sign)
            points.append(z.copy())
            if value < req - _tolerance(req):
                attacks.append(_Attack(p, -1, sign, value, req, lp.rel_ids, duals))
                continue
            w = len(points) - 1
        witnessed.append((p, sign, w, sign * float(points[w][k])))
    if insiders and witnessed:
        attacks += _insider_attacks(s, comp, x, np.array(points), witnessed)
    return attacks


def _witness(points: list[np.ndarray], k: int, sign: int, req: float) -> int | None:
    for w, z in enumerate(points):
        if sign * z[k] >= req - _tolerance(req):
            return w
    return None


def _insider_attacks(s, comp, x, points, witnessed) -> list[_Attack]:
    """Each contributor with a record in a hidden cell of this group attacks with its own figures known."""
    involved = np.unique(s.owner_who[_spans(s.owner_ptr, comp)]).tolist()
    attacks: list[_Attack] = []
    for c in involved:
        attacks += _one_insider(s, c, comp, x, points, witnessed)
    return attacks


def _one_insider(s, c: int, comp: np.ndarray, x, points, witnessed) -> list[_Attack]:
    """An outsider's move shrunk towards zero until it respects what the insider knows is still a move the
    insider cannot exclude; only the targets such moves leave short need the insider's own LP."""
    known = _positions_held(comp, s.own_cells(c))
    up_k, down_k = _attacker_rooms(s, c, comp[known])
    scale = x[comp[known]]
    shrink = _shrink_factors(points[:, known], up_k * scale, -down_k * scale)
    lp: _AttackerLP | None = None
    mine: list[np.ndarray] = []  # the insider's own optima: certificates for its other targets
    attacks: list[_Attack] = []
    for p, sign, w, gain in witnessed:
        if s.own_at(c, np.array([p]))[1][0] != 0:
            continue  # a cell it contributes to: the primary rules' protection already models this attacker
        req = _requirement(s, p, sign, s.up_room[p], s.down_room[p], c)
        if req <= _tolerance(req) or shrink[w] * gain >= req - _tolerance(req):
            continue
        if lp is None:
            up_all, down_all = _attacker_rooms(s, c, comp)
            lp = _AttackerLP(s, comp, up_all * x[comp], -down_all * x[comp])
        elif _witness(mine, lp.local[p], sign, req) is not None:
            continue
        value, z, duals = lp.solve(p, sign)
        mine.append(z)
        if value < req - _tolerance(req):
            attacks.append(_Attack(p, c, sign, value, req, lp.rel_ids, duals))
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


# ------------------------------------------------------------------------------------------------ cuts


@dataclass
class _Cut:
    cells: np.ndarray
    coefs: np.ndarray
    rhs: float
    cell: int  # the primary cell it protects


def _cut_from_attack(s: _Structure, a: _Attack, x: np.ndarray) -> _Cut:
    """Benders cut sum_i (r+_i * up_i + r-_i * down_i) x_i >= required, r = sign*e_p - M^T lambda.

    Valid for every pattern by weak duality of the attacker LP; HiGHS's dual sign convention is not relied
    on: both signs of lambda give valid cuts, and we keep the one violated by the current pattern.
    """
    best: _Cut | None = None
    best_slack = math.inf
    for lam_sign in (1.0, -1.0):
        cut = _cut_for_multipliers(s, a, lam_sign * a.duals)
        slack = float(cut.coefs @ x[cut.cells]) - cut.rhs
        if slack < best_slack:
            best, best_slack = cut, slack
    assert best is not None
    return best


def _cut_for_multipliers(s, a: _Attack, lam) -> _Cut:
    used = np.abs(lam) >= 1e-12
    rel_ids, mult = a.rel_ids[used], lam[used]
    pos = _spans(s.rel_ptr, rel_ids)
    entry_cells = np.concatenate(([a.cell], s.rel_idx[pos]))
    lengths = s.rel_ptr[rel_ids + 1] - s.rel_ptr[rel_ids]
    terms = np.concatenate(([float(a.sign)], -np.repeat(mult, lengths) * s.rel_val[pos]))
    # r = sign*e_p - M^T lambda, summed in entry order (np.add.at is unbuffered and sequential)
    touched, where = np.unique(entry_cells, return_inverse=True)
    r = np.zeros(len(touched))
    np.add.at(r, where, terms)
    ups, downs = _attacker_rooms(s, a.attacker, touched)
    coef = np.where(r > 0, r * ups, -r * downs)
    is_p = touched == a.cell
    rhs = a.required - float(coef[is_p].sum())  # x_p = 1 for a primary cell
    keep = ~is_p & (coef > 1e-9 * max(1.0, a.required)) & ~s.problem.fixed[touched]
    coefs_arr = np.minimum(coef[keep], max(rhs, 0.0))  # x is binary: cap at the rhs
    return _Cut(touched[keep].astype(np.int64), coefs_arr, rhs, a.cell)


def _raise_unprotectable(s: _Structure, cut: _Cut, attack: _Attack) -> None:
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


# ------------------------------------------------------------------------------------------------ fast


class _Pattern:
    """A growing pattern with per-relation hidden counts (the greedy step's bookkeeping)."""

    def __init__(self, s: _Structure, hidden: np.ndarray):
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


def _per_relation(ufunc, s: _Structure, per_cell: np.ndarray, empty, gathered: bool = False) -> np.ndarray:
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
            if not _needs_partner(s.problem, h):
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


def _repair(pat: _Pattern, cuts: list[_Cut]) -> list[int]:
    """Hide the cheapest cells (per unit of protection they add) until each violated cut is met."""
    s, cost = pat.s, pat.s.problem.cost
    added: list[int] = []
    for cut in cuts:
        have = float(cut.coefs @ pat.hidden[cut.cells])
        if have >= cut.rhs - _tolerance(cut.rhs):
            continue
        ok = pat.free[cut.cells] & ~pat.hidden[cut.cells]
        cells, coefs = cut.cells[ok], cut.coefs[ok]
        need = cut.rhs - have
        order = sorted(range(len(cells)), key=lambda k: (cost[cells[k]] / min(coefs[k], need), s.rank[cells[k]]))
        for k in order:
            if have >= cut.rhs - _tolerance(cut.rhs):
                break
            pat.hide(int(cells[k]))
            added.append(int(cells[k]))
            have += coefs[k]
    return added


def _fast(s: _Structure) -> tuple[np.ndarray, int]:
    pat = _Pattern(s, s.problem.primary.astype(bool))
    _close_pattern(pat, list(np.flatnonzero(pat.hidden)))
    for rounds in range(1, _MAX_REPAIR_ROUNDS + 1):
        attacks = _attacks_on_pattern(s, pat.hidden)
        if not attacks:
            return pat.hidden, rounds
        cuts, capped = _feasible_cuts(s, attacks, pat.hidden.astype(float))
        added = _repair(pat, cuts)
        if not added and not capped:
            break
        _close_pattern(pat, added)
    raise DisclosureError(
        f"no safe suppression pattern found after {_MAX_REPAIR_ROUNDS} repair rounds",
        hint="try method='optimal' or merge small categories",
    )


# --------------------------------------------------------------------------------------------- optimal


class _Master:
    """The 0/1 master problem: min cost.x subject to the partner rows and the cuts found so far."""

    def __init__(self, s: _Structure):
        self.s = s
        p = s.problem
        n = p.size
        # primary cells are hidden anyway: the objective is the secondary cost (plus a tie-breaking charge)
        self.cost = np.where(p.primary, 0.0, p.cost.astype(float) + _tie_weight(p.cost))
        self.lower = p.primary.astype(float)
        self.upper = np.where(p.fixed | (s.stuck & ~p.primary), 0.0, 1.0)
        self.rows: list[tuple[np.ndarray, np.ndarray, float]] = _partner_rows(s)
        self.n = n

    def add(self, cuts: list[_Cut]) -> None:
        for c in cuts:
            self.rows.append((c.cells, c.coefs, c.rhs))

    def solve(self, integer: bool, start: np.ndarray | None = None) -> tuple[np.ndarray, float, bool]:
        h = _new_highs()
        start_ptr, index, value, lo = [0], [], [], []
        for cells, coefs, rhs in self.rows:
            index += list(cells)
            value += list(coefs)
            start_ptr.append(len(index))
            lo.append(rhs)
        m = len(lo)
        row_hi = np.full(m, highspy.kHighsInf)
        _pass_lp(h, self.cost, self.lower, self.upper, lo, row_hi, start_ptr, index, value, integer=integer)
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
        info = h.getInfo()
        bound = float(info.mip_dual_bound) if integer else float(info.objective_function_value)
        proven = status == highspy.HighsModelStatus.kOptimal
        if integer:
            x = np.round(x)
        return np.clip(x, 0.0, 1.0), bound, proven


def _tie_weight(cost: np.ndarray) -> float:
    """A tiny per-cell charge so that among equally cheap patterns the one with fewer cells wins."""
    return 1e-7 * max(1.0, float(np.abs(cost).max(initial=0.0)))


def _needs_partner(problem: ProtectionProblem, h: int) -> bool:
    """A hidden cell that is alone in a relation is found by subtraction. That matters for a cell that needs
    protection or that is meant to protect another (secondary); not for a helper cell (primary with no
    requirement, e.g. the overlap of company counts), which is never published and may well be derivable."""
    return not (problem.primary[h] and problem.upl[h] <= 0 and problem.lpl[h] <= 0)


def _partner_rows(s: _Structure) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """x_h <= sum of the other cells of each relation of h (a lone hidden cell is found by subtraction)."""
    rows = []
    n_rel = len(s.rel_ptr) - 1
    for r in range(n_rel):
        cells = s.cells_of(r)
        for h in cells:
            if not _needs_partner(s.problem, h):
                continue
            others = cells[cells != h]
            rows.append((np.append(others, h), np.append(np.ones(len(others)), -1.0), 0.0))
    return rows


def _attacks_on_pattern(s: _Structure, hidden: np.ndarray) -> list[_Attack]:
    """Attacks on a 0/1 pattern: the audit module (when present) says which cells fail, we find the cuts."""
    failing = _audit_failing_cells(s.problem, hidden, s.audit_cache)
    if failing is not None and not failing.any():
        return []
    attacks = _find_attacks(s, hidden.astype(float), only=failing)
    if failing is not None and not attacks:
        # the audit and our check disagree (tolerances): check every cell before giving up
        attacks = _find_attacks(s, hidden.astype(float))
    return attacks


def _audit_failing_cells(problem: ProtectionProblem, hidden: np.ndarray, cache: dict) -> np.ndarray | None:
    try:
        from aggregator.disclosure.audit import audit
    except ImportError:
        return None
    failing = np.zeros(problem.size, dtype=bool)
    for cell, *_ in audit(problem, hidden, cache=cache, verdict_only=True).failures:
        failing[cell] = True
    return failing & problem.primary


def _feasible_cuts(s: _Structure, attacks: list[_Attack], x: np.ndarray) -> tuple[list[_Cut], bool]:
    """Cuts for the attacks; a requirement no pattern can meet is capped at the attacker's prior reach
    (True in the second place: attack again) or, when prior knowledge does not explain it, refused."""
    cuts, capped = [], False
    for a in attacks:
        cut = _cut_from_attack(s, a, x)
        if float(cut.coefs.sum()) >= cut.rhs - _tolerance(cut.rhs):
            cuts.append(cut)
        elif _cap_at_prior_reach(s, a):
            capped = True
        else:
            _raise_unprotectable(s, cut, a)
    return cuts, capped


def _separate(s: _Structure, x: np.ndarray, insiders: bool = True, integral: bool = False) -> list[_Cut]:
    capped = True
    while capped:  # attack again with the capped requirements
        attacks = _attacks_on_pattern(s, x > 0.5) if integral else _find_attacks(s, x, insiders)
        cuts, capped = _feasible_cuts(s, attacks, x)
    return [c for c in cuts if float(c.coefs @ x[c.cells]) < c.rhs - _tolerance(c.rhs)]


def _lp_cut_loop(s: _Structure, master: _Master, deadline: float | None = None) -> tuple[float, int]:
    """Strengthen the master with cuts separated at fractional LP points; returns the LP bound.

    Only the benchmark's lp_lower_bound passes a deadline: a pattern must never depend on timing."""
    bound = -math.inf
    for rounds in range(1, _LP_CUT_ROUNDS + 1):
        x, bound, _ = master.solve(integer=False)
        cuts = _separate(s, x)
        if not cuts or (deadline is not None and time.monotonic() > deadline):
            return bound, rounds
        master.add(cuts)
    return bound, _LP_CUT_ROUNDS


class _RoundsUp(Exception):
    """The exact model needed more cut rounds than allowed: a deterministic reason to keep the fast pattern."""


def _optimal(s: _Structure, deadline: float, start: np.ndarray) -> tuple[np.ndarray, float, bool, int]:
    master = _Master(s)
    _, rounds = _lp_cut_loop(s, master)
    for _ in range(_MAX_MIP_ROUNDS):
        if time.monotonic() > deadline:
            raise DisclosureError(
                f"the optimal suppression model did not finish within the time limit ({s.problem.size} cells)",
                hint='set suppression = "fast" in the protocol for tables this large',
            )
        rounds += 1
        # the fast pattern is safe, so it satisfies every cut: a valid incumbent for each re-solve
        x, bound, proven = master.solve(integer=True, start=start.astype(float))
        cuts = _separate(s, x, integral=True)
        if not cuts:
            return x > 0.5, bound, proven, rounds
        master.add(cuts)
    raise _RoundsUp


# ---------------------------------------------------------------------------------------------- public


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
    s = _build_structure(problem)
    if method == "auto":
        method = "optimal" if problem.size <= AUTO_OPTIMAL_MAX_CELLS else "fast"
    fast_hidden, fast_rounds = _fast(s)
    hidden, bound, proven, rounds, used = fast_hidden, math.nan, False, fast_rounds, "fast"
    if method == "optimal" and problem.primary.any():
        try:
            hidden, bound, proven, rounds = _optimal(s, deadline, fast_hidden)
            used = "optimal"
        except _RoundsUp:
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
    problem: ProtectionProblem, hidden: np.ndarray, cache: dict, report: bool = True
) -> tuple[np.ndarray, AuditResult | None]:
    """The independent audit module, when present, has the last word on the pattern.

    report: return the full audit (every hidden cell's interval); else only its verdict is checked (the
    verdict is the same, and None is returned as the audit).
    """
    try:
        from aggregator.disclosure.audit import audit
    except ImportError:
        return hidden, None
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
    s = _build_structure(problem)
    out = []
    for a in _find_attacks(s, np.asarray(suppressed, dtype=float), insiders):
        who = "outsider" if a.attacker < 0 else s.contributors[a.attacker]
        out.append((a.cell, who, "up" if a.sign > 0 else "down", a.value, a.required))
    return out


def lp_lower_bound(problem: ProtectionProblem, *, time_limit: float = 60.0) -> float:
    """Lower bound on the secondary cost: the LP relaxation of the master with the cuts it separates."""
    s = _build_structure(problem)
    if not problem.primary.any():
        return 0.0
    master = _Master(s)
    bound, _ = _lp_cut_loop(s, master, time.monotonic() + time_limit)
    return _secondary_bound(bound, problem)


def _secondary_bound(master_bound: float, problem: ProtectionProblem) -> float:
    """The master's bound minus the most the tie-breaking charge can add: a bound on the secondary cost."""
    return max(0.0, master_bound - _tie_weight(problem.cost) * problem.size)
