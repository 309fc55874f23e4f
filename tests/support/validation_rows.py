"""Rows for validation tests, as a reader hands them over (text, index = spreadsheet row)."""

from __future__ import annotations

import pandas as pd


def frame(rows: list[dict], first_row: int = 2) -> pd.DataFrame:
    df = pd.DataFrame(rows, dtype="str")
    df.index = pd.RangeIndex(first_row, first_row + len(df))
    return df


def pl_row(**changes) -> dict:
    row = dict(
        facility_id="F1",
        country="NL",
        facility_type="laundry",
        tier="1",
        workers_band="1-50",
        order_volume_pieces="10",
        order_value_eur="2.5",
    )
    return {**row, **changes}
