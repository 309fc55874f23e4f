"""Contributors' own contributions to the cells of a problem: the one shape the engine passes them in.

An insider knows its own contribution to every cell; the release history keeps every contributor's, because a
change between two releases consists of them. At 10,000 companies a release has about 11 million such
records, so they are columns (numpy arrays), never per-record Python objects. Aggregation produces them,
suppression and the audit read one contributor's slice at a time, and the history combines and moves them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class Contributions:
    """Record r: contributor `names[who[r]]` contributed `value[r]` (its own summed contribution) to `cell[r]`.

    `names` are sorted and distinct, so the order of `who` is the order of the names. A (contributor, cell)
    pair occurs at most once. Records may be in any order: reads that need them by contributor sort once."""

    names: np.ndarray  # object array of contributor names
    who: np.ndarray  # int64 index into names
    cell: np.ndarray  # int64 cell index
    value: np.ndarray  # float64

    # ---- building

    @classmethod
    def empty(cls) -> Contributions:
        return cls(np.array([], dtype=object), *_columns(np.zeros(0), np.zeros(0), np.zeros(0)))

    @classmethod
    def from_names(cls, contributor: np.ndarray, cell: np.ndarray, value: np.ndarray) -> Contributions:
        """Records given by contributor name (each (contributor, cell) pair once)."""
        names, who = sorted_codes(np.asarray(contributor, dtype=object))
        return cls(names, *_columns(who, cell, value))

    @classmethod
    def of(cls, mapping: Mapping[str, Mapping[int, float]] | Contributions) -> Contributions:
        """From contributor -> {cell: own contribution} (hand-built problems); a Contributions as it is."""
        if isinstance(mapping, Contributions):
            return mapping
        names = np.array(sorted(mapping), dtype=object)
        counts = [len(mapping[name]) for name in names]
        cells = [cell for name in names for cell in mapping[name]]
        values = [value for name in names for value in mapping[name].values()]
        who = np.repeat(np.arange(len(names), dtype=np.int64), counts)
        return cls(names, *_columns(who, cells, values))

    @staticmethod
    def concat(parts: Iterable[Contributions]) -> Contributions:
        """The records of all parts over the union of their names (pairs must stay distinct, or be merged
        with `moved` afterwards)."""
        parts = list(parts)
        if not parts:
            return Contributions.empty()
        names = np.unique(np.concatenate([p.names for p in parts]))
        who = [np.searchsorted(names, p.names)[p.who] if len(p.names) else p.who for p in parts]
        cell = np.concatenate([p.cell for p in parts])
        value = np.concatenate([p.value for p in parts])
        return Contributions(names, np.concatenate(who), cell, value)

    # ---- reading

    def __len__(self) -> int:
        return len(self.who)

    @property
    def contributors(self) -> list[str]:
        return [str(name) for name in self.names.tolist()]

    def __contains__(self, name: object) -> bool:
        return name in self._positions

    def of_contributor(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The contributor's cells (ascending) and its own contributions to them; empty when unknown."""
        at = self._positions.get(name)
        if at is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        lo, hi = self._ptr[at], self._ptr[at + 1]
        return self._sorted_cell[lo:hi], self._sorted_value[lo:hi]

    def values_at(self, name: str, cells: np.ndarray) -> np.ndarray:
        """The contributor's own contribution to each of `cells` (0.0 where it has no record)."""
        own_cells, own_values = self.of_contributor(name)
        cells = np.asarray(cells, dtype=np.int64)
        if not len(own_cells):
            return np.zeros(len(cells))
        at = np.minimum(np.searchsorted(own_cells, cells), len(own_cells) - 1)
        return np.where(own_cells[at] == cells, own_values[at], 0.0)

    def by_contributor(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ptr, cell, value) sorted by contributor, then cell: contributor k's records are ptr[k]:ptr[k+1]."""
        return self._ptr, self._sorted_cell, self._sorted_value

    def as_dict(self) -> dict[str, dict[int, float]]:
        """contributor -> {cell: own contribution}, every name included (for messages and tests)."""
        ptr, cells, values = self.by_contributor()
        cell_list, value_list = cells.tolist(), values.tolist()
        bounds = ptr.tolist()
        return {
            str(name): dict(zip(cell_list[a:b], value_list[a:b], strict=True))
            for name, a, b in zip(self.names.tolist(), bounds[:-1], bounds[1:], strict=True)
        }

    # ---- transforming

    def only(self, names: Iterable[str]) -> Contributions:
        """The records of these contributors (their names only)."""
        wanted = np.array(sorted(set(names) & set(self._positions)), dtype=object)
        keep_who = np.searchsorted(self.names, wanted) if len(wanted) else np.zeros(0, dtype=np.int64)
        renumber = np.full(len(self.names), -1, dtype=np.int64)
        renumber[keep_who] = np.arange(len(keep_who))
        kept = renumber[self.who] >= 0 if len(self.who) else np.zeros(0, dtype=bool)
        return Contributions(wanted, renumber[self.who[kept]], self.cell[kept], self.value[kept])

    def where(self, keep: np.ndarray) -> Contributions:
        """The records where `keep` (a mask over records) holds, over the same names."""
        return Contributions(self.names, self.who[keep], self.cell[keep], self.value[keep])

    def restricted(self, cells: np.ndarray) -> Contributions:
        """The records of `cells`, renumbered to their positions in `cells` (a subproblem); contributors left
        without a record are dropped."""
        position = np.full(int(max(self.cell.max(initial=-1), np.max(cells, initial=-1))) + 1, -1, dtype=np.int64)
        position[np.asarray(cells, dtype=np.int64)] = np.arange(len(cells))
        new_cell = position[self.cell]
        kept = self.where(new_cell >= 0)
        kept = Contributions(kept.names, kept.who, new_cell[new_cell >= 0], kept.value)
        return kept.only(kept.names[np.unique(kept.who)].tolist())

    def moved(self, where: np.ndarray) -> Contributions:
        """Cell c becomes where[c]; of a contributor's records that land on one cell, the one of the lowest
        original cell is kept."""
        cell = np.asarray(where, dtype=np.int64)[self.cell]
        order = lexsort((self.cell, cell, self.who))
        who, cell = self.who[order], cell[order]
        first = np.r_[True, (who[1:] != who[:-1]) | (cell[1:] != cell[:-1])] if len(order) else np.zeros(0, bool)
        return Contributions(self.names, who[first], cell[first], self.value[order][first])

    def largest_in(self, cells: np.ndarray) -> list[str]:
        """The contributors that are the largest (by |value|; of equal ones the greater name) in some cell
        of the mask `cells`: the insiders worth auditing."""
        mine = np.asarray(cells, dtype=bool)[self.cell]
        who, cell, size = self.who[mine], self.cell[mine], np.abs(self.value[mine])
        if not len(who):
            return []
        largest = pd.Series(size).groupby(cell).transform("max").to_numpy()
        top = size == largest
        winners = pd.Series(who[top]).groupby(cell[top]).max().to_numpy()
        return [str(self.names[w]) for w in np.unique(winners)]

    # ---- sorted views, computed once

    @functools.cached_property
    def _order(self) -> np.ndarray:
        return pair_order(self.who, self.cell)

    @functools.cached_property
    def _ptr(self) -> np.ndarray:
        return np.searchsorted(self.who[self._order], np.arange(len(self.names) + 1))

    @functools.cached_property
    def _sorted_cell(self) -> np.ndarray:
        return self.cell[self._order]

    @functools.cached_property
    def _sorted_value(self) -> np.ndarray:
        return self.value[self._order]

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        return {str(name): k for k, name in enumerate(self.names.tolist())}

    def __repr__(self) -> str:
        return f"Contributions({len(self.names)} contributors, {len(self.who)} records)"


def _columns(who, cell, value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.asarray(who, dtype=np.int64),
        np.asarray(cell, dtype=np.int64),
        np.asarray(value, dtype=np.float64),
    )


# ------------------------------------------------------------------------------------- sorting millions


def sorted_codes(names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct names in sorted order, each name's index in them): hashing first, then sorting only the
    distinct names, is several times faster than np.unique's sort of millions of strings."""
    codes, distinct = pd.factorize(names, use_na_sentinel=False)
    distinct = np.asarray(distinct, dtype=object)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[codes]


def pair_order(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A stable sort by (first, second) of non-negative integers: two stable passes, which numpy does as
    radix sorts when the numbers fit 16 bits (linear time: much faster than lexsort on millions)."""
    order = np.argsort(_narrow(second), kind="stable")
    return order[np.argsort(_narrow(first[order]), kind="stable")]


def stable_order(values: np.ndarray) -> np.ndarray:
    """np.argsort(values, kind="stable") of non-negative integers, as a radix sort when they fit 16 bits."""
    return np.argsort(_narrow(values), kind="stable")


def _narrow(values: np.ndarray) -> np.ndarray:
    return values.astype(np.uint16) if len(values) and values.max() < 1 << 16 else values


def lexsort(keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """np.lexsort(keys) (the last key sorts first) of non-negative integers: one stable argsort of a combined
    int64 key when the keys fit in 63 bits, several times faster than lexsort on millions of records."""
    widths = [int(key.max()) + 1 if len(key) else 1 for key in keys]
    if math.prod(widths) >= 2**63:
        return np.lexsort(keys)
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    for key, width in zip(reversed(keys), reversed(widths), strict=True):
        combined = combined * width + key
    return np.argsort(combined, kind="stable")
