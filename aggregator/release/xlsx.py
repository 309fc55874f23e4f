"""The committee workbook: a contents sheet, then one formatted sheet per table.

Every text goes through `write_string` after `neutralise`, so no cell is ever a formula. The workbook
is built in memory (xlsxwriter then stamps every zip entry 1980-01-01) and its 'created' property is
the release date, so two writes of one release give identical bytes.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from aggregator.release.layout import Grid, axis, grid, has_gaps, published_value, total_flags, value_header
from aggregator.release.model import Release, ReleasedCell, ReleasedTable
from aggregator.release.texts import NO_DATA, SYMBOL, TEXTS, format_range, neutralise, period_label

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\']")
HEADER_ROW = 5  # first table row below title, period, unit (and a revision line)
SHEET_NAME_MAX = 31  # Excel's limit
VALUE_WIDTH = 14
MAX_HEADING_WIDTH = 22  # longer column headings wrap instead
INDENT_CHARS = 2  # roughly how many characters of width one Excel indent level takes
NOTE_MIN_WIDTH = 80  # notes wrap within at least this many characters, even beside a narrow table
ROW_HEIGHT = 15  # points per line of 11 pt text

WORKBOOK_OPTIONS = {
    "in_memory": True,  # fixed zip timestamps independent of the local time zone
    "strings_to_numbers": False,
    "strings_to_formulas": False,
    "strings_to_urls": False,
}


class Formats:
    """Cell formats created once per combination: xlsxwriter needs shared Format objects."""

    def __init__(self, workbook: xlsxwriter.Workbook):
        self._workbook = workbook
        self._cache: dict[tuple[Any, ...], Format] = {}

    def get(self, *, bold: bool = False, indent: int = 0, decimals: int | None = None, **extra: Any) -> Format:
        key = (bold, indent, decimals, tuple(sorted(extra.items())))
        if key not in self._cache:
            props: dict[str, Any] = {"bold": bold, "valign": "top", **extra}
            if indent:  # Excel and LibreOffice apply an indent only to left-aligned cells
                props["indent"] = indent
                props.setdefault("align", "left")
            if decimals is not None:
                props["num_format"] = "#,##0" + ("." + "0" * decimals if decimals else "")
                props["align"] = "right"
            self._cache[key] = self._workbook.add_format(props)
        return self._cache[key]

    def title(self) -> Format:
        return self.get(bold=True, font_size=14)

    def header(self, align: str = "left") -> Format:
        return self.get(bold=True, bottom=1, align=align, text_wrap=True)

    def note(self) -> Format:
        return self.get(italic=True, font_color="#444444")

    def suppressed(self, bold: bool) -> Format:
        return self.get(bold=bold, align="right", font_color="#555555", pattern=1, bg_color="#EEEEEE")

    def no_data(self, bold: bool) -> Format:
        return self.get(bold=bold, align="right", font_color="#777777")

    def wrapped_note(self) -> Format:
        return self.get(italic=True, font_color="#444444", text_wrap=True)


def sheet_names(tables: list[ReleasedTable]) -> list[str]:
    """'<n> <title>' cut to Excel's 31 characters at a word boundary; the number keeps names unique."""
    names = []
    for number, table in enumerate(tables, start=1):
        title = " ".join(_SHEET_FORBIDDEN.sub(" ", table.title).split()) or table.table_id
        names.append(_cut_at_word(f"{number} {title}", SHEET_NAME_MAX))
    return names


def _cut_at_word(text: str, limit: int) -> str:
    """A tab name a reader can still read: no word cut in half, no dangling comma."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    cut = cut if " " in cut else text[:limit]  # keep at least the number and part of the first word
    return cut.rstrip(" ,;-")


def write_xlsx(release: Release, path: Path) -> None:
    """Write the committee workbook for `release` to `path`."""
    texts = TEXTS[release.language]
    when = period_label(release.period, release.language)
    workbook = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    workbook.set_properties(
        {
            "title": f"{release.covenant_name}: {texts['report']} {when}",
            "author": "IMVO secretariat",
            "created": release.created_at,
        }
    )
    formats = Formats(workbook)
    names = sheet_names(release.tables)
    _write_contents(workbook.add_worksheet(texts["contents"]), release, names, formats)
    for table, name in zip(release.tables, names, strict=True):
        _write_table_sheet(workbook.add_worksheet(name), release, table, formats)
    workbook.close()


def _put(sheet: Worksheet, row: int, col: int, text: str, fmt: Format | None = None) -> None:
    sheet.write_string(row, col, neutralise(text), fmt)


def _write_header_block(sheet: Worksheet, release: Release, title: str, unit: str, fmts: Formats) -> None:
    texts = TEXTS[release.language]
    _put(sheet, 0, 0, title, fmts.title())
    _put(sheet, 1, 0, f"{texts['period']}: {period_label(release.period, release.language)}")
    if unit:
        _put(sheet, 2, 0, f"{texts['unit']}: {unit}")
    if release.is_revision:
        _put(sheet, 3, 0, texts["revision"], fmts.get(bold=True, font_color="#9C0006"))


def _write_notes(
    sheet: Worksheet,
    row: int,
    release: Release,
    footnote: str,
    fmts: Formats,
    widths: list[float],
    gaps: bool,
) -> None:
    """Legend, method and footnote, each wrapped in a block as wide as the table (at least NOTE_MIN_WIDTH).

    One long line would run far to the right of the table, off screen and off the printed page.
    """
    texts = TEXTS[release.language]
    lines = [texts["legend"], texts["range_legend"]]
    lines += [f"{NO_DATA} = {texts['no_data_text']}"] if gaps else []
    lines += [texts["method"]] + ([footnote] if footnote else [])
    last_col, width = _note_span(widths)
    for offset, line in enumerate(lines):
        text = neutralise(line)
        if last_col > 0:
            sheet.merge_range(row + offset, 0, row + offset, last_col, text, fmts.wrapped_note())
        else:
            sheet.write_string(row + offset, 0, text, fmts.wrapped_note())
        needed = math.ceil(len(text) * 1.1 / width)  # italic text runs a little wider than the column unit
        if needed > 1:
            sheet.set_row(row + offset, ROW_HEIGHT * needed)


def _note_span(widths: list[float]) -> tuple[int, float]:
    """The last column a note spans and the total width it gets; extra columns at VALUE_WIDTH if needed."""
    spans = list(widths)
    while sum(spans) < NOTE_MIN_WIDTH:
        spans.append(VALUE_WIDTH)
    return len(spans) - 1, sum(spans)


def _print_setup(sheet: Worksheet, release: Release, title: str) -> None:
    """Printed pages carry the covenant, title and period on top and 'page n of m' below."""
    texts = TEXTS[release.language]
    when = period_label(release.period, release.language)

    def amp(text: str) -> str:  # '&' starts a code in Excel headers
        return text.replace("&", "&&")

    sheet.set_header(f"&L{amp(release.covenant_name)}&R{amp(title)}, {amp(when)}"[:255])
    sheet.set_footer(f"&L{amp(release.audience_name)}&R{texts['page']}"[:255])


def _write_contents(sheet: Worksheet, release: Release, names: list[str], fmts: Formats) -> None:
    texts = TEXTS[release.language]
    _write_header_block(sheet, release, f"{release.covenant_name}: {texts['report']}", "", fmts)
    _put(sheet, 2, 0, f"{texts['audience']}: {release.audience_name}")
    _put(sheet, 3 if not release.is_revision else 4, 0, f"{texts['released']}: {release.created}")
    row = 6
    _put(sheet, row, 0, texts["table"], fmts.header())
    _put(sheet, row, 1, texts["title"], fmts.header())
    _put(sheet, row, 2, texts["unit"], fmts.header())
    for number, (table, name) in enumerate(zip(release.tables, names, strict=True), start=1):
        sheet.write_number(row + number, 0, number, fmts.get(align="left"))
        link_format = fmts.get(font_color="#0563C1", underline=1)
        sheet.write_url(row + number, 1, f"internal:'{name}'!A1", link_format, neutralise(table.title))
        _put(sheet, row + number, 2, table.unit)
    row += len(release.tables) + 2
    protocol = f"{texts['protocol']} {texts['version']} {release.protocol_version}"
    _put(sheet, row, 0, protocol)
    _put(sheet, row + 1, 0, f"{texts['code_version']}: {release.code_version}")
    gaps = any(has_gaps(table) for table in release.tables)
    _write_notes(sheet, row + 3, release, "", fmts, [10, 60, 20], gaps)
    sheet.set_column(0, 0, 10)
    sheet.set_column(1, 1, 60)
    sheet.set_column(2, 2, 20)
    sheet.fit_to_pages(1, 0)  # the three columns are wider than a portrait page
    _print_setup(sheet, release, texts["contents"])


def _write_table_sheet(sheet: Worksheet, release: Release, table: ReleasedTable, fmts: Formats) -> None:
    _write_header_block(sheet, release, table.title, table.unit, fmts)
    if len(table.dimensions) == 2:
        last_row, widths = _write_cross(sheet, release, table, grid(table), fmts)
    else:
        last_row, widths = _write_long(sheet, release, table, fmts)
    _write_notes(sheet, last_row + 2, release, table.footnote, fmts, widths, has_gaps(table))
    _print_setup(sheet, release, table.title)
    sheet.freeze_panes(HEADER_ROW + 1, 1)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(HEADER_ROW)


def _write_value(
    sheet: Worksheet,
    row: int,
    col: int,
    release: Release,
    table: ReleasedTable,
    cell: ReleasedCell,
    bold: bool,
    fmts: Formats,
) -> None:
    value = published_value(table, cell)
    if value is None:
        span = format_range(cell.range_lo, cell.range_hi, table.decimals, release.language)
        sheet.write_string(row, col, f"{SYMBOL[release.language]} {span}".strip(), fmts.suppressed(bold))
    else:
        sheet.write_number(row, col, value, fmts.get(bold=bold, decimals=table.decimals))


def _write_long(sheet: Worksheet, release: Release, table: ReleasedTable, fmts: Formats) -> tuple[int, list[float]]:
    """One row per cell: a column per dimension (indented by depth), the value last.

    Returns the last row written and the column widths.
    """
    n_dims = len(table.dimensions)
    for col, label in enumerate(table.dimension_labels):
        _put(sheet, HEADER_ROW, col, label, fmts.header())
    header = value_header(release, table)
    _put(sheet, HEADER_ROW, n_dims, header, fmts.header("right"))
    row = HEADER_ROW
    for cell, bold in zip(table.cells, total_flags(table), strict=True):
        row += 1
        for col in range(n_dims):
            _put(sheet, row, col, cell.labels[col], fmts.get(bold=bold, indent=cell.depths[col]))
        _write_value(sheet, row, n_dims, release, table, cell, bold, fmts)
    widths = [
        _width([(c.labels[col], c.depths[col]) for c in table.cells], table.dimension_labels[col])
        for col in range(n_dims)
    ]
    widths.append(max(VALUE_WIDTH, min(30, len(header) + 2)))
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    return row, widths


def _write_cross(
    sheet: Worksheet, release: Release, table: ReleasedTable, view: Grid, fmts: Formats
) -> tuple[int, list[float]]:
    """Rows = first dimension, columns = second; totals and subtotals bold along both.

    A combination without a cell shows the no-data dash. Returns the last row and the column widths.
    """
    corner = f"{table.dimension_labels[0]} \\ {table.dimension_labels[1]}"
    _put(sheet, HEADER_ROW, 0, corner, fmts.header())
    for col, item in enumerate(view.cols, start=1):
        _put(sheet, HEADER_ROW, col, item.label, fmts.header("right"))
    row = HEADER_ROW
    for item in view.rows:
        row += 1
        _put(sheet, row, 0, item.label, fmts.get(bold=item.is_aggregate, indent=item.depth))
        for col, col_item in enumerate(view.cols, start=1):
            cell = view.at(item, col_item)
            bold = item.is_aggregate or col_item.is_aggregate
            if cell is None:
                sheet.write_string(row, col, NO_DATA, fmts.no_data(bold))
            else:
                _write_value(sheet, row, col, release, table, cell, bold, fmts)
    widths = [_width([(i.label, i.depth) for i in axis(table, 0)], corner)]
    # A column as wide as its heading (up to a limit), so neighbouring headings never run together.
    widths += [float(max(VALUE_WIDTH, min(MAX_HEADING_WIDTH, len(c.label) + 3))) for c in view.cols]
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    sheet.set_row(HEADER_ROW, 45)
    return row, widths


def _width(labels: list[tuple[str, int]], header: str) -> float:
    """Column width for (label, depth) pairs: the indentation takes room too."""
    return min(60, max([len(header), *(len(label) + INDENT_CHARS * depth + 2 for label, depth in labels)]) + 2)
