"""Writing generated data the way companies send it (csv, Dutch-locale csv, xlsx) and as Parquet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xlsxwriter

from .common import COLUMNS, FILE_FORMATS, TEMPLATES, CovenantData, SampleDataError

XLSX_CREATED = datetime(2025, 1, 1, 9, 0, 0)  # fixed so that xlsx bytes do not depend on the clock


def write_parquet(data: CovenantData, out_dir: Path) -> list[Path]:
    """Write `<out_dir>/<covenant>/companies.parquet` and one `<template>.parquet` per template."""
    target = Path(out_dir) / data.covenant
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in {"companies": data.companies, **data.tables}.items():
        path = target / f"{name}.parquet"
        partial = path.with_suffix(".parquet.partial")  # a failed run leaves no half file under the real name
        pq.write_table(table, partial)
        partial.replace(path)
        written.append(path)
    return written


def submission_frame(data: CovenantData, template: str, company_id: str, period: str) -> pd.DataFrame:
    """One company's rows for one period and template, as the company would fill the template."""
    table = data.tables[template]
    mask = pc.and_(pc.equal(table["company_id"], company_id), pc.equal(table["period"], period))
    return to_pandas(table.filter(mask).select(list(COLUMNS[template])))


def write_submission_file(frame: pd.DataFrame, path: Path, template: str, file_format: str) -> None:
    """Write one submission the way companies send it: csv, csv_nl (Dutch Excel export) or xlsx."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "xlsx":
        _write_xlsx(frame, path, sheet=template)
        return
    text = _as_text_booleans(frame)
    if file_format == "csv":
        text.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    elif file_format == "csv_nl":
        text.to_csv(path, index=False, sep=";", decimal=",", encoding="cp1252", lineterminator="\r\n")
    else:
        raise SampleDataError(f"unknown file format '{file_format}'", hint=f"use one of: {', '.join(FILE_FORMATS)}")


def write_submissions(
    data: CovenantData, root: Path, replace: dict[tuple[str, str, str], pd.DataFrame] | None = None
) -> list[Path]:
    """Write `<root>/<covenant>/<period>/<company_id>__<template>.<ext>` for every on-time submission.

    `replace` maps (template, company_id, period) to a frame written instead of the generated rows (the sample
    uses it for a submission with a typo that a later resubmission corrects).
    """
    formats = dict(
        zip(data.companies["company_id"].to_pylist(), data.companies["file_format"].to_pylist(), strict=True)
    )
    written = []
    for template in TEMPLATES[data.covenant]:
        frame = to_pandas(data.tables[template])
        for (company_id, period), rows in frame.groupby(["company_id", "period"], sort=True):
            rows = (replace or {}).get((template, company_id, period), rows[list(COLUMNS[template])])
            path = submission_path(root, data.covenant, period, company_id, template, formats[company_id])
            write_submission_file(rows.reset_index(drop=True), path, template, formats[company_id])
            written.append(path)
    return written


def submission_path(root: Path, covenant: str, period: str, company_id: str, template: str, file_format: str) -> Path:
    extension = "xlsx" if file_format == "xlsx" else "csv"
    return Path(root) / covenant / period / f"{company_id}__{template}.{extension}"


def to_pandas(table: pa.Table) -> pd.DataFrame:
    # nullable ints stay ints ("3", not "3.0") and missing optional values stay empty
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _as_text_booleans(frame: pd.DataFrame) -> pd.DataFrame:
    """The templates spell booleans true/false; pandas would write True/False."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_bool_dtype(out[column]):
            out[column] = np.where(out[column].to_numpy(dtype=bool), "true", "false")
    return out


def _python_value(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _write_xlsx(frame: pd.DataFrame, path: Path, sheet: str) -> None:
    # never turn text into formulas, numbers or links: what the company typed is what we store
    options = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    workbook = xlsxwriter.Workbook(str(path), options)
    workbook.set_properties({"created": XLSX_CREATED, "author": "", "title": sheet})
    worksheet = workbook.add_worksheet(sheet)
    worksheet.write_row(0, 0, list(frame.columns))
    for row, values in enumerate(frame.itertuples(index=False, name=None), start=1):
        for column, value in enumerate(values):
            value = _python_value(value)
            if value is not None:
                worksheet.write(row, column, value)
    workbook.close()


def write_companies_csv(covenants: Sequence[CovenantData], path: Path) -> None:
    frames = [to_pandas(d.companies.drop_columns(["file_format"])) for d in covenants]
    pd.concat(frames, ignore_index=True).to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
