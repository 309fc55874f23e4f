"""Workbooks (XLSX and ODS, both zip files read by calamine): zip limits and declared sheet extents are checked
before a sheet is read (imvo_submit.validation.declared)."""

from __future__ import annotations

import io
import zipfile

import pandas as pd

from imvo_submit.errors import ValidationFailed
from imvo_submit.validation import declared
from imvo_submit.validation.readers.common import (
    FIRST_DATA_ROW,
    ReadWarning,
    check_header,
    file_problem,
    normalise_header,
)
from imvo_submit.validation.rules import Template


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
    return declared.damaged_workbook()


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
    except declared.DAMAGED_ZIP_ERRORS as exc:
        raise _bad_xlsx(exc) from exc
    total = sum(m.file_size for m in members)
    suspicious = [
        m
        for m in members
        if m.file_size > _RATIO_FLOOR_BYTES and m.file_size > MAX_XLSX_RATIO * max(m.compress_size, 1)
    ]
    if len(members) > MAX_XLSX_MEMBERS:
        raise file_problem(
            "unreadable",
            f"the Excel file consists of {len(members)} parts (at most {MAX_XLSX_MEMBERS}); this is not a normal "
            "spreadsheet, so it was not opened",
            f"het Excel-bestand bestaat uit {len(members)} delen (hoogstens {MAX_XLSX_MEMBERS}); dit is geen "
            "gewoon rekenblad, dus het is niet geopend",
        )
    if total > MAX_XLSX_UNPACKED_BYTES or suspicious:
        size_mb = total // 1024**2
        raise file_problem(
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
    check_header(header)
    body = grid.iloc[1:, : len(header)].copy()
    body.columns = [str(h) if normalise_header(h) else f"_unnamed_{i + 1}" for i, h in enumerate(header)]
    body.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(body))
    return body


def read_workbook(data: bytes, tpl: Template, warnings: list[ReadWarning]) -> pd.DataFrame:
    names = sheet_names(data)
    matches = [n for n in names if n.strip().casefold() == tpl.name.casefold()]
    if not matches:
        raise file_problem(
            "sheet_not_found",
            f"the workbook has no sheet named '{tpl.name}' (sheets: {', '.join(names)}); use the template's sheet",
            f"de werkmap heeft geen blad '{tpl.name}' (bladen: {', '.join(names)}); gebruik het blad uit het sjabloon",
        )
    return read_sheet(data, matches[0])
