"""Cells of one protocol table: values, contributor statistics, canonical keys and additivity relations.

`build_table_cells` runs one DuckDB query per component (see query.py) and returns a `TableCells` per
component: "value", or "numerator" and "denominator" for a ratio (ratios are protected through them).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from aggregator.cellkey import CellKey, HelperRole, Quantity
from aggregator.disclosure.model import CellStats, RuleParams
from aggregator.protocol import Hierarchy, Operand, Protocol, TableSpec
from aggregator.store import RowSource
from imvo_submit.periods import Period, PeriodMode

from .query import (
    AggregationError,
    ComponentQuery,
    ContributionRows,
    DimensionLevels,
    dimension_levels,
    registered,
    value_sql,
)
from .rollup import coarsened, failing_leaves, publishable_levels, recoded_rows_view

COUNT_UNITS = {"group": "group_id", "company": "company_id"}


@dataclass(frozen=True)
class AuxRelation:
    """A relation of a non-additive table ("companies": a company in two countries counts once in the
    region), written as two exact linear relations over two hidden helper cells:

        sum_key     = sum(parts)              (the company-country pairs)
        sum_key     = total + overlap_key     (overlap >= 0: companies counted in more than one part)

    so that an attacker's bound total >= sum(parts) - overlap is modelled, and for every part j

        total       = part_j + gap_key_j      (gap >= 0: a company in a part is also in the total)

    so that total >= max(part) is modelled too (with a single part this makes total == part exactly).
    The helper cells are never published and need no protection themselves.
    """

    total: int
    parts: tuple[int, ...]
    sum_key: CellKey
    overlap_key: CellKey
    gap_keys: tuple[CellKey, ...] = ()

    @property
    def helper_keys(self) -> tuple[CellKey, ...]:
        return (self.sum_key, self.overlap_key, *self.gap_keys)


@dataclass
class TableCells:
    """One component of one table: one row per cell in display order, keys[i] belonging to frame row i."""

    table_id: str
    component: str  # "value" | "numerator" | "denominator"
    keys: list[CellKey]
    # per dimension a code column (named after the column; "_T" = total) and a "<column>_depth" column
    # (0 = total, 1 = top level, ...), then value and n_all
    frame: pd.DataFrame
    stats: CellStats
    # values[t] == sum(values[parts]); empty for non-additive measures (those use `aux`)
    relations: list[tuple[int, tuple[int, ...]]]
    additive: bool = True
    aux: list[AuxRelation] = field(default_factory=list)
    # the largest non-waived contributor of each cell (None when every contributor waived): the insiders
    largest: list[str | None] = field(default_factory=list)
    quantity: Quantity | None = None  # what every cell of the component counts (its keys share it)
    query: ComponentQuery | None = None  # to recompute insiders' own contributions
    dimensions: tuple[DimensionLevels, ...] = ()
    # rollup dimensions: column -> {leaf code: the '<parent>~other' code it was merged into}
    rollup: dict[str, dict[str, str]] = field(default_factory=dict)
    # every contributor's record at every cell, when fetched together with the statistics: spares a second
    # pass over the rows (aggregation.contributions.component_contributions)
    contribution_rows: ContributionRows | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.keys)


def build_table_cells(
    source: RowSource,
    protocol: Protocol,
    table_id: str,
    period: Period | str | None,
    params: RuleParams,
    *,
    mode: PeriodMode = PeriodMode.MONTH,
    waived: frozenset[str] = frozenset(),
    count_unit: str = "group",
    contributions: bool = False,
) -> list[TableCells]:
    """Compute every cell (inner cells and all margins) of a table released for `period`.

    `mode`: the months the cells sum (the table's own `periods` or a single month); cumulative cells get
    keys of their own, so they never merge with the monthly cells of the same measure. `period` None reads
    every row (standalone protection has no periods). `waived` holds company ids that consented to
    publication; a group counts as waived only when all its companies did. `contributions`: also fetch
    every contributor's own contribution to every cell (the release snapshot needs them) from the same pass
    over the rows. Raises AggregationError when a code is outside its dimension's hierarchy.
    """
    if count_unit not in COUNT_UNITS:
        raise AggregationError(f"unknown count unit '{count_unit}'", hint="use 'group' or 'company'")
    spec = protocol.table(table_id)
    months = None if period is None else tuple(str(m) for m in mode.months(period))
    rows = source.rows_of(spec.template)
    if rows is None:
        raise AggregationError(
            f"table '{table_id}' needs accepted files of template '{spec.template}', and none were ever accepted",
            hint="run the intake for that template first, or leave the table out of this release in the protocol",
        )
    build = functools.partial(
        _build_components, source, spec, months, mode, params, waived, count_unit, protocol, contributions
    )
    components = build(rows)
    levels = publishable_levels(components, spec, protocol.hierarchies, params)
    if levels:
        # the table is published down to the finest level at which it passes: a second pass over coarser codes
        hierarchies, recoding = dict(protocol.hierarchies), {}
        for dim in spec.dimensions:
            if dim.column in levels:
                hierarchies[dim.hierarchy], recoding[dim.column] = coarsened(
                    protocol.hierarchy(dim.hierarchy), levels[dim.column]
                )
        coarse = dataclasses.replace(protocol, hierarchies=hierarchies)
        build = functools.partial(
            _build_components, source, spec, months, mode, params, waived, count_unit, coarse, contributions
        )
        components = build(recoded_rows_view(source.con, rows, recoding))
        for comp in components:
            comp.rollup = recoding
    if any(d.rollup for d in spec.dimensions):
        # two passes: the first finds the leaves that fail, the second reads them under their 'other' code
        recoding = failing_leaves(components, spec, protocol.hierarchies, params)
        if recoding:
            components = build(recoded_rows_view(source.con, rows, recoding))
            for comp in components:
                comp.rollup = recoding
    return components


def _build_components(
    source: RowSource,
    spec: TableSpec,
    months: tuple[str, ...] | None,
    mode: PeriodMode,
    params: RuleParams,
    waived: frozenset[str],
    count_unit: str,
    protocol: Protocol,
    contributions: bool,
    rows: str,
) -> list[TableCells]:
    hierarchies = [protocol.hierarchy(d.hierarchy) if d.hierarchy else None for d in spec.dimensions]
    components = []
    for name, operand in spec.measure.components():
        query = ComponentQuery(
            rows=rows,
            companies=source.companies,
            contributor=COUNT_UNITS[count_unit],
            columns=tuple(d.column for d in spec.dimensions),
            value_sql=value_sql(spec, operand),
            presence=spec.measure.kind == "companies",
            filters=tuple((f.column, f.equals) for f in spec.filters),
            periods=months,
            waived=tuple(sorted(waived)),
            absolute=params.negative_values == "absolute",
            top_k=params.top_k,
            stored=source.stored_of(spec.template),
        )
        quantity = quantity_of(spec, operand, count_unit, mode)
        components.append(_build_component(source.con, spec.id, name, query, hierarchies, quantity, contributions))
    return components


def quantity_of(spec: TableSpec, operand: Operand | None, count_unit: str, mode: PeriodMode) -> Quantity:
    """What a component's cells count: equal quantities mean comparable (and shared) cells."""
    if spec.measure.kind == "companies":
        measure = f"companies[{count_unit}]"  # distinct groups and distinct companies differ
    elif spec.measure.kind == "count":
        measure = "count"
    else:
        assert operand is not None
        measure = operand.signature
    return Quantity(spec.template, measure, spec.filters_signature, mode)


def _build_component(
    con: duckdb.DuckDBPyConnection,
    table_id: str,
    name: str,
    query: ComponentQuery,
    hierarchies: Sequence[Hierarchy | None],
    quantity: Quantity,
    contributions: bool,
) -> TableCells:
    own = None
    with query.inner_cells(con) as inner:
        leaves = query.present_codes(con, inner)
        dims = tuple(
            dimension_levels(column, hierarchy, codes)
            for column, hierarchy, codes in zip(query.columns, hierarchies, leaves, strict=True)
        )
        with registered(con, dims) as names:
            if contributions:
                with query.per_contributor_table(con, inner, dims, names) as table:
                    raw = con.execute(query.stats_sql(inner, dims, names, table)).df()
                    own = query.contributions(con, inner, dims, names, table)
            else:
                raw = con.execute(query.stats_sql(inner, dims, names)).df()
    raw = raw[raw["n_all"] > 0]  # a table without dimensions and without data yields one empty row
    frame = _display_frame(raw, dims)
    keys = cell_keys(frame, dims, quantity)
    additive = not query.presence
    relations = cell_relations(frame, dims)
    return TableCells(
        table_id=table_id,
        component=name,
        keys=keys,
        frame=frame[_frame_columns(dims)].reset_index(drop=True),
        stats=_stats(frame, query.top_k),
        relations=relations if additive else [],
        additive=additive,
        aux=[] if additive else _aux_relations(table_id, relations, keys),
        largest=frame["largest"].to_numpy(dtype=object, na_value=None).tolist(),
        quantity=quantity,
        query=query,
        dimensions=dims,
        contribution_rows=own,
    )


def _frame_columns(dimensions: Sequence[DimensionLevels]) -> list[str]:
    columns = [d.column for d in dimensions] + [f"{d.column}_depth" for d in dimensions]
    return [*columns, "value", "n_all"]


def _display_frame(raw: pd.DataFrame, dimensions: Sequence[DimensionLevels]) -> pd.DataFrame:
    """Codes, depths and statistics per cell, sorted for display: totals first, then each subtree in code
    order. Node ids stay in columns _id0, _id1, ... for the keys and relations."""
    ids = [raw[f"d{i}"].to_numpy(dtype="int64") for i in range(len(dimensions))]
    # rank of each node in a depth-first walk, so that one lexsort gives the display order
    order = np.lexsort([d.ranks[i] for d, i in zip(dimensions, ids, strict=True)][::-1]) if ids else None
    take = order if order is not None else np.arange(len(raw))
    frame = pd.DataFrame(index=range(len(raw)))
    for i, d in enumerate(dimensions):
        frame[d.column] = pd.array(np.asarray(d.codes, dtype=object)[ids[i][take]], dtype=object)
    for i, d in enumerate(dimensions):
        frame[f"{d.column}_depth"] = d.depths[ids[i][take]]
    frame["value"] = raw["total"].to_numpy(dtype="float64")[take]
    for column in ["n", "n_all", "waived_total", "has_negative", "largest"]:
        frame[column] = raw[column].to_numpy()[take]
    for column in [c for c in raw.columns if c.startswith("top_")]:
        frame[column] = raw[column].to_numpy(dtype="float64")[take]
    for i in range(len(dimensions)):
        frame[f"_id{i}"] = ids[i][take]
    return frame


def cell_keys(frame: pd.DataFrame, dimensions: Sequence[DimensionLevels], quantity: Quantity) -> list[CellKey]:
    """The key of every cell of the frame (node ids in its columns _id0, _id1, ...)."""
    nodes = np.column_stack([frame[f"_id{i}"].to_numpy(dtype="int64") for i in range(len(dimensions))])
    nodes = nodes.reshape(len(frame), len(dimensions))
    return CellKey.table_cells(quantity, [d.coordinates for d in dimensions], nodes)


def cell_relations(frame: pd.DataFrame, dimensions: Sequence[DimensionLevels]) -> list[tuple[int, tuple[int, ...]]]:
    """For every dimension and every cell that is a total or group in it: the cell = sum of its children,
    with the other dimensions' codes held fixed. Children without data are zero and left out."""
    if not dimensions:
        return []
    ids = np.column_stack([frame[f"_id{i}"].to_numpy(dtype="int64") for i in range(len(dimensions))])
    sizes = np.array([len(d.codes) for d in dimensions], dtype="int64")
    weights = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]])  # mixed-radix cell number
    numbers = ids @ weights
    sorted_numbers = np.argsort(numbers)
    relations: list[tuple[int, tuple[int, ...]]] = []
    for i, d in enumerate(dimensions):
        parts = np.flatnonzero(ids[:, i] != 0)
        if not len(parts):
            continue
        parent_numbers = numbers[parts] + (d.parent_ids[ids[parts, i]] - ids[parts, i]) * weights[i]
        totals = sorted_numbers[np.searchsorted(numbers, parent_numbers, sorter=sorted_numbers)]
        order = np.lexsort((parts, totals))
        totals, parts = totals[order], parts[order]
        starts = np.r_[0, np.flatnonzero(np.diff(totals)) + 1]
        ends = np.r_[starts[1:], len(parts)]
        # slicing one Python list is much cheaper than splitting the array into thousands of small ones
        part_list, total_list = parts.tolist(), totals.tolist()
        relations += [
            (total_list[a], tuple(part_list[a:b])) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
    return sorted(relations)


def _aux_relations(
    table_id: str, relations: list[tuple[int, tuple[int, ...]]], keys: list[CellKey]
) -> list[AuxRelation]:
    aux = []
    for n, (total, parts) in enumerate(relations):
        helper = functools.partial(keys[total].helper_cell, table_id, n)
        gaps = tuple(helper(HelperRole.GAP, j) for j in range(len(parts)))
        aux.append(AuxRelation(total, parts, helper(HelperRole.SUM), helper(HelperRole.OVERLAP), gaps))
    return aux


def _stats(frame: pd.DataFrame, top_k: int) -> CellStats:
    top = frame[[f"top_{k}" for k in range(1, top_k + 1)]].to_numpy(dtype="float64")
    return CellStats(
        total=frame["value"].to_numpy(dtype="float64"),
        n=frame["n"].to_numpy(dtype="int64"),
        top=top,
        waived=frame["waived_total"].to_numpy(dtype="float64"),
        n_all=frame["n_all"].to_numpy(dtype="int64"),
        has_negative=frame["has_negative"].to_numpy(dtype=bool),
    )


def build_release_cells(
    source: RowSource,
    protocol: Protocol,
    audience_id: str,
    period: Period | str,
    *,
    waived: frozenset[str] = frozenset(),
) -> list[TableCells]:
    """Every component of every table the audience receives (for a single month), with the audience's rules."""
    components: list[TableCells] = []
    for spec in protocol.tables_for(audience_id):
        settings = protocol.settings(spec.id, audience_id)
        components += build_table_cells(
            source,
            protocol,
            spec.id,
            period,
            settings.rule_params(),
            waived=waived,
            count_unit=settings.count_unit,
        )
    return components
