"""The protection problem as flat arrays: cells, relations, each contributor's own contributions and the
room every attacker may assume around a cell (docs/suppression.md)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from aggregator.disclosure.model import ProtectionProblem
from aggregator.errors import DisclosureError


@dataclass
class Structure:
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
    prior_groups: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)  # epoch -> cell -> group
    prior_caps: dict[tuple[int, int, int], float] = field(default_factory=dict)  # see attack.prior_cap
    published_before: dict[int, bool] = field(default_factory=dict)  # epoch -> any cell published earlier

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


def build_structure(problem: ProtectionProblem) -> Structure:
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
    s = Structure(
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


def _stuck_cells(s: Structure) -> np.ndarray:
    """Cells in a relation whose every other cell is fixed: if hidden, an attacker subtracts them out."""
    fixed = s.problem.fixed
    free_per_rel = np.add.reduceat((~fixed[s.rel_idx]).astype(np.int64), s.rel_ptr[:-1]) if len(s.rel_idx) else []
    stuck = np.zeros(s.problem.size, dtype=bool)
    for r in np.flatnonzero(np.asarray(free_per_rel) == 1):
        cells = s.cells_of(int(r))
        stuck[cells[~fixed[cells]]] = True
    return stuck
