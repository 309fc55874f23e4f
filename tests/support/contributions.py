"""Contributions keyed by cell key: the dict view the reference computations in the tests compare against."""

from __future__ import annotations

from aggregator.aggregation.contributions import component_contributions
from aggregator.cellkey import CellKey


def by_key(con, components) -> dict[str, dict[CellKey, float]]:
    """Every contributor's own contribution to every cell and helper cell of `components`, by key."""
    own: dict[str, dict[CellKey, float]] = {}
    for comp in components:
        keys, records = component_contributions(con, comp)
        for who, cells in records.as_dict().items():
            own.setdefault(who, {}).update({keys[c]: v for c, v in sorted(cells.items())})
    return own
