"""One CSV (for people with Excel) and one Parquet file (for machines) per table.

CSV: UTF-8 with BOM so Excel detects the encoding; English uses ',' and a decimal point, Dutch uses
';' and a decimal comma, as Excel in that locale expects; suppressed cells hold the symbol.
Parquet: suppressed values are null and a `status` column says published or suppressed, nothing more.
Both carry, for a suppressed cell, the range any reader can derive from the release (`lower`, `upper`; empty
where the release bounds nothing on that side).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from aggregator.release.layout import published_value, value_header
from aggregator.release.model import InvalidRelease, Release, ReleasedTable
from aggregator.release.texts import SYMBOL, TEXTS, format_number, neutralise
from imvo_submit.text import CSV_DELIMITER  # the same dialect as the companies' error reports


def csv_bytes(release: Release, table: ReleasedTable) -> bytes:
    """The table as CSV text: per dimension code, label and level, then the value."""
    language = release.language
    texts = TEXTS[language]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=CSV_DELIMITER[language], lineterminator="\r\n")
    header: list[str] = []
    for label in table.dimension_labels:
        header += [f"{label} ({texts['code']})", label, f"{label} ({texts['level']})"]
    header += [value_header(release, table), texts["lower"], texts["upper"]]
    writer.writerow([neutralise(h) for h in header])
    for cell in table.cells:
        row: list[str] = []
        for code, label, depth in zip(cell.codes, cell.labels, cell.depths, strict=True):
            row += [neutralise(code), neutralise(label), str(depth)]
        value = published_value(table, cell)
        row.append(SYMBOL[language] if value is None else format_number(value, table.decimals, language, False))
        row += [_plain(bound, table.decimals, language) for bound in (cell.range_lo, cell.range_hi)]
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8-sig")


def _plain(value: float | None, decimals: int, language: str) -> str:
    return "" if value is None else format_number(value, decimals, language, False)


def write_csv(release: Release, table: ReleasedTable, path: Path) -> None:
    path.write_bytes(csv_bytes(release, table))


def parquet_table(release: Release, table: ReleasedTable) -> pa.Table:
    """Arrow table with an explicit schema (no pandas metadata, no index) in display order."""
    columns: dict[str, pa.Array] = {}
    for d, dim in enumerate(table.dimensions):
        columns[dim] = pa.array([c.codes[d] for c in table.cells], pa.string())
        columns[f"{dim}_label"] = pa.array([c.labels[d] for c in table.cells], pa.string())
        columns[f"{dim}_depth"] = pa.array([c.depths[d] for c in table.cells], pa.int16())
    if {"value", "status", "lower", "upper"} & set(columns) or len(columns) != 3 * len(table.dimensions):
        raise InvalidRelease(
            f"table {table.table_id!r}: dimension ids clash with the Parquet columns "
            "(value, status, lower, upper, <dim>_label, <dim>_depth)",
            hint="rename the dimension in the protocol",
        )
    columns["value"] = pa.array([published_value(table, c) for c in table.cells], pa.float64())
    columns["status"] = pa.array([c.public_status for c in table.cells], pa.string())
    columns["lower"] = pa.array([c.range_lo for c in table.cells], pa.float64())
    columns["upper"] = pa.array([c.range_hi for c in table.cells], pa.float64())
    metadata = {
        "covenant": release.covenant_id,
        "period": release.period,
        "table_id": table.table_id,
        "title": table.title,
        "unit": table.unit,
        "kind": table.kind,
        "decimals": str(table.decimals),
    }
    return pa.table(columns).replace_schema_metadata(dict(sorted(metadata.items())))


def write_parquet(release: Release, table: ReleasedTable, path: Path) -> None:
    pq.write_table(parquet_table(release, table), path, compression="zstd")
