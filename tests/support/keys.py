"""Cell keys for hand-built protection problems."""

from __future__ import annotations

from aggregator.cellkey import CellKey, Coordinate, Quantity


def cell(table: str = "t", **codes: object) -> CellKey:
    """The key bench.problems.table_problem gives the cell of `table` at these codes, e.g. cell(d0=1, d1="T")."""
    return CellKey(Quantity(table, "value"), [Coordinate(d, str(c)) for d, c in codes.items()])


def named(*names: str) -> list[CellKey]:
    """One key per name, for problems whose cells are simply named ("a", "b", "total")."""
    return [CellKey(Quantity("t", "value"), [Coordinate("cell", name)]) for name in names]
