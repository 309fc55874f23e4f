"""Synthetic protection problems for benchmarks and tests: additive tables with hierarchies and contributors.

`table_problem` builds a ProtectionProblem from a table's inner cells (or its contributors' arrays), with every
margin and additivity relation; `merge_problems` links tables that share cells. The threshold rule is the
only primary rule here: the engine's own rules are tested in tests/test_rules.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aggregator.cellkey import CellKey, Coordinate, Quantity
from aggregator.disclosure.contributions import Contributions
from aggregator.disclosure.model import ProtectionProblem
from aggregator.errors import DisclosureError

Hierarchy = Mapping[str, Sequence["int | str"]]  # parent code -> children (leaf indices or parent codes)


def table_problem(
    values: np.ndarray | None = None,
    *,
    contributions: Mapping[str, np.ndarray] | None = None,
    hierarchies: Sequence[Hierarchy | None] | None = None,
    name: str = "t",
    dims: Sequence[str] | None = None,
    min_contributors: int = 3,
    safety_percent: float = 10.0,
    cost: str | np.ndarray = "unity",
    upper_factor: float = 1.5,
) -> ProtectionProblem:
    """A ProtectionProblem for an additive table with margins, built from its inner cells.

    values: inner cells, shape (n1, ..., nd); or leave None and give `contributions`: contributor -> array of
    that shape (0 = no record), whose sum is the table. Each dimension gets a hierarchy (parent code ->
    children, leaves are inner indices) or, when None, one total "T" over all its leaves. With contributions,
    cells with 0 < N < min_contributors are primary with UPL = safety_percent % of the value (at least 1) and
    LPL the same but at most the value; the contributors become the insiders. Keys are cells of the quantity
    `name`, leaves coded by their index.
    """
    inner = _inner_values(values, contributions)
    dims = list(dims or [f"d{k}" for k in range(inner.ndim)])
    hierarchies = list(hierarchies or [None] * inner.ndim)
    axes = [_axis(n, h, d) for n, h, d in zip(inner.shape, hierarchies, dims, strict=True)]
    total = _aggregate(inner, axes)
    shape = total.shape
    quantity = Quantity(name, "value")
    keys = [
        CellKey(quantity, [Coordinate(d, ax.codes[k]) for d, ax, k in zip(dims, axes, idx, strict=True)])
        for idx in np.ndindex(shape)
    ]
    flat = total.ravel()
    n = len(flat)
    problem = ProtectionProblem(
        keys=keys,
        values=flat.astype(float),
        relations=_table_relations(axes, shape),
        lower=np.zeros(n),
        upper=np.full(n, upper_factor * max(1.0, float(np.abs(flat).max(initial=0.0)))),
        upl=np.zeros(n),
        lpl=np.zeros(n),
        primary=np.zeros(n, dtype=bool),
        cost=np.zeros(n),
        fixed=np.zeros(n, dtype=bool),
    )
    if contributions:
        _apply_threshold_rule(problem, contributions, axes, min_contributors, safety_percent)
    problem.cost = _cost_vector(problem, cost)
    return problem


@dataclass
class _Axis:
    codes: list[str]
    leaves: np.ndarray  # (codes, n leaves) 0/1: which leaves each code adds up
    children: dict[int, list[int]]  # parent code index -> child code indices


def _inner_values(values, contributions) -> np.ndarray:
    if contributions:
        summed = sum(np.asarray(a, dtype=float) for a in contributions.values())
        if values is not None and not np.allclose(values, summed):
            raise DisclosureError("the values given do not equal the sum of the contributions")
        return np.asarray(summed, dtype=float)
    if values is None:
        raise DisclosureError("give the inner values or the contributions of the table")
    return np.asarray(values, dtype=float)


def _axis(n: int, hierarchy: Hierarchy | None, dim: str) -> _Axis:
    hierarchy = hierarchy if hierarchy is not None else {"T": list(range(n))}
    parents = list(hierarchy)
    codes = [str(k) for k in range(n)] + parents
    pos = {c: k for k, c in enumerate(codes)}
    children = {}
    for parent, kids in hierarchy.items():
        try:
            children[pos[parent]] = [pos[str(c)] for c in kids]
        except KeyError as err:
            raise DisclosureError(f"hierarchy of dimension {dim}: unknown child {err.args[0]}") from None
    leaves = np.zeros((len(codes), n))
    leaves[np.arange(n), np.arange(n)] = 1.0
    for k in _bottom_up(children, n):
        leaves[k] = leaves[children[k]].sum(axis=0)
    return _Axis(codes, leaves, children)


def _bottom_up(children: dict[int, list[int]], n: int) -> list[int]:
    """Parent codes ordered so that every parent comes after its children."""
    done, order = set(range(n)), []
    pending = dict(children)
    while pending:
        ready = sorted(k for k, kids in pending.items() if all(c in done for c in kids))
        if not ready:
            raise DisclosureError("a hierarchy has a cycle or a parent without leaves")
        for k in ready:
            order.append(k)
            done.add(k)
            del pending[k]
    return order


def _aggregate(inner: np.ndarray, axes: Sequence[_Axis]) -> np.ndarray:
    table = inner
    for d, ax in enumerate(axes):
        table = np.moveaxis(np.tensordot(ax.leaves, table, axes=(1, d)), 0, d)
    return table


def _table_relations(axes: Sequence[_Axis], shape: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    grid = np.arange(int(np.prod(shape))).reshape(shape)
    relations = []
    for d, ax in enumerate(axes):
        for parent, kids in sorted(ax.children.items()):
            totals = np.take(grid, parent, axis=d).ravel().tolist()
            parts = zip(*(np.take(grid, c, axis=d).ravel().tolist() for c in kids), strict=True)
            relations += [(t, tuple(q)) for t, q in zip(totals, parts, strict=True)]
    return relations


def _apply_threshold_rule(problem, contributions, axes, min_contributors, safety_percent) -> None:
    names = sorted(contributions)
    own = [_aggregate(np.asarray(contributions[c], dtype=float), axes).ravel() for c in names]
    present = [_aggregate((np.asarray(contributions[c]) != 0).astype(float), axes).ravel() > 0 for c in names]
    n_contrib = np.sum(present, axis=0)
    unsafe = (n_contrib > 0) & (n_contrib < min_contributors)
    upl = np.maximum(1.0, safety_percent / 100.0 * np.abs(problem.values))
    problem.primary = unsafe
    problem.upl = np.where(unsafe, upl, 0.0)
    problem.lpl = np.where(unsafe, np.minimum(upl, problem.values - problem.lower), 0.0)
    problem.insiders = Contributions.of(
        {c: {int(i): float(v[i]) for i in np.flatnonzero(m)} for c, v, m in zip(names, own, present, strict=True)}
    )


def _cost_vector(problem: ProtectionProblem, cost: str | np.ndarray) -> np.ndarray:
    if not isinstance(cost, str):
        return np.asarray(cost, dtype=float)
    if cost == "unity":
        return np.ones(problem.size)
    if cost == "value":
        return np.abs(problem.values).astype(float)
    if cost == "contributors":
        return np.bincount(problem.insiders.cell, minlength=problem.size).astype(float)
    raise DisclosureError(f"unknown cost function '{cost}'", hint="use 'unity', 'value' or 'contributors'")


def merge_problems(
    problems: Sequence[ProtectionProblem], same: Mapping[CellKey, CellKey] | None = None
) -> ProtectionProblem:
    """Linked tables as one problem: cells with the same key (after renaming by `same`) become one cell; their
    release epochs (when any table has them) are kept."""
    same = same or {}
    index: dict[CellKey, int] = {}
    keys: list[CellKey] = []
    where: list[np.ndarray] = []
    for prob in problems:
        pos = []
        for key in prob.keys:
            key = same.get(key, key)
            if key not in index:
                index[key] = len(keys)
                keys.append(key)
            pos.append(index[key])
        where.append(np.array(pos, dtype=np.int64))
    merged = _empty_like(keys)
    own: dict[str, dict[int, float]] = {}
    for prob, pos in zip(problems, where, strict=True):
        _merge_into(merged, prob, pos)
        for who, cells in prob.insiders.as_dict().items():
            own.setdefault(who, {}).update({int(pos[i]): v for i, v in cells.items()})
    merged.insiders = Contributions.of(own)
    if any(prob.epoch is not None for prob in problems):  # a cell shared by two tables became known once
        merged.epoch = np.zeros(len(keys), dtype=np.int64)
        for prob, pos in zip(problems, where, strict=True):
            merged.epoch[pos] = prob.epochs()
    return merged


def _empty_like(keys: list[CellKey]) -> ProtectionProblem:
    n = len(keys)
    return ProtectionProblem(
        keys=keys,
        values=np.full(n, np.nan),
        relations=[],
        lower=np.full(n, -np.inf),
        upper=np.full(n, np.inf),
        upl=np.zeros(n),
        lpl=np.zeros(n),
        primary=np.zeros(n, dtype=bool),
        cost=np.zeros(n),
        fixed=np.zeros(n, dtype=bool),
    )


def _merge_into(m: ProtectionProblem, prob: ProtectionProblem, pos: np.ndarray) -> None:
    known = ~np.isnan(m.values[pos])
    if np.any(known & ~np.isclose(m.values[pos], prob.values, equal_nan=False)):
        bad = m.keys[int(pos[known & ~np.isclose(m.values[pos], prob.values)][0])]
        raise DisclosureError(f"linked tables disagree on the value of cell {bad}")
    m.values[pos] = prob.values
    m.lower[pos] = np.maximum(m.lower[pos], prob.lower)
    m.upper[pos] = np.minimum(m.upper[pos], prob.upper)
    m.upl[pos] = np.maximum(m.upl[pos], prob.upl)
    m.lpl[pos] = np.maximum(m.lpl[pos], prob.lpl)
    m.primary[pos] |= prob.primary
    m.fixed[pos] |= prob.fixed
    m.cost[pos] = np.maximum(m.cost[pos], prob.cost)
    m.relations += [(int(pos[t]), tuple(int(pos[q]) for q in parts)) for t, parts in prob.relations]
