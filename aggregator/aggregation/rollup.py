"""Rollup: a leaf code that fails the primary rules is merged into an 'other <parent>' row instead of hidden.

Gold practice lists a country only when enough refiners report it and merges the rest into its region. A
protocol asks for this per dimension (`dimensions = [{ column = "country", hierarchy = "m49", rollup = true }]`).
It is a recoding of the codes before the cells are built, in two passes:

1. build the cells as usual and judge them with the table's primary rules;
2. a leaf of a rollup dimension fails when its margin (the leaf, every other dimension at its total) is
   unsafe in any component; each failing leaf gets the code '<parent>~other' (`protocol.other_code`);
3. the rows are read through a temporary view that applies the recoding, and the cells are built again.

The 'other' row is an ordinary leaf afterwards: it may still fail and then is protected like any cell. Totals
do not change, because only codes change. The recoding is per audience (its rules decide what fails) and
lives as long as the connection, so insiders' contributions computed later from `TableCells.query` see the
same codes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np

from aggregator.disclosure.model import RuleParams
from aggregator.disclosure.rules import evaluate_primary
from aggregator.protocol import TOTAL_CODE, UNKNOWN_CODE, Hierarchy, TableSpec, other_code

from .query import checked

_view_ids = itertools.count()

# per dimension column: leaf code -> the 'other' code it is merged into
Recoding = dict[str, dict[str, str]]


def failing_leaves(
    components: Sequence, spec: TableSpec, hierarchies: Mapping[str, Hierarchy], params: RuleParams
) -> Recoding:
    """The leaves of the table's rollup dimensions whose margin fails the primary rules, with their new codes.

    `components` are the first-pass TableCells. A leaf at the top of its hierarchy has no parent to merge
    into and is left alone (suppression protects it)."""
    recoding: Recoding = {}
    for position, dim in enumerate(spec.dimensions):
        if not dim.rollup or dim.hierarchy is None:
            continue
        hierarchy = hierarchies[dim.hierarchy]
        failing: set[str] = set()
        for comp in components:
            failing |= _unsafe_margin_leaves(comp, position, spec, params)
        merged = {
            leaf: other_code(hierarchy.parent[leaf])
            for leaf in sorted(failing)
            if leaf in hierarchy.parent and leaf != UNKNOWN_CODE
        }
        if merged:
            recoding[dim.column] = merged
    return recoding


def _unsafe_margin_leaves(comp, position: int, spec: TableSpec, params: RuleParams) -> set[str]:
    """Codes of dimension `position` whose margin cell (others at their total) is unsafe in this component."""
    frame = comp.frame
    column = spec.dimensions[position].column
    groups = comp.dimensions[position].groups if comp.dimensions else frozenset()
    leaf = ~frame[column].isin([TOTAL_CODE, *groups]).to_numpy()
    return set(frame[column].to_numpy()[_unsafe_margins(comp, position, spec, params) & leaf].tolist())


def _unsafe_margins(comp, position: int, spec: TableSpec, params: RuleParams) -> np.ndarray:
    """Per cell: a margin of dimension `position` (every other dimension at its total) that fails a rule."""
    frame = comp.frame
    margin = np.ones(len(frame), dtype=bool)
    for other, dim in enumerate(spec.dimensions):
        if other != position:
            margin &= (frame[dim.column] == TOTAL_CODE).to_numpy()
    return margin & evaluate_primary(comp.stats, params).unsafe


def publishable_levels(
    components: Sequence, spec: TableSpec, hierarchies: Mapping[str, Hierarchy], params: RuleParams
) -> dict[str, int]:
    """Per `level = "auto"` dimension that needs coarsening: the finest depth (1 = the hierarchy's top level)
    at which every margin cell (the code, every other dimension at its total) passes the primary rules; the
    top level when none does. Dimensions whose leaves already pass are left out."""
    levels: dict[str, int] = {}
    for position, dim in enumerate(spec.dimensions):
        if dim.level != "auto" or dim.hierarchy is None:
            continue
        unsafe_depths: set[int] = set()
        deepest = 0
        for comp in components:
            depths = comp.frame[f"{dim.column}_depth"].to_numpy()
            deepest = max(deepest, int(depths.max(initial=0)))
            unsafe_depths |= set(depths[_unsafe_margins(comp, position, spec, params)].tolist())
        safe = [d for d in range(1, deepest + 1) if d not in unsafe_depths]
        level = max(safe, default=1)
        if level < deepest:
            levels[dim.column] = level
    return levels


def coarsened(hierarchy: Hierarchy, depth: int) -> tuple[Hierarchy, dict[str, str]]:
    """The hierarchy cut below `depth` (its codes at that depth become leaves) and the recoding of every deeper
    code to its ancestor at that depth."""
    codes = set(hierarchy.parent) | set(hierarchy.parent.values())
    paths = {code: hierarchy.path(code) for code in codes}
    parent = {c: p for c, p in hierarchy.parent.items() if len(paths[c]) <= depth}
    recoding = {c: path[depth - 1] for c, path in sorted(paths.items()) if len(path) > depth}
    return Hierarchy(hierarchy.name, parent, hierarchy.labels), recoding


def recoded_rows_view(con: duckdb.DuckDBPyConnection, table: str, recoding: Recoding) -> str:
    """A temporary view of the rows table with the recoding applied; returns its name.

    The mappings are stored in a temporary table (codes come from submissions and are bound as parameters,
    never pasted into SQL); both live as long as the connection."""
    number = next(_view_ids)
    mapping, view = checked(f"_rollup_map_{number}"), checked(f"_rollup_rows_{number}")
    con.execute(f"CREATE TEMP TABLE {mapping} (dim VARCHAR, from_code VARCHAR, to_code VARCHAR)")
    rows = [(column, leaf, new) for column, leaves in sorted(recoding.items()) for leaf, new in sorted(leaves.items())]
    con.executemany(f"INSERT INTO {mapping} VALUES (?, ?, ?)", rows)
    replaced, joins = [], []
    for i, column in enumerate(sorted(recoding)):
        col = checked(column)
        joins.append(
            f" LEFT JOIN (SELECT from_code, to_code FROM {mapping} WHERE dim = '{col}') m{i}"
            f" ON m{i}.from_code = CAST(r.{col} AS VARCHAR)"
        )
        replaced.append(f"coalesce(m{i}.to_code, CAST(r.{col} AS VARCHAR)) AS {col}")
    con.execute(
        f"CREATE TEMP VIEW {view} AS SELECT r.* REPLACE ({', '.join(replaced)}) FROM {checked(table)} r{''.join(joins)}"
    )
    return view
