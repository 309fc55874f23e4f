"""Compile a Template into a pandera DataFrameSchema that checks an already typed frame.

Types are converted before pandera runs (aggregator.validation.validate), so each cell that is not a number,
a boolean or a date is reported once with its original text and row; pandera then checks what the typed
values mean: required values, allowed values, ranges, patterns, uniqueness and cross-column checks. Every
check's name is the rule code that the report uses, so failure cases translate without guessing.
"""

from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pa_compute
import pyarrow.types as pa_types

from aggregator.validation import reference
from aggregator.validation.rules import Column, CrossCheck, Range, Template

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


def build_schema(template: Template) -> pa.DataFrameSchema:
    """The pandera schema for a typed frame of `template` (cached per template object)."""
    cached = _CACHE.get(id(template))
    if cached is None or cached[0] is not template:
        if len(_CACHE) >= 64:
            _CACHE.clear()
        cached = _CACHE[id(template)] = (template, _build(template))
    return cached[1]


# Templates hold lists, so they are not hashable; cache by identity and keep the template alive with it.
_CACHE: dict[int, tuple[Template, pa.DataFrameSchema]] = {}


def _build(template: Template) -> pa.DataFrameSchema:
    columns = {col.name: _column(col) for col in template.columns}
    checks = [_unique_check(keys) for keys in template.unique]
    checks += [_cross_check(check) for check in template.checks]
    return pa.DataFrameSchema(columns, checks=checks, coerce=False, strict=False, name=template.name)


def _column(col: Column) -> pa.Column:
    return pa.Column(DTYPES[col.type], checks=_value_checks(col), nullable=not col.required, required=True)


def _value_checks(col: Column) -> list[pa.Check]:
    if col.type == "enum":
        return [pa.Check(_isin(frozenset(col.allowed)), name="enum", ignore_na=True)]
    if col.type == "country":
        return [pa.Check(_isin(reference.country_codes()), name="country", ignore_na=True)]
    if col.range is not None:
        return [pa.Check(_in_range(col.range), name="range", ignore_na=True)]
    if col.pattern is not None:
        return [pa.Check(_fullmatch(col.pattern), name="pattern", ignore_na=True)]
    return []


def _isin(allowed: frozenset[str]):
    values = sorted(allowed)
    return lambda s: s.isin(values)


def _in_range(r: Range):
    def check(s: pd.Series) -> pd.Series:
        ok = pd.Series(True, index=s.index)
        if r.min is not None:
            ok &= (s >= r.min) if r.min_inclusive else (s > r.min)
        if r.max is not None:
            ok &= (s <= r.max) if r.max_inclusive else (s < r.max)
        return ok

    return check


def _fullmatch(pattern: str):
    compiled = re.compile(pattern)
    anchored = f"^(?:{pattern})$"

    def check(s: pd.Series) -> pd.Series:
        fast = _fullmatch_ascii(s, anchored)
        return fast if fast is not None else s.str.fullmatch(compiled.pattern).fillna(False).astype(bool)

    return check


def _fullmatch_ascii(s: pd.Series, anchored: str) -> pd.Series | None:
    """Arrow's RE2 on an all-ASCII text column (several times faster than pandas' route); None when the
    column is not Arrow text, has non-ASCII text (where RE2 and Python differ on \\w and the like) or the
    pattern uses syntax RE2 lacks: the caller then uses Python's regular expressions."""
    arrow = s.array.__arrow_array__() if hasattr(s.array, "__arrow_array__") else None
    if arrow is None or not (pa_types.is_string(arrow.type) or pa_types.is_large_string(arrow.type)):
        return None
    try:
        if not pa_compute.all(pa_compute.string_is_ascii(arrow)).as_py():
            return None
        matched = pa_compute.match_substring_regex(arrow, anchored)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError):
        return None
    # missing values are skipped by pandera (ignore_na); filling them keeps the mask boolean
    values = matched.to_numpy(zero_copy_only=False)
    return pd.Series(values, index=s.index).fillna(False).astype(bool)


def _unique_check(keys: list[str]) -> pa.Check:
    def check(frame: pd.DataFrame) -> pd.Series:
        if len(keys) == 1 and _no_duplicates(frame[keys[0]]):  # fast path for the common, valid case
            return pd.Series(True, index=frame.index)
        # Rows with a missing key value are reported as missing, not as duplicates.
        complete = frame[keys].notna().all(axis=1)
        duplicated = frame[keys].duplicated(keep=False) & complete
        return ~duplicated

    return pa.Check(check, name=UNIQUE_PREFIX + ",".join(keys))


def _no_duplicates(values: pd.Series) -> bool:
    """True when no value occurs twice, missing values aside (dropna copies: skip it when nothing is missing)."""
    return values.is_unique if not values.hasnans else values.dropna().is_unique


def _cross_check(cross: CrossCheck) -> pa.Check:
    left, right = cross.left, cross.right
    if cross.kind == "implies":

        def check(frame: pd.DataFrame) -> pd.Series:
            violated = frame[left].fillna(False).astype(bool) & ~frame[right].fillna(True).astype(bool)
            return ~violated

    else:  # not_greater; the rules loader only lets registered kinds through

        def check(frame: pd.DataFrame) -> pd.Series:
            return ~(frame[left] > frame[right]).fillna(False).astype(bool)

    return pa.Check(check, name=CROSS_PREFIX + cross.name)
