"""The validation report: one row per problem, in English and Dutch, plus counts; written safely to CSV/XLSX.

Rows are spreadsheet rows as the company sees them (header = row 1); file-level problems have row None.
Report files are opened by companies in Excel, so every text cell that Excel could take for a formula
(starting with = + - @, a tab or a carriage return) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import xlsxwriter

from ..fileio import atomic_write_path
from ..text import CSV_DELIMITER

PROBLEM_COLUMNS = ["row", "column", "value", "rule", "message_en", "message_nl"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_PER_RULE_AND_COLUMN = 1000  # beyond this a company gains nothing from more lines; counts stay exact


@dataclass(frozen=True)
class Problem:
    """One problem; row None means the whole file (e.g. a missing column)."""

    row: int | None
    column: str | None
    value: str | None
    rule: str
    message_en: str
    message_nl: str


@dataclass
class ValidationReport:
    """Every problem found in one file, with exact counts even when the listing is capped."""

    problems: pd.DataFrame = field(default_factory=lambda: _empty_problems())
    rows_checked: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    left_out: int = 0  # problems not listed because one rule failed very often in one column
    # Details (tracebacks) of checks that failed unexpectedly: for the secretariat's log, never in the report
    internal_errors: list[str] = field(default_factory=list)

    @classmethod
    def from_parts(cls, parts: Iterable[pd.DataFrame], rows_checked: int = 0) -> ValidationReport:
        """Combine problem frames, sort by row then column, cap very repetitive problems."""
        frames = [p for p in parts if len(p)]
        if not frames:
            return cls(rows_checked=rows_checked)
        table = pd.concat(frames, ignore_index=True)[PROBLEM_COLUMNS]
        table["row"] = table["row"].astype("Int64")
        counts = {str(k): int(v) for k, v in table["rule"].value_counts().sort_index().items()}
        table = table.sort_values(["row", "column", "rule"], na_position="first", kind="stable")
        capped = table.groupby(["rule", "column"], dropna=False, sort=False).head(MAX_PER_RULE_AND_COLUMN)
        return cls(capped.reset_index(drop=True), rows_checked, counts, len(table) - len(capped))

    @classmethod
    def from_problems(cls, problems: Iterable[Problem], rows_checked: int = 0) -> ValidationReport:
        rows = [vars(p) for p in problems]
        return cls.from_parts([pd.DataFrame(rows, columns=PROBLEM_COLUMNS)], rows_checked)

    @property
    def ok(self) -> bool:
        return not self.counts

    @property
    def n_problems(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict[str, Any]:
        """Counts for the terminal, the intake log and the secretariat's overview."""
        rows = self.problems["row"].dropna()
        return {
            "rows_checked": self.rows_checked,
            "problems": self.n_problems,
            "rows_with_problems": int(rows.nunique()),
            "file_level_problems": int(self.problems["row"].isna().sum()),
            "by_rule": dict(self.counts),
            "left_out": self.left_out,
        }

    def to_frame(self) -> pd.DataFrame:
        return self.problems.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the store keeps it as submissions.report_json)."""
        records = json.loads(self.problems.to_json(orient="records", force_ascii=False))
        return {"summary": self.summary(), "problems": records}

    def render_text(self, language: str = "en", limit: int = 50) -> str:
        """Plain text for the terminal: a summary line, then one line per problem (at most `limit`)."""
        nl = language == "nl"
        if self.ok:
            return (
                f"geen problemen gevonden in {self.rows_checked} regels"
                if nl
                else f"no problems found in {self.rows_checked} rows"
            )
        head = (
            f"{self.n_problems} problemen gevonden in {self.rows_checked} regels"
            if nl
            else f"{self.n_problems} problems found in {self.rows_checked} rows"
        )
        message = "message_nl" if nl else "message_en"
        lines = [head]
        for rec in self.problems.head(limit).itertuples(index=False):
            where = _where(rec.row, rec.column, nl)
            lines.append(f"  {where}: {getattr(rec, message)}")
        hidden = self.n_problems - min(limit, len(self.problems))
        if hidden > 0:
            more = "nog {n} problemen; zie het rapportbestand" if nl else "{n} more problems; see the report file"
            lines.append("  " + more.format(n=hidden))
        return "\n".join(lines)


def _where(row: Any, column: Any, nl: bool) -> str:
    file_word, row_word = ("bestand", "regel") if nl else ("file", "row")
    place = file_word if pd.isna(row) else f"{row_word} {int(row)}"
    return place if column is None or pd.isna(column) else f"{place}, {column}"


def _empty_problems() -> pd.DataFrame:
    # Every clean file's report starts from this; building the typed empty frame costs ~1 ms, copying it far less.
    return _EMPTY_PROBLEMS.copy()


def _build_empty_problems() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in PROBLEM_COLUMNS})
    frame["row"] = frame["row"].astype("Int64")
    return frame


_EMPTY_PROBLEMS = _build_empty_problems()


def neutralise(value: Any) -> Any:
    """Text that Excel would read as a formula gets a leading apostrophe; other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_report_csv(report: ValidationReport, path: str | Path, language: str = "en") -> Path:
    """Write the problems as CSV (UTF-8 with BOM so Excel reads accents) in the language's dialect, the one of
    the committee's CSV files (imvo_submit.text.CSV_DELIMITER: ',' for English, ';' for Dutch); atomic."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.writer(fh, delimiter=CSV_DELIMITER[language], lineterminator="\r\n")
            writer.writerow(PROBLEM_COLUMNS)
            for rec in report.problems.itertuples(index=False):
                writer.writerow([_cell_text(v) for v in rec])

    return atomic_write_path(Path(path), write)


def write_report_xlsx(report: ValidationReport, path: str | Path) -> Path:
    """Write a 'summary' and a 'problems' sheet; every text cell is written as text, never a formula."""

    def write(tmp: Path) -> None:
        book = xlsxwriter.Workbook(
            str(tmp), {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
        )
        bold = book.add_format({"bold": True})
        _write_summary(book.add_worksheet("summary"), report, bold)
        sheet = book.add_worksheet("problems")
        sheet.write_row(0, 0, PROBLEM_COLUMNS, bold)
        for r, rec in enumerate(report.problems.itertuples(index=False), start=1):
            for c, value in enumerate(rec):
                _write_cell(sheet, r, c, value)
        sheet.freeze_panes(1, 0)
        sheet.set_column(0, 0, 6)
        sheet.set_column(1, 3, 22)
        sheet.set_column(4, 5, 80)
        book.close()

    return atomic_write_path(Path(path), write)


def _write_summary(sheet: Any, report: ValidationReport, bold: Any) -> None:
    summary = report.summary()
    sheet.write_row(0, 0, ["item", "count"], bold)
    items = [(k, v) for k, v in summary.items() if k != "by_rule"]
    items += [(f"rule {rule}", n) for rule, n in summary["by_rule"].items()]
    for r, (name, count) in enumerate(items, start=1):
        sheet.write_string(r, 0, str(neutralise(name)))
        sheet.write_number(r, 1, count)
    sheet.set_column(0, 0, 30)


def _write_cell(sheet: Any, r: int, c: int, value: Any) -> None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        sheet.write_number(r, c, value)
    else:
        sheet.write_string(r, c, neutralise(str(value)))


def _cell_text(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return neutralise(str(value))
