"""The SQL of one table component: per-contributor sums at every cell and margin, in two DuckDB queries.

Identifiers come only from validated protocol/rules files and are checked again here; every value is a
bound parameter (node ids and depths we computed ourselves are pasted as integer lists).

1. inner cells (one pass over the rows, kept as a temporary table): accepted rows of the period, filtered,
   summed per contributor (group or company, as a dense integer id) per inner cell; a contributor's rows in
   one cell are one record. The rows are summed per submission, company and cell first, so the joins touch
   only those sums. The distinct codes per dimension are read from this small table.
2. statistics: each inner cell gets its leaf's integer node id per dimension (a mapping table registered
   from pandas), contributor sums are rolled up to every margin (what GROUP BY contributor, ROLLUP(levels
   of dim 1), ROLLUP(levels of dim 2), ... gives, computed as a lattice: per dimension, from the deepest
   level up, the records at depth j are summed into their parents), and per cell come X, N, n_all, top-K,
   the waived total, has_negative and the largest contributor.

Sums are exact to 6 decimals, so that releases are byte-identical from run to run: DECIMAL(38, 6), or, when
the summed rows' absolute total is below 2**52 micro-units (nearly always), integer micro-units in doubles, which
add up exactly in any order and several times faster; both give the very same floats (see InnerCells).

A margin's sum per contributor spans its inner cells, so a margin's top contribution is one contributor's
total there. A leaf higher up in a ragged hierarchy (AQ directly under the world) is rolled up once, from its
own depth.
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

from aggregator.cellkey import DimensionCoordinates
from aggregator.errors import AggregatorError
from aggregator.protocol import TOTAL_CODE, UNKNOWN_CODE, Hierarchy, Operand, TableSpec

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_registration_ids = itertools.count()

MICRO = 1_000_000  # values are exact to 6 decimals: DECIMAL(38, 6), or integer micro-units
# Integer-valued doubles add up exactly, in any order, while every partial sum stays below 2**53; the bound
# leaves a factor 2 for the rounding of the (inexact) check itself.
EXACT_DOUBLE_BOUND = 2.0**52


@dataclass(frozen=True)
class InnerCells:
    """The per-contributor inner cells as a temporary table, and how its value column `v` is stored.

    micro: `v` is DOUBLE holding integer micro-units (round(x * 10**6), the very integers DECIMAL(38, 6)
    holds), used when the absolute values of all rows add up to less than 2**52 micro-units: every sum
    of them is then exact, so doubles give the decimal result, in a fraction of the time. Otherwise `v`
    is DECIMAL(38, 6)."""

    name: str
    micro: bool

    def scaled(self, expression: str) -> str:
        """SQL turning a sum of `v` into the cell's value (a DOUBLE, or a DECIMAL that converts to it)."""
        return f"({expression}) / {MICRO}" if self.micro else expression


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
    # per node id: parent id (0 for top level and the total), depth, display rank, coordinate in cell keys
    parent_ids: np.ndarray
    depths: np.ndarray
    ranks: np.ndarray
    coordinates: DimensionCoordinates

    @property
    def groups(self) -> frozenset[str]:
        """Codes that have children in a hierarchy (not leaves, not the total)."""
        if self.hierarchy is None:
            return frozenset()
        return frozenset(self.parent.values()) - {TOTAL_CODE}


@dataclass(frozen=True)
class ComponentQuery:
    """Everything needed to (re)run the queries of one component."""

    rows: str  # the relation of the rows that count (store.RowSource)
    companies: str  # company_id -> group_id of every company
    contributor: str  # "group_id" | "company_id"
    columns: tuple[str, ...]  # dimension columns
    value_sql: str  # expression over the row alias r
    presence: bool  # "companies": a contributor's record counts 1, however many rows it has
    filters: tuple[tuple[str, object], ...]
    periods: tuple[str, ...] | None  # the months (YYYY-MM) whose rows count; None: every row
    waived: tuple[str, ...]  # company ids
    absolute: bool  # rules on |x| (negative_values = "absolute")
    top_k: int
    stored: str | None = None  # the table behind `rows` (RowSource.stored_of): scanned to size the sums

    @property
    def _agg(self) -> str:
        return "max" if self.presence else "sum"

    def _row_filters(self) -> tuple[list[str], list[object]]:
        """The conditions on a row alias r that pick the rows of the months and filters, with their parameters."""
        where: list[str] = []
        params: list[object] = []
        if self.periods is not None:
            where.append(f"r.period IN ({', '.join('?' * len(self.periods))})")
            params += self.periods
        for column, value in self.filters:
            where.append(f"r.{checked(column)} = ?")
            params.append(value)
        return where, params

    def _inner_sql(self, only: Sequence[str] | None, micro: bool) -> tuple[str, list[object]]:
        """Per contributor per inner cell (text codes d0, d1, ...): cid, contributor, waived, v.

        `only` restricts the rows to these contributors (the insiders); `micro` see InnerCells.

        The rows are first summed per company and raw codes, and only those sums (about one per contributor
        and cell) are joined to the contributors: the join and the code clean-up then touch a few hundred
        thousand records instead of every row."""
        columns = [checked(c) for c in self.columns]
        leaves = [f"d{i}" for i in range(len(columns))]
        selected, selected_params = self._row_filters()
        where = [f"({self.value_sql}) IS NOT NULL", *selected]
        params: list[object] = [list(self.waived), *selected_params]
        if only is not None:  # the insiders' rows only, before the big GROUP BY
            where.append(
                f"r.company_id IN (SELECT company_id FROM {checked(self.companies)} "
                f"WHERE list_contains(?::VARCHAR[], {checked(self.contributor)}))"
            )
            params.append(list(only))
        # exact decimals: a parallel SUM of doubles differs in the last bits from run to run, and suppression
        # must see identical values to give byte-identical releases; micro-units are exact integers (and
        # round() rounds half away from zero, as the cast to DECIMAL does)
        value = f"round(({self.value_sql}) * {MICRO})" if micro else f"CAST({self.value_sql} AS DECIMAL(38, 6))"
        # in micro-units, what the exactness check needs: the rows' absolute micro-units and their number
        magnitude = f", sum(abs({value})) AS magnitude, count(*) AS summed_rows" if micro else ""
        summed = ", sum(magnitude) AS magnitude, sum(summed_rows) AS summed_rows" if micro else ""
        raw = "".join(f"r.{c} AS c{i}, " for i, c in enumerate(columns))
        raw_group = ", ".join(["r.company_id", *(f"r.{c}" for c in columns)])
        # NULL and a stored '_U' both become '_U': the second GROUP BY merges them, as it merges the
        # companies of one group
        leaf_sql = "".join(
            f"coalesce(CAST(p.c{i} AS VARCHAR), '{UNKNOWN_CODE}') AS {leaf}, " for i, leaf in enumerate(leaves)
        )
        group = ", ".join(["cid", *leaves])
        sql = f"""
        WITH ranked_contributors AS (
            SELECT company_id, contributor, dense_rank() OVER (ORDER BY contributor) AS cid,
                   bool_and(list_contains(?::VARCHAR[], company_id)) OVER (PARTITION BY contributor) AS waived
            FROM (SELECT company_id, {checked(self.contributor)} AS contributor FROM {checked(self.companies)})
        ),
        names AS (SELECT DISTINCT cid, contributor, waived FROM ranked_contributors),
        pre AS (
            SELECT r.company_id, {raw}{self._agg}({value}) AS v{magnitude}
            FROM {checked(self.rows)} r
            WHERE {" AND ".join(where)}
            GROUP BY {raw_group}
        ),
        base AS (
            SELECT k.cid, {leaf_sql}p.v{", p.magnitude, p.summed_rows" if micro else ""}
            FROM pre p JOIN ranked_contributors k ON k.company_id = p.company_id
        )
        SELECT i.*, names.contributor, names.waived
        FROM (SELECT {group}, {self._agg}(v) AS v{summed} FROM base GROUP BY {group}) i JOIN names USING (cid)"""
        return sql, params

    @contextmanager
    def inner_cells(self, con: duckdb.DuckDBPyConnection, only: Sequence[str] | None = None) -> Iterator[InnerCells]:
        """The per-contributor inner cells as a temporary table, dropped afterwards: in micro-units when the
        rows summed add up, in absolute micro-units, to less than EXACT_DOUBLE_BOUND (checked on the table
        itself, so the rows are read once), else again as decimals.

        Materialising them lets one pass over the rows serve both the list of codes present (which the
        hierarchy mappings need) and the statistics. (Registering them as an Arrow table instead was
        measured slower: the statistics query then scans the codes from Arrow.)"""
        micro = self._likely_exact_in_doubles(con)
        inner = self._create_inner(con, only, micro)
        try:
            if micro and not self._exact_in_doubles(con, inner):
                con.execute(f"DROP TABLE {inner.name}")
                inner = self._create_inner(con, only, micro=False)
            yield inner
        finally:
            con.execute(f"DROP TABLE IF EXISTS {inner.name}")

    def _create_inner(self, con: duckdb.DuckDBPyConnection, only: Sequence[str] | None, micro: bool) -> InnerCells:
        inner = InnerCells(checked(f"_inner_cells_{next(_registration_ids)}"), micro)
        sql, params = self._inner_sql(only, micro)
        con.execute(f"CREATE TEMP TABLE {inner.name} AS {sql}", params)
        return inner

    def _likely_exact_in_doubles(self, con: duckdb.DuckDBPyConnection) -> bool:
        """A guess, from the stored rows of the months summed (one scan of a table, not of the relation built
        over it), whether the sums fit micro-units: when they plainly do not, the decimals are computed
        straight away instead of after a wasted pass. Either way gives the same cells."""
        if self.stored is None:
            return True
        where, params = self._row_filters()
        magnitude, rows = con.execute(
            f"SELECT sum(abs({self.value_sql})), count({self.value_sql}) FROM {checked(self.stored)} r"
            + (f" WHERE {' AND '.join(where)}" if where else ""),
            params,
        ).fetchone()
        return not rows or bool(magnitude * MICRO + rows < EXACT_DOUBLE_BOUND)

    @staticmethod
    def _exact_in_doubles(con: duckdb.DuckDBPyConnection, inner: InnerCells) -> bool:
        """Whether the rows summed into the inner cells add up, in absolute micro-units, to less than
        EXACT_DOUBLE_BOUND: every partial sum of theirs (inner cells, margins) is then an exact integer. NaN or
        infinity say no."""
        magnitude, rows = con.execute(f"SELECT sum(magnitude), sum(summed_rows) FROM {inner.name}").fetchone()
        if not rows:
            return True
        # the check's own sum is inexact: the bound leaves a factor 2, and a unit per row on top
        return bool(magnitude + rows < EXACT_DOUBLE_BOUND)

    def present_codes(self, con: duckdb.DuckDBPyConnection, inner: InnerCells) -> list[list[str]]:
        """The distinct codes of each dimension among the inner cells."""
        if not self.columns:
            return []
        lists = ", ".join(f"list(DISTINCT d{i})" for i in range(len(self.columns)))
        row = con.execute(f"SELECT {lists} FROM {checked(inner.name)}").fetchone()
        return [sorted(codes or []) for codes in row]

    def _per_contributor_sql(self, inner: InnerCells, dims: Sequence[DimensionLevels], names: Sequence[str]) -> str:
        """CTEs from the inner cells up to per_contributor (node ids d0, d1, ..., cid, waived, v); `names`
        are the registered mapping tables."""
        joins = "".join(f" JOIN {checked(n)} h{i} ON h{i}.leaf = i.d{i}" for i, n in enumerate(names))
        # the deepest level column holds the leaf's own id (shallower leaves are padded with it)
        leaf_sql = "".join(f"h{i}.l{d.depth} AS d{i}, " for i, d in enumerate(dims))
        return f"""
        WITH leveled AS (
            SELECT {leaf_sql}i.cid, i.v FROM {checked(inner.name)} i{joins}
        ){self._rollup_ctes(dims, checked(inner.name))}"""

    def _rollup_ctes(self, dims: Sequence[DimensionLevels], inner: str) -> str:
        """per_contributor: the contributor sums at every combination of nodes (what GROUP BY cid,
        ROLLUP(dim 1 levels), ROLLUP(dim 2 levels), ... gives), computed as a lattice over one node id per
        dimension: for each dimension, from the deepest level up, the records at depth j are summed into
        their parents, so every record is rolled up exactly once and each coarser level comes from the one
        just below it (several times less work than DuckDB's grouping sets on per-contributor data)."""
        keys = [f"d{i}" for i in range(len(dims))]
        columns = ", ".join([*keys, "cid"])  # waived follows from cid: joined back at the end
        ctes, current = [], "leveled"
        for i, dim in enumerate(dims):
            depth_of = f"{_int_list(dim.depths)}[d{i} + 1]"
            parent_of = f"{_int_list(dim.parent_ids)}[d{i} + 1]" if dim.depth > 1 else "0"
            select = ", ".join(f"CAST({parent_of} AS INTEGER) AS d{i}" if k == f"d{i}" else k for k in keys)
            steps = [current]
            for j in range(dim.depth, 0, -1):
                # the nodes at depth j: leaves of that depth, and the parents summed in the step before
                source = current if j == dim.depth else f"(SELECT * FROM {current} UNION ALL SELECT * FROM {steps[-1]})"
                where = f" WHERE {depth_of} = {j}" if dim.depth > 1 else ""
                name = f"r{i}_{j - 1}"
                ctes.append(
                    f"{name} AS MATERIALIZED (SELECT {columns}, {self._agg}(v) AS v FROM "
                    f"(SELECT {select}, cid, v FROM {source}{where}) GROUP BY {columns})"
                )
                steps.append(name)
            union = " UNION ALL ".join(f"SELECT * FROM {step}" for step in steps)
            current = f"u{i}"
            ctes.append(f"{current} AS MATERIALIZED ({union})")
        ctes.append(
            f"per_contributor AS (SELECT * FROM {current} JOIN (SELECT DISTINCT cid, waived FROM {inner}) USING (cid))"
        )
        return "".join(f",\n        {cte}" for cte in ctes)

    @contextmanager
    def per_contributor_table(
        self, con: duckdb.DuckDBPyConnection, inner: InnerCells, dims: Sequence[DimensionLevels], names: Sequence[str]
    ) -> Iterator[str]:
        """The contributor sums at every cell (d0, d1, ..., cid, waived, v) as a temporary table, dropped
        afterwards: the statistics and the contributions then read one rollup instead of computing it twice."""
        table = checked(f"_per_contributor_{next(_registration_ids)}")
        con.execute(f"CREATE TEMP TABLE {table} AS {self._per_contributor_sql(inner, dims, names)} "
                    "SELECT * FROM per_contributor")  # fmt: skip
        try:
            yield table
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}")

    def _sums(
        self, inner: InnerCells, dims: Sequence[DimensionLevels], names: Sequence[str], table: str | None
    ) -> tuple[str, str]:
        """(a WITH clause, the relation of the contributor sums): computed in the query, or read from a
        per_contributor_table (no WITH clause then)."""
        if table is None:
            return self._per_contributor_sql(inner, dims, names), "per_contributor"
        return "", checked(table)

    def stats_sql(
        self, inner: InnerCells, dims: Sequence[DimensionLevels], names: Sequence[str], table: str | None = None
    ) -> str:
        """Per cell (node ids d0, d1, ...): X, N, n_all, the waived total, has_negative, the largest
        contributor (ties: the later name) and the top-K magnitudes. `table`: a per_contributor_table."""
        nodes = [f"d{i}" for i in range(len(dims))]
        head, sums = self._sums(inner, dims, names, table)
        magnitude = "abs(v)" if self.absolute else "v"
        tops = "".join(f", {inner.scaled(f'coalesce(top[{k}].m, 0)')} AS top_{k}" for k in range(1, self.top_k + 1))
        group = ", ".join(nodes)
        dims_out = "".join(f"{n}, " for n in nodes)
        return f"""{head + "," if head else "WITH"}
        contributor_names AS (SELECT DISTINCT cid, contributor FROM {checked(inner.name)})
        SELECT {dims_out}{inner.scaled("total")} AS total, n, n_all, {inner.scaled("waived_total")} AS waived_total,
               has_negative, cn.contributor AS largest{tops}
        FROM (
            SELECT {dims_out}
                   sum(v) AS total,
                   count(*) FILTER (WHERE NOT waived) AS n,
                   count(*) AS n_all,
                   coalesce(sum(v) FILTER (WHERE waived), 0) AS waived_total,
                   bool_or(v < 0) AS has_negative,
                   -- the K largest (magnitude, contributor) pairs: the first is the largest contributor
                   -- (of equal ones the later name), and their magnitudes are the top-K
                   max({{'m': {magnitude}, 'c': cid}}, {self.top_k}) FILTER (WHERE NOT waived) AS top
            FROM {sums}
            {"GROUP BY " + group if group else ""}
        ) cells
        LEFT JOIN contributor_names cn ON cn.cid = cells.top[1].c"""

    def contributions(
        self,
        con: duckdb.DuckDBPyConnection,
        inner: InnerCells,
        dims: Sequence[DimensionLevels],
        names: Sequence[str],
        table: str | None = None,
    ) -> ContributionRows:
        """Every contributor's own summed contribution to every cell it has a record in. `table`: a
        per_contributor_table. Contributors come as integers: millions of records then need no string each."""
        head, sums = self._sums(inner, dims, names, table)
        nodes = "".join(f"d{i}, " for i in range(len(dims)))
        sql = f"{head} SELECT {nodes}cid, {inner.scaled('v')} AS v FROM {sums}"
        rows = con.execute(sql).fetchnumpy()
        pairs = con.execute(f"SELECT DISTINCT cid, contributor FROM {checked(inner.name)}").fetchnumpy()
        cids = np.asarray(pairs["cid"], dtype=np.int64)
        by_cid = np.empty(int(cids.max()) + 1 if len(cids) else 0, dtype=object)
        by_cid[cids] = np.asarray(pairs["contributor"], dtype=object)
        return ContributionRows(
            [np.asarray(rows[f"d{i}"], dtype=np.int64) for i in range(len(dims))],
            np.asarray(rows["cid"], dtype=np.int64),
            np.asarray(rows["v"], dtype=np.float64),
            by_cid,
        )


@dataclass(frozen=True)
class ContributionRows:
    """Every contributor's record at every cell of a component: node ids per dimension, the contributor as an
    index into `names`, and its own summed contribution."""

    nodes: list[np.ndarray]
    contributor: np.ndarray
    value: np.ndarray
    names: np.ndarray  # contributor name per index (None where no contributor has that index)

    def of(self, contributors: Sequence[str]) -> ContributionRows:
        """The records of these contributors only."""
        wanted = set(contributors)
        mine = np.fromiter((n in wanted for n in self.names), dtype=bool, count=len(self.names))[self.contributor]
        return ContributionRows([n[mine] for n in self.nodes], self.contributor[mine], self.value[mine], self.names)

    def coded(self) -> tuple[np.ndarray, np.ndarray]:
        """(the names of the contributors with records, sorted; each record's index in them)."""
        present = np.flatnonzero(np.bincount(self.contributor, minlength=len(self.names)))
        distinct = self.names[present]
        order = np.argsort(distinct, kind="stable")
        rank = np.empty(len(self.names), dtype=np.int64)
        rank[present[order]] = np.arange(len(present))
        return distinct[order], rank[self.contributor]


def _int_list(values: np.ndarray) -> str:
    """A SQL list literal of integers we computed ourselves (node ids, depths): safe to paste."""
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


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
        coordinates=DimensionCoordinates.of(column, codes, name, frozenset(groups)),
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
