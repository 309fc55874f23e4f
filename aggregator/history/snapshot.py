"""Snapshots: one release's protection problem as the ledger keeps it, and the current cells of a month."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from aggregator.aggregation import TableCells, key_index, release_contributions
from aggregator.aggregation.logical import with_slack_records
from aggregator.aggregation.release import release_cells, release_problem, source_of
from aggregator.cellkey import CellKey
from aggregator.disclosure.model import ProtectionProblem
from aggregator.protocol import Protocol
from aggregator.store import Store
from imvo_submit.periods import Period, PeriodMode

NEW = 1 << 62  # the ledger sequence of a release not recorded yet: after every other


@dataclass(frozen=True)
class Snapshot:
    """One release's protection problem as the ledger keeps it, with per cell its table, its key for one
    month (`bases`), the months it spans and whether it is additive over them.

    `problem.insiders` holds *every* contributor's own contribution to every cell (not only the largest
    ones), because the change between two releases is computed from it."""

    release_id: str  # "" until recorded
    period: Period
    audience_id: str
    problem: ProtectionProblem
    hidden: np.ndarray
    tables: list[str]
    bases: list[CellKey]
    spans: list[tuple[Period, ...]]
    additive: np.ndarray
    sequence: int = NEW  # order of the release in the ledger

    @property
    def months(self) -> set[Period]:
        return {month for span in self.spans for month in span}

    def linkable(self, i: int) -> bool:
        """Whether cell i's current value is a sum of monthly cells: not a helper cell, and additive over
        months when it covers several (companies are counted once over months: a year's count is no sum)."""
        return not self.problem.keys[i].is_helper and (len(self.spans[i]) == 1 or bool(self.additive[i]))


def snapshot_of(
    store: Store,
    protocol: Protocol,
    period: Period | str,
    audience_id: str,
    components: list[TableCells],
    problem: ProtectionProblem,
    *,
    monthly: bool = False,
    gap_records: bool = True,
) -> Snapshot:
    """The snapshot of a freshly built problem (nothing hidden yet), with every contributor's contributions.

    `gap_records=False` leaves out those of the gap helper cells, which the ledger does not keep (they
    follow from the others; the ledger derives them on load): for a snapshot that is only recorded."""
    period = Period.of(period)
    tables, spans, additive = _layout(protocol, period, components, problem, monthly)
    source = source_of(store, protocol)
    own = with_slack_records(
        release_contributions(source, components, key_index(problem.keys), gaps=gap_records), problem
    )
    bases = [key.base for key in problem.keys]
    hidden = np.zeros(problem.size, dtype=bool)
    return Snapshot("", period, audience_id, replace(problem, insiders=own), hidden, tables, bases, spans, additive)


def release_months(protocol: Protocol, period: Period | str, components: list[TableCells]) -> set[Period]:
    """The months the cells of a release span (those of its snapshot), without building the snapshot."""
    period = Period.of(period)
    return {month for comp in components for month in protocol.table(comp.table_id).periods.months(period)}


def _layout(
    protocol: Protocol, period: Period, components: list[TableCells], problem: ProtectionProblem, monthly: bool
) -> tuple[list[str], list[tuple[Period, ...]], np.ndarray]:
    """Per cell of the problem: its table, the months it spans and whether it is additive."""
    index = key_index(problem.keys)
    tables = [""] * problem.size
    spans: list[tuple[Period, ...]] = [(period,)] * problem.size
    additive = np.ones(problem.size, dtype=bool)
    for comp in components:
        mode = PeriodMode.MONTH if monthly else protocol.table(comp.table_id).periods
        span = mode.months(period)
        for key in [*comp.keys, *(k for a in comp.aux for k in (a.sum_key, a.overlap_key))]:
            i = index[key]
            tables[i] = tables[i] or comp.table_id
            spans[i] = span
            additive[i] = comp.additive
    return tables, spans, additive


def current_snapshot(
    store: Store,
    protocol: Protocol,
    audiences: Sequence[str],
    month: Period,
    table_ids: Sequence[str],
    waived: Mapping[str, frozenset[str]],
) -> Snapshot:
    """The current cells of one month: every table computed for the month from the data in the store now.

    A cell is primary when it fails the rules of every audience in `audiences` (the loosest rules win) and
    gets the smallest protection they ask: one audience's legitimate release must not count as a disclosure
    under another's stricter rules. A release passes only its own audience, so there the rules are its own.
    The cells were never published as such: all hidden, unknown to the attacker.
    """
    source = source_of(store, protocol)
    built = []
    for audience_id in audiences:
        components, primaries = release_cells(
            source,
            protocol,
            audience_id,
            month,
            sorted(table_ids),
            waived=waived,
            monthly=True,
            contributions=audience_id == audiences[0],  # the snapshot's components
        )
        problem = release_problem(protocol, audience_id, components, primaries)
        built.append((components, problem))
    components, problem = built[0]
    for _, other in built[1:]:
        problem = replace(
            problem,
            primary=problem.primary & other.primary,
            upl=np.minimum(problem.upl, other.upl),
            lpl=np.minimum(problem.lpl, other.lpl),
        )
    snap = snapshot_of(store, protocol, month, audiences[0], components, problem, monthly=True)
    return replace(snap, release_id=f"current {month}", hidden=np.ones(problem.size, dtype=bool))
