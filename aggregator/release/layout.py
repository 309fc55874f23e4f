"""Shapes shared by every writer: axes of a table, the two-way grid, chart levels, published values.

Only public fields of a cell are read here (codes, labels, depths, value, public status), so
nothing built on this module can show how a cell was protected.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.release.model import Release, ReleasedCell, ReleasedTable
from aggregator.release.texts import TEXTS, round_value


@dataclass(frozen=True)
class AxisItem:
    """One code along one dimension, in display order."""

    code: str
    label: str
    depth: int
    is_aggregate: bool  # a total or subtotal (shown bold)


@dataclass(frozen=True)
class Grid:
    """A two-dimensional table laid out as rows x columns; missing combinations are absent."""

    rows: list[AxisItem]
    cols: list[AxisItem]
    cells: dict[tuple[str, str], ReleasedCell]

    def at(self, row: AxisItem, col: AxisItem) -> ReleasedCell | None:
        return self.cells.get((row.code, col.code))


def axis(table: ReleasedTable, dim: int) -> list[AxisItem]:
    """The codes of one dimension in order of first appearance; aggregates are depths above the leaves."""
    deepest = max(cell.depths[dim] for cell in table.cells) if table.cells else 0
    seen: dict[str, AxisItem] = {}
    for cell in table.cells:
        code = cell.codes[dim]
        if code not in seen:
            depth = cell.depths[dim]
            seen[code] = AxisItem(code, cell.labels[dim], depth, depth < deepest)
    return list(seen.values())


def grid(table: ReleasedTable) -> Grid:
    """Cross-table view of a two-dimensional table."""
    if len(table.dimensions) != 2:
        raise ValueError(f"table {table.table_id} has {len(table.dimensions)} dimensions, not 2")
    cells = {(c.codes[0], c.codes[1]): c for c in table.cells}
    return Grid(axis(table, 0), axis(table, 1), cells)


def chart_level(items: list[AxisItem]) -> int | None:
    """The first level below the total (e.g. regions under the world total); None when there is none."""
    depths = sorted({item.depth for item in items if item.depth > 0})
    if depths:
        return depths[0]
    return None


def total_flags(table: ReleasedTable) -> list[bool]:
    """Per cell: is it a total or subtotal along some dimension (bold in the long layout)."""
    if not table.cells:
        return []
    deepest = [max(c.depths[d] for c in table.cells) for d in range(len(table.dimensions))]
    return [any(depth < deepest[d] for d, depth in enumerate(c.depths)) for c in table.cells]


def published_value(table: ReleasedTable, cell: ReleasedCell) -> float | None:
    """The figure a committee sees (rounded to the table's decimals), or None when suppressed."""
    if cell.suppressed or cell.value is None:
        return None
    return round_value(cell.value, table.decimals)


def has_gaps(table: ReleasedTable) -> bool:
    """Whether a cross table misses some row x column combinations (shown with the no-data dash)."""
    if len(table.dimensions) != 2:
        return False
    shape = grid(table)
    return len(shape.cells) < len(shape.rows) * len(shape.cols)


def value_header(release: Release, table: ReleasedTable) -> str:
    """'Value (companies)': the unit next to the numbers, where a reader looks for it."""
    value = TEXTS[release.language]["value"]
    if not table.unit:
        return value
    # 'Waarde (verhouding (gewogen naar werknemers))' reads badly: no brackets inside brackets.
    return f"{value}: {table.unit}" if "(" in table.unit else f"{value} ({table.unit})"
