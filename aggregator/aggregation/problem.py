"""One release as one protection problem: all components' cells over distinct keys, with every relation.

Linked tables share cells through their canonical keys (same template, measure and filters): a shared key
is one cell of the problem, primary when any table finds it unsafe, with the largest protection asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from aggregator.cellkey import CellKey
from aggregator.disclosure.bounds import tightened
from aggregator.disclosure.model import PrimaryResult, ProtectionProblem
from aggregator.errors import AggregatorError
from aggregator.store import RowSource

from .cells import TableCells
from .contributions import insiders_of, release_contributions
from .logical import LogicalLink, with_slack_records

COSTS = ("value", "contributors", "unity")


class InconsistentCells(AggregatorError):
    """Two tables give one shared cell different values: they were built from different data."""


def build_problem(
    components: list[TableCells],
    primaries: list[PrimaryResult],
    *,
    cost: str,
    apriori_upper_factor: float,
    floors: Mapping[str, float] | None = None,
    links: Sequence[LogicalLink] = (),
) -> ProtectionProblem:
    """Merge the components of a release (primaries[i] belongs to components[i]) into one problem, without
    insiders (with_insiders adds them).

    Cells are ordered by key, so the result does not depend on the order of the tables. A-priori bounds:
    [floor, factor x the largest |value| of the same measure], where `floors` gives per table id the least
    value a non-empty cell can have (every cell of a table exists because it has records, and the outputs
    tell empty from hidden: 1 for counts; see `release.positive_floors`), never above the cell's value; a
    measure with negative contributions gets the symmetric lower bound -upper. Helper cells of non-additive
    tables (see AuxRelation) are hidden (primary), need no protection and have the lower bound 0. Each
    logical link (smaller <= larger, logical.py) adds such a helper: `larger = smaller + slack`.
    """
    if cost not in COSTS:
        raise AggregatorError(f"unknown cost '{cost}'", hint=f"use one of {', '.join(COSTS)}")
    if len(components) != len(primaries):
        raise ValueError("one PrimaryResult per component is needed")
    cells = _collect_cells(components, primaries, floors or {})
    _add_slack_cells(cells, links)
    keys = sorted(cells)
    index = {key: i for i, key in enumerate(keys)}
    relations = sorted(
        {
            (index[c.keys[t]], tuple(sorted(index[c.keys[p]] for p in parts)))
            for c in components
            for t, parts in c.relations
        }
        | {rel for c in components for rel in _aux_problem_relations(c, index)}
        | {(index[x.larger], tuple(sorted((index[x.smaller], index[x.slack])))) for x in links}
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
        fixed=np.zeros(len(keys), dtype=bool),
    )
    return tightened(problem)  # e.g. a region of three non-empty countries is at least 3


def with_insiders(
    source: RowSource,
    problem: ProtectionProblem,
    components: Sequence[TableCells],
    primaries: Sequence[PrimaryResult],
) -> ProtectionProblem:
    """The problem with its insiders: every cell's own contribution of each contributor that is the largest
    in some primary cell (what the insider audit attacks with)."""
    only = insiders_of(components, primaries)
    insiders = release_contributions(source, components, key_index(problem.keys), only=only)
    return replace(problem, insiders=with_slack_records(insiders, problem))


def key_index(keys: Sequence[CellKey]) -> dict[CellKey, int]:
    return {key: i for i, key in enumerate(keys)}


def _collect_cells(
    components: list[TableCells], primaries: list[PrimaryResult], floors: Mapping[str, float]
) -> dict[CellKey, dict]:
    cells: dict[CellKey, dict] = {}
    for comp, primary in zip(components, primaries, strict=True):
        values = comp.stats.total
        weights = margin_weights(comp)
        floor = float(floors.get(comp.table_id, 0.0))
        for i, key in enumerate(comp.keys):
            _merge(cells, key, comp, values[i], bool(primary.unsafe[i]), primary.upl[i], primary.lpl[i])
            cells[key]["n_all"] = max(cells[key]["n_all"], int(comp.stats.n_all[i]))
            cells[key]["weight"] = max(cells[key].get("weight", 1.0), float(weights[i]))
            cells[key]["floor"] = max(cells[key].get("floor", 0.0), floor)
        for aux in comp.aux:
            pairs = float(values[list(aux.parts)].sum())
            _merge(cells, aux.sum_key, comp, pairs, True, 0.0, 0.0)
            _merge(cells, aux.overlap_key, comp, pairs - float(values[aux.total]), True, 0.0, 0.0)
            for part, gap in zip(aux.parts, aux.gap_keys, strict=True):
                _merge(cells, gap, comp, float(values[aux.total] - values[part]), True, 0.0, 0.0)
    return cells


def _add_slack_cells(cells: dict[CellKey, dict], links: Sequence[LogicalLink]) -> None:
    """One hidden slack cell per link, larger minus smaller; a negative one means the relation is wrong."""
    for link in links:
        small, large = cells[link.smaller], cells[link.larger]
        value = float(large["value"]) - float(small["value"])
        if value < -1e-9 * max(1.0, abs(float(large["value"]))):
            raise InconsistentCells(
                f"relation {link.relation} says {link.smaller.describe()} ({small['value']:g}) is at most "
                f"{link.larger.describe()} ({large['value']:g}), and it is not",
                hint="correct or remove the relation in the protocol's [[relations]]",
            )
        cells[link.slack] = {"value": max(value, 0.0), "primary": True, "upl": 0.0, "lpl": 0.0, "n_all": 0}
        cells[link.slack] |= {"scale": large["scale"], "aux": True}


def _merge(cells: dict, key: CellKey, comp: TableCells, value: float, primary: bool, upl, lpl) -> None:
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


def _aux_problem_relations(comp: TableCells, index: dict[CellKey, int]):
    for aux in comp.aux:
        pairs = index[aux.sum_key]
        yield (pairs, tuple(sorted(index[comp.keys[p]] for p in aux.parts)))
        yield (pairs, tuple(sorted((index[comp.keys[aux.total]], index[aux.overlap_key]))))
        for part, gap in zip(aux.parts, aux.gap_keys, strict=True):
            yield (index[comp.keys[aux.total]], tuple(sorted((index[comp.keys[part]], index[gap]))))


def _bounds(components, keys, cells, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per measure scale: upper = factor x max |value|; helper sums may reach the sum of their parts."""
    largest: dict = {}  # per quantity
    negative: dict = {}
    widest_aux: dict = {}
    for comp in components:
        scale = comp.quantity
        biggest = float(np.abs(comp.stats.total).max()) if len(comp) else 0.0
        largest[scale] = max(largest.get(scale, 0.0), biggest)
        negative[scale] = negative.get(scale, False) or bool(comp.stats.has_negative.any())
        widest_aux[scale] = max([widest_aux.get(scale, 1), *(len(a.parts) for a in comp.aux)])
    upper = np.empty(len(keys))
    lower = np.zeros(len(keys))
    for i, key in enumerate(keys):
        cell = cells[key]
        scale = cell["scale"]
        bound = factor * max(largest[scale], 1.0)
        upper[i] = bound * widest_aux[scale] if cell["aux"] else bound
        if negative[scale]:
            lower[i] = -upper[i]
        elif not cell["aux"]:
            lower[i] = min(cell.get("floor", 0.0), cell["value"])  # a non-empty cell: at least its floor
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
