"""The cells of a release: every table an audience receives, with each table's primary verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aggregator.cellkey import CellKey
from aggregator.disclosure.model import PrimaryResult, ProtectionProblem, RuleParams
from aggregator.disclosure.rules import evaluate_primary
from aggregator.protocol import Disclosure, Protocol
from aggregator.store import RowSource, Store
from imvo_submit.periods import Period, PeriodMode

from .cells import TableCells, build_table_cells
from .logical import logical_links
from .problem import build_problem

COUNT_KINDS = ("count", "companies")


def settings_for(protocol: Protocol, table_id: str, audience_id: str) -> Disclosure:
    """The table's settings for this audience, or for the first audience that receives it (the history
    recomputes tables an audience does not receive)."""
    audience = protocol.audience(audience_id)
    if table_id not in audience.tables:
        audience = next(a for a in protocol.audiences if table_id in a.tables)
    return protocol.settings(table_id, audience.id)


def params_for(protocol: Protocol, table_id: str, audience_id: str) -> RuleParams:
    return settings_for(protocol, table_id, audience_id).rule_params()


def release_cells(
    source: RowSource,
    protocol: Protocol,
    audience_id: str,
    period: Period | str,
    table_ids: Sequence[str],
    *,
    waived: Mapping[str, frozenset[str]],
    overrides: Mapping[CellKey, bool] | None = None,
    monthly: bool = False,
    contributions: bool = False,
) -> tuple[list[TableCells], list[PrimaryResult]]:
    """Cells and primary verdicts of the tables for `period`, judged by the audience's rules.

    A cumulative table (periods = "year_to_date", ...) sums its months and gets its own keys, so it never
    merges with the monthly table of the same measure. `monthly` computes every table for the single month
    instead (the current cells of the release history). `overrides`: manual verdicts per cell key.
    """
    components, primaries = [], []
    for table_id in table_ids:
        spec = protocol.table(table_id)
        settings = settings_for(protocol, table_id, audience_id)
        params = settings.rule_params()
        for comp in build_table_cells(
            source,
            protocol,
            table_id,
            period,
            params,
            mode=PeriodMode.MONTH if monthly else spec.periods,
            waived=waived.get(table_id, frozenset()),
            count_unit=settings.count_unit,
            contributions=contributions,
        ):
            local = {i: overrides[k] for i, k in enumerate(comp.keys) if overrides and k in overrides}
            components.append(comp)
            primaries.append(evaluate_primary(comp.stats, params, local or None))
    return components, primaries


def positive_floors(protocol: Protocol, audience_id: str, table_ids: Sequence[str]) -> dict[str, float]:
    """Per table, the least value a non-empty cell can have: what every reader knows of a hidden cell.

    Every cell of a table has records, and the outputs tell an empty combination ("-", or no row) from a
    hidden one ("x"), so a hidden count is at least 1. A sum is at least the protocol's
    `min_positive_contribution` (default 0: a contribution may be 0)."""
    floors = {}
    for table_id in table_ids:
        if protocol.table(table_id).measure.kind in COUNT_KINDS:
            floors[table_id] = 1.0
        else:
            floors[table_id] = settings_for(protocol, table_id, audience_id).min_positive_contribution
    return floors


def release_problem(
    protocol: Protocol, audience_id: str, components: list[TableCells], primaries: list[PrimaryResult]
) -> ProtectionProblem:
    """The protection problem of a release's cells (build_problem with the protocol's settings for the
    audience: cost, a-priori upper factor, the lower bounds of non-empty cells and the logical relations
    between its tables), without insiders."""
    defaults = protocol.defaults
    floors = positive_floors(protocol, audience_id, sorted({c.table_id for c in components}))
    return build_problem(
        components,
        primaries,
        cost=defaults.cost,
        apriori_upper_factor=defaults.apriori_upper_factor,
        floors=floors,
        links=logical_links(protocol, components),
    )


def source_of(store: Store, protocol: Protocol) -> RowSource:
    """The rows aggregation reads for the protocol: accepted files, with the latest accepted figures of a
    company that sent none for a month when the protocol carries them forward ([series] non_response)."""
    return store.row_source(protocol.covenant.id, carry_forward=protocol.carries_forward)
