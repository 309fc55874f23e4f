"""Inline SVG charts for the HTML report: horizontal bars and a heat map.

Plain SVG strings (escaped here, inserted as markup), no scripts, no external fonts. A suppressed
cell is drawn as a small hatched box holding the symbol: never as a zero-length bar or a light
colour, which a reader could take for a small number.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from aggregator.release.texts import format_number

BAR_HEIGHT = 22
BAR_GAP = 8
PLOT_WIDTH = 420
VALUE_SPACE = 90
CHAR_WIDTH = 7.0  # rough width of one character at font-size 12, for layout only
MAX_LABEL = 32
# A white outline behind a text keeps it readable where it crosses a line (e.g. the reference line).
HALO = 'stroke="#ffffff" stroke-width="3" paint-order="stroke"'
HEAT_CELL_WIDTH, HEAT_CELL_HEIGHT = 78, 28
LOW_COLOUR = (0xEF, 0xF3, 0xFF)
HIGH_COLOUR = (0x08, 0x51, 0x9C)


@dataclass(frozen=True)
class Point:
    """One value to draw: `value` None means suppressed; `present` False means no such cell."""

    label: str
    value: float | None
    present: bool = True


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _label_width(labels: list[str]) -> float:
    return min(MAX_LABEL, max((len(_short(x)) for x in labels), default=4)) * CHAR_WIDTH + 12


def _hatch(chart_id: str) -> str:
    return (
        f'<defs><pattern id="{chart_id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e6e6e6"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#8c8c8c" stroke-width="2"/></pattern></defs>'
    )


def _open_svg(chart_id: str, width: float, height: float, title: str, desc: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{chart_id}" class="chart" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>{_hatch(chart_id)}'
    )


def _suppressed_box(chart_id: str, x: float, y: float, w: float, h: float, symbol: str, tip: str) -> str:
    return (
        f'<g class="suppressed"><title>{escape(tip)}</title>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="url(#{chart_id}-hatch)" '
        f'stroke="#8c8c8c"/><text x="{x + w / 2:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" '
        f'font-size="12" font-weight="bold" fill="#333">{escape(symbol)}</text></g>'
    )


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    points: list[Point],
    decimals: int,
    language: str,
    symbol: str,
    reference: tuple[str, float] | None = None,
) -> str:
    """Horizontal bars, one per point; `reference` draws a dashed line (e.g. the total of a ratio)."""
    label_w = _label_width([p.label for p in points])
    top = 24 if reference else 6
    height = top + len(points) * (BAR_HEIGHT + BAR_GAP) + 6
    width = label_w + PLOT_WIDTH + VALUE_SPACE
    known = [p.value for p in points if p.value is not None] + ([reference[1]] if reference else [])
    scale_max = max([v for v in known if v > 0], default=1.0)
    parts = [_open_svg(chart_id, width, height, title, desc)]
    if reference:  # drawn first, so bars and their value labels stay on top of the dashed line
        parts.append(_reference_line(label_w, top, height, scale_max, reference, decimals, language))
    for i, point in enumerate(points):
        y = top + i * (BAR_HEIGHT + BAR_GAP)
        parts.append(_bar_label(label_w, y, point.label))
        if point.value is None:
            parts.append(_suppressed_box(chart_id, label_w, y, 36, BAR_HEIGHT, symbol, f"{point.label}: {symbol}"))
            continue
        text = format_number(point.value, decimals, language)
        bar_w = max(0.0, point.value) / scale_max * PLOT_WIDTH
        parts.append(
            f'<g class="bar"><title>{escape(point.label)}: {escape(text)}</title>'
            f'<rect x="{label_w:.1f}" y="{y}" width="{bar_w:.1f}" height="{BAR_HEIGHT}" fill="#2b6cb0"/>'
            f'<text x="{label_w + bar_w + 4:.1f}" y="{y + BAR_HEIGHT / 2 + 4:.1f}" font-size="12" '
            f'fill="#1a1a1a" {HALO}>{escape(text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bar_label(label_w: float, y: float, label: str) -> str:
    return (
        f'<text x="{label_w - 6:.1f}" y="{y + BAR_HEIGHT / 2 + 4:.1f}" text-anchor="end" font-size="12" '
        f'fill="#1a1a1a">{escape(_short(label))}</text>'
    )


def _reference_line(
    label_w: float,
    top: float,
    height: float,
    scale_max: float,
    ref: tuple[str, float],
    decimals: int,
    lang: str,
) -> str:
    x = label_w + max(0.0, ref[1]) / scale_max * PLOT_WIDTH
    text = f"{ref[0]}: {format_number(ref[1], decimals, lang)}"
    return (
        f'<g class="reference"><line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 2}" '
        f'stroke="#c05621" stroke-width="2" stroke-dasharray="5 3"/>'
        f'<text x="{x:.1f}" y="{top - 8}" text-anchor="middle" font-size="11" fill="#c05621">'
        f"{escape(text)}</text></g>"
    )


def _colour(t: float) -> str:
    rgb = [round(lo + (hi - lo) * t) for lo, hi in zip(LOW_COLOUR, HIGH_COLOUR, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass(frozen=True)
class HeatLegend:
    """Short legend words for a heat map, in the release language."""

    suppressed: str  # e.g. "suppressed" / "geheim"
    no_data: str  # e.g. "no data" / "geen gegevens"
    no_data_symbol: str


def heat_map(
    chart_id: str,
    title: str,
    desc: str,
    rows: list[str],
    cols: list[str],
    values: list[list[Point]],
    decimals: int,
    language: str,
    symbol: str,
    legend: HeatLegend,
) -> str:
    """A grid of coloured cells (rows x cols), coloured from the smallest to the largest published value."""
    cell_h = HEAT_CELL_HEIGHT
    cell_w = _heat_cell_width(values, decimals, language)
    label_w = _label_width(rows)
    longest = max(len(_short(c)) for c in cols) * CHAR_WIDTH
    # Column labels stay horizontal when they fit a cell; longer ones are rotated 40 degrees, which
    # needs their height above the grid and their overhang to the right.
    rotate = longest > cell_w - 8
    top = longest * 0.65 + 24 if rotate else 28
    overhang = longest * 0.77 - cell_w / 2 + 10 if rotate else 0.0
    grid_bottom = top + len(rows) * cell_h
    known = [p.value for line in values for p in line if p.present and p.value is not None]
    absent = any(not p.present for line in values for p in line)
    legend_svg, legend_w = _heat_legend(chart_id, label_w, grid_bottom + 14, known, absent, legend, decimals,
                                        language, symbol)  # fmt: skip
    width = max(label_w + len(cols) * cell_w + max(20.0, overhang), label_w + legend_w + 10)
    height = grid_bottom + 50
    scale = (min(known), max(known)) if known else (0.0, 1.0)
    parts = [_open_svg(chart_id, width, height, title, desc)]
    for j, col in enumerate(cols):
        parts.append(_column_label(label_w + j * cell_w + cell_w / 2, top, col, rotate))
    for i, row in enumerate(rows):
        y = top + i * cell_h
        parts.append(_bar_label(label_w, y + (cell_h - BAR_HEIGHT) / 2, row))
        for j, point in enumerate(values[i]):
            x = label_w + j * cell_w
            parts.append(_heat_cell(chart_id, x, y, cell_w, cell_h, point, scale, decimals, language, symbol, legend))
    parts.append(legend_svg)
    parts.append("</svg>")
    return "".join(parts)


def _heat_cell_width(values: list[list[Point]], decimals: int, language: str) -> float:
    """Wide enough for the longest number in the map (e.g. 26.398.867 kg), never narrower than the default."""
    texts = [format_number(p.value, decimals, language) for line in values for p in line if p.value is not None]
    longest = max((len(text) for text in texts), default=0)
    return max(float(HEAT_CELL_WIDTH), longest * CHAR_WIDTH + 14)


def _column_label(x: float, top: float, label: str, rotate: bool) -> str:
    if rotate:
        return (
            f'<text transform="translate({x:.1f},{top - 6:.1f}) rotate(-40)" font-size="11" '
            f'fill="#1a1a1a">{escape(_short(label))}</text>'
        )
    return (
        f'<text x="{x:.1f}" y="{top - 8:.1f}" text-anchor="middle" font-size="12" '
        f'fill="#1a1a1a">{escape(_short(label))}</text>'
    )


def _heat_cell(
    chart_id: str,
    x: float,
    y: float,
    w: float,
    h: float,
    point: Point,
    scale: tuple[float, float],
    decimals: int,
    language: str,
    symbol: str,
    legend: HeatLegend,
) -> str:
    if not point.present:
        return _no_data_box(x, y, w, h, legend.no_data_symbol, f"{point.label}: {legend.no_data}")
    if point.value is None:
        return _suppressed_box(chart_id, x, y, w, h, symbol, f"{point.label}: {symbol}")
    low, high = scale
    t = 0.5 if high == low else (point.value - low) / (high - low)
    text = format_number(point.value, decimals, language)
    ink = "#ffffff" if t > 0.55 else "#1a1a1a"
    return (
        f'<g class="cell"><title>{escape(point.label)}: {escape(text)}</title>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{_colour(t)}" stroke="#ffffff"/>'
        f'<text x="{x + w / 2:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" font-size="12" '
        f'fill="{ink}">{escape(text)}</text></g>'
    )


def _no_data_box(x: float, y: float, w: float, h: float, mark: str, tip: str) -> str:
    """A combination without data: white with a dash, unlike the lightest colour of the scale."""
    return (
        f'<g class="no-data"><title>{escape(tip)}</title>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="#ffffff" stroke="#bbbbbb"/>'
        f'<text x="{x + w / 2:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" font-size="12" '
        f'fill="#555555">{escape(mark)}</text></g>'
    )


def _heat_legend(
    chart_id: str,
    x: float,
    y: float,
    known: list[float],
    absent: bool,
    legend: HeatLegend,
    decimals: int,
    language: str,
    symbol: str,
) -> tuple[str, float]:
    """Colour scale (when there is one), then the suppressed and no-data keys; returns (svg, width)."""
    parts = ['<g class="legend">']
    offset = 0.0
    if known:
        scale_svg, offset = _colour_scale(x, y, min(known), max(known), decimals, language)
        parts.append(scale_svg)
        offset += 24
    parts.append(_suppressed_box(chart_id, x + offset, y - 2, 24, 16, symbol, legend.suppressed))
    parts.append(_legend_word(x + offset + 30, y, legend.suppressed))
    offset += 30 + len(legend.suppressed) * CHAR_WIDTH + 20
    if absent:
        parts.append(_no_data_box(x + offset, y - 2, 24, 16, legend.no_data_symbol, legend.no_data))
        parts.append(_legend_word(x + offset + 30, y, legend.no_data))
        offset += 30 + len(legend.no_data) * CHAR_WIDTH
    parts.append("</g>")
    return "".join(parts), offset


def _legend_word(x: float, y: float, text: str) -> str:
    return f'<text x="{x:.1f}" y="{y + 11}" font-size="11" fill="#1a1a1a">{escape(text)}</text>'


def _colour_scale(x: float, y: float, low: float, high: float, decimals: int, language: str) -> tuple[str, float]:
    """Ten steps from the lowest to the highest published value; one swatch when they are equal."""
    low_text = format_number(low, decimals, language)
    if high == low:  # a gradient from 22 to 22 would suggest a range that is not there
        swatch = f'<rect x="{x:.1f}" y="{y}" width="16" height="12" fill="{_colour(0.5)}"/>'
        label = f'<text x="{x + 22:.1f}" y="{y + 11}" font-size="11" fill="#1a1a1a">{escape(low_text)}</text>'
        return swatch + label, 22 + len(low_text) * CHAR_WIDTH
    steps = "".join(
        f'<rect x="{x + k * 16:.1f}" y="{y}" width="16" height="12" fill="{_colour(k / 9)}"/>' for k in range(10)
    )
    high_text = format_number(high, decimals, language)
    return (
        f"{steps}"
        f'<text x="{x:.1f}" y="{y + 26}" font-size="11" fill="#1a1a1a">{escape(low_text)}</text>'
        f'<text x="{x + 160:.1f}" y="{y + 26}" text-anchor="end" font-size="11" fill="#1a1a1a">'
        f"{escape(high_text)}</text>",
        160.0,
    )
