"""Cell keys: the identity of every cell the engine protects, and the one place their text form is read.

A cell is one number: a quantity (template, measure, filters, months summed) at one combination of
dimension codes. Two tables that count the same quantity share the cells they have in common, which is
how linked tables are protected together. The engine adds cells of its own: helper cells that let the
attacker's model bound company counts (they belong to one table), and, when a release is protected with
the earlier ones, views of a cell as published in an earlier release, as the data stand now, or its change
since a release.

`CellKey` is a value: equal keys are the same cell. Its text form (`str(key)`) is what the ledger and the
secretariat's reports hold; `CellKey.parse` reads it back and is the only code that takes a key's text
apart. Keys order by their text, which makes every tie-break in the engine independent of table order:

    [~<view>:]<template>|<measure>|<filters>[@<months>]|<column>=[<hierarchy>:]<code>|...[|~<table>:<n>:<role>]

Dimensions appear sorted by column, totals left out; a code that is a group of a hierarchy carries the
hierarchy's name, so two hierarchies reusing a group name never share a cell by accident. Characters of
the grammar inside codes and filters are percent-escaped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from aggregator.errors import AggregatorError
from imvo_submit.periods import PeriodMode


class InvalidCellKey(AggregatorError):
    """A cell key's text that does not follow the grammar (a damaged ledger or a mistyped override)."""


class HelperRole(StrEnum):
    """The helper cells of a company-count relation (see aggregation.AuxRelation)."""

    SUM = "sum"  # the sum of the parts
    OVERLAP = "overlap"  # companies counted in more than one part
    GAP = "gap"  # total minus one part
    SLACK = "slack"  # a logical relation's larger cell minus its smaller cell (protocol relations)


class ViewKind(StrEnum):
    """How a cell of an earlier release or of the current data enters a combined problem."""

    EARLIER = "earlier"  # as published (or hidden) in an earlier release
    CURRENT = "current"  # one month's cell as the data stand now
    CHANGE = "change"  # an earlier cell minus its current value: what changed since that release
    DIFFERENCE = "difference"  # a cell of a later month minus the same cell of an earlier one (a series)


@dataclass(frozen=True, slots=True)
class Quantity:
    """What a cell counts. Cells of equal quantities are comparable and share a-priori bounds."""

    template: str
    measure: str  # "count", "companies[group]", "sum(column)" or "sum(column*weight)"
    filters: str = "-"  # the table's filter signature ("column=value&..."), "-" without filters
    periods: PeriodMode = PeriodMode.MONTH  # the months a cell of a release sums

    @property
    def monthly(self) -> Quantity:
        """The same quantity for a single month: a cumulative cell is a sum of these."""
        return replace(self, periods=PeriodMode.MONTH)


@dataclass(frozen=True, slots=True)
class Coordinate:
    """A cell's code in one dimension (a total is no coordinate: the dimension is left out)."""

    column: str
    code: str
    hierarchy: str | None = None  # the hierarchy whose group this code is; None for a leaf


@dataclass(frozen=True, slots=True)
class Helper:
    """A helper cell of relation `relation` of table `table_id` (one part's gap names the part); the slack of a
    logical relation between tables names the relation as its table, with relation 0."""

    table_id: str
    relation: int
    role: HelperRole
    part: int | None = None


@dataclass(frozen=True, slots=True)
class View:
    kind: ViewKind
    source: str  # the release id (EARLIER, CHANGE), the month (CURRENT) or '<month>..<month>' (DIFFERENCE)


class CellKey:
    """The identity of one cell; compared, hashed and ordered by its text form."""

    __slots__ = ("quantity", "coordinates", "helper", "view", "_text")

    quantity: Quantity
    coordinates: tuple[Coordinate, ...]
    helper: Helper | None
    view: View | None

    def __init__(
        self,
        quantity: Quantity,
        coordinates: Iterable[Coordinate] = (),
        helper: Helper | None = None,
        view: View | None = None,
    ):
        coords = tuple(sorted(coordinates, key=lambda c: c.column))
        _init(self, quantity, coords, helper, view, _format(quantity, coords, helper, view))

    # ---- value semantics

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"CellKey({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CellKey) and self._text == other._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __lt__(self, other: CellKey) -> bool:
        return self._text < other._text

    def __le__(self, other: CellKey) -> bool:
        return self._text <= other._text

    def __gt__(self, other: CellKey) -> bool:
        return self._text > other._text

    def __ge__(self, other: CellKey) -> bool:
        return self._text >= other._text

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CellKey is immutable")

    def __reduce__(self):  # pickling (worker processes) goes through the text form
        return (CellKey.parse, (self._text,))

    # ---- derived keys

    @property
    def is_helper(self) -> bool:
        return self.helper is not None

    @property
    def is_gap(self) -> bool:
        return self.helper is not None and self.helper.role is HelperRole.GAP

    @property
    def base(self) -> CellKey:
        """The key of the same cell for one month and outside any view: what an earlier release's cell and
        the current data's cell of a month have in common."""
        if self.view is None and self.quantity.periods is PeriodMode.MONTH:
            return self
        return self._derived(quantity=self.quantity.monthly, view=None)

    def in_view(self, kind: ViewKind, source: str) -> CellKey:
        return self._derived(view=View(kind, source))

    def with_periods(self, periods: PeriodMode) -> CellKey:
        return self._derived(quantity=replace(self.quantity, periods=periods))

    def helper_cell(self, table_id: str, relation: int, role: HelperRole, part: int | None = None) -> CellKey:
        """The helper cell of a company-count relation whose total is this cell."""
        return self._derived(helper=Helper(table_id, relation, role, part))

    def _derived(self, **changes) -> CellKey:
        fields = {"quantity": self.quantity, "helper": self.helper, "view": self.view} | changes
        key = object.__new__(CellKey)
        q, h, v = fields["quantity"], fields["helper"], fields["view"]
        _init(key, q, self.coordinates, h, v, _format(q, self.coordinates, h, v))
        return key

    def describe(self) -> str:
        """The key in words for messages: a view is spelled out."""
        if self.view is None:
            return self._text
        inner = str(self._derived(view=None))
        source = self.view.source
        return {
            ViewKind.EARLIER: f"{inner} [as published in release {source}]",
            ViewKind.CURRENT: f"{inner} [{source} as the data stand now]",
            ViewKind.CHANGE: f"{inner} [its change since release {source}]",
            ViewKind.DIFFERENCE: f"{inner} [its change from {source.replace('..', ' to ')}]",
        }[self.view.kind]

    # ---- the one parser

    @classmethod
    def parse(cls, text: str) -> CellKey:
        """The key written as `text` (by str(key), or by an earlier version that wrote helper cells without
        their table: those read with table ''). Raises InvalidCellKey."""
        try:
            view, rest = _parse_view(text)
            head, _, body = _split_quantity(rest)
            segments = body.split("|")
            helper = _parse_helper(segments.pop()) if segments[-1].startswith("~") else None
            if segments == [""]:  # a cell without coordinates ends its quantity with an empty segment
                segments = []
            coords = tuple(_parse_coordinate(s) for s in segments)
            key = object.__new__(cls)
            _init(key, _parse_quantity(head), coords, helper, view, text)
        except (ValueError, KeyError, IndexError) as exc:
            raise InvalidCellKey(
                f"'{text}' is not a cell key ({exc})",
                hint="copy cell keys from `aggregator releases show` or the audit report",
            ) from None
        if str(CellKey(key.quantity, key.coordinates, key.helper, key.view)) != text:
            raise InvalidCellKey(f"'{text}' is not a cell key in its canonical form")
        return key

    # ---- many keys at once

    @classmethod
    def table_cells(
        cls, quantity: Quantity, columns: Sequence[DimensionCoordinates], nodes: np.ndarray
    ) -> list[CellKey]:
        """The keys of a table's cells: `nodes[c, d]` is cell c's node id in dimension d (0 = the total).

        Built a column at a time (the text with numpy, the coordinates per node once), not key by key:
        tables run to tens of thousands of cells."""
        n = len(nodes)
        texts = np.full(n, _format_quantity(quantity) + "|", dtype=object)
        coords: list[list[Coordinate]] = [[] for _ in range(n)]
        first = np.ones(n, dtype=bool)
        for d in sorted(range(len(columns)), key=lambda d: columns[d].column):
            ids = nodes[:, d]
            present = ids != 0
            texts[present] = texts[present] + np.where(first[present], "", "|") + columns[d].texts[ids[present]]
            first &= ~present
            of_node = columns[d].coordinates
            for c in np.flatnonzero(present).tolist():
                coords[c].append(of_node[ids[c]])
        keys = []
        for text, cell_coords in zip(texts.tolist(), coords, strict=True):
            key = object.__new__(cls)
            _init(key, quantity, tuple(cell_coords), None, None, text)
            keys.append(key)
        return keys


@dataclass(frozen=True)
class DimensionCoordinates:
    """One dimension's coordinate per node id (node 0, the total, has none), with its key text."""

    column: str
    coordinates: list[Coordinate | None]
    texts: np.ndarray  # object array of each coordinate's text

    @classmethod
    def of(
        cls, column: str, codes: Sequence[str], hierarchy: str | None, groups: frozenset[str]
    ) -> DimensionCoordinates:
        coords: list[Coordinate | None] = [None] + [
            Coordinate(column, code, hierarchy if code in groups else None) for code in codes[1:]
        ]
        texts = np.array([""] + [_format_coordinate(c) for c in coords[1:] if c is not None], dtype=object)
        return cls(column, coords, texts)


# ------------------------------------------------------------------------------------------ text form

_ESCAPE_CODE = str.maketrans({"%": "%25", "|": "%7C", ":": "%3A"})
_ESCAPE_FILTERS = str.maketrans({"%": "%25", "|": "%7C", "@": "%40"})
_ESCAPED = re.compile(r"%(25|7C|3A|40)")
_UNESCAPE = {"25": "%", "7C": "|", "3A": ":", "40": "@"}
_VIEW = re.compile(r"~(?P<source>[^:|~]+):(?:(?P<kind>current|change|difference):)?")
_HELPER = re.compile(r"~(?:(?P<table>[a-z_][a-z0-9_]*):)?(?P<n>\d+):(?P<role>sum|overlap|gap|slack)(?P<part>\d+)?")


def _init(key: CellKey, quantity, coordinates, helper, view, text: str) -> None:
    for name, value in (
        ("quantity", quantity),
        ("coordinates", coordinates),
        ("helper", helper),
        ("view", view),
        ("_text", text),
    ):
        object.__setattr__(key, name, value)


def _unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: _UNESCAPE[m.group(1)], text)


@functools.lru_cache(maxsize=4096)
def _format_quantity(q: Quantity) -> str:
    marker = "" if q.periods is PeriodMode.MONTH else f"@{q.periods.value}"
    return f"{q.template}|{q.measure}|{q.filters.translate(_ESCAPE_FILTERS)}{marker}"


def _format_coordinate(c: Coordinate) -> str:
    group = f"{c.hierarchy}:" if c.hierarchy else ""
    return f"{c.column}={group}{c.code.translate(_ESCAPE_CODE)}"


def _format_helper(h: Helper) -> str:
    part = "" if h.part is None else str(h.part)
    table = f"{h.table_id}:" if h.table_id else ""
    return f"~{table}{h.relation}:{h.role.value}{part}"


def _format_view(v: View | None) -> str:
    if v is None:
        return ""
    return {
        ViewKind.EARLIER: f"~{v.source}:",
        ViewKind.CURRENT: f"~{v.source}:current:",
        ViewKind.CHANGE: f"~{v.source}:change:",
        ViewKind.DIFFERENCE: f"~{v.source}:difference:",
    }[v.kind]


def _format(quantity: Quantity, coords: tuple[Coordinate, ...], helper: Helper | None, view: View | None) -> str:
    body = "|".join([_format_quantity(quantity), *(_format_coordinate(c) for c in coords)])
    if not coords:
        body += "|"  # a cell without coordinates (a grand total) still ends its quantity
    if helper is not None:
        body += "|" + _format_helper(helper)
    return _format_view(view) + body


def _parse_view(text: str) -> tuple[View | None, str]:
    if not text.startswith("~"):
        return None, text
    match = _VIEW.match(text)
    if match is None:
        raise ValueError("a view must read ~<release>:, ~<month>:current:, ~<release>:change: or ~<months>:difference:")
    kind = ViewKind(match["kind"]) if match["kind"] else ViewKind.EARLIER
    return View(kind, match["source"]), text[match.end() :]


def _split_quantity(text: str) -> tuple[str, str, str]:
    """'<template>|<measure>|<filters>' and the rest after the '|' that ends it."""
    parts = text.split("|", 3)
    if len(parts) < 4:
        raise ValueError("expected <template>|<measure>|<filters>|...")
    return "|".join(parts[:3]), "|", parts[3]


@functools.lru_cache(maxsize=4096)
def _parse_quantity(head: str) -> Quantity:
    template, measure, filters = head.split("|")
    periods = PeriodMode.MONTH
    if "@" in filters:
        filters, marker = filters.rsplit("@", 1)
        periods = PeriodMode(marker)
    if not template or not measure or not filters:
        raise ValueError("empty template, measure or filters")
    return Quantity(template, measure, _unescape(filters), periods)


@functools.lru_cache(maxsize=65536)
def _parse_coordinate(segment: str) -> Coordinate:
    column, code = segment.split("=", 1)
    hierarchy, colon, leaf = code.partition(":")
    if not column:
        raise ValueError(f"coordinate '{segment}' has no column")
    if colon:
        return Coordinate(column, _unescape(leaf), hierarchy)
    return Coordinate(column, _unescape(code))


def _parse_helper(segment: str) -> Helper:
    match = _HELPER.fullmatch(segment)
    if match is None:
        raise ValueError(f"'{segment}' is not a helper cell")
    role = HelperRole(match["role"])
    part = int(match["part"]) if match["part"] is not None else None
    if (role is HelperRole.GAP) != (part is not None):
        raise ValueError("a gap helper names its part, other helpers do not")
    return Helper(match["table"] or "", int(match["n"]), role, part)
