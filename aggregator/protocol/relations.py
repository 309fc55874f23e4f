"""Logical relations between tables: every cell of one table is at most the cell of another table with the same
coordinates (codes per dimension; a dimension only one table has is at its total in the match).

Readers know these as well as the sums: a count of companies with locations in a country is at most the
count of those locations, a prioritised risk was identified, a resolved grievance was received. They are
declared in the protocol (`[[relations]]`) or derived here from the templates' cross-column checks and the
tables' filters, and enter the attacker's model as `larger = smaller + slack` with a hidden slack >= 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aggregator.protocol.model import Column, LogicalRelation, TableSpec
from aggregator.protocol.sections import Section

COUNT_KINDS = ("count", "companies")


def parse_relations(sections: Sequence[Section], tables: Mapping[str, TableSpec]) -> list[LogicalRelation]:
    """The `[[relations]]` of a protocol, each checked: both tables exist, differ, are not ratios, cover the
    same months and give every dimension they share the same hierarchy."""
    relations = []
    for s in sections:
        relation = LogicalRelation(s.identifier("id"), _table(s, "smaller", tables), _table(s, "larger", tables), "")
        s.done()
        small, large = tables[relation.smaller], tables[relation.larger]
        if small.id == large.id:
            raise s.error("larger", "a table cannot be compared with itself")
        if small.periods is not large.periods:
            raise s.error("larger", f"tables {small.id} and {large.id} cover different months")
        clash = _hierarchy_clash(small, large)
        if clash:
            raise s.error("larger", f"dimension {clash} has another hierarchy in table {small.id} than in {large.id}")
        relations.append(LogicalRelation(relation.id, small.id, large.id, "declared"))
    return relations


def _table(s: Section, key: str, tables: Mapping[str, TableSpec]) -> str:
    table_id = s.get(key, str)
    if table_id not in tables:
        raise s.error(key, f"no table '{table_id}' in this protocol")
    if tables[table_id].measure.kind == "ratio":
        raise s.error(key, f"table {table_id} is a ratio; relate its numerator or denominator tables instead")
    return table_id


def _hierarchy_clash(a: TableSpec, b: TableSpec) -> str | None:
    theirs = {d.column: d.hierarchy for d in b.dimensions}
    return next((d.column for d in a.dimensions if d.column in theirs and theirs[d.column] != d.hierarchy), None)


def derived_relations(
    tables: Sequence[TableSpec], columns: Mapping[str, Mapping[str, Column]], declared: Sequence[LogicalRelation]
) -> list[LogicalRelation]:
    """Relations every reader knows without being told, for each ordered pair of tables of one template:

    - the rows of the smaller table are rows of the larger one (its filters imply the larger table's, through
      equal filters or `implies` checks such as risk_prioritised -> risk_identified), and both count rows, or
      both count companies, or the smaller counts companies and the larger rows (a company counted in a cell
      has a row there);
    - both sum one column over the same rows and a `not_greater` check says the smaller column is at most the
      larger one in every row (grievances_resolved <= grievances_received), both columns required.
    Pairs already declared are left out."""
    known = {(r.smaller, r.larger) for r in declared}
    found = []
    for a in tables:
        for b in tables:
            if a.id == b.id or (a.id, b.id) in known or not _comparable(a, b):
                continue
            reason = _why_at_most(a, b, columns[a.template])
            if reason:
                found.append(LogicalRelation(f"{a.id}_le_{b.id}", a.id, b.id, reason))
    return found


def _comparable(a: TableSpec, b: TableSpec) -> bool:
    return a.template == b.template and a.periods is b.periods and _hierarchy_clash(a, b) is None


def _why_at_most(a: TableSpec, b: TableSpec, columns: Mapping[str, Column]) -> str:
    """Why every cell of a is at most b's cell of the same coordinates ("" when that does not follow)."""
    kinds = (a.measure.kind, b.measure.kind)
    if kinds[0] == kinds[1] and kinds[0] in COUNT_KINDS and _same_filters(a, b):
        return ""  # the same quantity: the matching cells are one cell
    within = _rows_within(a, b, columns)
    if within and kinds in (("count", "count"), ("companies", "companies"), ("companies", "count")):
        if kinds == ("companies", "count"):
            return "a company counted in a cell has at least one row there"
        return "its rows are rows of the larger table"
    if kinds == ("sum", "sum") and _same_filters(a, b):
        x, y = a.measure.value, b.measure.value
        if x is None or y is None or x.weight or y.weight or x.column == y.column:
            return ""
        left = columns.get(x.column)
        if left is not None and y.column in left.at_most and left.required and columns[y.column].required:
            return f"check {x.column} <= {y.column}"
    return ""


def _same_filters(a: TableSpec, b: TableSpec) -> bool:
    return a.filters_signature == b.filters_signature


def _rows_within(a: TableSpec, b: TableSpec, columns: Mapping[str, Column]) -> bool:
    """Whether every row a counts is a row b counts: each filter of b is one of a's, or follows from one of a's
    through an `implies` check (a true boolean implies another true)."""
    implied = {f.signature for f in a.filters}
    for f in a.filters:
        column = columns.get(f.column)
        if f.equals is True and column is not None:
            implied |= {f"{right}=true" for right in column.implies}
    return {f.signature for f in b.filters} <= implied
