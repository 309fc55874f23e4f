"""Read a submission file (CSV, XLSX or Parquet) into a raw frame indexed by spreadsheet row, plus warnings.

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
import mmap
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.csv as pa_csv

from aggregator.errors import ValidationFailed
from aggregator.validation import declared, parallel, reference
from aggregator.validation.report import Problem, ValidationReport
from aggregator.validation.rules import Template, load_template

MAX_COLUMNS = declared.MAX_COLUMNS
FIRST_DATA_ROW = 2  # the header is spreadsheet row 1
TRUE_WORDS = frozenset({"true", "waar", "ja", "yes", "y", "j", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "onwaar", "nee", "no", "n", "0", "0.0"})
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))
_SEPARATORS = (",", ";", "\t")


@dataclass(frozen=True)
class ReadWarning:
    """A change the reader made (or a doubt it had), reported to the company; one per kind and column."""

    code: str
    message_en: str
    message_nl: str
    column: str | None = None
    count: int = 0

    def __str__(self) -> str:
        return self.message_en

    def message(self, language: str = "en") -> str:
        return self.message_nl if language == "nl" else self.message_en


def read_table(
    source: str | Path | bytes, template: Template | str, filename: str | None = None
) -> tuple[pd.DataFrame, list[ReadWarning]]:
    """Read one submission file for `template` (a Template or 'covenant/template').

    Returns the raw frame (template columns that are present, values as text or as stored in the file,
    index = spreadsheet row) and the warnings. Raises ValidationFailed (with a report) for unreadable files.
    """
    tpl = resolve_template(template)
    warnings: list[ReadWarning] = []
    mapped = _read_large_csv_file(source, {c.name for c in tpl.columns})
    if mapped is not None:
        raw, sep = mapped
        return normalise(raw, tpl, warnings, "nl" if sep == ";" else None), warnings
    data, name = load_bytes(source, filename)
    fmt = detect_format(data, name)
    if fmt == "xlsx":
        raw = _read_xlsx(data, tpl, warnings)
        locale_hint = None
    elif fmt == "parquet":
        raw = _read_parquet(data)
        locale_hint = None
    else:
        raw, sep = _read_csv(data, {c.name for c in tpl.columns}, warnings)
        locale_hint = "nl" if sep == ";" else None
    return normalise(raw, tpl, warnings, locale_hint), warnings


def resolve_template(template: Template | str) -> Template:
    if isinstance(template, Template):
        return template
    covenant, _, name = str(template).partition("/")
    return load_template(covenant, name)


def load_bytes(source: str | Path | bytes, filename: str | None = None) -> tuple[bytes, str]:
    """The file's bytes and a name for messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), filename or "<upload>"
    path = Path(source)
    try:
        return path.read_bytes(), filename or path.name
    except OSError as exc:
        raise _file_problem("unreadable", f"cannot read {path}: {exc.strerror}", f"kan {path} niet lezen") from exc


def detect_format(data: bytes, name: str = "") -> str:
    """'xlsx', 'parquet' or 'csv', from the file's first bytes."""
    body = _without_bom(data)
    if not body[:4096].strip() and not body.strip():  # strip copies: only look further when the start is blank
        raise _file_problem("empty_file", "the file is empty", "het bestand is leeg")
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise _file_problem(
            "unreadable",
            "this is an old Excel file (.xls), which cannot be read; save it as .xlsx or .csv",
            "dit is een oud Excel-bestand (.xls), dat niet gelezen kan worden; sla het op als .xlsx of .csv",
        )
    return "csv"


def _without_bom(data: bytes) -> bytes:
    """The bytes after a byte-order mark: a file that holds only a BOM is empty, not binary."""
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if data.startswith(bom):
            return data[len(bom) :]
    return data


# ---------------------------------------------------------------- file-level errors


def _file_problem(rule: str, message_en: str, message_nl: str, column: str | None = None) -> ValidationFailed:
    report = ValidationReport.from_problems([Problem(None, column, None, rule, message_en, message_nl)])
    return ValidationFailed(message_en, report=report, hint="fix the file and check it again")


# ---------------------------------------------------------------- CSV


def decode_text(data: bytes, warnings: list[ReadWarning]) -> tuple[str, str]:
    """Decoded text and the encoding name; refuses binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text, encoding = _decode_utf16(data), "utf-16"
    elif b"\x00" in data:
        raise _not_text()
    else:
        encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            text, encoding = _decode_cp1252(data), "cp1252"
            warnings.append(
                ReadWarning(
                    "encoding",
                    "the file is not UTF-8; it was read as Windows-1252 (Western European)",
                    "het bestand is geen UTF-8; het is gelezen als Windows-1252 (West-Europees)",
                )
            )
    # Control characters never occur in a real CSV; like `file`, look at the start (NUL was checked in full).
    sniff = data[:65536] if encoding != "utf-16" else text[:32768].encode("utf-8", "surrogatepass")
    if len(sniff.translate(None, _CONTROL_BYTES)) != len(sniff):
        raise _not_text()
    return text, encoding


def _decode_utf16(data: bytes) -> str:
    try:
        return data.decode("utf-16")
    except UnicodeDecodeError as exc:  # an odd number of bytes or a broken surrogate: cut off or damaged
        raise _file_problem(
            "unreadable",
            "the file is UTF-16 text that is cut off or damaged; save it again (CSV UTF-8 is best)",
            "het bestand is UTF-16-tekst die afgebroken of beschadigd is; sla het opnieuw op (CSV UTF-8 is het beste)",
        ) from exc


def _decode_cp1252(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise _not_text() from exc


def _not_text() -> ValidationFailed:
    return _file_problem(
        "unreadable",
        "the file is not a CSV, XLSX or Parquet file (it contains binary data)",
        "het bestand is geen CSV-, XLSX- of Parquet-bestand (het bevat binaire gegevens)",
    )


def detect_separator(text: str, known_columns: set[str]) -> str:
    """The separator that splits the header into the most known column names; ties -> most fields."""
    head = text[:65536]
    best, best_score = ",", (-1, -1)
    for sep in _SEPARATORS:
        try:
            header = next(csv.reader(io.StringIO(head, newline=""), delimiter=sep), [])
        except csv.Error:
            continue
        names = {normalise_header(h) for h in header}
        score = (len(names & known_columns), len(header))
        if score > best_score:
            best, best_score = sep, score
    return best


def _read_csv(data: bytes, known: set[str], warnings: list[ReadWarning]) -> tuple[pd.DataFrame, str]:
    quick = _read_utf8_csv_quickly(data, known)
    if quick is not None:
        return quick
    text, encoding = decode_text(data, warnings)
    text = text.removeprefix("\ufeff")
    sep = detect_separator(text, known)
    header = next(csv.reader(io.StringIO(text[:65536], newline=""), delimiter=sep), [])
    _check_csv_header_present(header)
    _check_header(header)
    names = [f"_c{i}" for i in range(len(header))]
    try:
        frame = _read_csv_fast(data, text, encoding, sep, names)
    except (pa.ArrowInvalid, ValueError):
        # The fast reader cannot say which row is broken; the pandas reader names the line.
        _check_row_widths(text, sep, len(header))
        frame = _read_csv_careful(data, text, encoding, sep, names)
    return _numbered(frame, header), sep


def _numbered(frame: pd.DataFrame, header: list[str]) -> pd.DataFrame:
    # Blank header cells get unique names, as in XLSX: two blank names would make a column lookup a frame.
    frame.columns = [h if normalise_header(h) else f"_unnamed_{i + 1}" for i, h in enumerate(header)]
    frame.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(frame))
    return frame


_QUICK_MIN_BYTES = 1024 * 1024
_HEAD_BYTES = 65536


def _read_large_csv_file(source: str | Path | bytes, known: set[str]) -> tuple[pd.DataFrame, str] | None:
    """A large file given by path that looks like well-formed UTF-8 CSV, read through a memory map.

    The same result as reading its bytes first (see _read_utf8_csv_quickly), without copying the whole file
    into memory before parsing (that copy cost about a quarter of a plain read). None, with nothing read and no
    warnings, for bytes, small files, files that start like another format or blank, and whatever the quick
    reader declines: the ordinary path then reads the bytes and decides as before."""
    if isinstance(source, bytes | bytearray | memoryview):
        return None
    try:
        with open(source, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < _QUICK_MIN_BYTES:
                return None
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None  # the ordinary path reports an unreadable file with its usual message
    try:
        start = mapped[:4096]
        if start[:4] in (b"PK\x03\x04", b"PAR1", b"\xd0\xcf\x11\xe0") or not _without_bom(start).strip():
            return None  # detect_format decides: another format, or a blank start
        return _read_utf8_csv_quickly(mapped, known)
    finally:
        try:
            mapped.close()
        except BufferError:  # still exported to Arrow: the map closes when that buffer is freed
            pass


def _read_utf8_csv_quickly(data: bytes | mmap.mmap, known: set[str]) -> tuple[pd.DataFrame, str] | None:
    """A large file that looks like well-formed UTF-8 CSV, read without decoding it in Python first.

    Decoding a big file to a Python string only to learn that it is UTF-8 cost a fifth of a plain read;
    pyarrow checks UTF-8 while it parses. None (nothing read, no warnings) when the file is small, not
    UTF-8 at its start, or refused by pyarrow: the full path then decides the encoding and names a broken
    row exactly as before."""
    head_bytes = data[:_HEAD_BYTES]
    if len(data) < _QUICK_MIN_BYTES or head_bytes.startswith((b"\xff\xfe", b"\xfe\xff")) or data.find(b"\x00") >= 0:
        return None
    head = _decode_utf8_prefix(head_bytes)
    if head is None or len(head_bytes.translate(None, _CONTROL_BYTES)) != len(head_bytes):
        return None  # the full path decides the encoding, or refuses the file with its usual message
    head = head.removeprefix("\ufeff")
    if "\n" not in head and "\r" not in head:
        return None  # the header row does not fit in the sniffed start
    sep = detect_separator(head, known)
    header = next(csv.reader(io.StringIO(head, newline=""), delimiter=sep), [])
    _check_csv_header_present(header)
    _check_header(header)
    encoding = "utf-8-sig" if head_bytes.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        frame = _read_csv_fast(data, "", encoding, sep, [f"_c{i}" for i in range(len(header))])
    except (pa.ArrowInvalid, ValueError):
        return None
    return _numbered(frame, header), sep


def _decode_utf8_prefix(head: bytes) -> str | None:
    """The start of a file as UTF-8 (its last character may be cut by the slice); None if it is not UTF-8."""
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _read_csv_fast(data: bytes | mmap.mmap, text: str, encoding: str, sep: str, names: list[str]) -> pd.DataFrame:
    """pyarrow's multi-threaded reader, all columns as text; blank lines stay as rows (numbering holds).

    Columns are read as large_string because that is what pandas' "str" dtype holds: with plain string,
    to_pandas casts (copies) every column, which cost about as much as the parsing itself."""
    # Arrow reads the bytes in place (a BytesIO would hand them over in copied pieces)
    source = pa.BufferReader(pa.py_buffer(text.encode("utf-8") if encoding == "utf-16" else data))
    table = pa_csv.read_csv(
        source,
        read_options=pa_csv.ReadOptions(
            column_names=names, skip_rows=1, encoding="utf8" if encoding != "cp1252" else "cp1252"
        ),
        parse_options=pa_csv.ParseOptions(delimiter=sep, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.large_string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table.to_pandas()


def _read_csv_careful(data: bytes, text: str, encoding: str, sep: str, names: list[str]) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.StringIO(text) if encoding == "utf-16" else io.BytesIO(data),
            sep=sep,
            header=0,
            names=names,
            dtype=str,
            encoding=None if encoding == "utf-16" else encoding,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise _ragged_row(str(exc)) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise _not_text() from exc


def _check_row_widths(text: str, sep: str, width: int) -> None:
    """Refuse the first row with more cells than the header, before pandas sees it.

    pandas would quietly turn the extra leading cells of such a row into an index (shifting every value one
    column or more) and, for a row of a million cells, take minutes doing so.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        for row in reader:
            if len(row) > width:
                raise _ragged_row(f"Expected {width} fields in line {reader.line_num}, saw {len(row)}")
    except csv.Error as exc:
        raise _file_problem(
            "ragged_row",
            f"the file cannot be read as CSV near row {reader.line_num}: a quote or a very long cell is out of place",
            f"het CSV-bestand kan niet gelezen worden rond regel {reader.line_num}: een aanhalingsteken of een "
            "heel lange cel staat verkeerd",
        ) from exc


def _ragged_row(message: str) -> ValidationFailed:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if not found:
        # pandas' own wording ("Error tokenizing data. C error: ...") means nothing to a company clerk.
        return _file_problem(
            "ragged_row",
            'the file cannot be read as CSV: a quote (") is opened but never closed, or a separator is out of place',
            'het CSV-bestand kan niet gelezen worden: een aanhalingsteken (") wordt niet gesloten, of een '
            "scheidingsteken staat verkeerd",
        )
    expected, line, saw = found.groups()
    return _file_problem(
        "ragged_row",
        f"row {line} has {saw} cells but the header has {expected}; remove the extra separators",
        f"regel {line} heeft {saw} cellen maar de kopregel {expected}; verwijder de extra scheidingstekens",
    )


def _check_csv_header_present(header: list[str]) -> None:
    """A CSV's first line must name the columns; a blank one would leave pandas with no columns at all."""
    if not any(normalise_header(name) for name in header):
        raise _file_problem(
            "no_header",
            "the first row is empty; row 1 must hold the column names of the template",
            "de eerste regel is leeg; regel 1 moet de kolomnamen van het sjabloon bevatten",
        )


def _check_header(header: list[Any]) -> None:
    if len(header) > MAX_COLUMNS:
        raise declared.too_wide(len(header))
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        key = normalise_header(name)
        if key and key in seen:
            raise _file_problem(
                "duplicate_column",
                f"column '{key}' appears twice in the header (columns {seen[key]} and {position}); keep one",
                f"kolom '{key}' staat twee keer in de kopregel (kolommen {seen[key]} en {position}); houd er één",
                column=key,
            )
        seen[key] = position


def normalise_header(name: Any) -> str:
    """'Order Value EUR ' -> 'order_value_eur'."""
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return ""
    return re.sub(r"[\s\-]+", "_", str(name).strip().removeprefix("\ufeff")).casefold()


# ---------------------------------------------------------------- XLSX and Parquet


def sheet_names(data: bytes) -> list[str]:
    """The workbook's sheets (XLSX or ODS), after its parts and every sheet's extent passed the limits: call it
    before read_sheet."""
    from python_calamine import CalamineWorkbook

    check_zip_limits(data)
    declared.check_sheet_extents(data)
    try:
        return list(CalamineWorkbook.from_filelike(io.BytesIO(data)).sheet_names)
    except Exception as exc:  # calamine raises several private error types for broken files
        raise _bad_xlsx(exc) from exc


def _bad_xlsx(exc: Exception | None = None) -> ValidationFailed:
    # The library's error type means nothing to a company clerk, so it stays out of the message.
    return _file_problem(
        "unreadable",
        "the Excel file cannot be read (it is damaged or not a real .xlsx file); open it in Excel and save it "
        "again as .xlsx",
        "het Excel-bestand kan niet gelezen worden (het is beschadigd of geen echt .xlsx-bestand); open het in "
        "Excel en sla het opnieuw op als .xlsx",
    )


# An .xlsx is a zip file: a tiny file can unpack to gigabytes (a "zip bomb"). The reader (calamine) refuses to
# unpack a member past its declared size, so checking the declared sizes before reading is enough.
MAX_XLSX_UNPACKED_BYTES = 256 * 1024**2  # a 100,000-row template sheet unpacks to about 40 MB
MAX_XLSX_MEMBERS = 10_000
MAX_XLSX_RATIO = 200  # real sheets compress 5-30 times; bombs 1,000 times and more
_RATIO_FLOOR_BYTES = 1024**2  # small members may compress extremely well (an empty sheet) and are harmless


def check_zip_limits(data: bytes) -> None:
    """Refuse an .xlsx whose parts would unpack to too much, or far more than real spreadsheets do."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise _bad_xlsx(exc) from exc
    total = sum(m.file_size for m in members)
    suspicious = [
        m
        for m in members
        if m.file_size > _RATIO_FLOOR_BYTES and m.file_size > MAX_XLSX_RATIO * max(m.compress_size, 1)
    ]
    if len(members) > MAX_XLSX_MEMBERS:
        raise _file_problem(
            "unreadable",
            f"the Excel file consists of {len(members)} parts (at most {MAX_XLSX_MEMBERS}); this is not a normal "
            "spreadsheet, so it was not opened",
            f"het Excel-bestand bestaat uit {len(members)} delen (hoogstens {MAX_XLSX_MEMBERS}); dit is geen "
            "gewoon rekenblad, dus het is niet geopend",
        )
    if total > MAX_XLSX_UNPACKED_BYTES or suspicious:
        size_mb = total // 1024**2
        raise _file_problem(
            "unreadable",
            f"the Excel file would unpack to {size_mb} MB from {len(data) // 1024} KB; this is not a normal "
            "spreadsheet (possibly a 'zip bomb'), so it was not opened",
            f"het Excel-bestand zou uitpakken tot {size_mb} MB uit {len(data) // 1024} KB; dit is geen "
            "gewoon rekenblad (mogelijk een 'zip-bom'), dus het is niet geopend",
        )


def read_sheet(data: bytes, sheet: str) -> pd.DataFrame:
    """One sheet with its header row as column names and the spreadsheet row numbers as index (the workbook
    passed sheet_names' limits)."""
    try:
        grid = pd.read_excel(io.BytesIO(data), sheet_name=sheet, engine="calamine", header=None, dtype=object)
    except Exception as exc:  # calamine raises several private error types for broken files
        raise _bad_xlsx(exc) from exc
    if grid.empty:
        return pd.DataFrame()
    header = list(grid.iloc[0])
    while header and normalise_header(header[-1]) == "":
        header.pop()  # Excel's used range often runs past the last real column
    _check_header(header)
    body = grid.iloc[1:, : len(header)].copy()
    body.columns = [str(h) if normalise_header(h) else f"_unnamed_{i + 1}" for i, h in enumerate(header)]
    body.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(body))
    return body


def _read_xlsx(data: bytes, tpl: Template, warnings: list[ReadWarning]) -> pd.DataFrame:
    names = sheet_names(data)
    matches = [n for n in names if n.strip().casefold() == tpl.name.casefold()]
    if not matches:
        raise _file_problem(
            "sheet_not_found",
            f"the workbook has no sheet named '{tpl.name}' (sheets: {', '.join(names)}); use the template's sheet",
            f"de werkmap heeft geen blad '{tpl.name}' (bladen: {', '.join(names)}); gebruik het blad uit het sjabloon",
        )
    return read_sheet(data, matches[0])


def _read_parquet(data: bytes) -> pd.DataFrame:
    frame = declared.parquet_frame(data)
    _check_header(list(frame.columns))
    frame = frame.reset_index(drop=True)
    frame.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(frame))
    return frame


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
        return {"": [normalise_header(c) for c in _read_parquet(data).columns]}
    text, _ = decode_text(data[:65536], [])
    separator = detect_separator(text, known)
    header = next(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=separator), [])
    return {"": [normalise_header(c) for c in header]}


# ---------------------------------------------------------------- normalisation


def normalise(
    raw: pd.DataFrame, tpl: Template, warnings: list[ReadWarning], locale_hint: str | None = None
) -> pd.DataFrame:
    """Template columns only, values gently normalised; every change reported in `warnings`."""
    frame = _normalise_columns(raw, tpl, warnings)
    for name in frame.columns:
        frame[name] = _trimmed(frame[name], name, warnings)
    frame = _drop_empty_rows(frame, warnings)
    if frame.empty:
        raise _file_problem(
            "no_rows",
            "the file has a header but no data rows; fill in at least one row",
            "het bestand heeft een kopregel maar geen gegevens; vul minstens één regel in",
        )
    number_columns = [c for c in tpl.columns if c.type in ("integer", "number") and c.name in frame]
    locales = NumberLocales(frame, number_columns, locale_hint)
    for col in tpl.columns:
        if col.name not in frame:
            continue
        values = frame[col.name]
        if col.type == "string":
            values = _as_text(values)  # an id typed as a number in Excel (1001) is the text '1001'
        elif col.type == "country":
            values = _normalise_countries(values, col.name, warnings)
        elif col.type == "boolean":
            values = _normalise_booleans(values, col.name, warnings)
        elif col.type == "enum":
            values = _normalise_enum(values, col.name, col.allowed, warnings)
        elif col.type in ("integer", "number"):
            values = locales.apply(values, col.name, col.type, warnings)
        frame[col.name] = values
    return frame


def _normalise_columns(raw: pd.DataFrame, tpl: Template, warnings: list[ReadWarning]) -> pd.DataFrame:
    known = set(tpl.column_names)
    renamed, unknown = {}, []
    for original in raw.columns:
        name = normalise_header(original)
        if name in known:
            renamed[original] = name
            if name != original:
                warnings.append(
                    ReadWarning(
                        "header",
                        f"header '{original}' was read as '{name}'",
                        f"kolomkop '{original}' is gelezen als '{name}'",
                        name,
                    )
                )
        elif (name and not name.startswith("_unnamed_")) or not _is_blank(
            raw[original]
        ).all():  # a blank-headed column matters only with data
            unknown.append(str(original) or f"(column {len(renamed) + len(unknown) + 1} without a header)")
    if unknown:
        listed = ", ".join(f"'{u}'" for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        warnings.append(
            ReadWarning(
                "unknown_column",
                f"columns not in template '{tpl.name}' were ignored: {listed}",
                f"kolommen die niet in sjabloon '{tpl.name}' staan zijn genegeerd: {listed}",
                count=len(unknown),
            )
        )
    if list(renamed) == list(raw.columns) and all(k == v for k, v in renamed.items()):
        return raw  # the common case: the reader's own fresh frame, already as the template names it
    kept = raw[list(renamed)]
    return kept if all(k == v for k, v in renamed.items()) else kept.rename(columns=renamed)


def _is_blank(series: pd.Series) -> pd.Series:
    if series.dtype == object:
        return series.map(lambda v: v is None or _is_nan(v) or (isinstance(v, str) and not v.strip())).astype(bool)
    if pd.api.types.is_string_dtype(series.dtype):
        return (series.isna() | (series.str.strip() == "")).astype(bool)
    return series.isna()


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _drop_empty_rows(frame: pd.DataFrame, warnings: list[ReadWarning]) -> pd.DataFrame:
    """Drop rows whose template cells are all empty (values are trimmed already)."""
    if frame.columns.empty:
        return frame.iloc[0:0]
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        count = int(blank.sum())
        warnings.append(
            ReadWarning(
                "empty_rows",
                f"{count} empty rows were skipped",
                f"{count} lege regels zijn overgeslagen",
                None,
                count,
            )
        )
        frame = frame.loc[~blank]
    return frame


def _trimmed(series: pd.Series, name: str, warnings: list[ReadWarning]) -> pd.Series:
    """Trim text, turn empty text into missing; raw numbers and booleans (Excel, Parquet) pass unchanged."""
    if series.dtype == object:
        trimmed = series.map(_trim_value)
        changed = int(series.map(lambda v: isinstance(v, str) and v.strip() != v and bool(v.strip())).sum())
    elif pd.api.types.is_string_dtype(series.dtype):
        trimmed, changed = _trim_text_column(series)
    else:
        return series
    if changed:
        _warn(
            warnings,
            "trimmed",
            name,
            changed,
            "spaces around values were removed",
            "spaties rond waarden zijn verwijderd",
        )
    return trimmed


def _trim_text_column(series: pd.Series) -> tuple[pd.Series, int]:
    """(trimmed column with empty text as missing, number of cells that lost spaces); vectorised in Arrow."""
    arrow = _arrow_of(series)
    if _clean_edges(arrow):
        return series, 0
    stripped = pa_compute.utf8_trim_whitespace(arrow)
    before, after = pa_compute.binary_length(arrow), pa_compute.binary_length(stripped)
    has_empty = bool(pa_compute.any(pa_compute.equal(after, 0)).as_py())
    # Trimming only removes characters, so equal total lengths mean nothing changed: the common case.
    if pa_compute.sum(before).as_py() == pa_compute.sum(after).as_py() and not has_empty:
        return series, 0
    shorter = pa_compute.and_(pa_compute.not_equal(before, after), pa_compute.greater(after, 0))
    changed = int(pa_compute.sum(shorter).as_py() or 0)
    if has_empty:
        stripped = pa_compute.if_else(pa_compute.equal(after, 0), pa.scalar(None, stripped.type), stripped)
    trimmed = stripped.to_pandas().astype("str").set_axis(series.index).rename(series.name)
    return trimmed, changed


def _clean_edges(arrow: pa.Array | pa.ChunkedArray) -> bool:
    """True when certainly no value is empty or starts or ends with a space: the common case, decided from
    the first and last byte of each value (numpy over Arrow's buffers) instead of trimming every value.

    Conservative: any byte below '!' or non-ASCII at either end (it may be a Unicode space) says "not
    certain", and the caller trims for real."""
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    return all(_chunk_has_clean_edges(chunk) for chunk in chunks)


def _chunk_has_clean_edges(chunk: pa.Array) -> bool:
    if len(chunk) == 0:
        return True
    buffers = _text_buffers(chunk)
    if chunk.null_count or buffers is None:
        return False
    offsets, data = buffers
    starts, ends = offsets[:-1], offsets[1:]
    if (ends <= starts).any():
        return False  # an empty value becomes missing
    used = data[offsets[0] : offsets[-1]]
    if used.min() > 0x20 and used.max() < 0x80:
        return True  # no space or non-ASCII byte anywhere: two fast scans instead of two gathers per value
    first, last = data[starts], data[ends - 1]
    return bool(((first > 0x20) & (first < 0x80) & (last > 0x20) & (last < 0x80)).all())


def _text_buffers(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """(offsets of this chunk's values, data bytes) of an Arrow text array, as numpy views; None otherwise."""
    if not (pa.types.is_large_string(chunk.type) or pa.types.is_string(chunk.type)):
        return None
    _, offsets_buffer, data_buffer = chunk.buffers()
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    return offsets, data


def _certainly_plain_numbers(chunk: pa.Array) -> bool:
    """True when no value has a comma and none has a dot four characters from its end (which every
    dot-grouped value such as '1.234' has): then no notation needs deciding. Numpy over the buffers."""
    if len(chunk) == 0:
        return True
    buffers = _text_buffers(chunk)
    if buffers is None:
        return False
    offsets, data = buffers
    used = data[offsets[0] : offsets[-1]]  # bytes of null values are included: at worst a needless check
    if (used == ord(",")).any():
        return False
    if not (used == ord(".")).any():
        return True  # whole numbers: two scans of the bytes settle it, no per-value gather needed
    starts, ends = offsets[:-1], offsets[1:]
    long_enough = ends - starts >= 5
    return not (data[ends[long_enough] - 4] == ord(".")).any()


def _arrow_of(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The Arrow data behind a text column, without copying when pandas already keeps it in Arrow."""
    if hasattr(series.array, "__arrow_array__"):
        return series.array.__arrow_array__()
    return pa.array(series, from_pandas=True)


def _trim_value(value: Any) -> Any:
    if value is None or _is_nan(value):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    return value


def _warn(warnings: list[ReadWarning], code: str, column: str, count: int, en: str, nl: str) -> None:
    warnings.append(
        ReadWarning(code, f"{column}: {en} ({count} cells)", f"{column}: {nl} ({count} cellen)", column, count)
    )


def _as_text(series: pd.Series) -> pd.Series:
    """Text form of each value; whole floats from Excel (123.0) become '123'."""
    if series.dtype == "str":
        return series  # already text with missing values as missing (the conversion below gives it unchanged)
    if series.dtype != object:
        return series.astype("str").where(series.notna(), None)

    def text(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return series.map(text).astype("str").where(series.notna(), None)


def _apply_mapping(
    series: pd.Series, mapping: dict[str, str], warnings: list[ReadWarning], column: str, en: str, nl: str
) -> pd.Series:
    """Replace values by `mapping` (only keys that change) and report the count and an example."""
    changes = {k: v for k, v in mapping.items() if k != v}
    if not changes:
        return series
    hit = series.isin(list(changes))
    count = int(hit.sum())
    example_from, example_to = sorted(changes.items())[0]
    warnings.append(
        ReadWarning(
            f"normalised_{column}",
            f"{column}: {en} ({count} cells, e.g. '{example_from}' -> '{example_to}')",
            f"{column}: {nl} ({count} cellen, bijv. '{example_from}' -> '{example_to}')",
            column,
            count,
        )
    )
    return series.where(~hit, series.map(changes))


def _distinct_text(text: pd.Series) -> list[Any]:
    """The column's distinct present values in order of first appearance (as `dropna().unique()`); an Arrow
    column is hashed in row parts on the thread pool."""
    arrow = _arrow_of(text) if pd.api.types.is_string_dtype(text.dtype) and text.dtype != object else None
    if arrow is None or not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        return list(text.dropna().unique())
    parts = parallel.map_rows(pa_compute.unique, arrow)
    return list(dict.fromkeys(v for part in parts for v in part.to_pylist() if v is not None))


def _normalise_countries(series: pd.Series, column: str, warnings: list[ReadWarning]) -> pd.Series:
    text = _as_text(series)
    codes = reference.country_codes()
    mapping = {}
    for value in _distinct_text(text):
        if value not in codes:
            found = reference.normalise_country(value)
            if found:
                mapping[value] = found
    return _apply_mapping(
        text,
        mapping,
        warnings,
        column,
        "country names and codes were changed to two-letter codes",
        "landnamen en -codes zijn omgezet naar tweeletterige codes",
    )


def _normalise_booleans(series: pd.Series, column: str, warnings: list[ReadWarning]) -> pd.Series:
    if series.dtype == bool or str(series.dtype) == "boolean":
        return series
    # Excel TRUE/FALSE cells arrive as booleans: certain, so turned into text without a warning.
    if series.dtype == object:
        series = series.map(lambda v: ("true" if v else "false") if isinstance(v, bool | np.bool_) else v)
    text = _as_text(series)
    mapping = {}
    for value in _distinct_text(text):
        word = value.strip().casefold()
        if word in TRUE_WORDS:
            mapping[value] = "true"
        elif word in FALSE_WORDS:
            mapping[value] = "false"
    return _apply_mapping(
        text,
        mapping,
        warnings,
        column,
        "yes/no words were read as true/false",
        "ja/nee-woorden zijn gelezen als true/false",
    )


def enum_key(value: str) -> str:
    return re.sub(r"[\s\-_]+", "_", value.strip().casefold())


def _normalise_enum(series: pd.Series, column: str, allowed: tuple[str, ...], warnings: list[ReadWarning]):
    text = _as_text(series)
    keys = {enum_key(a): a for a in allowed}
    if len(keys) != len(allowed):  # two allowed values differ only in case or separators: not certain
        keys = {a.casefold(): a for a in allowed}
    mapping = {}
    allowed_set = set(allowed)
    for value in _distinct_text(text):
        if value not in allowed_set:
            found = keys.get(enum_key(value)) or keys.get(value.casefold())
            if found:
                mapping[value] = found
    return _apply_mapping(
        text,
        mapping,
        warnings,
        column,
        "values were matched to the allowed spelling",
        "waarden zijn omgezet naar de toegestane schrijfwijze",
    )


# ---------------------------------------------------------------- number notation


_SIGN = r"^[+-]?"
_NUMBER_FORMS = {
    "dot_decimal": _SIGN + r"\d*\.\d+$",
    "comma_decimal": _SIGN + r"\d*,\d+$",
    "dot_groups": _SIGN + r"\d{1,3}(?:\.\d{3})+$",
    "comma_groups": _SIGN + r"\d{1,3}(?:,\d{3})+$",
    "dutch_full": _SIGN + r"\d{1,3}(?:\.\d{3})+,\d+$",
    "english_full": _SIGN + r"\d{1,3}(?:,\d{3})+\.\d+$",
}


@dataclass
class _Evidence:
    """Which values of one column are certainly Dutch, certainly English, or could be either."""

    dutch: pd.Series
    english: pd.Series
    ambiguous: pd.Series

    @property
    def locale(self) -> str | None:
        nl, en = bool(self.dutch.any()), bool(self.english.any())
        return "mixed" if nl and en else "nl" if nl else "en" if en else None


def _evidence(text: pd.Series, integer: bool) -> _Evidence:
    form = {name: text.str.fullmatch(pattern).fillna(False).astype(bool) for name, pattern in _NUMBER_FORMS.items()}
    multi_dot = text.str.count(r"\.").fillna(0) > 1
    multi_comma = text.str.count(",").fillna(0) > 1
    dot_groups, comma_groups = form["dot_groups"], form["comma_groups"]
    if integer:
        # In a whole-number column '1.234' and '1,234' can only be thousands: either reading gives 1234.
        return _Evidence(
            form["comma_decimal"] & ~comma_groups | form["dutch_full"] | dot_groups,
            form["dot_decimal"] & ~dot_groups | form["english_full"] | comma_groups,
            pd.Series(False, index=text.index),
        )
    return _Evidence(
        form["comma_decimal"] & ~comma_groups | form["dutch_full"] | dot_groups & multi_dot,
        form["dot_decimal"] & ~dot_groups | form["english_full"] | comma_groups & multi_comma,
        dot_groups & ~multi_dot | comma_groups & ~multi_comma,
    )


def _needs_decision(text: pd.Series) -> bool:
    """True when some value has a comma or dot-grouped digits ('1.234'): the notation must be decided."""
    arrow = _arrow_of(text)
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    if all(_certainly_plain_numbers(chunk) for chunk in chunks):
        return False
    if pa_compute.any(pa_compute.match_substring(arrow, ",")).as_py():
        return True
    if not pa_compute.any(pa_compute.match_substring(arrow, ".")).as_py():
        return False  # a literal search is several times cheaper than the regex: whole numbers skip it
    return bool(pa_compute.any(pa_compute.match_substring_regex(arrow, _NUMBER_FORMS["dot_groups"])).as_py())


def _to_plain(text: pd.Series, locale: str) -> pd.Series:
    if locale == "nl":
        return text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return text.str.replace(",", "", regex=False)


class NumberLocales:
    """Decides per column whether numbers use Dutch (1.234,5) or English (1,234.5) notation.

    A column with only certain Dutch or only certain English values gets that notation. Values that could be
    either ('1.234' in a decimal column) follow their column, else the other number columns of the file,
    else the separator (';' suggests Dutch Excel), else English; the last two are reported as uncertain.
    """

    def __init__(self, frame: pd.DataFrame, columns: list[Any], locale_hint: str | None):
        self.frame = frame
        self.columns = {c.name: c for c in columns}
        self.locale_hint = locale_hint
        self._evidence: dict[str, _Evidence | None] = {}
        self._file_locale: str | None | bool = False  # False: not computed yet

    @staticmethod
    def _text_part(series: pd.Series) -> pd.Series | None:
        if series.dtype == object:
            is_text = series.map(lambda v: isinstance(v, str))
            return series.where(is_text, None).astype("str") if is_text.any() else None
        if pd.api.types.is_string_dtype(series.dtype):
            return series
        return None

    def evidence(self, column: str) -> _Evidence | None:
        """None when the column needs no decision: no commas and no dot-grouped values (the common case)."""
        if column not in self._evidence:
            text = self._text_part(self.frame[column])
            needs = text is not None and _needs_decision(text)
            is_integer = self.columns[column].type == "integer"
            self._evidence[column] = _evidence(text, is_integer) if needs else None
        return self._evidence[column]

    @property
    def file_locale(self) -> str | None:
        """The notation all number columns with certain values agree on, if they do."""
        if self._file_locale is False:
            seen = set()
            for name in self.columns:
                ev = self.evidence(name)
                if ev is not None:
                    seen.add(ev.locale)
                else:
                    text = self._text_part(self.frame[name])
                    if text is not None and text.str.contains(r"\d\.\d", regex=True).fillna(False).any():
                        seen.add("en")
            seen -= {None, "mixed"}
            self._file_locale = seen.pop() if len(seen) == 1 else None
        return self._file_locale  # type: ignore[return-value]

    def apply(self, series: pd.Series, column: str, kind: str, warnings: list[ReadWarning]) -> pd.Series:
        evidence = self.evidence(column)
        if evidence is None:
            return series
        text = self._text_part(series)
        fallback, certain = self._fallback()
        locale = evidence.locale
        if evidence.ambiguous.any() and locale in (None, "mixed"):
            self._warn_ambiguous(evidence, text, column, fallback, certain, warnings)
        if locale == "mixed":
            self._warn_mixed(column, warnings)
        column_locale = fallback if locale in (None, "mixed") else locale
        dutch = evidence.dutch | (evidence.ambiguous & (column_locale == "nl")) if locale == "mixed" else None
        plain = _plain_numbers(text, evidence, column_locale, dutch)
        changed = (plain.ne(text).fillna(False) & text.notna()).astype(bool)
        if changed.any():
            shown = column_locale if locale != "mixed" else "mixed"
            self._warn_changed(column, shown, text, plain, changed, warnings)
        return series.where(~changed, plain)

    def _fallback(self) -> tuple[str, bool]:
        if self.file_locale:
            return self.file_locale, True
        return (self.locale_hint or "en"), False

    def _warn_ambiguous(self, ev, text, column, fallback, certain, warnings) -> None:
        example = text[ev.ambiguous].iloc[0]
        plain = _to_plain(pd.Series([example], dtype="str"), fallback).iloc[0]
        why_en = "as the other number columns of the file" if certain else "uncertain: please check"
        why_nl = "zoals de andere getalkolommen van het bestand" if certain else "onzeker: controleer dit"
        warnings.append(
            ReadWarning(
                "ambiguous_number",
                f"{column}: '{example}' could be read two ways; read as {plain} ({why_en})",
                f"{column}: '{example}' kan op twee manieren gelezen worden; gelezen als {plain} ({why_nl})",
                column,
                int(ev.ambiguous.sum()),
            )
        )

    @staticmethod
    def _warn_mixed(column: str, warnings: list[ReadWarning]) -> None:
        warnings.append(
            ReadWarning(
                "mixed_number_notation",
                f"{column}: mixes Dutch (1.234,5) and English (1,234.5) notation; each value was read by its own form",
                f"{column}: mengt Nederlandse (1.234,5) en Engelse (1,234.5) notatie; elke waarde is apart gelezen",
                column,
            )
        )

    @staticmethod
    def _warn_changed(column, locale, text, plain, changed, warnings) -> None:
        count = int(changed.sum())
        first = changed.to_numpy().nonzero()[0][0]
        example = f"'{text.iloc[first]}' -> {plain.iloc[first]}"
        notation_en = {
            "nl": "Dutch notation (decimal comma)",
            "en": "English notation (thousands commas)",
        }.get(locale, "mixed notation")
        notation_nl = {
            "nl": "Nederlandse notatie (decimale komma)",
            "en": "Engelse notatie (komma voor duizendtallen)",
        }.get(locale, "gemengde notatie")
        warnings.append(
            ReadWarning(
                "number_notation",
                f"{column}: numbers read in {notation_en} ({count} cells, e.g. {example})",
                f"{column}: getallen gelezen in {notation_nl} ({count} cellen, bijv. {example})",
                column,
                count,
            )
        )


def _plain_numbers(text: pd.Series, ev: _Evidence, locale: str, dutch: pd.Series | None) -> pd.Series:
    """Plain '1234.5' text for every value that has a recognised number form; other values unchanged."""
    numeric = ev.dutch | ev.english | ev.ambiguous
    if dutch is None:
        converted = _to_plain(text, locale)
    else:
        converted = _to_plain(text, "en").where(~dutch, _to_plain(text, "nl"))
    return text.where(~numeric, converted)
