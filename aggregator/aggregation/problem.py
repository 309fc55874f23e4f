"""One release as one protection problem: all components' cells over distinct keys, with every relation.

Linked tables share cells through their canonical keys (same template, measure and filters): a shared key
is one cell of the problem, primary when any table finds it unsafe, with the largest protection asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import pandas as pd

from aggregator.disclosure.model import PrimaryResult, ProtectionProblem
from aggregator.errors import AggregatorError

from .cells import TableCells
from .query import registered

COSTS = ("value", "contributors", "unity")


class InconsistentCells(AggregatorError):
    """Two tables give one shared cell different values: they were built from different data."""


def build_problem(
    components: list[TableCells],
    primaries: list[PrimaryResult],
    *,
    cost: str,
    apriori_upper_factor: float,
    insider_contributions: dict[str, dict[str, float]],
    fixed_keys: frozenset[str] = frozenset(),
) -> tuple[ProtectionProblem, dict[str, int]]:
    """Merge the components of a release (primaries[i] belongs to components[i]) into one problem.

    Returns the problem and key -> cell index. Cells are ordered by key, so the result does not depend on
    the order of the tables. `fixed_keys` are cells already published (never to be suppressed).
    A-priori bounds: [0, factor x the largest |value| of the same measure]; a measure with negative
    contributions gets the symmetric lower bound -upper. Helper cells of non-additive tables (see
    AuxRelation) are hidden (primary) and need no protection.
    """
    if cost not in COSTS:
        raise AggregatorError(f"unknown cost '{cost}'", hint=f"use one of {', '.join(COSTS)}")
    if len(components) != len(primaries):
        raise ValueError("one PrimaryResult per component is needed")
    cells = _collect_cells(components, primaries)
    keys = sorted(cells)
    index = {key: i for i, key in enumerate(keys)}
    relations = sorted(
        {
            (index[c.keys[t]], tuple(sorted(index[c.keys[p]] for p in parts)))
            for c in components
            for t, parts in c.relations
        }
        | {rel for c in components for rel in _aux_problem_relations(c, index)}
    )
    upper, lower = _bounds(components, keys, cells, apriori_upper_factor)
    column = {name: np.array([cells[k][name] for k in keys]) for name in ("value", "upl", "lpl")}
    problem = ProtectionProblem(
        keys=keys,
        values=column["value"].astype(float),
        relations=relations,
        lower=lower,
        upper=upper,
        upl=column["upl"].astype(float),
        lpl=column["lpl"].astype(float),
        primary=np.array([cells[k]["primary"] for k in keys], dtype=bool),
        cost=np.array([_cost(cells[k], cost) for k in keys], dtype=float),
        fixed=np.array([k in fixed_keys for k in keys], dtype=bool),
        insiders={
            who: {index[k]: float(v) for k, v in sorted(own.items()) if k in index}
            for who, own in sorted(insider_contributions.items())
        },
    )
    return problem, index


def _collect_cells(components: list[TableCells], primaries: list[PrimaryResult]) -> dict[str, dict]:
    cells: dict[str, dict] = {}
    for comp, primary in zip(components, primaries, strict=True):
        values = comp.stats.total
        weights = margin_weights(comp)
        for i, key in enumerate(comp.keys):
            _merge(cells, key, comp, values[i], bool(primary.unsafe[i]), primary.upl[i], primary.lpl[i])
            cells[key]["n_all"] = max(cells[key]["n_all"], int(comp.stats.n_all[i]))
            cells[key]["weight"] = max(cells[key].get("weight", 1.0), float(weights[i]))
        for aux in comp.aux:
            pairs = float(values[list(aux.parts)].sum())
            _merge(cells, aux.sum_key, comp, pairs, True, 0.0, 0.0)
            _merge(cells, aux.overlap_key, comp, pairs - float(values[aux.total]), True, 0.0, 0.0)
            for part, gap in zip(aux.parts, aux.gap_keys, strict=True):
                _merge(cells, gap, comp, float(values[aux.total] - values[part]), True, 0.0, 0.0)
    return cells


def _merge(cells: dict, key: str, comp: TableCells, value: float, primary: bool, upl, lpl) -> None:
    cell = cells.get(key)
    if cell is None:
        cells[key] = {"value": value, "primary": primary, "upl": float(upl), "lpl": float(lpl)}
        cells[key] |= {"n_all": 0, "scale": comp.quantity, "aux": key.is_helper}
        return
    if not np.isclose(cell["value"], value, rtol=1e-9, atol=1e-9):
        raise InconsistentCells(
            f"cell {key} is {cell['value']:g} in one table and {value:g} in {comp.table_id}",
            hint="build every table of a release from the same store and period",
        )
    cell["primary"] |= primary
    cell["upl"], cell["lpl"] = max(cell["upl"], float(upl)), max(cell["lpl"], float(lpl))


def _aux_problem_relations(comp: TableCells, index: dict[str, int]):
    for aux in comp.aux:
        pairs = index[aux.sum_key]
        yield (pairs, tuple(sorted(index[comp.keys[p]] for p in aux.parts)))
        yield (pairs, tuple(sorted((index[comp.keys[aux.total]], index[aux.overlap_key]))))
        for part, gap in zip(aux.parts, aux.gap_keys, strict=True):
            yield (index[comp.keys[aux.total]], tuple(sorted((index[comp.keys[part]], index[gap]))))


def _bounds(components, keys, cells, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per measure scale: upper = factor x max |value|; helper sums may reach the sum of their parts."""
    largest: dict[str, float] = {}
    negative: dict[str, bool] = {}
    widest_aux: dict[str, int] = {}
    for comp in components:
        scale = comp.quantity
        biggest = float(np.abs(comp.stats.total).max()) if len(comp) else 0.0
        largest[scale] = max(largest.get(scale, 0.0), biggest)
        negative[scale] = negative.get(scale, False) or bool(comp.stats.has_negative.any())
        widest_aux[scale] = max([widest_aux.get(scale, 1), *(len(a.parts) for a in comp.aux)])
    upper = np.empty(len(keys))
    lower = np.zeros(len(keys))
    for i, key in enumerate(keys):
        scale = cells[key]["scale"]
        bound = factor * max(largest[scale], 1.0)
        upper[i] = bound * widest_aux[scale] if cells[key]["aux"] else bound
        if negative[scale]:
            lower[i] = -upper[i]
    return upper, lower


def margin_weights(comp: TableCells) -> np.ndarray:
    """1 for an inner cell, +1 for every hierarchy level a cell sits above the leaves, per dimension.

    Totals and subtotals are what readers look at first, so hiding them costs more: with equal values a
    leaf is hidden before its region, and the grand total last."""
    frame = comp.frame
    weight = np.ones(len(frame))
    for dim in comp.dimensions:
        depth = frame[f"{dim.column}_depth"].to_numpy(dtype=float)
        weight += depth.max(initial=0.0) - depth
    return weight


def _cost(cell: dict, cost: str) -> float:
    if cell["aux"]:
        return 0.0  # helper cells are always hidden; hiding them costs nothing
    weight = cell.get("weight", 1.0)
    if cost == "value":
        return (abs(cell["value"]) + 1.0) * weight  # +1 so that hiding a zero cell is not free
    if cost == "contributors":
        return float(max(cell["n_all"], 1)) * weight
    return weight


# ------------------------------------------------------------------------------------------- insiders
# Every contributor's own contributions can be millions of (contributor, cell) records (10,000 companies give
# ~11 million): they are computed as columns (numpy arrays) and turned into per-contributor dicts only at the
# end, in one pass per contributor, instead of one Python step per record.


@dataclass(frozen=True)
class ContributionRecords:
    """Contributors' own contributions as columns: record r is contributor `names[who[r]]`'s own summed
    contribution `value[r]` to the cell `keys[key[r]]` (a cell or a helper cell of one component).

    Within one component a (contributor, key) pair occurs once; records are in no particular order."""

    names: np.ndarray  # contributor names (object array), sorted
    keys: list[str]
    who: np.ndarray  # int64 index into names
    key: np.ndarray  # int64 index into keys
    value: np.ndarray  # float64


def insider_contributions(
    con: duckdb.DuckDBPyConnection,
    components: Sequence[TableCells],
    primaries: Sequence[PrimaryResult],
) -> dict[str, dict[str, float]]:
    """For every contributor that is the largest in at least one primary cell: its own contribution to
    every cell (and helper cell) of the release, keyed by cell key. Computed in DuckDB, one query per
    component."""
    insiders = sorted(
        {
            comp.largest[i]
            for comp, primary in zip(components, primaries, strict=True)
            for i in np.flatnonzero(primary.unsafe)
            if comp.largest[i] is not None
        }
    )
    own: dict[str, dict[str, float]] = {who: {} for who in insiders}
    if not insiders:
        return own
    for comp in components:
        for who, contributions in _as_dicts(component_contributions(con, comp, insiders)).items():
            own[who].update(contributions)
    return own


def every_contribution(con: duckdb.DuckDBPyConnection, components: Sequence[TableCells]) -> dict[str, dict[str, float]]:
    """Every contributor's own summed contribution to every cell (and helper cell) it has a record in.

    The release history keeps this per release: it is what a change between two releases consists of, and
    what any insider knows of its own."""
    own: dict[str, dict[str, float]] = {}
    for comp in components:
        for who, contributions in _as_dicts(component_contributions(con, comp)).items():
            own.setdefault(who, {}).update(contributions)
    return own


def every_contribution_by_cell(
    con: duckdb.DuckDBPyConnection, components: Sequence[TableCells], index: Mapping[str, int], *, gaps: bool = True
) -> OwnContributions:
    """`every_contribution` keyed by cell index (`index`: key -> index; keys outside it are left out).

    Where components share a key, the later component's value counts (as dict.update would have it).
    `gaps=False` leaves out the gap helper cells' records (they follow from the others: gap_contributions)."""
    parts = [component_contributions(con, comp, gaps=gaps) for comp in components]
    names = np.unique(np.concatenate([p.names for p in parts])) if parts else np.array([], dtype=object)
    who, cell, value, cells_of_part = [], [], [], []
    for part in parts:
        cells_of_key = np.array([index.get(k, -1) for k in part.keys], dtype=np.int64)
        mine = cells_of_key[part.key]
        keep = mine >= 0
        if not keep.all():  # a key outside the problem: left out
            mine, part = mine[keep], replace(part, who=part.who[keep], key=part.key[keep], value=part.value[keep])
        who.append(np.searchsorted(names, part.names)[part.who])
        cell.append(mine)
        value.append(part.value)
        cells_of_part.append(np.unique(cells_of_key[cells_of_key >= 0]))
    records = _concat(who), _concat(cell), _concat(value, float)
    return OwnContributions(names, *_last_of_repeated_pairs(*records, cells_of_part))


def _last_of_repeated_pairs(
    who: np.ndarray, cell: np.ndarray, value: np.ndarray, cells_of_part: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop every record of a (contributor, cell) pair that a later component (the records are in component
    order) gives again. Only cells that several components share can repeat, so only their records are sorted."""
    every = _concat(cells_of_part)
    distinct, count = np.unique(every, return_counts=True)
    shared_cells = distinct[count > 1]
    if not len(shared_cells):
        return who, cell, value
    shared = np.flatnonzero(np.isin(cell, shared_cells))
    order = shared[_pair_order(who[shared], cell[shared])]  # stable: a later component's record comes later
    repeated = np.zeros(len(who), dtype=bool)
    repeated[order[:-1]] = (who[order[1:]] == who[order[:-1]]) & (cell[order[1:]] == cell[order[:-1]])
    return who[~repeated], cell[~repeated], value[~repeated]


class OwnContributions(Mapping[str, dict[int, float]]):
    """Contributor -> {cell index: own contribution}, kept as columns until a contributor's dict is read.

    Every contributor's share of every cell runs to millions of records with thousands of companies; a
    release without earlier related releases only writes them to the ledger, which takes the columns
    (`records`). The first read of a contributor builds every dict at once (cells in index order)."""

    def __init__(self, names: np.ndarray, who: np.ndarray, cell: np.ndarray, value: np.ndarray):
        self.names = names  # sorted contributor names, indexed by `who`; each (who, cell) pair occurs once
        self.who, self.cell, self.value = who, cell, value
        self._dicts: dict[str, dict[int, float]] | None = None
        self._name_set = frozenset(names.tolist())

    def records(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(who, cell, value), sorted by contributor and then by cell."""
        order = _pair_order(self.who, self.cell)
        return self.who[order], self.cell[order], self.value[order]

    def _all(self) -> dict[str, dict[int, float]]:
        if self._dicts is None:
            who, cell, value = self.records()
            split = np.searchsorted(who, np.arange(len(self.names) + 1))
            own = _split_dicts(split, cell.tolist(), value.tolist())
            self._dicts = {str(name): mine for name, mine in zip(self.names.tolist(), own, strict=True)}
        return self._dicts

    def __getitem__(self, who: str) -> dict[int, float]:
        return self._all()[who]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names.tolist())

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, who: object) -> bool:
        return who in self._name_set

    def __repr__(self) -> str:
        return f"OwnContributions({len(self.names)} contributors, {len(self.who)} records)"


def own_contributions(contributor: np.ndarray, cell: np.ndarray, value: np.ndarray) -> OwnContributions:
    """OwnContributions of records given by contributor name (each (contributor, cell) pair once)."""
    names, who = _sorted_codes(np.asarray(contributor, dtype=object))
    return OwnContributions(names, who, np.asarray(cell, dtype=np.int64), np.asarray(value, dtype=np.float64))


def component_contributions(
    con: duckdb.DuckDBPyConnection, comp: TableCells, only: Sequence[str] | None = None, *, gaps: bool = True
) -> ContributionRecords:
    """One component's contributions of every contributor (or of `only` these), with the helper cells'
    (without the gap cells' when not `gaps`)."""
    query, dims = comp.query, comp.dimensions
    assert query is not None, "TableCells built without its query"
    if comp.contribution_rows is not None:
        rows = comp.contribution_rows
        if only is not None:  # a contributor's records do not depend on whose rows are read with them
            mine = pd.Series(rows["contributor"], copy=False).isin(only).to_numpy()  # hashing: object isin sorts
            rows = {column: values[mine] for column, values in rows.items()}
    else:
        with query.inner_cells(con, only=only) as inner, registered(con, dims) as names:
            rows = con.execute(query.contributions_sql(inner, dims, names)).fetchnumpy()
    contributors, who = _sorted_codes(np.asarray(rows["contributor"], dtype=object))
    nodes = [np.asarray(rows[f"d{i}"], dtype=np.int64) for i in range(len(dims))]
    position = _cell_positions(comp, nodes, len(who))
    records = (who, position, np.asarray(rows["v"], dtype=np.float64))
    keys = list(comp.keys)
    if comp.aux:
        records, keys = _with_aux_contributions(comp, *records, keys, gaps=gaps)
    return ContributionRecords(contributors, keys, *records)


def _sorted_codes(names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct names in sorted order, each name's index in them): hashing first, then sorting only the
    distinct names, is several times faster than np.unique's sort of millions of strings."""
    codes, distinct = pd.factorize(names, use_na_sentinel=False)
    distinct = np.asarray(distinct, dtype=object)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[codes]


def _cell_positions(comp: TableCells, node_ids: list[np.ndarray], records: int) -> np.ndarray:
    """The row of comp.frame (= index into comp.keys) of each record, from its node id per dimension."""
    dims = comp.dimensions
    if not dims:
        return np.full(records, len(comp) - 1, dtype=np.int64)  # the one cell of a table without dimensions
    sizes = np.array([len(d.codes) for d in dims], dtype=np.int64)
    weights = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]])  # one number per node combination
    frame_ids = [pd.Index(d.codes).get_indexer(comp.frame[d.column]) for d in dims]
    cell_numbers = np.column_stack(frame_ids).astype(np.int64) @ weights
    record_numbers = np.column_stack(node_ids) @ weights if records else np.zeros(0, dtype=np.int64)
    by_number = np.argsort(cell_numbers, kind="stable")
    found = np.searchsorted(cell_numbers, record_numbers, sorter=by_number)
    position = by_number[np.minimum(found, len(by_number) - 1)] if len(by_number) else found
    if len(record_numbers) and not np.array_equal(cell_numbers[position], record_numbers):
        raise ValueError(f"a contribution of {comp.table_id} falls in no cell of the table")
    return position.astype(np.int64)


def _with_aux_contributions(
    comp: TableCells, who: np.ndarray, cell: np.ndarray, value: np.ndarray, keys: list[str], gaps: bool
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[str]]:
    """Add each contributor's share of the helper cells, which follows from its share of the real cells:
    sum = its contributions to the parts (when not 0), overlap = sum - its total, and (when its total is
    not 0 and `gaps`) gap_j = its total - its part j, for every part j. Helper keys are appended to `keys`."""
    n_aux, n_cells = len(comp.aux), len(comp.keys)
    sizes = np.array([len(a.parts) for a in comp.aux], dtype=np.int64)
    part_cell = np.array([p for a in comp.aux for p in a.parts], dtype=np.int64)
    sum_ids = len(keys) + np.arange(n_aux)
    overlap_ids = sum_ids + n_aux
    gap_ids = len(keys) + 2 * n_aux + np.arange(len(part_cell))
    keys = keys + [a.sum_key for a in comp.aux] + [a.overlap_key for a in comp.aux]
    keys += [g for a in comp.aux for g in a.gap_keys]
    totals = np.array([a.total for a in comp.aux], dtype=np.int64)
    width = np.int64(max(n_aux, n_cells, 1))  # contributor * width + cell (or aux): one number per pair
    own = _Lookup(who, cell, value, int(width))
    sums = _part_sums(who, cell, value, np.repeat(np.arange(n_aux), sizes), part_cell, width)
    sum_who, sum_aux, sum_value = sums
    overlap = sum_value - own.get(sum_who, totals[sum_aux])
    records = [(who, cell, value), (sum_who, sum_ids[sum_aux], sum_value), (sum_who, overlap_ids[sum_aux], overlap)]
    if gaps:
        records.append(_gaps(who, cell, value, own, totals, sizes, part_cell, gap_ids))
    return tuple(np.concatenate(column) for column in zip(*records, strict=True)), keys  # type: ignore[return-value]


def _part_sums(
    who: np.ndarray, cell: np.ndarray, value: np.ndarray, part_aux: np.ndarray, part_cell: np.ndarray, width: np.int64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(contributor, aux, sum of its records in the aux's parts) where that sum is not 0, in (contributor,
    aux) order. The records are added one by one in the order of the parts (bincount adds sequentially, and
    the records are put in part order first), as a Python sum would."""
    record, incidence = incidences(cell, part_cell)
    order = np.argsort(_narrow(incidence), kind="stable")
    pair = who[record[order]] * width + part_aux[incidence[order]]
    weights = value[record[order]]
    if len(pair) and (int(who.max()) + 1) * int(width) <= DENSE_LOOKUP_LIMIT:
        sums = np.bincount(pair, weights=weights, minlength=0)  # one bin per possible pair: no sort
        pairs = np.flatnonzero(sums)
        sums = sums[pairs]
    else:
        pairs, group = np.unique(pair, return_inverse=True)
        sums = np.bincount(group.ravel(), weights=weights, minlength=len(pairs))
        nonzero = sums != 0
        pairs, sums = pairs[nonzero], sums[nonzero]
    return pairs // width, pairs % width, sums


def incidences(cell: np.ndarray, targets: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every (record, position in targets) with cell[record] == targets[position], records in order and, per
    record, positions ascending; `keep` masks the records that take part."""
    by_target = np.argsort(targets, kind="stable")
    ptr = np.searchsorted(targets[by_target], np.arange(int(max(cell.max(initial=0), targets.max(initial=0))) + 2))
    lo, hi = ptr[cell], ptr[cell + 1]
    if keep is not None:
        hi = np.where(keep, hi, lo)
    record = np.repeat(np.arange(len(cell)), hi - lo)
    return record, by_target[_ranges(lo, hi)]


def _gaps(
    who: np.ndarray,
    cell: np.ndarray,
    value: np.ndarray,
    own: _Lookup,
    totals: np.ndarray,
    sizes: np.ndarray,
    part_cell: np.ndarray,
    gap_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(contributor, gap key, its total - its part) for every part of every aux whose total cell holds a
    non-zero record of the contributor."""
    record, aux = incidences(cell, totals, keep=value != 0)
    first_part = np.cumsum(sizes) - sizes
    part = _ranges(first_part[aux], first_part[aux] + sizes[aux])
    record = np.repeat(record, sizes[aux])
    gap_who = who[record]
    return gap_who, gap_ids[part], value[record] - own.get(gap_who, part_cell[part])


def gap_contributions(
    who: np.ndarray, cell: np.ndarray, value: np.ndarray, total: np.ndarray, part: np.ndarray, gap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gap cells' records that follow from the others: for each relation total[r] = part[r] + gap[r],
    (contributor, gap[r], its total - its part) for every contributor with a non-zero record in total[r],
    as component_contributions computes them. The records are (who, cell, value) without any gap cell's."""
    in_parts = np.isin(cell, part)
    width, rows = int(max(cell.max(initial=0), gap.max(initial=0))) + 1, int(who.max(initial=-1)) + 1
    own = _Lookup(who[in_parts], cell[in_parts], value[in_parts], width, rows)  # a contributor in no part reads 0
    return _gaps(who, cell, value, own, total, np.ones(len(total), dtype=np.int64), part, gap)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """lo[0]..hi[0]-1, lo[1]..hi[1]-1, ... as one array."""
    counts = hi - lo
    if not len(counts):
        return np.zeros(0, dtype=np.int64)
    return np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))


DENSE_LOOKUP_LIMIT = 1 << 23  # contributors x cells of one component up to which lookups use a dense table


class _Lookup:
    """A component's records by (contributor, cell); a missing pair reads 0.0 (no record: no contribution).

    A dense contributors x cells table (up to DENSE_LOOKUP_LIMIT entries) reads millions of pairs several
    times faster than a binary search; larger components fall back to one."""

    def __init__(self, who: np.ndarray, cell: np.ndarray, value: np.ndarray, width: int, rows: int | None = None):
        """`rows`: contributors that may be looked up (all of `who`'s by default)."""
        self.width = width
        rows = (int(who.max()) + 1 if len(who) else 0) if rows is None else rows
        if rows * width <= DENSE_LOOKUP_LIMIT:
            self.dense: np.ndarray | None = np.zeros(rows * width)
            self.dense[who * width + cell] = value
            return
        self.dense = None
        pairs = who * width + cell
        order = np.argsort(pairs, kind="stable")
        self.pairs, self.values = pairs[order], value[order]

    def get(self, who: np.ndarray, cell: np.ndarray) -> np.ndarray:
        pairs = who * self.width + cell
        if self.dense is not None:
            return self.dense[pairs]
        if not len(self.pairs):
            return np.zeros(len(pairs))
        at = np.minimum(np.searchsorted(self.pairs, pairs), len(self.pairs) - 1)
        return np.where(self.pairs[at] == pairs, self.values[at], 0.0)


def _as_dicts(records: ContributionRecords) -> dict[str, dict[str, float]]:
    """Contributor -> {cell key: own contribution}, contributors in name order, their keys in key order."""
    keys = np.array(records.keys, dtype=object)
    order = _pair_order(records.who, records.key)
    who, key, value = records.who[order], records.key[order], records.value[order]
    split = np.searchsorted(who, np.arange(len(records.names) + 1))
    own = _split_dicts(split, keys[key].tolist(), value.tolist())
    return {str(name): mine for name, mine in zip(records.names.tolist(), own, strict=True)}


def _pair_order(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A stable sort by (first, second) of non-negative integers: two stable passes, which numpy does as
    radix sorts when the numbers fit 16 bits (linear time: much faster than lexsort on millions)."""
    order = np.argsort(_narrow(second), kind="stable")
    return order[np.argsort(_narrow(first[order]), kind="stable")]


def _narrow(values: np.ndarray) -> np.ndarray:
    return values.astype(np.uint16) if len(values) and values.max() < 1 << 16 else values


def _split_dicts(split: np.ndarray, keys: list, values: list) -> list[dict]:
    """One dict per slice split[n]:split[n+1] of the parallel lists (slicing lists beats per-record steps)."""
    bounds = split.tolist()
    return [dict(zip(keys[a:b], values[a:b], strict=True)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _concat(arrays: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
