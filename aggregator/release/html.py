"""The self-contained HTML report: every table, with bar charts and heat maps where they help.

Templates live in aggregator/release/templates/; CSS and SVG are inline, there is no script and no
external asset, so the file can be mailed and opened offline or printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from aggregator.release.charts import HeatLegend, Point, bar_chart, heat_map
from aggregator.release.layout import (
    AxisItem,
    axis,
    chart_level,
    grid,
    has_gaps,
    published_value,
    total_flags,
    value_header,
)
from aggregator.release.model import Coverage, Release, ReleasedCell, ReleasedTable
from aggregator.release.texts import NO_DATA, SYMBOL, TEXTS, format_number, format_range, period_label

TEMPLATES = Path(__file__).parent / "templates"
MAX_BARS = 60  # beyond this a chart is harder to read than the table
MAX_HEAT_ROWS, MAX_HEAT_COLS = 60, 30


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass
class HtmlCell:
    text: str
    suppressed: bool = False
    bold: bool = False
    no_data: bool = False  # the combination does not exist in the table (nobody reported it)
    range: str = ""  # a suppressed cell's published range


@dataclass
class HtmlRow:
    heads: list[tuple[str, int]]  # (label, depth) per row-heading column
    cells: list[HtmlCell]
    bold: bool = False


@dataclass
class HtmlTable:
    anchor: str
    title: str
    unit: str
    footnote: str
    headers: list[str]
    n_heads: int
    rows: list[HtmlRow]
    chart: Markup | None = None
    chart_caption: str = ""
    col_bold: list[bool] = field(default_factory=list)
    coverage: Coverage | None = None


def coverage_bar(coverage: Coverage) -> list[tuple[str, float]]:
    """(css class, width %) of the parts of a table's cells: published, as a range, hidden."""
    total = max(coverage.cells, 1)
    parts = (("published", coverage.published), ("ranged", coverage.ranged), ("hidden", coverage.hidden))
    return [(name, round(100.0 * n / total, 2)) for name, n in parts if n]


def render_report(release: Release) -> str:
    """The committee's HTML report as one string."""
    tables = [_html_table(release, table, number) for number, table in enumerate(release.tables, start=1)]
    return environment().get_template("report.html.j2").render(page_context(release, tables))


def page_context(release: Release, tables: list) -> dict:
    texts = TEXTS[release.language]
    return {
        "release": release,
        "t": texts,
        "symbol": SYMBOL[release.language],
        "no_data": NO_DATA,
        "has_gaps": any(has_gaps(table) for table in release.tables),
        "period": period_label(release.period, release.language),
        "tables": tables,
        "coverage_bar": coverage_bar,
    }


def _cell_text(release: Release, table: ReleasedTable, cell: ReleasedCell | None, bold: bool) -> HtmlCell:
    if cell is None:
        return HtmlCell(NO_DATA, bold=bold, no_data=True)
    value = published_value(table, cell)
    if value is None:
        span = format_range(cell.range_lo, cell.range_hi, table.decimals, release.language)
        return HtmlCell(SYMBOL[release.language], suppressed=True, bold=bold, range=span)
    return HtmlCell(format_number(value, table.decimals, release.language), bold=bold)


def _html_table(release: Release, table: ReleasedTable, number: int) -> HtmlTable:
    view = HtmlTable(
        anchor=f"table-{number}",
        coverage=table.coverage(),
        title=table.title,
        unit=table.unit,
        footnote=table.footnote,
        headers=[],
        n_heads=0,
        rows=[],
    )
    if len(table.dimensions) == 2:
        _fill_cross(release, table, view)
    else:
        _fill_long(release, table, view, value_header(release, table))
    _attach_chart(release, table, view)
    return view


def _fill_long(release: Release, table: ReleasedTable, view: HtmlTable, value_header: str) -> None:
    view.headers = [*table.dimension_labels, value_header]
    view.n_heads = len(table.dimensions)
    view.col_bold = [False]
    for cell, bold in zip(table.cells, total_flags(table), strict=True):
        heads = list(zip(cell.labels, cell.depths, strict=True))
        view.rows.append(HtmlRow(heads, [_cell_text(release, table, cell, bold)], bold))


def _fill_cross(release: Release, table: ReleasedTable, view: HtmlTable) -> None:
    shape = grid(table)
    view.headers = [
        f"{table.dimension_labels[0]} \\ {table.dimension_labels[1]}",
        *(c.label for c in shape.cols),
    ]
    view.n_heads = 1
    view.col_bold = [c.is_aggregate for c in shape.cols]
    for row in shape.rows:
        cells = [
            _cell_text(release, table, shape.at(row, col), row.is_aggregate or col.is_aggregate) for col in shape.cols
        ]
        view.rows.append(HtmlRow([(row.label, row.depth)], cells, row.is_aggregate))


def _level(items: list[AxisItem]) -> list[AxisItem]:
    level = chart_level(items)
    return [] if level is None else [item for item in items if item.depth == level]


def _attach_chart(release: Release, table: ReleasedTable, view: HtmlTable) -> None:
    texts = TEXTS[release.language]
    chart_id = f"chart-{view.anchor}"
    when = period_label(release.period, release.language)
    desc = f"{table.title} ({table.unit}), {when}. {texts['chart_note']}"
    if len(table.dimensions) == 1:
        svg = _bar_for(release, table, chart_id, desc)
        caption = texts["chart_bar"]
    elif len(table.dimensions) == 2:
        svg = _heat_for(release, table, chart_id, desc)
        caption = texts["chart_heatmap"]
    else:
        svg = None
        caption = ""
    if svg:
        view.chart = Markup(svg)  # noqa: S704 - built from escaped parts in charts.py
        view.chart_caption = f"{caption}: {table.title}. {texts['chart_note']}"


def _bar_for(release: Release, table: ReleasedTable, chart_id: str, desc: str) -> str | None:
    by_code = {cell.codes[0]: cell for cell in table.cells}
    items = _level(axis(table, 0))
    if not items or len(items) > MAX_BARS:
        return None
    points = [Point(i.label, published_value(table, by_code[i.code])) for i in items]
    reference = None
    if table.kind == "ratio":
        totals = [c for c in table.cells if c.depths[0] == 0 and not c.suppressed]
        if totals:
            reference = (TEXTS[release.language]["total"], published_value(table, totals[0]) or 0.0)
    symbol = SYMBOL[release.language]
    return bar_chart(chart_id, table.title, desc, points, table.decimals, release.language, symbol, reference)


def _heat_for(release: Release, table: ReleasedTable, chart_id: str, desc: str) -> str | None:
    texts = TEXTS[release.language]
    shape = grid(table)
    rows, cols = _level(shape.rows), _level(shape.cols)
    if not rows or not cols or len(rows) > MAX_HEAT_ROWS or len(cols) > MAX_HEAT_COLS:
        return None
    values = [[_heat_point(table, shape.at(r, c), f"{r.label}, {c.label}") for c in cols] for r in rows]
    return heat_map(
        chart_id,
        table.title,
        desc,
        [r.label for r in rows],
        [c.label for c in cols],
        values,
        table.decimals,
        release.language,
        SYMBOL[release.language],
        HeatLegend(texts["suppressed_short"], texts["no_data"], NO_DATA),
    )


def _heat_point(table: ReleasedTable, cell: ReleasedCell | None, label: str) -> Point:
    if cell is None:
        return Point(label, None, present=False)
    return Point(label, published_value(table, cell))
