"""Contributors' own contributions to the cells of a release, computed as columns (`Contributions`).

Every contributor's share of every cell runs to millions of records with thousands of companies (10,000
companies give ~11 million), so they are computed with numpy, never one record at a time. The helper cells
of company counts get records too: a contributor's share of them follows from its share of the real cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from aggregator.cellkey import CellKey
from aggregator.disclosure.contributions import Contributions, pair_order, stable_order
from aggregator.disclosure.model import PrimaryResult
from aggregator.store import RowSource

from .cells import TableCells
from .query import registered


def insiders_of(components: Sequence[TableCells], primaries: Sequence[PrimaryResult]) -> list[str]:
    """The contributors worth auditing as insiders: the largest non-waived contributor of some primary cell."""
    return sorted(
        {
            comp.largest[i]
            for comp, primary in zip(components, primaries, strict=True)
            for i in np.flatnonzero(primary.unsafe)
            if comp.largest[i] is not None
        }
    )


def release_contributions(
    source: RowSource,
    components: Sequence[TableCells],
    index: Mapping[CellKey, int],
    *,
    only: Sequence[str] | None = None,
    gaps: bool = True,
) -> Contributions:
    """Every contributor's (or `only` these contributors') own summed contribution to every cell and helper
    cell of the release, over the cells of `index` (key -> cell; keys outside it are left out).

    Where components share a cell, the later component's record counts. `gaps=False` leaves out the gap
    helper cells' records (they follow from the others: gap_contributions)."""
    parts = [component_contributions(source, comp, only, gaps=gaps) for comp in components]
    names = np.unique(np.concatenate([p.names for _, p in parts])) if parts else np.array([], dtype=object)
    who, cell, value, cells_of_part = [], [], [], []
    for keys, part in parts:
        cells_of_key = np.array([index.get(k, -1) for k in keys], dtype=np.int64)
        mine = cells_of_key[part.cell]
        keep = mine >= 0
        who.append(np.searchsorted(names, part.names)[part.who[keep]] if len(part.names) else part.who[keep])
        cell.append(mine[keep])
        value.append(part.value[keep])
        cells_of_part.append(np.unique(cells_of_key[cells_of_key >= 0]))
    records = _concat(who), _concat(cell), _concat(value, float)
    return Contributions(names, *last_of_repeated_pairs(*records, cells_of_part))


def last_of_repeated_pairs(
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
    order = shared[pair_order(who[shared], cell[shared])]  # stable: a later component's record comes later
    repeated = np.zeros(len(who), dtype=bool)
    repeated[order[:-1]] = (who[order[1:]] == who[order[:-1]]) & (cell[order[1:]] == cell[order[:-1]])
    return who[~repeated], cell[~repeated], value[~repeated]


def component_contributions(
    source: RowSource, comp: TableCells, only: Sequence[str] | None = None, *, gaps: bool = True
) -> tuple[list[CellKey], Contributions]:
    """One component's contributions of every contributor (or of `only` these), over its keys followed by
    its helper cells' keys (without the gap cells' records when not `gaps`)."""
    query, dims = comp.query, comp.dimensions
    assert query is not None, "TableCells built without its query"
    if comp.contribution_rows is not None:
        rows = comp.contribution_rows
        if only is not None:  # a contributor's records do not depend on whose rows are read with them
            rows = rows.of(only)
    else:
        con = source.con
        with query.inner_cells(con, only=only) as inner, registered(con, dims) as names:
            rows = query.contributions(con, inner, dims, names)
    contributors, who = rows.coded()
    position = _cell_positions(comp, rows.nodes, len(who))
    records = (who, position, rows.value)
    keys = list(comp.keys)
    if comp.aux:
        records, keys = _with_aux_contributions(comp, *records, keys, gaps=gaps)
    return keys, Contributions(contributors, *records)


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
    comp: TableCells, who: np.ndarray, cell: np.ndarray, value: np.ndarray, keys: list[CellKey], gaps: bool
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[CellKey]]:
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
    order = stable_order(incidence)
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


def _concat(arrays: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
