"""CSV files: encoding, separator, a fast Arrow path for large well-formed UTF-8 files, and a careful path
that names a broken row."""

from __future__ import annotations

import csv
import io
import mmap
import os
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from imvo_submit.errors import ValidationFailed
from imvo_submit.validation.readers.common import (
    FIRST_DATA_ROW,
    ReadWarning,
    check_header,
    file_problem,
    normalise_header,
    without_bom,
)

_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))
_SEPARATORS = (",", ";", "\t")


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
        raise file_problem(
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
    return file_problem(
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


def read_csv(data: bytes, known: set[str], warnings: list[ReadWarning]) -> tuple[pd.DataFrame, str]:
    quick = _read_utf8_csv_quickly(data, known)
    if quick is not None:
        return quick
    text, encoding = decode_text(data, warnings)
    text = text.removeprefix("\ufeff")
    sep = detect_separator(text, known)
    header = next(csv.reader(io.StringIO(text[:65536], newline=""), delimiter=sep), [])
    _check_csv_header_present(header)
    check_header(header)
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


def read_large_csv_file(source: str | Path | bytes, known: set[str]) -> tuple[pd.DataFrame, str] | None:
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
        if start[:4] in (b"PK\x03\x04", b"PAR1", b"\xd0\xcf\x11\xe0") or not without_bom(start).strip():
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
    check_header(header)
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
        raise file_problem(
            "ragged_row",
            f"the file cannot be read as CSV near row {reader.line_num}: a quote or a very long cell is out of place",
            f"het CSV-bestand kan niet gelezen worden rond regel {reader.line_num}: een aanhalingsteken of een "
            "heel lange cel staat verkeerd",
        ) from exc


def _ragged_row(message: str) -> ValidationFailed:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if not found:
        # pandas' own wording ("Error tokenizing data. C error: ...") means nothing to a company clerk.
        return file_problem(
            "ragged_row",
            'the file cannot be read as CSV: a quote (") is opened but never closed, or a separator is out of place',
            'het CSV-bestand kan niet gelezen worden: een aanhalingsteken (") wordt niet gesloten, of een '
            "scheidingsteken staat verkeerd",
        )
    expected, line, saw = found.groups()
    return file_problem(
        "ragged_row",
        f"row {line} has {saw} cells but the header has {expected}; remove the extra separators",
        f"regel {line} heeft {saw} cellen maar de kopregel {expected}; verwijder de extra scheidingstekens",
    )


def _check_csv_header_present(header: list[str]) -> None:
    """A CSV's first line must name the columns; a blank one would leave pandas with no columns at all."""
    if not any(normalise_header(name) for name in header):
        raise file_problem(
            "no_header",
            "the first row is empty; row 1 must hold the column names of the template",
            "de eerste regel is leeg; regel 1 moet de kolomnamen van het sjabloon bevatten",
        )
