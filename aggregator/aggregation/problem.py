"""One release as one protection problem: all components' cells over distinct keys, with every relation.

Linked tables share cells through their canonical keys (same template, measure and filters): a shared key
is one cell of the problem, primary when any table finds it unsafe, with the largest protection asked.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np

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
        cells[key] |= {"n_all": 0, "scale": comp.measure_scale, "aux": "|~" in key}
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
        scale = comp.measure_scale
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
        for who, contributions in _component_contributions(con, comp, insiders).items():
            own[who].update(contributions)
    return own


def every_contribution(con: duckdb.DuckDBPyConnection, components: Sequence[TableCells]) -> dict[str, dict[str, float]]:
    """Every contributor's own summed contribution to every cell (and helper cell) it has a record in.

    The release history keeps this per release: it is what a change between two releases consists of, and
    what any insider knows of its own."""
    own: dict[str, dict[str, float]] = {}
    for comp in components:
        assert comp.query is not None, "TableCells built without its query"
        column = comp.query.contributor  # "group_id" | "company_id": a checked identifier
        everyone = [r[0] for r in con.execute(f"SELECT DISTINCT {column} FROM companies ORDER BY 1").fetchall()]
        for who, contributions in _component_contributions(con, comp, everyone).items():
            own.setdefault(who, {}).update(contributions)
    return own


def _component_contributions(
    con: duckdb.DuckDBPyConnection, comp: TableCells, insiders: list[str]
) -> dict[str, dict[str, float]]:
    query, dims = comp.query, comp.dimensions
    assert query is not None, "TableCells built without its query"
    with query.inner_cells(con, only=insiders) as inner, registered(con, dims) as names:
        rows = con.execute(query.contributions_sql(inner, dims, names)).df()
    position = {
        codes: i
        for i, codes in enumerate(zip(*(comp.frame[d.column] for d in dims), strict=True) if dims else [()] * len(comp))
    }
    result: dict[str, dict[str, float]] = {}
    for row in rows.itertuples(index=False):
        codes = tuple(d.codes[getattr(row, f"d{i}")] for i, d in enumerate(dims))
        result.setdefault(row.contributor, {})[comp.keys[position[codes]]] = float(row.v)
    for contributions in result.values():
        _add_aux_contributions(comp, contributions)
    return result


def _add_aux_contributions(comp: TableCells, contributions: dict[str, float]) -> None:
    """An insider's share of the helper cells follows from its share of the real cells."""
    for aux in comp.aux:
        pairs = sum(contributions.get(comp.keys[p], 0.0) for p in aux.parts)
        if pairs:  # no record in any part means no record in the total either
            contributions[aux.sum_key] = pairs
            contributions[aux.overlap_key] = pairs - contributions.get(comp.keys[aux.total], 0.0)
        total = contributions.get(comp.keys[aux.total], 0.0)
        if total:
            for part, gap in zip(aux.parts, aux.gap_keys, strict=True):
                contributions[gap] = total - contributions.get(comp.keys[part], 0.0)
