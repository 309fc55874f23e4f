"""Compile a Template into a pandera DataFrameSchema that checks an already typed frame.

Types are converted before pandera runs (imvo_submit.validation.validate), so each cell that is not a number,
a boolean or a date is reported once with its original text and row; pandera then checks what the typed
values mean: required values, allowed values, ranges, patterns, uniqueness and cross-column checks. Every
check's name is the rule code that the report uses, so failure cases translate without guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pa_compute
import pyarrow.types as pa_types

from imvo_submit.validation import parallel, reference
from imvo_submit.validation.rules import Column, CrossCheck, Range, Template

DTYPES = {
    "string": "str",
    "country": "str",
    "enum": "str",
    "integer": "Int64",
    "number": "float64",
    "boolean": "boolean",
    "date": "datetime64[us]",
}
UNIQUE_PREFIX = "unique:"
CROSS_PREFIX = "cross:"


def build_schema(template: Template, within: str | None = None) -> pa.DataFrameSchema:
    """The pandera schema for a typed frame of `template` (cached per template object).

    `within` names an extra column that splits the frame into files checked together (validate_many): a
    unique key then need only be unique within each file, as it is when each file is checked alone."""
    cached = _CACHE.get((id(template), within))
    if cached is None or cached[0] is not template:
        if len(_CACHE) >= 64:
            _CACHE.clear()
        cached = _CACHE[(id(template), within)] = (template, _build(template, within))
    return cached[1]


# Templates hold lists, so they are not hashable; cache by identity and keep the template alive with it.
_CACHE: dict[tuple[int, str | None], tuple[Template, pa.DataFrameSchema]] = {}


def _build(template: Template, within: str | None) -> pa.DataFrameSchema:
    columns = {col.name: _column(col) for col in template.columns}
    checks = [_unique_check(keys, within) for keys in template.unique]
    checks += [_cross_check(check) for check in template.checks]
    return pa.DataFrameSchema(columns, checks=checks, coerce=False, strict=False, name=template.name)


def _column(col: Column) -> pa.Column:
    return pa.Column(DTYPES[col.type], checks=_value_checks(col), nullable=not col.required, required=True)


def _value_checks(col: Column) -> list[pa.Check]:
    if col.type == "enum":
        return [pa.Check(_passes_whole(_isin(frozenset(col.allowed))), name="enum", ignore_na=True)]
    if col.type == "country":
        return [pa.Check(_passes_whole(_isin(reference.country_codes())), name="country", ignore_na=True)]
    if col.range is not None:
        return [pa.Check(_passes_whole(_in_range(col.range)), name="range", ignore_na=True)]
    if col.pattern is not None:
        return [pa.Check(_passes_whole(fullmatch(col.pattern)), name="pattern", ignore_na=True)]
    return []


def _passes_whole(check: Callable[[Any], pd.Series]) -> Callable[[Any], pd.Series | bool]:
    """The check's mask when some value fails, plain True when every value passes.

    pandera post-processes a mask per check (for whole-row checks it ORs in `frame.isna().all(axis=1)` over
    the whole frame) only to find no failure case; a scalar True means the same and skips that work. A failing
    check still returns its mask, so failure cases and their rows are exactly as before."""

    def passes_whole(data: Any) -> pd.Series | bool:
        mask = check(data)
        return True if bool(mask.all()) else mask

    return passes_whole


def _isin(allowed: frozenset[str]):
    values = sorted(allowed)
    value_set = pyarrow.array(values, pyarrow.large_string())

    def check(s: pd.Series) -> pd.Series:
        arrow = _arrow_text(s)
        if arrow is None:
            return s.isin(values)
        # Arrow's is_in on row ranges in parallel; pandas' isin does the same single-threaded.
        typed_set = value_set.cast(arrow.type)  # Arrow's is_in wants the column's own text type
        parts = parallel.map_rows(lambda part: pa_compute.is_in(part, value_set=typed_set), arrow)
        return pd.Series(_bool_numpy(parts), index=s.index)

    return check


def _arrow_text(s: pd.Series) -> pyarrow.Array | pyarrow.ChunkedArray | None:
    """The Arrow text array behind a str column (no copy), or None when the column is not Arrow text."""
    arrow = s.array.__arrow_array__() if hasattr(s.array, "__arrow_array__") else None
    if arrow is None or not (pa_types.is_string(arrow.type) or pa_types.is_large_string(arrow.type)):
        return None
    return arrow


def _bool_numpy(parts: list[pyarrow.Array | pyarrow.ChunkedArray]) -> np.ndarray:
    """Arrow boolean results of the row parts as one numpy mask; a missing result counts as False."""
    masks = [pa_compute.fill_null(part, False).to_numpy(zero_copy_only=False) for part in parts]
    return np.concatenate(masks).astype(bool, copy=False) if masks else np.zeros(0, dtype=bool)


def _in_range(r: Range):
    def check(s: pd.Series) -> pd.Series:
        ok = pd.Series(True, index=s.index)
        if r.min is not None:
            ok &= (s >= r.min) if r.min_inclusive else (s > r.min)
        if r.max is not None:
            ok &= (s <= r.max) if r.max_inclusive else (s < r.max)
        return ok

    return check


def fullmatch(pattern: str):
    compiled = re.compile(pattern)
    anchored = f"^(?:{pattern})$"

    def check(s: pd.Series) -> pd.Series:
        fast = _fullmatch_arrow(s, anchored, compiled)
        return fast if fast is not None else s.str.fullmatch(compiled.pattern).fillna(False).astype(bool)

    return check


def _fullmatch_arrow(s: pd.Series, anchored: str, compiled: re.Pattern[str]) -> pd.Series | None:
    """Arrow's RE2 on the ASCII values of a text column (several times faster than pandas' route), Python's
    regular expressions on the others (where RE2 and Python differ on \\w and the like: real names such as
    'Têxteis Barcelos' must not send the whole column down the slow route). None when the column is not Arrow
    text or the pattern uses syntax RE2 lacks: the caller then uses Python's regular expressions throughout."""
    arrow = _arrow_text(s)
    if arrow is None:
        return None

    def matches(part: pyarrow.Array | pyarrow.ChunkedArray) -> np.ndarray:
        mask = _bool_numpy([pa_compute.match_substring_regex(part, anchored)])
        ascii_values = _bool_numpy([pa_compute.string_is_ascii(part)])
        others = np.flatnonzero(~ascii_values & ~_bool_numpy([pa_compute.is_null(part)]))
        if len(others):
            texts = part.take(pyarrow.array(others)).to_pylist()
            mask[others] = [compiled.fullmatch(text) is not None for text in texts]
        return mask

    try:
        parts = parallel.map_rows(matches, arrow)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError):
        return None
    # missing values are skipped by pandera (ignore_na); counting them as False keeps the mask boolean
    return pd.Series(np.concatenate(parts) if parts else np.zeros(0, dtype=bool), index=s.index)


@contextmanager
def uniqueness_in_background(frame: pd.DataFrame, template: Template) -> Iterator[None]:
    """While the block validates `frame`, decide its single-column uniqueness checks on a background thread.

    The uniqueness test is numpy work that mostly holds the GIL, the column checks before it are Arrow kernels
    that release it: run side by side they cost the time of the longer one. The unique check then only
    collects the verdict (and computes it itself for any other frame, or outside this block)."""
    verdicts = {
        keys[0]: parallel.in_background(no_duplicates, frame[keys[0]])
        for keys in template.unique
        if len(keys) == 1 and keys[0] in frame.columns
    }
    token = _PREFETCHED.set((frame, verdicts))
    try:
        yield
    finally:
        _PREFETCHED.reset(token)
        for verdict in verdicts.values():
            verdict.cancel()  # an unread verdict (the block failed early) is not worth finishing


# (frame, {column: future verdict of no_duplicates}) for the validation running in this context
_PREFETCHED: ContextVar[tuple[pd.DataFrame, dict[str, Future[bool]]] | None] = ContextVar(
    "imvo_prefetched_uniqueness", default=None
)


def _without_duplicates(frame: pd.DataFrame, key: str) -> bool:
    """no_duplicates(frame[key]), taken from uniqueness_in_background when it is computing it for this frame."""
    prefetched = _PREFETCHED.get()
    if prefetched is not None and prefetched[0] is frame and key in prefetched[1]:
        return prefetched[1][key].result()
    return no_duplicates(frame[key])


def _unique_check(keys: list[str], within: str | None = None) -> pa.Check:
    def check(frame: pd.DataFrame) -> pd.Series:
        if len(keys) == 1 and within is None and _without_duplicates(frame, keys[0]):  # the common, valid case
            return pd.Series(True, index=frame.index)  # _passes_whole turns this into a plain True
        # Rows with a missing key value are reported as missing, not as duplicates.
        complete = frame[keys].notna().all(axis=1)
        duplicated = frame[[within, *keys] if within else keys].duplicated(keep=False) & complete
        return ~duplicated

    return pa.Check(_passes_whole(check), name=UNIQUE_PREFIX + ",".join(keys))


def no_duplicates(values: pd.Series) -> bool:
    """True when no value occurs twice, missing values aside (dropna copies: skip it when nothing is missing)."""
    if distinct_fingerprints(values):
        return True
    return values.is_unique if not values.hasnans else values.dropna().is_unique


_FINGERPRINT_MAX_BYTES = 64  # longer values would need many passes; the exact check is cheaper then
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)


def distinct_fingerprints(values: pd.Series) -> bool:
    """True when the 64-bit fingerprints of the present text values are all distinct, so the values are.

    A sufficient test, never a verdict of "duplicate": equal values always get equal fingerprints, so distinct
    fingerprints prove distinct values, while a shared fingerprint (a real duplicate or, rarely, a collision)
    returns False and the caller does the exact check. Hashing whole 8-byte words of Arrow's buffers in numpy
    and sorting the integers costs about a third of Arrow's exact string hash table on 1M short ids.
    """
    arrow = _arrow_text(values)
    if arrow is None:
        return False
    # Chunk by chunk: the CSV reader's chunks fit in the CPU cache, a whole 1M column does not (2.5x slower).
    # Row parts on threads gained nothing when measured; uniqueness_in_background overlaps it instead.
    parts = [_fingerprints([chunk]) for chunk in parallel.chunks_of(arrow)]
    if any(part is None for part in parts):
        return False
    ordered = np.sort(np.concatenate(parts)) if parts else np.empty(0, np.uint64)  # SIMD sort: ~4x a hash set
    return not (ordered[1:] == ordered[:-1]).any()


def _fingerprints(chunks: list[pyarrow.Array]) -> np.ndarray | None:
    """One uint64 per present value of `chunks` (missing values left out), in order; None when some value is
    too long to fingerprint cheaply."""
    pieces = [_text_bytes(chunk.drop_null() if chunk.null_count else chunk) for chunk in chunks]
    lengths = np.concatenate([length for length, _ in pieces]) if pieces else np.empty(0, np.int64)
    if len(lengths) == 0:
        return np.empty(0, np.uint64)
    if int(lengths.max()) > _FINGERPRINT_MAX_BYTES:
        return None
    # One copy of all values' bytes, followed by eight zero bytes so every 8-byte load stays inside.
    padded = np.concatenate([data for _, data in pieces] + [np.zeros(8, dtype=np.uint8)])
    # words[i] is the little-endian 8-byte word starting at byte i (overlapping, unaligned views, no copy)
    words = np.lib.stride_tricks.as_strided(padded, shape=(len(padded) - 7, 8), strides=(1, 1)).view("<u8")[:, 0]
    starts = np.concatenate([[0], np.cumsum(lengths[:-1])])
    fingerprint = lengths.astype(np.uint64)
    shortest, last_word = int(lengths.min()), len(words) - 1
    for at in range(0, int(lengths.max()), 8):
        # A value mixes in exactly its own words, however long the other values are, so equal values always
        # fingerprint equally; reads past a short value's end are clipped, then ignored.
        word = words[np.minimum(starts + at, last_word)]
        if shortest - at < 8:
            word &= _LOW_BYTES[np.clip(lengths - at, 0, 8)]  # bytes past a value's end belong to the next
        mixed = (fingerprint ^ word) * _MULTIPLIER
        mixed ^= mixed >> np.uint64(29)
        fingerprint = mixed if shortest > at else np.where(lengths > at, mixed, fingerprint)
    return fingerprint


def _text_bytes(chunk: pyarrow.Array) -> tuple[np.ndarray, np.ndarray]:
    """(value lengths, the values' bytes back to back) of an Arrow text array without missing values."""
    if len(chunk) == 0:
        return np.empty(0, np.int64), np.empty(0, np.uint8)
    _, offsets_buffer, data_buffer = chunk.buffers()
    offset_type = np.int64 if pa_types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    return np.diff(offsets).astype(np.int64), data[int(offsets[0]) : int(offsets[-1])]


def _cross_check(cross: CrossCheck) -> pa.Check:
    left, right = cross.left, cross.right
    if cross.kind == "implies":

        def check(frame: pd.DataFrame) -> pd.Series:
            violated = frame[left].fillna(False).astype(bool) & ~frame[right].fillna(True).astype(bool)
            return ~violated

    else:  # not_greater; the rules loader only lets registered kinds through

        def check(frame: pd.DataFrame) -> pd.Series:
            return ~(frame[left] > frame[right]).fillna(False).astype(bool)

    return pa.Check(_passes_whole(check), name=CROSS_PREFIX + cross.name)
