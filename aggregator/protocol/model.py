"""The protocol's data types (frozen), its constants and the stricter-wins merge of audience overrides."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from aggregator.disclosure.model import RuleParams
from aggregator.errors import ConfigError
from imvo_submit.periods import PeriodMode

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
TOTAL_CODE = "_T"  # code of a dimension's total (SDMX convention)
UNKNOWN_CODE = "_U"  # code of rows whose dimension column is empty
RESERVED_CODES = frozenset({TOTAL_CODE, UNKNOWN_CODE})
SENSITIVITY_RANK = {"A": 0, "B": 1, "C": 2, "X": 3}
NUMERIC_TYPES = frozenset({"integer", "number"})  # column types of rules/*.toml that can be summed
BUILTIN_HIERARCHIES = frozenset({"m49"})
OTHER_SUFFIX = "~other"  # '<parent>~other' holds the leaves a rollup dimension merged under <parent>
LANGUAGES = ("en", "nl")
MEASURE_KINDS = ("count", "companies", "sum", "ratio")
FREQUENCIES = ("monthly", "quarterly", "yearly")
DEFAULT_AGE_MONTHS = {"A": 0, "B": 3, "C": 12}
# a company without an accepted file of a template for a month: left out ("exclude") or counted with its
# latest accepted figures ("carry_forward"); docs/protocols.md weighs the two
NON_RESPONSE = ("exclude", "carry_forward")


# ---------------------------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Text:
    """A text in both output languages."""

    en: str
    nl: str

    def __call__(self, language: str) -> str:
        return self.nl if language == "nl" else self.en


@dataclass(frozen=True)
class Column:
    """What the protocol needs to know about a template column."""

    name: str
    type: str
    sensitivity: str  # "A" | "B" | "C" | "X"
    allowed: tuple[str, ...] = ()  # the codes of an enum column
    required: bool = True
    at_most: tuple[str, ...] = ()  # columns this one is at most in every row (`not_greater` checks)
    implies: tuple[str, ...] = ()  # boolean columns that are true in every row where this one is (`implies`)


@dataclass(frozen=True)
class Disclosure:
    """Fully resolved disclosure settings of one table for one audience."""

    count_unit: str = "group"  # "group" | "company": who is one contributor
    min_contributors: int = 5  # threshold rule: unsafe when 0 < N < min_contributors
    safety_range_percent: float = 10.0  # protection of threshold-rule cells, % of the cell value
    dominance: tuple[tuple[int, float], ...] = ((1, 25.0),)  # (n, k): unsafe when T_n > k% of X
    p_percent: tuple[float, int] | None = None  # (p, coalition)
    pq: tuple[float, float, int] | None = None  # (p, q, coalition)
    zero_cells: float | None = None  # protection amount for X == 0 with N > 0; None: zero cells are safe
    negative_values: str = "refuse"  # "refuse" | "absolute"
    cost: str = "value"  # "value" | "contributors" | "unity"
    suppression: str = "auto"  # "auto" | "optimal" | "fast"
    apriori_upper_factor: float = 1.5  # attacker's a-priori upper bound: factor x the largest cell
    # a hidden non-empty cell of a sum measure is at least this (the least positive contribution a template
    # allows); counts are always at least 1, because the outputs tell empty ("-") from hidden ("x")
    min_positive_contribution: float = 0.0

    def rule_params(self) -> RuleParams:
        return RuleParams(
            min_contributors=self.min_contributors,
            safety_range_percent=self.safety_range_percent,
            dominance=self.dominance,
            p_percent=self.p_percent,
            pq=self.pq,
            zero_cell_protection=self.zero_cells,
            negative_values=self.negative_values,
        )


@dataclass(frozen=True)
class Covenant:
    id: str
    name: Text
    version: str
    language: str
    templates: tuple[str, ...]


@dataclass(frozen=True)
class Audience:
    id: str
    name: Text
    tables: tuple[str, ...]
    frequency: str
    shares_with_others: bool
    disclosure: Mapping[str, Any]  # overrides; applied so that the stricter setting wins
    open_to_all: bool = False  # its releases are published to anyone (a public report): every reader knows them


@dataclass(frozen=True)
class Hierarchy:
    """A tree of codes given by child -> parent; codes without a parent hang directly under the total."""

    name: str
    parent: Mapping[str, str]
    labels: Mapping[str, Text] = field(default_factory=dict)

    def path(self, code: str) -> tuple[str, ...]:
        """The code's ancestors from the top level down to the code itself."""
        chain = [code]
        while chain[-1] in self.parent:
            chain.append(self.parent[chain[-1]])
        return tuple(reversed(chain))

    def knows(self, code: str) -> bool:
        return code in self.parent or code in self.labels or code in self.parent.values()

    def is_parent(self, code: str) -> bool:
        return code in self.parent.values()


@dataclass(frozen=True)
class Dimension:
    column: str
    hierarchy: str | None = None  # "m49", a [hierarchies] name, or None (flat codes + a total)
    # merge a leaf that fails the primary rules into an "other <parent>" code instead of hiding it
    rollup: bool = False
    # "leaf": publish down to the hierarchy's leaves; "auto": per release, down to the finest level at which
    # every margin cell passes the primary rules (aggregation/rollup.py)
    level: str = "leaf"


@dataclass(frozen=True)
class Operand:
    """sum(column * weight) over rows; weight is optional."""

    column: str
    weight: str | None = None

    @property
    def signature(self) -> str:
        return f"sum({self.column}*{self.weight})" if self.weight else f"sum({self.column})"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.weight is None else (self.column, self.weight)


@dataclass(frozen=True)
class Measure:
    kind: str  # "count" | "companies" | "sum" | "ratio"
    value: Operand | None = None  # for "sum"
    numerator: Operand | None = None  # for "ratio"
    denominator: Operand | None = None  # for "ratio"

    @property
    def columns(self) -> tuple[str, ...]:
        operands = [o for o in (self.value, self.numerator, self.denominator) if o is not None]
        return tuple(c for o in operands for c in o.columns)

    def components(self) -> tuple[tuple[str, Operand | None], ...]:
        """(component name, operand) pairs: ratios are published through numerator and denominator."""
        if self.kind == "ratio":
            return (("numerator", self.numerator), ("denominator", self.denominator))
        return (("value", self.value),)


@dataclass(frozen=True)
class Filter:
    column: str
    equals: str | int | float | bool

    @property
    def signature(self) -> str:
        value = str(self.equals).lower() if isinstance(self.equals, bool) else str(self.equals)
        return f"{self.column}={value}"


@dataclass(frozen=True)
class TableSpec:
    id: str
    title: Text
    unit: Text
    template: str
    dimensions: tuple[Dimension, ...]
    measure: Measure
    filters: tuple[Filter, ...] = ()
    disclosure: Mapping[str, Any] = field(default_factory=dict)  # overrides of the protocol defaults
    footnote: Text | None = None
    sensitivity: str = "A"  # highest class of the columns the table uses; decides the data age
    periods: PeriodMode = PeriodMode.MONTH  # which months a table released for a period sums

    @property
    def filters_signature(self) -> str:
        return "&".join(sorted(f.signature for f in self.filters)) or "-"


@dataclass(frozen=True)
class LogicalRelation:
    """Each cell of table `smaller` <= the cell of table `larger` with the same coordinates (protocol/relations.py)."""

    id: str  # names the slack helper cells of the relation
    smaller: str
    larger: str
    reason: str  # "declared", or why it was derived


@dataclass(frozen=True)
class Protocol:
    path: Path
    sha256: str
    covenant: Covenant
    defaults: Disclosure
    age: Mapping[str, int]  # months per sensitivity class A, B, C
    audiences: tuple[Audience, ...]
    hierarchies: Mapping[str, Hierarchy]  # custom ones and the built-in "m49" when a table uses it
    tables: tuple[TableSpec, ...]
    relations: tuple[LogicalRelation, ...] = ()  # declared and derived: smaller table <= larger table
    non_response: str = "exclude"  # [series] non_response, one of NON_RESPONSE

    @property
    def carries_forward(self) -> bool:
        return self.non_response == "carry_forward"

    def table(self, table_id: str) -> TableSpec:
        for table in self.tables:
            if table.id == table_id:
                return table
        known = ", ".join(t.id for t in self.tables)
        raise ConfigError(f"{self.path}: no table '{table_id}'", hint=f"tables of this protocol: {known}")

    def audience(self, audience_id: str) -> Audience:
        for audience in self.audiences:
            if audience.id == audience_id:
                return audience
        known = ", ".join(a.id for a in self.audiences)
        raise ConfigError(f"{self.path}: no audience '{audience_id}'", hint=f"audiences: {known}")

    def tables_for(self, audience_id: str) -> tuple[TableSpec, ...]:
        """The audience's tables, in the order the protocol lists them."""
        wanted = set(self.audience(audience_id).tables)
        return tuple(t for t in self.tables if t.id in wanted)

    def settings(self, table_id: str, audience_id: str) -> Disclosure:
        """Defaults <- table overrides (replace) <- audience overrides (the stricter setting wins)."""
        table = self.table(table_id)
        if table_id not in self.audience(audience_id).tables:
            raise ConfigError(f"{self.path}: audience '{audience_id}' does not receive table '{table_id}'")
        base = replace(self.defaults, **table.disclosure)
        return _stricter(base, self.audience(audience_id).disclosure)

    def rule_params(self, table_id: str, audience_id: str) -> RuleParams:
        return self.settings(table_id, audience_id).rule_params()

    def data_age_months(self, table_id: str) -> int:
        """How old the data must be before this table may be released."""
        return self.age[self.table(table_id).sensitivity]

    def hierarchy(self, name: str) -> Hierarchy:
        return self.hierarchies[name]


# ------------------------------------------------------------------------------------- stricter-wins merge


def _stricter(base: Disclosure, override: Mapping[str, Any]) -> Disclosure:
    """Apply an audience's overrides so that an audience can only tighten, never loosen, a table's rules."""
    merged = {f.name: getattr(base, f.name) for f in fields(Disclosure)}
    for key, value in override.items():
        merged[key] = _STRICTER[key](merged[key], value)
    return Disclosure(**merged)


def _stricter_dominance(a: tuple[tuple[int, float], ...], b: tuple[tuple[int, float], ...]):
    by_n: dict[int, float] = {}
    for n, k in (*a, *b):
        by_n[n] = min(k, by_n.get(n, k))
    return tuple(sorted(by_n.items()))


def _stricter_p(a, b):
    if a is None or b is None:
        return a or b
    return (max(a[0], b[0]), max(a[1], b[1]))


def _stricter_pq(a, b):
    if a is None or b is None:
        return a or b
    ratio_first = a if a[0] / a[1] >= b[0] / b[1] else b
    return (ratio_first[0], ratio_first[1], max(a[2], b[2]))


_STRICTER: dict[str, Callable[[Any, Any], Any]] = {
    "count_unit": lambda a, b: "group" if "group" in (a, b) else "company",
    "min_contributors": max,
    "safety_range_percent": max,
    "dominance": _stricter_dominance,
    "p_percent": _stricter_p,
    "pq": _stricter_pq,
    "zero_cells": lambda a, b: b if a is None else (a if b is None else max(a, b)),
    "negative_values": lambda a, b: "refuse" if "refuse" in (a, b) else "absolute",
    # a smaller a-priori bound assumes a better-informed attacker
    "apriori_upper_factor": min,
    # a larger a-priori lower bound assumes a better-informed attacker
    "min_positive_contribution": max,
    # not a matter of strictness: the audience's choice applies
    "cost": lambda a, b: b,
    "suppression": lambda a, b: b,
}


def other_code(parent: str) -> str:
    """The code of the 'other <parent>' row a rollup dimension merges failing leaves into."""
    return f"{parent}{OTHER_SUFFIX}"
