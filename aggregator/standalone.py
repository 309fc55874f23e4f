"""Standalone protection: for people who already hold microdata (statistical offices, trade associations).

`protect_microdata(contributions, table_toml, out_dir)` reads one CSV or Parquet file of contributions (one row
per record: a contributor id, optionally a group id, one column per dimension and the value columns), a table
definition in the protocol format, and runs the secretariat's engine unchanged: the rows go into an in-memory
DuckDB, which aggregation reads as it reads the store's views (a `RowSource`: the rows, and every contributor
with its group), then primary rules, insiders, secondary suppression and the audit. It writes, per table,
every cell with its published value and its status (published, primary, secondary) as CSV and Parquet, plus
`audit.json`. No envelope, store or workspace is involved; the output is the protector's own working file,
not a committee release (it names primary and secondary cells).

The table definition (docs/suppression.md, "Standalone protection") is a protocol without [covenant],
[age] and [[audiences]]: an optional [standalone] section (contributor and group columns, language), then
[disclosure], [hierarchies.*] and [[tables]] exactly as in docs/protocols.md, with `template` left out and
`title`/`unit` optional. The file's columns form the template.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imvo_submit.states import CellStatus
from imvo_submit.validation import readers
from imvo_submit.validation import rules as template_rules
from imvo_submit.validation.validate import validate

from .aggregation import TableCells, build_table_cells, with_insiders
from .aggregation.release import release_problem
from .disclosure.audit import audit
from .disclosure.model import AuditResult, PrimaryResult, ProtectionProblem
from .disclosure.rules import evaluate_primary
from .disclosure.suppression import SuppressionResult, protect
from .errors import AggregatorError, ConfigError, DisclosureError, ValidationFailed
from .protocol import TOTAL_CODE, Column, Protocol, TableSpec, protocol_from_data
from .release.texts import neutralise
from .store import RowSource, quiet_connection

COVENANT = "standalone"
TEMPLATE = "contributions"
AUDIENCE = "standalone"
ROWS, CONTRIBUTORS = "standalone_rows", "standalone_groups"  # the relations aggregation reads
# columns the engine's relations use itself; a data column of that name would be ambiguous
RESERVED_COLUMNS = frozenset({"company_id", "group_id"})
STANDALONE_KEYS = ("contributor", "group", "language")
NOT_STANDALONE = {
    "covenant": "the covenant is implicit in standalone mode",
    "age": "data age is a release control of the secretariat's batch, not of standalone protection",
    "audiences": "standalone mode protects the tables for one reader; give stricter rules in [disclosure]",
}
_SHOWN_PROBLEMS = 8


@dataclass
class StandaloneResult:
    """What `protect_microdata` wrote and what the audit found."""

    out_dir: Path
    files: list[Path]
    summary: dict[str, Any]  # the content of audit.json
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # table id -> the written cells


@dataclass(frozen=True)
class _Input:
    """The contributions file as read: its bytes, a name for messages and its (normalised) header."""

    path: Path
    data: bytes
    name: str
    header: tuple[str, ...]


# ------------------------------------------------------------------------------------------------ the door


def protect_microdata(contributions: str | Path, table_toml: str | Path, out_dir: str | Path) -> StandaloneResult:
    """Protect the tables of `table_toml` over the contributions file and write them to `out_dir`.

    Raises ConfigError (table definition), ValidationFailed (the contributions file: missing columns,
    non-numeric or, under negative_values = "refuse", negative values; every problem is in `.report`) and
    DisclosureError (a table that cannot be protected). Nothing is written unless the audit passed.
    """
    source = _read_input(Path(contributions))
    raw_toml, data = _read_toml(Path(table_toml))
    settings = _standalone_settings(Path(table_toml), data, source.header)
    protocol = _protocol(Path(table_toml), raw_toml, data, source.header, settings)
    frame = _read_rows(source, protocol, settings)
    rows = _load(frame, settings)
    components, problem, result, checked = _protect(rows, protocol)
    tables = {spec.id: _table_frame(protocol, spec, components, problem, result) for spec in protocol.tables}
    summary = _summary(source, Path(table_toml), protocol, components, problem, result, checked, tables)
    files = _write_outputs(Path(out_dir), tables, summary)
    return StandaloneResult(Path(out_dir), files, summary, tables)


# ------------------------------------------------------------------------------------------------ inputs


def _read_input(path: Path) -> _Input:
    try:
        data, name = readers.load_bytes(path)
        fmt = readers.detect_format(data, name)
    except ValidationFailed as exc:
        raise ValidationFailed(f"{path}: {exc.message}", report=exc.report, hint=exc.hint) from exc
    if fmt == "xlsx":
        raise ValidationFailed(
            f"{path}: is an Excel workbook; standalone protection reads CSV or Parquet",
            hint="save the sheet as CSV (UTF-8) or Parquet and run the command again",
        )
    header = readers.file_headers(data, fmt, set())[""]
    return _Input(path, data, name, tuple(header))


def _read_toml(path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the table definition ({exc.strerror})") from exc
    try:
        return raw, tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc})") from exc


@dataclass(frozen=True)
class _Settings:
    contributor: str
    group: str | None
    language: str


def _standalone_settings(path: Path, data: dict[str, Any], header: tuple[str, ...]) -> _Settings:
    """[standalone]: contributor column (default 'contributor'), group column (default 'group' when the file
    has one) and output language."""
    section = data.get("standalone", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: standalone: expected a table")
    for key in sorted(set(section) - set(STANDALONE_KEYS)):
        raise ConfigError(f"{path}: standalone.{key}: unknown setting", hint=f"use {', '.join(STANDALONE_KEYS)}")
    contributor = _string_setting(path, section, "contributor", "contributor")
    group = _string_setting(path, section, "group", "group" if "group" in header else None)
    language = _string_setting(path, section, "language", "en")
    if language not in ("en", "nl"):
        raise ConfigError(f"{path}: standalone.language: '{language}' is not one of en, nl")
    for key, column in (("contributor", contributor), ("group", group)):
        if column is not None and column not in header:
            raise ValidationFailed(
                f"the contributions file has no column '{column}' (standalone.{key} in {path})",
                hint=f"the file's columns are: {', '.join(header)}",
            )
    return _Settings(contributor, group, language)


def _string_setting(path: Path, section: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = section.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: standalone.{key}: expected a string")
    return value


def _protocol(path: Path, raw: bytes, data: dict[str, Any], header: tuple[str, ...], settings: _Settings) -> Protocol:
    """The table definition as a protocol of one covenant, one template (the file) and one audience."""
    for key, why in NOT_STANDALONE.items():
        if key in data:
            raise ConfigError(f"{path}: {key}: not used by `aggregator protect` ({why})", hint="remove it")
    tables = data.get("tables")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{path}: tables: define at least one [[tables]] entry")
    protocol_data = {k: v for k, v in data.items() if k != "standalone"}
    protocol_data["covenant"] = {
        "id": COVENANT,
        "name": {"en": "Standalone protection", "nl": "Losse beveiliging"},
        "version": "standalone",
        "language": settings.language,
        "templates": [TEMPLATE],
    }
    protocol_data["tables"] = [_table_defaults(path, i, t) for i, t in enumerate(tables)]
    ids = [t.get("id") for t in tables if isinstance(t, dict)]
    protocol_data["audiences"] = [
        {"id": AUDIENCE, "name": {"en": "Standalone", "nl": "Los"}, "tables": ids, "frequency": "yearly"}
    ]
    # columns the tables name but the file lacks are reported when the rows are read, naming the file
    known = (*header, *sorted(_mentioned_columns(tables) - set(header)))
    columns = _template_columns(known, settings, _boolean_filter_columns(tables))
    return protocol_from_data(path, raw, protocol_data, lambda covenant, template: columns)


def _table_defaults(path: Path, i: int, table: Any) -> Any:
    """A standalone table names no template (the file is the template); title and unit default to the id."""
    if not isinstance(table, dict):
        return table  # the protocol loader reports it
    if "template" in table:
        raise ConfigError(
            f"{path}: tables[{i}].template: not used by `aggregator protect`; the columns come from the "
            "contributions file",
            hint="remove the template key",
        )
    name = str(table.get("id", ""))
    defaults = {"title": {"en": name, "nl": name}, "unit": {"en": "", "nl": ""}}
    return {**defaults, **table, "template": TEMPLATE}


def _template_columns(header: tuple[str, ...], settings: _Settings, booleans: set[str]) -> dict[str, Column]:
    """Every column but the contributor and group ones may be a dimension, filter or measure; whether a
    measure column really holds numbers is checked when the rows are read, with row numbers. A column that
    a filter compares with true/false is boolean."""
    skip = {settings.contributor, settings.group}
    return {
        name: Column(name, "boolean" if name in booleans else "number", "A")
        for name in header
        if name and name not in skip
    }


def _mentioned_columns(tables: list[Any]) -> set[str]:
    """Column names the tables' dimensions, filters and measure operands name (tolerant of malformed
    entries: the protocol loader reports those)."""
    found: set[str] = set()
    for table in tables:
        if not isinstance(table, dict):
            continue
        entries = [*_dicts(table.get("dimensions")), *_dicts(table.get("filters"))]
        measure = table.get("measure") if isinstance(table.get("measure"), dict) else {}
        entries += [
            measure,
            *(measure.get(k) for k in ("numerator", "denominator") if isinstance(measure.get(k), dict)),
        ]
        for entry in entries:
            found |= {entry[k] for k in ("column", "weight") if isinstance(entry.get(k), str)}
    return found


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _boolean_filter_columns(tables: list[Any]) -> set[str]:
    found = set()
    for table in tables:
        filters = table.get("filters", []) if isinstance(table, dict) else []
        for flt in filters if isinstance(filters, list) else []:
            if isinstance(flt, dict) and isinstance(flt.get("equals"), bool) and isinstance(flt.get("column"), str):
                found.add(flt["column"])
    return found


# ------------------------------------------------------------------------------------------------ rows


def _read_rows(source: _Input, protocol: Protocol, settings: _Settings) -> pd.DataFrame:
    """Read and check the rows with the validation package against a template made for these tables."""
    template = _validation_template(protocol, settings)
    missing = [c.name for c in template.columns if c.required and c.name not in source.header]
    if missing:
        raise ValidationFailed(
            f"{source.path}: the contributions file has no column '{missing[0]}', which the table definition uses",
            hint=f"the file's columns are: {', '.join(source.header)}; rename one or correct the table definition",
        )
    try:
        raw, _warnings = readers.read_table(source.data, template, filename=source.name)
    except ValidationFailed as exc:
        raise ValidationFailed(f"{source.path}: {exc.message}", report=exc.report, hint=exc.hint) from exc
    result = validate(raw, template)
    if not result.ok:
        raise _rows_failed(source.path, result.report)
    return result.frame


def _validation_template(protocol: Protocol, settings: _Settings) -> template_rules.Template:
    columns = {settings.contributor: _text_column(settings.contributor)}
    if settings.group:
        columns[settings.group] = _text_column(settings.group, required=False)
    for spec in protocol.tables:
        for dim in spec.dimensions:
            kind = "country" if dim.hierarchy == "m49" else "string"
            columns.setdefault(dim.column, template_rules.Column(dim.column, kind, True, "A"))
        for flt in spec.filters:
            columns.setdefault(flt.column, _filter_column(flt.column, flt.equals))
    for spec in protocol.tables:
        refuse = protocol.settings(spec.id, AUDIENCE).negative_values == "refuse"
        for name in spec.measure.columns:
            columns[name] = _measure_column(name, refuse, columns.get(name))
    _check_reserved(protocol, columns, settings)
    return template_rules.Template(COVENANT, TEMPLATE, list(columns.values()))


def _text_column(name: str, required: bool = True) -> template_rules.Column:
    return template_rules.Column(name, "string", required, "A")


def _filter_column(name: str, equals: object) -> template_rules.Column:
    kind = "boolean" if isinstance(equals, bool) else "number" if isinstance(equals, int | float) else "string"
    return template_rules.Column(name, kind, True, "A")


def _measure_column(name: str, refuse_negative: bool, earlier: template_rules.Column | None) -> template_rules.Column:
    # one table refusing negative values is enough to refuse them in the shared column
    refuse = refuse_negative or bool(earlier is not None and earlier.range is not None)
    return template_rules.Column(name, "number", True, "A", range=template_rules.Range(min=0) if refuse else None)


def _check_reserved(protocol: Protocol, columns: Mapping[str, template_rules.Column], settings: _Settings) -> None:
    roles = {settings.contributor, settings.group}
    clash = sorted((set(columns) - roles) & RESERVED_COLUMNS)
    if clash:
        raise ConfigError(
            f"{protocol.path}: column '{clash[0]}' cannot be a dimension, filter or measure in standalone mode "
            "(the engine uses that name itself)",
            hint="rename the column in the contributions file and in the table definition",
        )


def _rows_failed(path: Path, report) -> ValidationFailed:
    lines = []
    for problem in report.problems.head(_SHOWN_PROBLEMS).itertuples(index=False):
        where = "" if pd.isna(problem.row) else f"row {int(problem.row)}: "
        lines.append(f"  {where}{problem.message_en}")
    more = report.n_problems - len(lines)
    tail = f"\n  ... and {more} more" if more > 0 else ""
    return ValidationFailed(
        f"{path}: {report.n_problems} problem(s) in the contributions:\n" + "\n".join(lines) + tail,
        report=report,
        hint="correct the file (rows are numbered as in a spreadsheet, header = row 1) and run again",
    )


def _load(frame: pd.DataFrame, settings: _Settings) -> RowSource:
    """The rows and the contributors as DuckDB tables, read by aggregation as the store's views are."""
    contributor = frame[settings.contributor].astype(str)
    group = contributor if settings.group is None else frame[settings.group].fillna(contributor).astype(str)
    companies = _companies(contributor, group)
    rows = frame.drop(columns=[c for c in (settings.contributor, settings.group) if c])
    rows.insert(0, "company_id", contributor.to_numpy())
    con = quiet_connection()
    con.register("_companies", companies)
    con.register("_rows", rows.reset_index(drop=True))
    con.execute(f"CREATE TABLE {CONTRIBUTORS} AS SELECT * FROM _companies")
    con.execute(f"CREATE TABLE {ROWS} AS SELECT * FROM _rows")
    con.unregister("_companies")
    con.unregister("_rows")
    return RowSource(con, {TEMPLATE: ROWS}, CONTRIBUTORS)


def _companies(contributor: pd.Series, group: pd.Series) -> pd.DataFrame:
    pairs = pd.DataFrame({"company_id": contributor.to_numpy(), "group_id": group.to_numpy()}).drop_duplicates()
    twice = pairs[pairs["company_id"].duplicated(keep=False)].sort_values(["company_id", "group_id"])
    if len(twice):
        who = twice["company_id"].iloc[0]
        groups = ", ".join(twice.loc[twice["company_id"] == who, "group_id"])
        raise ValidationFailed(
            f"contributor '{who}' belongs to more than one group ({groups})",
            hint="give every row of a contributor the same group id",
        )
    return pairs.sort_values("company_id", ignore_index=True)


# ------------------------------------------------------------------------------------------------ engine


def _protect(
    source: RowSource, protocol: Protocol
) -> tuple[list[TableCells], ProtectionProblem, SuppressionResult, AuditResult]:
    """Aggregate, judge, suppress and audit every table together (tables sharing cells are linked)."""
    components: list[TableCells] = []
    primaries: list[PrimaryResult] = []
    for spec in protocol.tables:
        settings = protocol.settings(spec.id, AUDIENCE)
        params = settings.rule_params()
        for comp in build_table_cells(source, protocol, spec.id, None, params, count_unit=settings.count_unit):
            components.append(comp)
            primaries.append(evaluate_primary(comp.stats, params))
    problem = release_problem(protocol, AUDIENCE, components, primaries)
    problem = with_insiders(source, problem, components, primaries)
    result = protect(problem, protocol.defaults.suppression)
    checked = audit(problem, result.suppressed)
    if not checked.passed:
        raise DisclosureError(
            f"the suppression pattern failed its audit on {len(checked.failures)} cell(s); nothing was written",
            hint="report this to the maintainers with the contributions file and the table definition",
        )
    return components, problem, result, checked


# ------------------------------------------------------------------------------------------------ outputs


def _table_frame(
    protocol: Protocol,
    spec: TableSpec,
    components: list[TableCells],
    problem: ProtectionProblem,
    result: SuppressionResult,
) -> pd.DataFrame:
    """Per cell in display order: code, label and depth per dimension, the published value and the status.

    A ratio cell is published only when its numerator and denominator both are."""
    parts = {c.component: c for c in components if c.table_id == spec.id}
    main = parts.get("value") or parts["numerator"]
    index = {k: i for i, k in enumerate(problem.keys)}
    ids = np.array([[index[parts[name].keys[row]] for name in sorted(parts)] for row in range(len(main))])
    hidden = result.suppressed[ids].any(axis=1) if len(ids) else np.zeros(0, dtype=bool)
    primary = problem.primary[ids].any(axis=1) if len(ids) else np.zeros(0, dtype=bool)
    out = pd.DataFrame(index=range(len(main)))
    for dim in spec.dimensions:
        codes = main.frame[dim.column].astype(str)
        out[dim.column] = codes.to_numpy()
        out[f"{dim.column}_label"] = [_label(protocol, dim.hierarchy, c) for c in codes]
        out[f"{dim.column}_depth"] = main.frame[f"{dim.column}_depth"].to_numpy(dtype="int64")
    values = _cell_values(spec, parts)
    out["value"] = pd.array(np.where(hidden, np.nan, values), dtype="Float64")
    out["status"] = np.where(~hidden, "published", np.where(primary, "primary", "secondary"))
    return out


def _cell_values(spec: TableSpec, parts: Mapping[str, TableCells]) -> np.ndarray:
    if spec.measure.kind != "ratio":
        return parts["value"].stats.total.astype(float)
    numerator, denominator = parts["numerator"].stats.total, parts["denominator"].stats.total
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, 100.0 * numerator / denominator, np.nan)


def _label(protocol: Protocol, hierarchy: str | None, code: str) -> str:
    language = protocol.covenant.language
    if code == TOTAL_CODE:
        return "Totaal" if language == "nl" else "Total"
    if hierarchy is not None:
        label = protocol.hierarchy(hierarchy).labels.get(code)
        if label is not None:
            return label(language)
    return code


def _summary(source, table_toml, protocol, components, problem, result, checked, tables) -> dict[str, Any]:
    per_table = []
    for spec in protocol.tables:
        statuses = tables[spec.id]["status"].value_counts()
        counts = {s: int(statuses.get(s, 0)) for s in (CellStatus.PUBLISHED, CellStatus.PRIMARY, CellStatus.SECONDARY)}
        rolled = next((c.rollup for c in components if c.table_id == spec.id and c.rollup), {})
        per_table.append({"table": spec.id, "cells": len(tables[spec.id]), **counts, "rolled_up": rolled})
    return {
        "contributions": source.name,
        "contributions_sha256": hashlib.sha256(source.data).hexdigest(),
        "table_definition": table_toml.name,
        "table_definition_sha256": protocol.sha256,
        "tables": per_table,
        "problem_cells": int(problem.size),
        "primary": int(problem.primary.sum()),
        "secondary": int(result.secondary.sum()),
        "method": result.method,
        "optimal": bool(result.optimal),
        "audit": "passed" if checked.passed else "failed",
        "insiders_checked": int(checked.insiders_checked),
        "exact_disclosures": int(checked.exact_disclosures),
        "lp_solves": int(checked.lp_solves),
    }


def _write_outputs(out_dir: Path, tables: Mapping[str, pd.DataFrame], summary: dict[str, Any]) -> list[Path]:
    """Write every file under a temporary name first and rename them all at the end: a failure leaves no
    half-written output behind."""
    planned: list[tuple[Path, bytes]] = []
    for table_id, frame in tables.items():
        planned.append((out_dir / f"{table_id}.csv", _csv_bytes(frame)))
        planned.append((out_dir / f"{table_id}.parquet", _parquet_bytes(frame)))
    planned.append((out_dir / "audit.json", (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode()))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AggregatorError(f"cannot create the output folder {out_dir} ({exc.strerror})") from exc
    staged: list[tuple[Path, Path]] = []
    try:
        for target, content in planned:
            temporary = target.with_name(f".{target.name}.partial")
            staged.append((temporary, target))
            temporary.write_bytes(content)
        for temporary, target in staged:
            os.replace(temporary, target)
    except OSError as exc:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise AggregatorError(f"cannot write to {out_dir} ({exc.strerror})") from exc
    return [target for target, _ in planned]


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 with BOM (Excel), ',' separated, '.' decimals; text that Excel would run as a formula is
    neutralised; a suppressed value is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(list(frame.columns))
    for row in frame.itertuples(index=False):
        writer.writerow([_csv_text(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def _csv_text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float | np.floating):
        return f"{float(value):.15g}"
    return neutralise(str(value))


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()
