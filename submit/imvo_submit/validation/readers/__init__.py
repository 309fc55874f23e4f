"""Read a submission file (CSV, XLSX, ODS or Parquet) into a raw frame indexed by spreadsheet row, plus warnings.

The format is detected from the bytes, not the file name. CSV: `,` `;` or tab separator and UTF-8 (with or
without BOM), UTF-16 with BOM or Windows-1252 encoding are detected. Gentle normalisation happens only where
the meaning is certain, and each kind of change is reported as a warning (one per column, with a count and an
example), never silently: trimmed spaces, header case, country names and alpha-3 codes -> alpha-2, yes/no
words -> true/false, enum case, Dutch or English number notation -> plain numbers.

Decisions (documented in rules/README.md):
- Unknown extra columns are ignored with a warning: companies often keep a notes column, and only template
  columns are ever stored.
- Rows with no value in any template column are dropped with a warning; the index keeps the spreadsheet
  row numbers (header = row 1).
- A file with a header but no data rows, an empty file, binary data, duplicate column names, rows longer than
  the header and more than MAX_COLUMNS columns raise ValidationFailed with a file-level report.
- CSV rows are counted as lines; a quoted cell that spans lines shifts later row numbers (rare in practice).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from imvo_submit.validation.readers.arrow_text import clean_edges, trim_text_column
from imvo_submit.validation.readers.common import (
    FALSE_WORDS,
    FIRST_DATA_ROW,
    MAX_COLUMNS,
    TRUE_WORDS,
    ReadWarning,
    detect_format,
    load_bytes,
    normalise_header,
)
from imvo_submit.validation.readers.delimited import decode_text, detect_separator, read_csv, read_large_csv_file
from imvo_submit.validation.readers.normalise import enum_key, normalise
from imvo_submit.validation.readers.numbers import NumberLocales
from imvo_submit.validation.readers.parquet import read_parquet
from imvo_submit.validation.readers.workbook import check_zip_limits, read_sheet, read_workbook, sheet_names
from imvo_submit.validation.rules import Template, load_template

__all__ = [
    "FALSE_WORDS",
    "FIRST_DATA_ROW",
    "MAX_COLUMNS",
    "TRUE_WORDS",
    "NumberLocales",
    "ReadWarning",
    "check_zip_limits",
    "clean_edges",
    "decode_text",
    "detect_format",
    "detect_separator",
    "enum_key",
    "file_headers",
    "load_bytes",
    "normalise",
    "normalise_header",
    "read_sheet",
    "read_table",
    "resolve_template",
    "sheet_names",
    "trim_text_column",
]


def read_table(
    source: str | Path | bytes, template: Template | str, filename: str | None = None
) -> tuple[pd.DataFrame, list[ReadWarning]]:
    """Read one submission file for `template` (a Template or 'covenant/template').

    Returns the raw frame (template columns that are present, values as text or as stored in the file,
    index = spreadsheet row) and the warnings. Raises ValidationFailed (with a report) for unreadable files.
    """
    tpl = resolve_template(template)
    warnings: list[ReadWarning] = []
    mapped = read_large_csv_file(source, {c.name for c in tpl.columns})
    if mapped is not None:
        raw, sep = mapped
        return normalise(raw, tpl, warnings, "nl" if sep == ";" else None), warnings
    data, name = load_bytes(source, filename)
    fmt = detect_format(data, name)
    if fmt == "xlsx":
        raw = read_workbook(data, tpl, warnings)
        locale_hint = None
    elif fmt == "parquet":
        raw = read_parquet(data)
        locale_hint = None
    else:
        raw, sep = read_csv(data, {c.name for c in tpl.columns}, warnings)
        locale_hint = "nl" if sep == ";" else None
    return normalise(raw, tpl, warnings, locale_hint), warnings


def resolve_template(template: Template | str) -> Template:
    if isinstance(template, Template):
        return template
    covenant, _, name = str(template).partition("/")
    return load_template(covenant, name)


def file_headers(data: bytes, fmt: str, known: set[str]) -> dict[str, list[str]]:
    """Header names per sheet (XLSX: only sheets with data rows; CSV/Parquet: one entry '') for detection."""
    if fmt == "xlsx":
        headers = {}
        for name in sheet_names(data):
            sheet = read_sheet(data, name)
            if len(sheet.dropna(how="all")):
                headers[name] = [normalise_header(c) for c in sheet.columns]
        return headers
    if fmt == "parquet":
        return {"": [normalise_header(c) for c in read_parquet(data).columns]}
    text, _ = decode_text(data[:65536], [])
    separator = detect_separator(text, known)
    header = next(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=separator), [])
    return {"": [normalise_header(c) for c in header]}
