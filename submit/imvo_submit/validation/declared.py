"""What a spreadsheet or Parquet file declares about its size, checked before a reader allocates for it.

Readers trust a file's own description of itself. calamine allocates one 32-byte slot for every cell between
the first and the last one used, so a 1.6 KB workbook with a value at XFD1048576 asks for 512 GiB and aborts
the process; an ODS row can say it repeats a million times; a 54 KB Parquet file can declare two million rows.
These checks read only the declarations (cell references, repeat counts, Parquet metadata) and refuse a file
whose grid is out of proportion, with a message a clerk can act on. What is left (a file that is simply
large) is bounded by the memory limit of the process that checks it (aggregator.intake.worker).

Parquet columns of types the checks do not know are turned into plain values first: unsigned 64-bit integers,
decimals and times become their exact text (so `18446744073709551615` is reported as out of range and a
timestamp in a number column as "not a number", instead of a crash or 1.7e15), nested values are refused.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from imvo_submit.errors import ValidationFailed
from imvo_submit.validation.report import Problem, ValidationReport

# A full template sheet is 1,048,576 rows of about ten columns; calamine holds 32 bytes per cell of the grid.
MAX_SHEET_CELLS = 16 * 1024**2
MAX_PARQUET_ROWS = 2 * 1024**2
MAX_COLUMNS = 500  # no template has nearly as many
_SCAN_BYTES = 16 * 1024**2  # sheet XML is scanned in pieces, so the references found never pile up

_PREFIX = rb"<(?:[A-Za-z_][\w.-]*:)?"
_CELL_TAG = re.compile(_PREFIX + rb"c[\s/>]")
_CELL_REF = re.compile(_PREFIX + rb'c\s[^>]*?\br="([A-Z]{1,7})([0-9]{1,10})"')
_ROW_TAG = re.compile(_PREFIX + rb"row[\s/>]")
_ROW_REF = re.compile(_PREFIX + rb'row\s[^>]*?\br="([0-9]{1,10})"')
_ODS_TAG = re.compile(rb"<table:(table-row|table-cell|covered-table-cell|table)(?=[\s/>])([^>]*?)(/?)>")
_ODS_REPEAT = re.compile(rb'table:number-(?:rows|columns)-repeated="([0-9]{1,10})"')


# What reading a damaged zip member raises: a bad CRC or header, broken deflate data, a member cut off, an
# unknown compression method, an encrypted member.
DAMAGED_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


def damaged_workbook() -> ValidationFailed:
    """The refusal of a workbook that cannot be unpacked; the library's error type means nothing to a clerk."""
    return _refused(
        "the Excel file cannot be read (it is damaged or not a real .xlsx file); open it in Excel and save it "
        "again as .xlsx",
        "het Excel-bestand kan niet gelezen worden (het is beschadigd of geen echt .xlsx-bestand); open het in "
        "Excel en sla het opnieuw op als .xlsx",
        rule="unreadable",
    )


def _refused(en: str, nl: str, rule: str = "too_large") -> ValidationFailed:
    report = ValidationReport.from_problems([Problem(None, None, None, rule, en, nl)])
    return ValidationFailed(en, report=report, hint="fix the file and check it again")


# ---------------------------------------------------------------- XLSX and ODS


def check_sheet_extents(data: bytes) -> None:
    """Refuse a workbook (XLSX or ODS) with a sheet whose cell grid would exceed MAX_SHEET_CELLS."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            names = book.namelist()
            if "content.xml" in names and not any(n.startswith("xl/") for n in names):
                extents = list(_ods_extents(book.read("content.xml")))
            else:
                sheets = [n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml")]
                extents = [_xlsx_extent(book.read(n)) for n in sheets]
    except DAMAGED_ZIP_ERRORS as exc:
        raise damaged_workbook() from exc
    for rows, columns in extents:
        if rows * columns > MAX_SHEET_CELLS:
            raise _too_many_cells(rows, columns)


def _too_many_cells(rows: int, columns: int) -> ValidationFailed:
    corner = f"{column_letters(columns)}{rows}"
    return _refused(
        f"a sheet of the file uses cells up to {corner} ({rows:,} rows by {columns:,} columns); at most "
        f"{MAX_SHEET_CELLS:,} cells can be read, so it was not opened: delete the rows and columns beyond your "
        "data and save the file again",
        f"een blad van het bestand gebruikt cellen tot {corner} ({rows:,} regels bij {columns:,} kolommen); er "
        f"kunnen hoogstens {MAX_SHEET_CELLS:,} cellen gelezen worden, dus het is niet geopend: verwijder de regels "
        "en kolommen na uw gegevens en sla het bestand opnieuw op",
    )


def _xlsx_extent(xml: bytes) -> tuple[int, int]:
    """(last row, last column) any cell of the sheet names; cells without a reference count in sequence."""
    rows = columns = referenced = 0
    for piece in _pieces(xml):
        refs = _CELL_REF.findall(piece)
        referenced += len(refs)
        letters = {letter for letter, _ in refs}
        numbers = {number for _, number in refs} | set(_ROW_REF.findall(piece))
        columns = max(columns, *(column_number(x) for x in letters), 0)
        rows = max(rows, *(int(n) for n in numbers), 0)
    if referenced < len(_CELL_TAG.findall(xml)):  # some cells have no reference: the reader counts them in turn
        sequential_rows, sequential_columns = _sequential_extent(xml)
        rows, columns = max(rows, sequential_rows), max(columns, sequential_columns)
    return rows, columns


def _sequential_extent(xml: bytes) -> tuple[int, int]:
    """Rows and the largest number of cells in one row, for a sheet that leaves out cell references."""
    starts = [m.start() for m in _ROW_TAG.finditer(xml)] + [len(xml)]
    widest = max((len(_CELL_TAG.findall(xml, a, b)) for a, b in zip(starts, starts[1:], strict=False)), default=0)
    return len(starts) - 1, widest


def _pieces(xml: bytes) -> Iterator[bytes]:
    """The XML in pieces of about _SCAN_BYTES that each end after a '>', so no tag is cut in two."""
    start = 0
    while start < len(xml):
        end = xml.find(b">", start + _SCAN_BYTES)
        end = len(xml) if end < 0 else end + 1
        yield xml[start:end]
        start = end


def _ods_extents(xml: bytes) -> Iterator[tuple[int, int]]:
    """(last row, last column) holding a value, per table of an ODS content.xml, repeats counted."""
    rows = columns = row = column = row_repeat = 0
    for match in _ODS_TAG.finditer(xml):
        kind, attributes, closed = match.groups()
        repeat_match = _ODS_REPEAT.search(attributes)
        repeat = int(repeat_match.group(1)) if repeat_match else 1
        if kind == b"table":
            if rows:
                yield rows, columns
            rows = columns = row = 0
        elif kind == b"table-row":
            row_repeat, row, column = repeat, row + repeat, 0
        else:
            column += repeat
            if not closed or b"office:value-type" in attributes:  # a cell with a value (or text inside)
                rows, columns = max(rows, row), max(columns, column)
                if row_repeat * repeat > MAX_SHEET_CELLS:
                    raise _too_many_cells(row, column)
    if rows:
        yield rows, columns


def column_letters(number: int) -> str:
    """1 -> A, 27 -> AA, 16384 -> XFD."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters or "A"


def column_number(letters: bytes) -> int:
    """b'A' -> 1, b'XFD' -> 16384."""
    number = 0
    for byte in letters:
        number = number * 26 + byte - ord("A") + 1
    return number


# ---------------------------------------------------------------- Parquet


def parquet_frame(data: bytes) -> pd.DataFrame:
    """The Parquet file as a frame of plain values, after its declared rows and columns were checked."""
    try:
        source = pq.ParquetFile(pa.BufferReader(data))
        rows, columns = source.metadata.num_rows, source.metadata.num_columns
    except Exception as exc:  # pyarrow raises many error types for damaged files
        raise _unreadable_parquet() from exc
    if columns > MAX_COLUMNS:
        raise too_wide(columns)
    if rows > MAX_PARQUET_ROWS:
        raise _refused(
            f"the Parquet file declares {rows:,} rows; at most {MAX_PARQUET_ROWS:,} can be read, so it was not "
            "opened: split it into smaller files",
            f"het Parquet-bestand meldt {rows:,} regels; er kunnen hoogstens {MAX_PARQUET_ROWS:,} gelezen worden, "
            "dus het is niet geopend: splits het in kleinere bestanden",
        )
    try:
        table = source.read()
    except Exception as exc:
        raise _unreadable_parquet() from exc
    plain = [_plain_column(name, table.column(i)) for i, name in enumerate(table.column_names)]
    return pa.table(plain, names=table.column_names).to_pandas()


def too_wide(columns: int) -> ValidationFailed:
    return _refused(
        f"the file has {columns} columns, more than the {MAX_COLUMNS} a template can have",
        f"het bestand heeft {columns} kolommen, meer dan de {MAX_COLUMNS} die een sjabloon kan hebben",
        rule="too_wide",
    )


def _unreadable_parquet() -> ValidationFailed:
    return _refused(
        "the Parquet file cannot be read (it is damaged or not a real Parquet file)",
        "het Parquet-bestand kan niet gelezen worden (het is beschadigd of geen echt Parquet-bestand)",
        rule="unreadable",
    )


def _plain_column(name: str, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Values as the checks know them: numbers that fit, booleans, text; everything else as its exact text."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        return _plain_column(name, values.cast(kind.value_type))
    if pa.types.is_nested(kind):
        raise _refused(
            f"column '{name}' of the Parquet file holds lists or records inside its cells; write plain values",
            f"kolom '{name}' van het Parquet-bestand bevat lijsten of records in de cellen; schrijf gewone waarden",
            rule="unreadable",
        )
    if pa.types.is_uint64(kind) or pa.types.is_decimal(kind) or pa.types.is_temporal(kind):
        return values.cast(pa.string())  # exact digits (2**64 - 1, 12.50) or an ISO time, never a wrong number
    if pa.types.is_float16(kind):
        return values.cast(pa.float64())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        try:
            return values.cast(pa.string())
        except pa.ArrowInvalid as exc:
            raise _refused(
                f"column '{name}' of the Parquet file holds binary data, not text",
                f"kolom '{name}' van het Parquet-bestand bevat binaire gegevens, geen tekst",
                rule="unreadable",
            ) from exc
    return values
