"""Fast checks over the Arrow buffers of a text column: trimming, and whether numbers need a notation decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pa_compute


def trim_text_column(series: pd.Series) -> tuple[pd.Series, int]:
    """(trimmed column with empty text as missing, number of cells that lost spaces); vectorised in Arrow."""
    arrow = arrow_of(series)
    if clean_edges(arrow):
        return series, 0
    stripped = pa_compute.utf8_trim_whitespace(arrow)
    before, after = pa_compute.binary_length(arrow), pa_compute.binary_length(stripped)
    has_empty = bool(pa_compute.any(pa_compute.equal(after, 0)).as_py())
    # Trimming only removes characters, so equal total lengths mean nothing changed: the common case.
    if pa_compute.sum(before).as_py() == pa_compute.sum(after).as_py() and not has_empty:
        return series, 0
    shorter = pa_compute.and_(pa_compute.not_equal(before, after), pa_compute.greater(after, 0))
    changed = int(pa_compute.sum(shorter).as_py() or 0)
    if has_empty:
        stripped = pa_compute.if_else(pa_compute.equal(after, 0), pa.scalar(None, stripped.type), stripped)
    trimmed = stripped.to_pandas().astype("str").set_axis(series.index).rename(series.name)
    return trimmed, changed


def clean_edges(arrow: pa.Array | pa.ChunkedArray) -> bool:
    """True when certainly no value is empty or starts or ends with a space: the common case, decided from
    the first and last byte of each value (numpy over Arrow's buffers) instead of trimming every value.

    Conservative: any byte below '!' or non-ASCII at either end (it may be a Unicode space) says "not
    certain", and the caller trims for real."""
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    return all(_chunk_has_clean_edges(chunk) for chunk in chunks)


def _chunk_has_clean_edges(chunk: pa.Array) -> bool:
    if len(chunk) == 0:
        return True
    buffers = _text_buffers(chunk)
    if chunk.null_count or buffers is None:
        return False
    offsets, data = buffers
    starts, ends = offsets[:-1], offsets[1:]
    if (ends <= starts).any():
        return False  # an empty value becomes missing
    used = data[offsets[0] : offsets[-1]]
    if used.min() > 0x20 and used.max() < 0x80:
        return True  # no space or non-ASCII byte anywhere: two fast scans instead of two gathers per value
    first, last = data[starts], data[ends - 1]
    return bool(((first > 0x20) & (first < 0x80) & (last > 0x20) & (last < 0x80)).all())


def _text_buffers(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """(offsets of this chunk's values, data bytes) of an Arrow text array, as numpy views; None otherwise."""
    if not (pa.types.is_large_string(chunk.type) or pa.types.is_string(chunk.type)):
        return None
    _, offsets_buffer, data_buffer = chunk.buffers()
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    return offsets, data


def certainly_plain_numbers(chunk: pa.Array) -> bool:
    """True when no value has a comma and none has a dot four characters from its end (which every
    dot-grouped value such as '1.234' has): then no notation needs deciding. Numpy over the buffers."""
    if len(chunk) == 0:
        return True
    buffers = _text_buffers(chunk)
    if buffers is None:
        return False
    offsets, data = buffers
    used = data[offsets[0] : offsets[-1]]  # bytes of null values are included: at worst a needless check
    if (used == ord(",")).any():
        return False
    if not (used == ord(".")).any():
        return True  # whole numbers: two scans of the bytes settle it, no per-value gather needed
    starts, ends = offsets[:-1], offsets[1:]
    long_enough = ends - starts >= 5
    return not (data[ends[long_enough] - 4] == ord(".")).any()


def arrow_of(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The Arrow data behind a text column, without copying when pandas already keeps it in Arrow."""
    if hasattr(series.array, "__arrow_array__"):
        return series.array.__arrow_array__()
    return pa.array(series, from_pandas=True)
