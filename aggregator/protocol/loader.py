"""Loading a covenant's confidentiality protocol: which tables exist, for whom, and under which disclosure rules.

The protocol is a TOML file (format in docs/protocols.md). `load_protocol` validates every key against the
covenant's templates and returns frozen dataclasses; every mistake is a ConfigError that names the file and
the dotted key, e.g. "protocols/textile.toml: tables[2].measure.column: 'weight' is not a column of template
materials".
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aggregator.errors import ConfigError
from aggregator.protocol.m49 import m49_hierarchy
from aggregator.protocol.model import (
    BUILTIN_HIERARCHIES,
    DEFAULT_AGE_MONTHS,
    FREQUENCIES,
    IDENTIFIER,
    LANGUAGES,
    MEASURE_KINDS,
    NON_RESPONSE,
    NUMERIC_TYPES,
    RESERVED_CODES,
    SENSITIVITY_RANK,
    Audience,
    Column,
    Covenant,
    Dimension,
    Disclosure,
    Filter,
    Hierarchy,
    Measure,
    Operand,
    Protocol,
    TableSpec,
    Text,
    other_code,
)
from aggregator.protocol.relations import derived_relations, parse_relations
from aggregator.protocol.sections import Section, describe_value
from imvo_submit.periods import PeriodMode

# ------------------------------------------------------------------------------------- disclosure parsing


def _parse_disclosure(section: Section) -> dict[str, Any]:
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
    if section.has("min_positive_contribution"):
        parsed["min_positive_contribution"] = section.number("min_positive_contribution", low=0.0)
    section.done()
    return parsed


def _parse_dominance(section: Section) -> tuple[tuple[int, float], ...] | None:
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


def _parse_pq(section: Section) -> tuple[float, float, int]:
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
        from imvo_submit.validation import load_template

        loaded = load_template(covenant, template, rules_dir)

        def right_of(name: str, kind: str) -> tuple[str, ...]:
            return tuple(sorted(k.right for k in loaded.checks if k.left == name and k.kind == kind))

        return {
            c.name: Column(
                c.name,
                c.type,
                c.sensitivity,
                tuple(c.allowed),
                required=c.required,
                at_most=right_of(c.name, "not_greater"),
                implies=right_of(c.name, "implies"),
            )
            for c in loaded.columns
        }

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
        root = Section(self.file, "", data)
        covenant = self._covenant(root.section("covenant"))
        defaults = Disclosure(**_parse_disclosure(root.section("disclosure", {})))
        age = self._age(root.section("age", {}))
        hierarchies = self._hierarchies(root.section("hierarchies", {}))
        tables = tuple(self._table(s, covenant, hierarchies) for s in root.sections("tables"))
        _unique(root, "tables", [t.id for t in tables])
        audiences = tuple(self._audience(s, {t.id for t in tables}) for s in root.sections("audiences"))
        _unique(root, "audiences", [a.id for a in audiences])
        declared = parse_relations(root.sections("relations", []), {t.id: t for t in tables})
        _unique(root, "relations", [r.id for r in declared])
        relations = (*declared, *derived_relations(tables, self.templates, declared))
        series = root.section("series", {})
        non_response = series.choice("non_response", NON_RESPONSE, "exclude")
        series.done()
        root.done()
        if any(d.hierarchy == "m49" for t in tables for d in t.dimensions):
            hierarchies = {**hierarchies, "m49": m49_hierarchy()}
        hierarchies = _with_other_codes(hierarchies, tables)
        digest = hashlib.sha256(raw).hexdigest()
        return Protocol(path, digest, covenant, defaults, age, audiences, hierarchies, tables, relations, non_response)

    def _covenant(self, s: Section) -> Covenant:
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

    def _template_columns(self, s: Section, key: str, covenant: str, template: str) -> Mapping[str, Column]:
        if not IDENTIFIER.match(template):
            raise s.error(key, f"'{template}' is not a valid template name")
        try:
            return self.lookup(covenant, template)
        except ConfigError as exc:
            raise s.error(key, exc.message, exc.hint) from exc

    def _age(self, s: Section) -> dict[str, int]:
        if s.has("X"):
            raise s.error("X", "class X data is never released, so it has no age")
        age = {cls: s.integer(cls, DEFAULT_AGE_MONTHS[cls], low=0) for cls in ("A", "B", "C")}
        s.done()
        if not age["A"] <= age["B"] <= age["C"]:
            raise s.error("B", "ages must not decrease from class A to B to C")
        return age

    def _hierarchies(self, s: Section) -> dict[str, Hierarchy]:
        hierarchies = {}
        for name in list(s.data):
            if name in BUILTIN_HIERARCHIES:
                raise s.error(name, f"'{name}' is built in and cannot be redefined")
            if not IDENTIFIER.match(name):
                raise s.error(name, f"'{name}' is not a valid hierarchy name")
            hierarchies[name] = self._hierarchy(s.section(name), name)
        s.done()
        return hierarchies

    def _hierarchy(self, s: Section, name: str) -> Hierarchy:
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

    def _audience(self, s: Section, table_ids: set[str]) -> Audience:
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

    def _table(self, s: Section, covenant: Covenant, hierarchies: Mapping[str, Hierarchy]) -> TableSpec:
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

    def _column(self, s: Section, key: str, template: str, columns: Mapping[str, Column]) -> Column:
        name = s.get(key, str)
        if name not in columns:
            raise s.error(key, f"'{name}' is not a column of template {template}")
        column = columns[name]
        if column.sensitivity == "X":
            raise s.error(key, f"column {name} is class X (forward-looking) and can never be released")
        if not IDENTIFIER.match(name):
            raise s.error(key, f"'{name}' is not a valid column name")
        return column

    def _numeric(self, s: Section, key: str, template: str, columns: Mapping[str, Column]) -> str:
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
        level = s.choice("level", ("leaf", "auto"), "leaf")
        if level == "auto" and (hierarchy is None or rollup):
            raise s.error(
                "level",
                'level = "auto" needs a hierarchy, and no rollup (a table is coarsened or its leaves merged)',
                hint='give the dimension a hierarchy and leave out rollup = true, or leave out level = "auto"',
            )
        s.done()
        return Dimension(column, hierarchy, rollup, level)

    def _operand(self, s: Section, template: str, columns: Mapping[str, Column]) -> Operand:
        column = self._numeric(s, "column", template, columns)
        weight = self._numeric(s, "weight", template, columns) if s.has("weight") else None
        return Operand(column, weight)

    def _measure(self, s: Section, template: str, columns: Mapping[str, Column]) -> Measure:
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

    def _filter(self, s: Section, template: str, columns: Mapping[str, Column]) -> Filter:
        column = self._column(s, "column", template, columns)
        value = s.get("equals", (str, int, float, bool))
        is_bool_column = column.type == "boolean"
        if is_bool_column != isinstance(value, bool):
            raise s.error("equals", f"{describe_value(value)} does not fit column {column.name} ({column.type})")
        if column.allowed and value not in column.allowed:
            raise s.error("equals", f"'{value}' is not a code of column {column.name}")
        s.done()
        return Filter(column.name, value)


def _unique(s: Section, key: str, ids: list[str]) -> None:
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
