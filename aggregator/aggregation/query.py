"""The SQL of one table component: per-contributor sums at every cell and margin, in two DuckDB queries.

Identifiers come only from validated protocol/rules files and are checked again here; every value is a
bound parameter.

1. inner cells (one pass over the rows, kept as a temporary table): accepted rows of the period, filtered,
   summed per contributor (group or company, as a dense integer id) per inner cell; a contributor's rows in
   one cell are one record. The distinct codes per dimension are read from this small table.
2. statistics: the inner cells get integer level ids l1..ld per dimension (a mapping table registered from
   pandas), contributor sums are rolled up to every margin (what GROUP BY contributor, ROLLUP(levels of
   dim 1), ROLLUP(levels of dim 2), ... gives, computed as a lattice: each coarser level from the one just
   below), and per cell come X, N, n_all, top-K, the waived total, has_negative and the largest contributor.

A margin's sum per contributor spans its inner cells, so a margin's top contribution is one contributor's
total there. A leaf higher up in a ragged hierarchy is padded with its own id (AQ -> 999, AQ, AQ); rows at a
padded level repeat the shallower cell and are dropped.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from aggregator.errors import AggregatorError
from aggregator.protocol import TOTAL_CODE, UNKNOWN_CODE, Hierarchy, Operand, TableSpec

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_registration_ids = itertools.count()


class AggregationError(AggregatorError):
    """The stored rows cannot be aggregated as the protocol asks (e.g. a code outside its hierarchy)."""


def checked(name: str) -> str:
    """An identifier that may be pasted into SQL; anything else is a programming or config error."""
    if not IDENTIFIER.match(name):
        raise AggregationError(f"'{name}' is not a safe SQL identifier")
    return name


@dataclass(frozen=True)
class DimensionLevels:
    """A dimension as integer level columns, restricted to the codes present in the data."""

    column: str
    hierarchy: str | None
    depth: int  # number of levels below the total
    mapping: pd.DataFrame  # leaf (text code), l1..l<depth> (node ids; padded with the leaf's own id)
    codes: tuple[str, ...]  # node id -> code; id 0 is the total "_T"
    parent: dict[str, str]  # node code -> parent code ("_T" for top-level nodes)
    node_depth: dict[str, int]  # node code -> depth (1 = top level); "_T" has depth 0
    # per node id: parent id (0 for top level and the total), depth, display rank, key label
    parent_ids: np.ndarray
    depths: np.ndarray
    ranks: np.ndarray
    labels: np.ndarray

    @property
    def groups(self) -> frozenset[str]:
        """Codes that have children in a hierarchy (not leaves, not the total)."""
        if self.hierarchy is None:
            return frozenset()
        return frozenset(self.parent.values()) - {TOTAL_CODE}


@dataclass(frozen=True)
class ComponentQuery:
    """Everything needed to (re)run the queries of one component."""

    table: str  # rows_<covenant>_<template>
    contributor: str  # "group_id" | "company_id"
    columns: tuple[str, ...]  # dimension columns
    value_sql: str  # expression over the row alias r
    presence: bool  # "companies": a contributor's record counts 1, however many rows it has
    filters: tuple[tuple[str, object], ...]
    periods: tuple[str, ...]
    waived: tuple[str, ...]  # company ids
    absolute: bool  # rules on |x| (negative_values = "absolute")
    top_k: int

    @property
    def _agg(self) -> str:
        return "max" if self.presence else "sum"

    def _inner_sql(self, only: Sequence[str] | None) -> tuple[str, list[object]]:
        """Per contributor per inner cell (text codes d0, d1, ...): cid, contributor, waived, v.

        `only` restricts the rows to these contributors (the insiders)."""
        leaves = [f"d{i}" for i in range(len(self.columns))]
        leaf_sql = "".join(
            f"coalesce(CAST(r.{checked(c)} AS VARCHAR), '{UNKNOWN_CODE}') AS {leaf}, "
            for c, leaf in zip(self.columns, leaves, strict=True)
        )
        where = [
            f"r.period IN ({', '.join('?' * len(self.periods))})",
            f"({self.value_sql}) IS NOT NULL",
        ]
        params: list[object] = [list(self.waived), *self.periods]
        for column, value in self.filters:
            where.append(f"r.{checked(column)} = ?")
            params.append(value)
        if only is not None:
            where.append("list_contains(?::VARCHAR[], k.contributor)")
            params.append(list(only))
        group = ", ".join(["cid", *leaves])
        sql = f"""
        WITH contributors AS (
            SELECT company_id, contributor, dense_rank() OVER (ORDER BY contributor) AS cid,
                   bool_and(list_contains(?::VARCHAR[], company_id)) OVER (PARTITION BY contributor) AS waived
            FROM (SELECT company_id, {checked(self.contributor)} AS contributor FROM companies)
        ),
        names AS (SELECT DISTINCT cid, contributor, waived FROM contributors),
        base AS (
            -- exact decimals: a parallel SUM of doubles differs in the last bits from run to run, and
            -- suppression must see identical values to give byte-identical releases
            SELECT k.cid, {leaf_sql}CAST({self.value_sql} AS DECIMAL(38, 6)) AS v
            FROM {checked(self.table)} r
            JOIN submissions s ON s.submission_id = r.submission_id AND s.state = 'accepted'
            JOIN contributors k ON k.company_id = r.company_id
            WHERE {" AND ".join(where)}
        )
        SELECT i.*, names.contributor, names.waived
        FROM (SELECT {group}, {self._agg}(v) AS v FROM base GROUP BY {group}) i JOIN names USING (cid)"""
        return sql, params

    @contextmanager
    def inner_cells(self, con: duckdb.DuckDBPyConnection, only: Sequence[str] | None = None) -> Iterator[str]:
        """The per-contributor inner cells as a temporary table, dropped afterwards.

        Materialising them lets one pass over the rows serve both the list of codes present (which the
        hierarchy mappings need) and the statistics."""
        name = checked(f"_inner_cells_{next(_registration_ids)}")
        sql, params = self._inner_sql(only)
        con.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
        try:
            yield name
        finally:
            con.execute(f"DROP TABLE IF EXISTS {name}")

    def present_codes(self, con: duckdb.DuckDBPyConnection, inner: str) -> list[list[str]]:
        """The distinct codes of each dimension among the inner cells."""
        if not self.columns:
            return []
        lists = ", ".join(f"list(DISTINCT d{i})" for i in range(len(self.columns)))
        row = con.execute(f"SELECT {lists} FROM {checked(inner)}").fetchone()
        return [sorted(codes or []) for codes in row]

    def _per_contributor_sql(self, inner: str, dims: Sequence[DimensionLevels], names: Sequence[str]) -> str:
        """CTEs from the inner cells up to per_contributor; `names` are the registered mapping tables."""
        levels = _levels(dims)
        joins = "".join(f" JOIN {checked(n)} h{i} ON h{i}.leaf = i.d{i}" for i, n in enumerate(names))
        level_sql = "".join(f"h{i}.l{k} AS {lvl}, " for i, lv in enumerate(levels) for k, lvl in enumerate(lv, start=1))
        return f"""
        WITH leveled AS (
            SELECT {level_sql}i.cid, i.waived, i.v FROM {checked(inner)} i{joins}
        ){self._rollup_ctes(levels)}"""

    def _rollup_ctes(self, levels: list[list[str]]) -> str:
        """per_contributor: the contributor sums at every combination of levels (what GROUP BY cid,
        ROLLUP(dim 1 levels), ROLLUP(dim 2 levels), ... gives), computed as a lattice: each coarser level
        is summed from the one just below it rather than from the inner cells, which is several times
        less work than DuckDB's grouping sets on per-contributor data."""
        columns = [lvl for lv in levels for lvl in lv]
        ctes, current = [], "leveled"
        for i, lv in enumerate(levels):
            steps = [current]
            for j in range(len(lv), 0, -1):
                # roll level j of dimension i up into level j - 1: that level column becomes NULL
                kept = [c for c in columns if c != lv[j - 1]]
                select = ", ".join(f"NULL::INTEGER AS {c}" if c == lv[j - 1] else c for c in columns)
                name = f"r{i}_{j - 1}"
                ctes.append(
                    f"{name} AS MATERIALIZED (SELECT {select}, cid, waived, {self._agg}(v) AS v "
                    f"FROM {steps[-1]} GROUP BY {', '.join([*kept, 'cid', 'waived'])})"
                )
                steps.append(name)
            union = " UNION ALL ".join(f"SELECT * FROM {step}" for step in steps)
            current = f"u{i}"
            ctes.append(f"{current} AS MATERIALIZED ({union})")
        ctes.append(f"per_contributor AS (SELECT * FROM {current})")
        return "".join(f",\n        {cte}" for cte in ctes)

    def stats_sql(self, inner: str, dims: Sequence[DimensionLevels], names: Sequence[str]) -> str:
        nodes, keep = _node_sql(dims)
        magnitude = "abs(v)" if self.absolute else "v"
        tops = "".join(f", coalesce(top[{k}], 0) AS top_{k}" for k in range(1, self.top_k + 1))
        group = ", ".join(lv for lvs in _levels(dims) for lv in lvs)
        dims_out = "".join(f"d{i}, " for i in range(len(nodes)))
        return f"""{self._per_contributor_sql(inner, dims, names)},
        contributor_names AS (SELECT DISTINCT cid, contributor FROM {checked(inner)})
        SELECT {dims_out}total, n, n_all, waived_total, has_negative, cn.contributor AS largest{tops}
        FROM (
            SELECT {"".join(f"{n}, " for n in nodes)}
                   sum(v) AS total,
                   count(*) FILTER (WHERE NOT waived) AS n,
                   count(*) AS n_all,
                   coalesce(sum(v) FILTER (WHERE waived), 0) AS waived_total,
                   bool_or(v < 0) AS has_negative,
                   arg_max(cid, ({magnitude}, cid)) FILTER (WHERE NOT waived) AS largest_cid,
                   max({magnitude}, {self.top_k}) FILTER (WHERE NOT waived) AS top
            FROM per_contributor
            WHERE {keep}
            {"GROUP BY " + group if group else ""}
        ) cells
        LEFT JOIN contributor_names cn ON cn.cid = cells.largest_cid"""

    def contributions_sql(self, inner: str, dims: Sequence[DimensionLevels], names: Sequence[str]) -> str:
        """Every contributor's own summed contribution to every cell it has a record in."""
        nodes, keep = _node_sql(dims)
        return f"""{self._per_contributor_sql(inner, dims, names)},
        contributor_names AS (SELECT DISTINCT cid, contributor FROM {checked(inner)})
        SELECT {"".join(f"{n}, " for n in nodes)}contributor_names.contributor, v
        FROM per_contributor JOIN contributor_names USING (cid)
        WHERE {keep}"""


def _levels(dims: Sequence[DimensionLevels]) -> list[list[str]]:
    return [[f"d{i}_{k}" for k in range(1, d.depth + 1)] for i, d in enumerate(dims)]


def _node_sql(dims: Sequence[DimensionLevels]) -> tuple[list[str], str]:
    """Per dimension the cell's node id (deepest grouped level, 0 = total) and a filter dropping rows at
    padded levels."""
    nodes, keep = [], ["TRUE"]
    for i, lv in enumerate(_levels(dims)):
        nodes.append(f"coalesce({', '.join(reversed(lv))}, 0) AS d{i}")
        keep += [f"NOT coalesce({b} = {a}, FALSE)" for a, b in itertools.pairwise(lv)]
    return nodes, " AND ".join(keep)


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, dims: Sequence[DimensionLevels]) -> Iterator[list[str]]:
    """Register the dimensions' mapping tables under fresh names for the duration of a query."""
    names: list[str] = []
    try:
        for dim in dims:
            names.append(f"_dimension_map_{next(_registration_ids)}")
            con.register(names[-1], dim.mapping)
        yield names
    finally:
        for name in names:
            con.unregister(name)


# -------------------------------------------------------------------------------------------- building


def value_sql(spec: TableSpec, operand: Operand | None) -> str:
    """The per-row value of a component, as SQL over the row alias r."""
    if spec.measure.kind in ("count", "companies"):
        return "1.0"
    assert operand is not None
    value = f"CAST(r.{checked(operand.column)} AS DOUBLE)"
    if operand.weight:
        value += f" * CAST(r.{checked(operand.weight)} AS DOUBLE)"
    return value


def dimension_levels(column: str, hierarchy: Hierarchy | None, leaves: Sequence[str]) -> DimensionLevels:
    """The levels of one dimension over the leaves present in the data."""
    if hierarchy is None:
        paths = {leaf: (leaf,) for leaf in leaves}
    else:
        paths = {leaf: _leaf_path(hierarchy, leaf, column) for leaf in leaves}
    depth = max((len(p) for p in paths.values()), default=1)
    parent: dict[str, str] = {}
    node_depth: dict[str, int] = {TOTAL_CODE: 0}
    paths_by_node: dict[str, tuple[str, ...]] = {}
    for path in paths.values():
        for k, node in enumerate(path):
            parent[node] = path[k - 1] if k else TOTAL_CODE
            node_depth[node] = k + 1
            paths_by_node[node] = path[: k + 1]
    codes = (TOTAL_CODE, *sorted(parent))
    ids = {code: i for i, code in enumerate(codes)}
    rows = [
        (leaf, *(ids[n] for n in path), *[ids[path[-1]]] * (depth - len(path))) for leaf, path in sorted(paths.items())
    ]
    mapping = pd.DataFrame(rows, columns=["leaf", *[f"l{k}" for k in range(1, depth + 1)]])
    mapping = mapping.astype({"leaf": object, **{f"l{k}": "int32" for k in range(1, depth + 1)}})
    name = hierarchy.name if hierarchy else None
    groups = set(parent.values())
    walk = sorted(codes, key=lambda c: () if c == TOTAL_CODE else paths_by_node[c])
    rank = {c: r for r, c in enumerate(walk)}
    return DimensionLevels(
        column,
        name,
        depth,
        mapping,
        codes,
        parent,
        node_depth,
        parent_ids=np.array([ids[parent.get(c, TOTAL_CODE)] for c in codes], dtype="int64"),
        depths=np.array([node_depth[c] for c in codes], dtype="int64"),
        ranks=np.array([rank[c] for c in codes], dtype="int64"),
        labels=np.array(
            [f"{column}={name}:{c}" if name and c in groups else f"{column}={c}" for c in codes], dtype=object
        ),
    )


def _leaf_path(hierarchy: Hierarchy, code: str, column: str) -> tuple[str, ...]:
    if code == UNKNOWN_CODE:
        return (code,)  # rows without a code form their own top-level cell
    if not hierarchy.knows(code):
        raise AggregationError(
            f"code '{code}' of column {column} is not in hierarchy {hierarchy.name}",
            hint=f"map it in [hierarchies.{hierarchy.name}.parent] or correct the submission",
        )
    if hierarchy.is_parent(code):
        raise AggregationError(
            f"code '{code}' of column {column} is a group in hierarchy {hierarchy.name}, not a leaf",
            hint="submissions must use the most detailed codes",
        )
    return hierarchy.path(code)
