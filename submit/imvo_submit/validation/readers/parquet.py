"""Parquet files: declared rows and columns are checked and unusual column types made plain before reading
(imvo_submit.validation.declared)."""

from __future__ import annotations

import pandas as pd

from imvo_submit.validation import declared
from imvo_submit.validation.readers.common import FIRST_DATA_ROW, check_header


def read_parquet(data: bytes) -> pd.DataFrame:
    frame = declared.parquet_frame(data)
    check_header(list(frame.columns))
    frame = frame.reset_index(drop=True)
    frame.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(frame))
    return frame
