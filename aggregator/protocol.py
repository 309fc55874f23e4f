"""A covenant's confidentiality protocol: which tables exist, for whom, and under which disclosure rules.

The protocol is a TOML file (format in docs/protocols.md). `load_protocol` validates every key against the
covenant's templates and returns frozen dataclasses; every mistake is a ConfigError that names the file and
the dotted key, e.g. "protocols/textile.toml: tables[2].measure.column: 'weight' is not a column of template
materials".
"""

from __future__ import annotations

import csv
import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from aggregator.disclosure.model import RuleParams
from aggregator.errors import ConfigError
from aggregator.periods import PeriodMode

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
_REQUIRED = object()


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
class Protocol:
    path: Path
    sha256: str
    covenant: Covenant
    defaults: Disclosure
    age: Mapping[str, int]  # months per sensitivity class A, B, C
    audiences: tuple[Audience, ...]
    hierarchies: Mapping[str, Hierarchy]  # custom ones and the built-in "m49" when a table uses it
    tables: tuple[TableSpec, ...]

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
    # not a matter of strictness: the audience's choice applies
    "cost": lambda a, b: b,
    "suppression": lambda a, b: b,
}


# ------------------------------------------------------------------------------------------------ reader


class _Section:
    """One TOML table being read: remembers the file, the dotted path and which keys were used."""

    def __init__(self, file: str, path: str, data: Any):
        self.file, self.path = file, path
        if not isinstance(data, dict):
            raise self._error_at(path, f"expected a table, got {_describe(data)}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _error_at(self, dotted: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.file}: {dotted}: {message}", hint=hint)

    def error(self, key: str, message: str, hint: str | None = None) -> ConfigError:
        return self._error_at(self.key(key), message, hint)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = _REQUIRED) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise self.error(key, "missing")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python, but `min_contributors = true` is a mistake
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(key, f"expected {_kind_name(kinds)}, got {_describe(value)}")
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            raise self.error(key, f"expected {_kind_name(kinds)}, got {_describe(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _REQUIRED) -> Any:
        value = self.get(key, str, default)
        if value is not default and value not in choices:
            raise self.error(key, f"'{value}' is not one of {', '.join(choices)}")
        return value

    def identifier(self, key: str) -> str:
        value = self.get(key, str)
        if not IDENTIFIER.match(value):
            raise self.error(key, f"'{value}' is not a valid id (lower-case letters, digits and _)")
        return value

    def number(self, key: str, default: Any = _REQUIRED, *, low: float, high: float | None = None) -> Any:
        value = self.get(key, float, default)
        if value is not default and (value < low or (high is not None and value > high)):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise self.error(key, f"must be {bounds}, got {value:g}")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, *, low: int) -> Any:
        value = self.get(key, int, default)
        if value is not default and value < low:
            raise self.error(key, f"must be at least {low}, got {value}")
        return value

    def strings(self, key: str, default: Any = _REQUIRED) -> tuple[str, ...]:
        values = self.get(key, list, default)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise self._error_at(f"{self.key(key)}[{i}]", f"expected a string, got {_describe(value)}")
        return tuple(values)

    def text(self, key: str, default: Any = _REQUIRED) -> Text | None:
        if key not in self.data and default is not _REQUIRED:
            self.used.add(key)
            return default
        section = self.section(key)
        text = Text(en=section.get("en", str), nl=section.get("nl", str))
        section.done()
        return text

    def section(self, key: str, default: Any = _REQUIRED) -> _Section:
        return _Section(self.file, self.key(key), self.get(key, dict, default))

    def sections(self, key: str, default: Any = _REQUIRED) -> list[_Section]:
        items = self.get(key, list, default)
        return [_Section(self.file, f"{self.key(key)}[{i}]", item) for i, item in enumerate(items)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown setting", hint="see docs/protocols.md for the settings")


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names |= {list: "a list", dict: "a table"}
    return " or ".join(names[k] for k in kinds)


def _describe(value: Any) -> str:
    kinds = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    kinds |= {list: "a list", dict: "a table"}
    return kinds.get(type(value), type(value).__name__)


# ------------------------------------------------------------------------------------- disclosure parsing


def _parse_disclosure(section: _Section) -> dict[str, Any]:
    """The settings present in one [disclosure] table (defaults, table or audience overrides)."""
    parsed: dict[str, Any] = {}
    if section.has("count_unit"):
        parsed["count_unit"] = section.choice("count_unit", ("group", "company"))
    if section.has("min_contributors"):
        parsed["min_contributors"] = section.integer("min_contributors", low=1)
    if section.has("safety_range_percent"):
        parsed["safety_range_percent"] = section.number("safety_range_percent", low=0.0)
    dominance = _parse_dominance(section)
    if dominance is not None:
        parsed["dominance"] = dominance
    if section.has("p_percent"):
        p = section.section("p_percent")
        parsed["p_percent"] = (p.number("p", low=0.0, high=100.0), p.integer("coalition", 1, low=1))
        p.done()
    if section.has("pq"):
        parsed["pq"] = _parse_pq(section.section("pq"))
    if section.has("zero_cells"):
        parsed["zero_cells"] = section.number("zero_cells", low=0.0)
    if section.has("negative_values"):
        parsed["negative_values"] = section.choice("negative_values", ("refuse", "absolute"))
    if section.has("cost"):
        parsed["cost"] = section.choice("cost", ("value", "contributors", "unity"))
    if section.has("suppression"):
        parsed["suppression"] = section.choice("suppression", ("auto", "optimal", "fast"))
    if section.has("apriori_upper_factor"):
        parsed["apriori_upper_factor"] = section.number("apriori_upper_factor", low=1.0)
    section.done()
    return parsed


def _parse_dominance(section: _Section) -> tuple[tuple[int, float], ...] | None:
    """dominance = [{n, k}, ...] plus the max_share alias (s = 0.25 means the (1, 25) rule)."""
    if not section.has("dominance") and not section.has("max_share"):
        return None
    rules: dict[int, float] = {}
    for rule in section.sections("dominance", []):
        n, k = rule.integer("n", low=1), rule.number("k", low=0.0, high=100.0)
        rule.done()
        rules[n] = min(k, rules.get(n, k))
    if section.has("max_share"):
        k = 100.0 * section.number("max_share", low=0.0, high=1.0)
        rules[1] = min(k, rules.get(1, k))
    return tuple(sorted(rules.items()))


def _parse_pq(section: _Section) -> tuple[float, float, int]:
    p, q = section.number("p", low=0.0), section.number("q", low=0.0)
    coalition = section.integer("coalition", 1, low=1)
    section.done()
    if not 0 < p < q:
        raise section.error("p", f"the (p,q) rule needs 0 < p < q, got p={p:g}, q={q:g}")
    return (p, q, coalition)


# -------------------------------------------------------------------------------------- template columns


ColumnLookup = Callable[[str, str], Mapping[str, Column]]


def template_columns(rules_dir: Path | None = None) -> ColumnLookup:
    """Columns of rules/<covenant>/<template>.toml through the validation package's template loader."""

    def lookup(covenant: str, template: str) -> Mapping[str, Column]:
        from aggregator.validation import load_template

        loaded = load_template(covenant, template, rules_dir)
        return {c.name: Column(c.name, c.type, c.sensitivity, tuple(c.allowed)) for c in loaded.columns}

    return lookup


# ---------------------------------------------------------------------------------------- the loader


def load_protocol(path: str | Path, *, rules_dir: str | Path | None = None) -> Protocol:
    """Read and validate a protocol file against the covenant's templates (rules_dir, default rules/).

    Raises ConfigError naming the file and the dotted key of the first mistake.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the protocol ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc})") from exc
    lookup = template_columns(Path(rules_dir) if rules_dir is not None else None)
    return _Loader(str(path), lookup).load(path, raw, data)


def protocol_from_data(path: Path, raw: bytes, data: dict[str, Any], columns: ColumnLookup) -> Protocol:
    """Validate already-parsed protocol data whose templates' columns come from `columns` instead of rules/
    (the standalone `protect` mode describes its one template by the columns of a data file)."""
    return _Loader(str(path), columns).load(path, raw, data)


class _Loader:
    def __init__(self, file: str, columns: ColumnLookup):
        self.file = file
        self.lookup = columns
        self.templates: dict[str, Mapping[str, Column]] = {}

    def load(self, path: Path, raw: bytes, data: dict[str, Any]) -> Protocol:
        root = _Section(self.file, "", data)
        covenant = self._covenant(root.section("covenant"))
        defaults = Disclosure(**_parse_disclosure(root.section("disclosure", {})))
        age = self._age(root.section("age", {}))
        hierarchies = self._hierarchies(root.section("hierarchies", {}))
        tables = tuple(self._table(s, covenant, hierarchies) for s in root.sections("tables"))
        _unique(root, "tables", [t.id for t in tables])
        audiences = tuple(self._audience(s, {t.id for t in tables}) for s in root.sections("audiences"))
        _unique(root, "audiences", [a.id for a in audiences])
        root.done()
        if any(d.hierarchy == "m49" for t in tables for d in t.dimensions):
            hierarchies = {**hierarchies, "m49": m49_hierarchy()}
        hierarchies = _with_other_codes(hierarchies, tables)
        digest = hashlib.sha256(raw).hexdigest()
        return Protocol(path, digest, covenant, defaults, age, audiences, hierarchies, tables)

    def _covenant(self, s: _Section) -> Covenant:
        covenant = Covenant(
            id=s.identifier("id"),
            name=s.text("name"),
            version=s.get("version", str),
            language=s.choice("language", LANGUAGES, "en"),
            templates=s.strings("templates"),
        )
        if not covenant.templates:
            raise s.error("templates", "list at least one template")
        for i, template in enumerate(covenant.templates):
            self.templates[template] = self._template_columns(s, f"templates[{i}]", covenant.id, template)
        s.done()
        return covenant

    def _template_columns(self, s: _Section, key: str, covenant: str, template: str) -> Mapping[str, Column]:
        if not IDENTIFIER.match(template):
            raise s.error(key, f"'{template}' is not a valid template name")
        try:
            return self.lookup(covenant, template)
        except ConfigError as exc:
            raise s.error(key, exc.message, exc.hint) from exc

    def _age(self, s: _Section) -> dict[str, int]:
        if s.has("X"):
            raise s.error("X", "class X data is never released, so it has no age")
        age = {cls: s.integer(cls, DEFAULT_AGE_MONTHS[cls], low=0) for cls in ("A", "B", "C")}
        s.done()
        if not age["A"] <= age["B"] <= age["C"]:
            raise s.error("B", "ages must not decrease from class A to B to C")
        return age

    def _hierarchies(self, s: _Section) -> dict[str, Hierarchy]:
        hierarchies = {}
        for name in list(s.data):
            if name in BUILTIN_HIERARCHIES:
                raise s.error(name, f"'{name}' is built in and cannot be redefined")
            if not IDENTIFIER.match(name):
                raise s.error(name, f"'{name}' is not a valid hierarchy name")
            hierarchies[name] = self._hierarchy(s.section(name), name)
        s.done()
        return hierarchies

    def _hierarchy(self, s: _Section, name: str) -> Hierarchy:
        parents = s.section("parent")
        mapping = {child: parents.get(child, str) for child in list(parents.data)}
        parents.done()
        labels_section = s.section("labels", {})
        labels = {code: labels_section.text(code) for code in list(labels_section.data)}
        labels_section.done()
        s.done()
        for child, parent in mapping.items():
            for code in (child, parent):
                if code in RESERVED_CODES:
                    raise parents.error(child, f"'{code}' is reserved for totals and unknown codes")
        hierarchy = Hierarchy(name, mapping, labels)
        for child in mapping:
            if len(set(_bounded_path(hierarchy, child))) != len(_bounded_path(hierarchy, child)):
                raise parents.error(child, f"'{child}' is its own ancestor (a cycle)")
        return hierarchy

    def _audience(self, s: _Section, table_ids: set[str]) -> Audience:
        tables = s.strings("tables")
        for i, table_id in enumerate(tables):
            if table_id not in table_ids:
                raise s.error(f"tables[{i}]", f"no table '{table_id}' in this protocol")
        audience = Audience(
            id=s.identifier("id"),
            name=s.text("name"),
            tables=tables,
            frequency=s.choice("frequency", FREQUENCIES),
            shares_with_others=s.get("shares_with_others", bool, True),
            disclosure=_parse_disclosure(s.section("disclosure", {})),
            open_to_all=s.get("open_to_all", bool, False),
        )
        s.done()
        return audience

    def _table(self, s: _Section, covenant: Covenant, hierarchies: Mapping[str, Hierarchy]) -> TableSpec:
        table_id = s.identifier("id")
        template = s.get("template", str)
        if template not in covenant.templates:
            raise s.error("template", f"'{template}' is not a template of covenant {covenant.id}")
        columns = self.templates[template]
        dimensions = tuple(self._dimension(d, template, columns, hierarchies) for d in s.sections("dimensions", []))
        _unique(s, "dimensions", [d.column for d in dimensions])
        measure = self._measure(s.section("measure"), template, columns)
        filters = tuple(self._filter(f, template, columns) for f in s.sections("filters", []))
        spec = TableSpec(
            id=table_id,
            title=s.text("title"),
            unit=s.text("unit"),
            template=template,
            dimensions=dimensions,
            measure=measure,
            filters=filters,
            disclosure=_parse_disclosure(s.section("disclosure", {})),
            footnote=s.text("footnote", None),
            sensitivity=_table_sensitivity(measure, dimensions, filters, columns),
            periods=PeriodMode(s.choice("periods", tuple(PeriodMode), "month")),
        )
        s.done()
        return spec

    def _column(self, s: _Section, key: str, template: str, columns: Mapping[str, Column]) -> Column:
        name = s.get(key, str)
        if name not in columns:
            raise s.error(key, f"'{name}' is not a column of template {template}")
        column = columns[name]
        if column.sensitivity == "X":
            raise s.error(key, f"column {name} is class X (forward-looking) and can never be released")
        if not IDENTIFIER.match(name):
            raise s.error(key, f"'{name}' is not a valid column name")
        return column

    def _numeric(self, s: _Section, key: str, template: str, columns: Mapping[str, Column]) -> str:
        column = self._column(s, key, template, columns)
        if column.type not in NUMERIC_TYPES:
            raise s.error(key, f"column {column.name} is {column.type}, not a number")
        return column.name

    def _dimension(self, s, template, columns, hierarchies) -> Dimension:
        column = self._column(s, "column", template, columns).name
        hierarchy = s.get("hierarchy", str, None)
        if hierarchy is not None and hierarchy not in hierarchies and hierarchy not in BUILTIN_HIERARCHIES:
            known = ", ".join(sorted({*hierarchies, *BUILTIN_HIERARCHIES}))
            raise s.error("hierarchy", f"no hierarchy '{hierarchy}'", hint=f"known hierarchies: {known}")
        if hierarchy in hierarchies:
            for code in columns[column].allowed:
                if not hierarchies[hierarchy].knows(code):
                    raise s.error("hierarchy", f"code '{code}' of column {column} is not in hierarchy {hierarchy}")
        rollup = s.get("rollup", bool, False)
        if rollup and hierarchy is None:
            raise s.error(
                "rollup",
                "a rollup needs a hierarchy to merge failing codes into their parent",
                hint='add hierarchy = "m49" (or a [hierarchies] name) to this dimension',
            )
        s.done()
        return Dimension(column, hierarchy, rollup)

    def _operand(self, s: _Section, template: str, columns: Mapping[str, Column]) -> Operand:
        column = self._numeric(s, "column", template, columns)
        weight = self._numeric(s, "weight", template, columns) if s.has("weight") else None
        return Operand(column, weight)

    def _measure(self, s: _Section, template: str, columns: Mapping[str, Column]) -> Measure:
        kind = s.choice("kind", MEASURE_KINDS)
        if kind == "sum":
            measure = Measure(kind, value=self._operand(s, template, columns))
        elif kind == "ratio":
            numerator, denominator = s.section("numerator"), s.section("denominator")
            measure = Measure(
                kind,
                numerator=self._operand(numerator, template, columns),
                denominator=self._operand(denominator, template, columns),
            )
            numerator.done()
            denominator.done()
        else:
            measure = Measure(kind)
        s.done()
        return measure

    def _filter(self, s: _Section, template: str, columns: Mapping[str, Column]) -> Filter:
        column = self._column(s, "column", template, columns)
        value = s.get("equals", (str, int, float, bool))
        is_bool_column = column.type == "boolean"
        if is_bool_column != isinstance(value, bool):
            raise s.error("equals", f"{_describe(value)} does not fit column {column.name} ({column.type})")
        if column.allowed and value not in column.allowed:
            raise s.error("equals", f"'{value}' is not a code of column {column.name}")
        s.done()
        return Filter(column.name, value)


def _unique(s: _Section, key: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(ids):
        if item in seen:
            raise s.error(f"{key}[{i}]", f"'{item}' appears twice")
        seen.add(item)


def _bounded_path(hierarchy: Hierarchy, code: str) -> list[str]:
    """Like Hierarchy.path but stops after a repeat, so cycles can be detected."""
    chain = [code]
    while chain[-1] in hierarchy.parent and len(chain) <= len(hierarchy.parent) + 1:
        chain.append(hierarchy.parent[chain[-1]])
    return chain


def _table_sensitivity(measure, dimensions, filters, columns: Mapping[str, Column]) -> str:
    """The highest class among the columns a table uses.

    Counting rows (e.g. production locations) reveals a magnitude, so it counts as class B; counting
    companies is a process fact (A). Dimension and filter columns count too: a breakdown by a B column
    reveals B information.
    """
    used = [*measure.columns, *(d.column for d in dimensions), *(f.column for f in filters)]
    classes = [columns[c].sensitivity for c in used] + ["B" if measure.kind == "count" else "A"]
    return max(classes, key=SENSITIVITY_RANK.__getitem__)


def other_code(parent: str) -> str:
    """The code of the 'other <parent>' row a rollup dimension merges failing leaves into."""
    return f"{parent}{OTHER_SUFFIX}"


def _with_other_codes(hierarchies: Mapping[str, Hierarchy], tables: tuple[TableSpec, ...]) -> dict[str, Hierarchy]:
    """Give each hierarchy a rollup dimension uses an 'other <group>' leaf under every group, labelled from the
    group's own label ('Other Eastern Asia' / 'Overig Oost-Azië'), so labels and depths work everywhere."""
    used = {d.hierarchy for t in tables for d in t.dimensions if d.rollup and d.hierarchy}
    extended = dict(hierarchies)
    for name in sorted(used):
        h = hierarchies[name]
        parent, labels = dict(h.parent), dict(h.labels)
        for group in sorted(set(h.parent.values())):
            label = h.labels.get(group, Text(group, group))
            parent[other_code(group)] = group
            labels[other_code(group)] = Text(f"Other {label.en}", f"Overig {label.nl}")
        extended[name] = Hierarchy(h.name, parent, labels)
    return extended


# ------------------------------------------------------------------------------------------------ m49


def m49_hierarchy() -> Hierarchy:
    """Country (alpha-2) -> UN M49 sub-region -> region; the total is the world."""
    from aggregator.validation.reference import country_name, m49

    parent: dict[str, str] = {}
    labels: dict[str, Text] = {}
    dutch = _m49_dutch_names()
    for row in m49().itertuples(index=False):
        sub, region = _code(row.subregion_code), _code(row.region_code)
        labels[row.alpha2] = Text(country_name(row.alpha2, "en"), country_name(row.alpha2, "nl"))
        labels[sub] = Text(row.subregion, dutch.get(row.subregion, row.subregion))
        labels[region] = Text(row.region, dutch.get(row.region, row.region))
        parent[row.alpha2] = sub
        if sub != region:  # Antarctica's placeholder 999 is both its sub-region and its region
            parent[sub] = region
    return Hierarchy("m49", parent, labels)


def _m49_dutch_names() -> dict[str, str]:
    """Dutch names of the M49 regions and sub-regions (rules/reference/m49_names_nl.csv)."""
    path = Path(__file__).resolve().parent.parent / "rules" / "reference" / "m49_names_nl.csv"
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["name_en"]: row["name_nl"] for row in csv.DictReader(handle)}


def _code(value: Any) -> str:
    if value is None or value != value:  # None or NaN
        return ""
    text = str(value).strip()
    return text.zfill(3) if text.isdigit() else text
