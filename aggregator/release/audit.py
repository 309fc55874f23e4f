"""The secretariat's audit report: every cell with its internal status, reasons and audit interval.

This file shows how cells were protected, so it must never sit in a committee folder: writing it
into a release directory (one holding a manifest.json) is refused.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import xlsxwriter

from aggregator.release.html import environment, page_context
from aggregator.release.model import STATUSES, InvalidRelease, Release, ReleasedCell, ReleasedTable
from aggregator.release.texts import TEXTS, format_number, neutralise
from aggregator.release.writer import MANIFEST, ReleaseFile, ReleaseFiles, sha256_file
from aggregator.release.xlsx import WORKBOOK_OPTIONS, Formats
from imvo_submit.fileio import atomic_write_path

AUDIT_HTML = "audit.html"
AUDIT_XLSX = "audit.xlsx"

COLUMNS = {
    "en": [
        "table", "cell", "labels", "depths", "status", "published value", "true value",
        "published range lo", "published range hi", "audit lo", "audit hi",
        "required upper", "required lower", "protection met", "reasons",
    ],
    "nl": [
        "tabel", "cel", "labels", "niveaus", "status", "gepubliceerde waarde", "echte waarde",
        "gepubliceerd bereik onder", "gepubliceerd bereik boven", "audit onder", "audit boven",
        "vereist boven", "vereist onder", "bescherming gehaald", "redenen",
    ],
}  # fmt: skip
COST_COLUMNS = {
    "en": [
        "table",
        "cells",
        "published",
        "primary",
        "secondary",
        "suppressed %",
        "hidden value (all levels)",
    ],
    "nl": [
        "tabel",
        "cellen",
        "gepubliceerd",
        "primair",
        "secundair",
        "geheim %",
        "verborgen waarde (alle niveaus)",
    ],
}
INSIDER_COLUMNS = {
    "en": [
        "table", "cell", "insider", "true value", "insider lo", "insider hi",
        "required upper", "required lower", "protection met",
    ],
    "nl": [
        "tabel", "cel", "insider", "echte waarde", "insider onder", "insider boven",
        "vereist boven", "vereist onder", "bescherming gehaald",
    ],
}  # fmt: skip
INSIDERS_XLSX = "insiders.xlsx"
YES_NO = {"en": ("yes", "NO"), "nl": ("ja", "NEE")}
STATUS_NAMES = {
    "en": {"published": "published", "primary": "primary", "secondary": "secondary"},
    "nl": {"published": "gepubliceerd", "primary": "primair", "secondary": "secundair"},
}
# Readable names for the keys the batch puts in the audit summary; unknown keys are shown as given.
SUMMARY_LABELS = {
    "en": {
        "audit": "audit result",
        "cells": "cells",
        "cells_suppressed": "suppressed cells",
        "insiders_checked": "insiders checked",
        "reader_classes": "reader classes audited",
        "carried_forward": "figures carried forward",
        "audited_with": "audited with",
        "lp_solves": "LP solves",
        "passed": "passed",
    },
    "nl": {
        "audit": "auditresultaat",
        "cells": "cellen",
        "cells_suppressed": "geheime cellen",
        "insiders_checked": "gecontroleerde insiders",
        "reader_classes": "gecontroleerde lezersgroepen",
        "carried_forward": "doorgetrokken cijfers",
        "audited_with": "samen gecontroleerd met",
        "lp_solves": "LP-berekeningen",
        "passed": "geslaagd",
    },
}


@dataclass(frozen=True)
class CostRow:
    table_id: str
    cells: int
    published: int
    primary: int
    secondary: int
    suppressed_percent: float
    hidden_value: float | None


def protection_met(cell: ReleasedCell) -> bool | None:
    """Whether the audit interval covers the required protection; None when it cannot be judged."""
    if not cell.suppressed or None in (cell.true_value, cell.lo, cell.hi):
        return None
    tolerance = 1e-6 * max(1.0, abs(cell.true_value))
    low_ok = cell.lo <= cell.true_value - (cell.lpl or 0.0) + tolerance
    high_ok = cell.hi >= cell.true_value + (cell.upl or 0.0) - tolerance
    return low_ok and high_ok


def cost_rows(release: Release) -> list[CostRow]:
    """Per table and for the whole release: how much was hidden, by count and by value."""
    rows = [_cost(t.table_id, t.cells) for t in release.tables]
    everything = [cell for table in release.tables for cell in table.cells]
    rows.append(_cost("*", everything))
    return rows


def _cost(table_id: str, cells: list[ReleasedCell]) -> CostRow:
    count = {status: sum(1 for c in cells if c.status == status) for status in STATUSES}
    hidden = [c.true_value for c in cells if c.suppressed and c.true_value is not None]
    share = 100.0 * (len(cells) - count["published"]) / len(cells) if cells else 0.0
    return CostRow(table_id, len(cells), count["published"], count["primary"], count["secondary"], share, sum(hidden))


def audit_values(table: ReleasedTable, cell: ReleasedCell, language: str) -> list[str | float | None]:
    """One audit row: strings and numbers in the order of COLUMNS."""
    met = protection_met(cell)
    met_text = "" if met is None else YES_NO[language][0 if met else 1]
    return [
        table.table_id,
        " / ".join(cell.codes),
        " / ".join(cell.labels),
        " / ".join(str(d) for d in cell.depths),
        STATUS_NAMES[language][cell.status],
        cell.value,
        cell.true_value if cell.true_value is not None else cell.value,
        cell.range_lo,
        cell.range_hi,
        cell.lo,
        cell.hi,
        cell.upl,
        cell.lpl,
        met_text,
        "; ".join(cell.reasons),
    ]


def write_audit_report(release: Release, path_dir: Path) -> ReleaseFiles:
    """Write audit.html and audit.xlsx into `path_dir` (a secretariat-only folder chosen by the batch).

    Each file is written under a temporary name and renamed when complete. Raises InvalidRelease
    when `path_dir` is, or lies inside, a committee release folder.
    """
    release.check()
    path_dir = Path(path_dir)
    _refuse_committee_folder(path_dir)
    path_dir.mkdir(parents=True, exist_ok=True)
    html = render_audit_html(release).encode("utf-8")
    written = [
        _atomic_write(path_dir / AUDIT_HTML, lambda p: p.write_bytes(html)),
        _atomic_write(path_dir / AUDIT_XLSX, lambda p: write_audit_xlsx(release, p)),
    ]
    return ReleaseFiles(path_dir, tuple(written))


def render_audit_files(release: Release) -> dict[str, bytes]:
    """audit.html and audit.xlsx rendered in memory, for the caller to seal: the true values of hidden cells
    never touch a disk in the clear (a killed batch leaves nothing readable behind)."""
    release.check()
    workbook = io.BytesIO()
    write_audit_xlsx(release, workbook)
    return {AUDIT_HTML: render_audit_html(release).encode("utf-8"), AUDIT_XLSX: workbook.getvalue()}


def _refuse_committee_folder(path_dir: Path) -> None:
    resolved = path_dir.resolve()
    for folder in (resolved, *resolved.parents):
        if (folder / MANIFEST).is_file():
            raise InvalidRelease(
                f"{path_dir} is inside the committee release folder {folder}; the audit report "
                "shows how cells were protected and must stay with the secretariat",
                hint="write the audit report to a secretariat-only folder",
            )


def _atomic_write(path: Path, write) -> ReleaseFile:
    atomic_write_path(path, write)
    return ReleaseFile(path.name, path, sha256_file(path), path.stat().st_size)


def render_audit_html(release: Release) -> str:
    context = page_context(release, [])
    context.update(
        columns=COLUMNS[release.language],
        cost_columns=COST_COLUMNS[release.language],
        costs=cost_rows(release),
        summary=summary_items(release),
        audit_tables=[
            (table, [(cell.status, audit_values(table, cell, release.language)) for cell in table.cells])
            for table in release.tables
        ],
        fmt=lambda value: _fmt(value, release.language),
    )
    return environment().get_template("audit.html.j2").render(context)


def _fmt(value: object, language: str) -> str:
    """Numbers in the audit HTML: up to four decimals, trailing zeros dropped, in the release's notation."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if not isinstance(value, float):
        return str(value)
    text = format_number(value, 4, language)
    point = "," if language == "nl" else "."
    return text.rstrip("0").rstrip(point)


def write_audit_xlsx(release: Release, path: Path | io.BytesIO) -> None:
    workbook = xlsxwriter.Workbook(path if isinstance(path, io.BytesIO) else str(path), WORKBOOK_OPTIONS)
    workbook.set_properties({"title": f"audit {release.covenant_id} {release.period}", "created": release.created_at})
    formats = Formats(workbook)
    texts = TEXTS[release.language]
    summary = workbook.add_worksheet(texts["audit_summary_sheet"])
    _write_rows(summary, _summary_rows(release), formats)
    cells = workbook.add_worksheet(texts["audit_cells_sheet"])
    rows = [COLUMNS[release.language]]
    rows += [audit_values(t, c, release.language) for t in release.tables for c in t.cells]
    _write_rows(cells, rows, formats)
    cells.freeze_panes(1, 2)
    cells.autofilter(0, 0, len(rows) - 1, len(COLUMNS[release.language]) - 1)
    workbook.close()


@dataclass(frozen=True)
class InsiderRow:
    """One insider's interval for a hidden primary cell of a recorded release (aggregator.history.insider_rows),
    with what the cell needed: the secretariat's view of who could narrow what."""

    table_id: str
    cell_key: str
    insider: str
    true_value: float
    lo: float
    hi: float
    upl: float  # required upper protection
    lpl: float  # required lower protection
    passed: bool


def insider_workbook(lines: Iterable[InsiderRow], language: str, created: datetime) -> bytes:
    """insiders.xlsx in memory: one row per insider and hidden primary cell it is judged on (for the secretariat;
    it holds true values, like the audit report). `created` (the release's time) keeps the bytes reproducible."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, WORKBOOK_OPTIONS)
    workbook.set_properties({"title": "insiders", "created": created})
    sheet = workbook.add_worksheet("insiders")
    columns = INSIDER_COLUMNS[language]
    rows: list[list] = [columns]
    yes, no = YES_NO[language]
    rows += [
        [x.table_id, x.cell_key, x.insider, x.true_value, x.lo, x.hi, x.upl, x.lpl, yes if x.passed else no]
        for x in lines
    ]
    _write_rows(sheet, rows, Formats(workbook))
    sheet.freeze_panes(1, 3)
    sheet.autofilter(0, 0, len(rows) - 1, len(columns) - 1)
    workbook.close()
    return buffer.getvalue()


def _summary_rows(release: Release) -> list[list]:
    texts = TEXTS[release.language]
    rows: list[list] = [
        [texts["covenant"], release.covenant_id],
        [texts["period"], release.period],
        [texts["audience"], release.audience_id],
        [texts["protocol"], f"{release.protocol_version} sha256 {release.protocol_sha256}"],
        [texts["code_version"], release.code_version],
        [texts["created"], release.created],
        [],
    ]
    rows += [[label, _summary_text(value)] for label, value in summary_items(release)]
    rows += [[], COST_COLUMNS[release.language]]
    rows += [
        [c.table_id, c.cells, c.published, c.primary, c.secondary, c.suppressed_percent, c.hidden_value]
        for c in cost_rows(release)
    ]
    return rows


def summary_items(release: Release) -> list[tuple[str, object]]:
    """The audit summary with readable names, sorted by key; the value 'passed' is translated too."""
    labels = SUMMARY_LABELS[release.language]
    return [
        (labels.get(str(key), str(key)), _summary_value(value, release.language))
        for key, value in sorted(
            {**release.audit_summary, **release.internal_summary}.items(), key=lambda item: str(item[0])
        )
    ]


def _summary_value(value: object, language: str) -> object:
    if isinstance(value, bool):
        return YES_NO[language][0] if value else YES_NO[language][1].lower()
    if isinstance(value, str):
        return SUMMARY_LABELS[language].get(value, value)
    return value


def _summary_text(value: object) -> str | float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _write_rows(sheet, rows: list[list], formats: Formats) -> None:
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, int | float) and not isinstance(value, bool):
                if math.isfinite(value):
                    sheet.write_number(r, c, value)
            elif value is not None:
                sheet.write_string(r, c, neutralise(str(value)), formats.header() if r == 0 else None)
    sheet.set_column(0, 2, 22)
    sheet.set_column(3, 12, 14)
