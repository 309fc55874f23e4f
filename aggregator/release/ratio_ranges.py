"""Published ranges of hidden ratio cells: what any reader derives from the ratios a table shows.

A ratio cell is sum(numerator) / sum(denominator) over its contributors, so a parent's ratio is the average of
its children's ratios weighted by their (unpublished, positive) denominators. A reader who sees printed ratios
and nothing of the parts therefore knows exactly this much, and the release shows it:

- a hidden cell whose children along a dimension are all printed lies between the least and the greatest of
  them (an empty child, shown as "–", weighs nothing);
- a hidden cell that is the only hidden child of a printed parent lies above the parent when the parent is
  above every printed sibling (the hidden child must pull the average up), and below it when the parent is
  below every printed sibling (down to 0 when the protocol refuses negative values).

Printed values are rounded: each is taken as the interval of half its last digit, and the result is rounded
outward. Nothing else is derivable without the weights, so every other hidden ratio cell keeps no range.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable

from aggregator.disclosure.ranges import outward

from .model import ReleasedCell, ReleasedTable

ParentOf = Callable[[int, str], str | None]  # (dimension, code) -> the parent code; None for the total


def with_ratio_ranges(table: ReleasedTable, parent_of: ParentOf, non_negative: bool) -> ReleasedTable:
    """`table` (a ratio table) with the derivable range on each hidden cell that has none."""
    if table.kind != "ratio":
        return table
    children = _children(table.cells, parent_of, len(table.dimensions))
    by_codes = {c.codes: c for c in table.cells}
    cells = []
    for cell in table.cells:
        if cell.suppressed and cell.range_lo is None and cell.range_hi is None:
            lo, hi = _derived(cell, by_codes, children, parent_of, table.decimals, non_negative)
            low, high = outward(lo, hi, table.decimals)
            if low is not None or high is not None:
                cell = dataclasses.replace(cell, range_lo=low, range_hi=high)
        cells.append(cell)
    return dataclasses.replace(table, cells=cells)


def _children(cells: list[ReleasedCell], parent_of: ParentOf, dims: int) -> dict:
    """(dimension, parent's codes) -> the cells one level below it along that dimension."""
    found = defaultdict(list)
    for cell in cells:
        for d in range(dims):
            parent = parent_of(d, cell.codes[d])
            if parent is not None:
                found[(d, cell.codes[:d] + (parent,) + cell.codes[d + 1 :])].append(cell)
    return found


def _derived(cell, by_codes, children, parent_of, decimals: int, non_negative: bool) -> tuple[float, float]:
    half = 0.5 * 10.0**-decimals

    def printed(c: ReleasedCell) -> float:  # as the reader sees it: rounded to the table's decimals
        return round(float(c.value), decimals)

    lo, hi = -math.inf, math.inf
    for d in range(len(cell.codes)):
        below = children.get((d, cell.codes))
        if below and all(not c.suppressed for c in below):
            lo, hi = max(lo, min(printed(c) for c in below) - half), min(hi, max(printed(c) for c in below) + half)
        parent_code = parent_of(d, cell.codes[d])
        parent = None if parent_code is None else by_codes.get(cell.codes[:d] + (parent_code,) + cell.codes[d + 1 :])
        if parent is None or parent.suppressed:
            continue
        siblings = [c for c in children[(d, parent.codes)] if c is not cell]
        if not siblings or any(c.suppressed for c in siblings):
            continue  # another hidden child could be the one that moves the average
        p = printed(parent)
        if p - half > max(printed(c) for c in siblings) + half:
            lo = max(lo, p - half)
        elif p + half < min(printed(c) for c in siblings) - half:
            hi = min(hi, p + half)
            lo = max(lo, 0.0) if non_negative else lo
    return lo, hi
