"""The protocol's logical relations (smaller table <= larger table) as links between the cells of a release.

Each link becomes, in the protection problem, `larger = smaller + slack` with a hidden slack cell >= 0 that is
never published and needs no protection (like the helper cells of company counts): the attacker's model then
knows that the smaller cell cannot exceed the larger one, and each contributor knows its own share of the
slack (its larger figure minus its smaller one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aggregator.cellkey import CellKey, HelperRole, Quantity
from aggregator.disclosure.contributions import Contributions
from aggregator.disclosure.model import ProtectionProblem
from aggregator.protocol import Protocol

from .cells import TableCells
from .contributions import gap_contributions


@dataclass(frozen=True)
class LogicalLink:
    """One cell of a smaller table and the cell of the larger table with the same coordinates."""

    smaller: CellKey
    larger: CellKey
    relation: str  # the protocol relation's id

    @property
    def slack(self) -> CellKey:
        return self.larger.helper_cell(self.relation, 0, HelperRole.SLACK)


def logical_links(protocol: Protocol, components: Sequence[TableCells]) -> list[LogicalLink]:
    """Every pair of cells the protocol's relations link in these components (both tables present), in the
    order of the relations and of the smaller table's cells."""
    by_table = {c.table_id: c for c in components if c.component == "value"}
    links = []
    for relation in protocol.relations:
        small, large = by_table.get(relation.smaller), by_table.get(relation.larger)
        if small is None or large is None or not _ordered(small.quantity, large.quantity):
            continue
        at = {key.coordinates: key for key in large.keys}
        for key in small.keys:
            other = at.get(key.coordinates)
            if other is not None and other != key:
                links.append(LogicalLink(key, other, relation.id))
    return links


def _ordered(small: Quantity | None, large: Quantity | None) -> bool:
    """Companies counted as companies are not at most the same companies counted as groups."""
    if small is None or large is None:
        return False
    return not (small.measure == "companies[company]" and large.measure == "companies[group]")


def slack_triples(problem: ProtectionProblem) -> np.ndarray:
    """(larger, smaller, slack) cell indices of every logical link in the problem, one row each."""
    rows = []
    for total, parts in problem.relations:
        roles = [problem.keys[c].helper for c in parts]
        if len(parts) == 2 and any(h is not None and h.role is HelperRole.SLACK for h in roles):
            slack = parts[0] if roles[0] is not None and roles[0].role is HelperRole.SLACK else parts[1]
            rows.append((total, parts[1] if slack == parts[0] else parts[0], slack))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def with_slack_records(own: Contributions, problem: ProtectionProblem) -> Contributions:
    """The contributions with each contributor's share of every slack cell added: its larger figure minus its
    smaller one, for every contributor with a record in the larger cell."""
    links = slack_triples(problem)
    if not len(links) or not len(own):
        return own
    derived = gap_contributions(own.who, own.cell, own.value, links[:, 0], links[:, 1], links[:, 2])
    columns = (np.concatenate(c) for c in zip((own.who, own.cell, own.value), derived, strict=True))
    return Contributions(own.names, *columns)
