"""Gentle normalisation of a raw frame: template columns only, trimmed text, empty rows dropped, countries,
yes/no words and enum spellings made canonical; every change reported as a warning."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pa_compute

from imvo_submit.validation import parallel, reference
from imvo_submit.validation.readers.arrow_text import arrow_of, trim_text_column
from imvo_submit.validation.readers.common import FALSE_WORDS, TRUE_WORDS, ReadWarning, file_problem, normalise_header
from imvo_submit.validation.readers.numbers import NumberLocales
from imvo_submit.validation.rules import Template


def normalise(
    raw: pd.DataFrame, tpl: Template, warnings: list[ReadWarning], locale_hint: str | None = None
) -> pd.DataFrame:
    """Template columns only, values gently normalised; every change reported in `warnings`."""
    frame = _normalise_columns(raw, tpl, warnings)
    for name in frame.columns:
        frame[name] = _trimmed(frame[name], name, warnings)
    frame = _drop_empty_rows(frame, warnings)
    if frame.empty:
        raise file_problem(
            "no_rows",
            "the file has a header but no data rows; fill in at least one row",
            "het bestand heeft een kopregel maar geen gegevens; vul minstens één regel in",
        )
    number_columns = [c for c in tpl.columns if c.type in ("integer", "number") and c.name in frame]
    locales = NumberLocales(frame, number_columns, locale_hint)
    for col in tpl.columns:
        if col.name not in frame:
            continue
        values = frame[col.name]
        if col.type == "string":
            values = _as_text(values)  # an id typed as a number in Excel (1001) is the text '1001'
        elif col.type == "country":
            values = _normalise_countries(values, col.name, warnings)
        elif col.type == "boolean":
            values = _normalise_booleans(values, col.name, warnings)
        elif col.type == "enum":
            values = _normalise_enum(values, col.name, col.allowed, warnings)
        elif col.type in ("integer", "number"):
            values = locales.apply(values, col.name, col.type, warnings)
        frame[col.name] = values
    return frame


def _normalise_columns(raw: pd.DataFrame, tpl: Template, warnings: list[ReadWarning]) -> pd.DataFrame:
    known = set(tpl.column_names)
    renamed, unknown = {}, []
    for original in raw.columns:
        name = normalise_header(original)
        if name in known:
            renamed[original] = name
            if name != original:
                warnings.append(
                    ReadWarning(
                        "header",
                        f"header '{original}' was read as '{name}'",
                        f"kolomkop '{original}' is gelezen als '{name}'",
                        name,
                    )
                )
        elif (name and not name.startswith("_unnamed_")) or not _is_blank(
            raw[original]
        ).all():  # a blank-headed column matters only with data
            unknown.append(str(original) or f"(column {len(renamed) + len(unknown) + 1} without a header)")
    if unknown:
        listed = ", ".join(f"'{u}'" for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        warnings.append(
            ReadWarning(
                "unknown_column",
                f"columns not in template '{tpl.name}' were ignored: {listed}",
                f"kolommen die niet in sjabloon '{tpl.name}' staan zijn genegeerd: {listed}",
                count=len(unknown),
            )
        )
    if list(renamed) == list(raw.columns) and all(k == v for k, v in renamed.items()):
        return raw  # the common case: the reader's own fresh frame, already as the template names it
    kept = raw[list(renamed)]
    return kept if all(k == v for k, v in renamed.items()) else kept.rename(columns=renamed)


def _is_blank(series: pd.Series) -> pd.Series:
    if series.dtype == object:
        return series.map(lambda v: v is None or _is_nan(v) or (isinstance(v, str) and not v.strip())).astype(bool)
    if pd.api.types.is_string_dtype(series.dtype):
        return (series.isna() | (series.str.strip() == "")).astype(bool)
    return series.isna()


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _drop_empty_rows(frame: pd.DataFrame, warnings: list[ReadWarning]) -> pd.DataFrame:
    """Drop rows whose template cells are all empty (values are trimmed already)."""
    if frame.columns.empty:
        return frame.iloc[0:0]
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        count = int(blank.sum())
        warnings.append(
            ReadWarning(
                "empty_rows",
                f"{count} empty rows were skipped",
                f"{count} lege regels zijn overgeslagen",
                None,
                count,
            )
        )
        frame = frame.loc[~blank]
    return frame


def _trimmed(series: pd.Series, name: str, warnings: list[ReadWarning]) -> pd.Series:
    """Trim text, turn empty text into missing; raw numbers and booleans (Excel, Parquet) pass unchanged."""
    if series.dtype == object:
        trimmed = series.map(_trim_value)
        changed = int(series.map(lambda v: isinstance(v, str) and v.strip() != v and bool(v.strip())).sum())
    elif pd.api.types.is_string_dtype(series.dtype):
        trimmed, changed = trim_text_column(series)
    else:
        return series
    if changed:
        _warn(
            warnings,
            "trimmed",
            name,
            changed,
            "spaces around values were removed",
            "spaties rond waarden zijn verwijderd",
        )
    return trimmed


def _trim_value(value: Any) -> Any:
    if value is None or _is_nan(value):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    return value


def _warn(warnings: list[ReadWarning], code: str, column: str, count: int, en: str, nl: str) -> None:
    warnings.append(
        ReadWarning(code, f"{column}: {en} ({count} cells)", f"{column}: {nl} ({count} cellen)", column, count)
    )


def _as_text(series: pd.Series) -> pd.Series:
    """Text form of each value; whole floats from Excel (123.0) become '123'."""
    if series.dtype == "str":
        return series  # already text with missing values as missing (the conversion below gives it unchanged)
    if series.dtype != object:
        return series.astype("str").where(series.notna(), None)

    def text(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return series.map(text).astype("str").where(series.notna(), None)


def _apply_mapping(
    series: pd.Series, mapping: dict[str, str], warnings: list[ReadWarning], column: str, en: str, nl: str
) -> pd.Series:
    """Replace values by `mapping` (only keys that change) and report the count and an example."""
    changes = {k: v for k, v in mapping.items() if k != v}
    if not changes:
        return series
    hit = series.isin(list(changes))
    count = int(hit.sum())
    example_from, example_to = sorted(changes.items())[0]
    warnings.append(
        ReadWarning(
            f"normalised_{column}",
            f"{column}: {en} ({count} cells, e.g. '{example_from}' -> '{example_to}')",
            f"{column}: {nl} ({count} cellen, bijv. '{example_from}' -> '{example_to}')",
            column,
            count,
        )
    )
    return series.where(~hit, series.map(changes))


def _distinct_text(text: pd.Series) -> list[Any]:
    """The column's distinct present values in order of first appearance (as `dropna().unique()`); an Arrow
    column is hashed in row parts on the thread pool."""
    arrow = arrow_of(text) if pd.api.types.is_string_dtype(text.dtype) and text.dtype != object else None
    if arrow is None or not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        return list(text.dropna().unique())
    parts = parallel.map_rows(pa_compute.unique, arrow)
    return list(dict.fromkeys(v for part in parts for v in part.to_pylist() if v is not None))


def _normalise_countries(series: pd.Series, column: str, warnings: list[ReadWarning]) -> pd.Series:
    text = _as_text(series)
    codes = reference.country_codes()
    mapping = {}
    for value in _distinct_text(text):
        if value not in codes:
            found = reference.normalise_country(value)
            if found:
                mapping[value] = found
    return _apply_mapping(
        text,
        mapping,
        warnings,
        column,
        "country names and codes were changed to two-letter codes",
        "landnamen en -codes zijn omgezet naar tweeletterige codes",
    )


def _normalise_booleans(series: pd.Series, column: str, warnings: list[ReadWarning]) -> pd.Series:
    if series.dtype == bool or str(series.dtype) == "boolean":
        return series
    # Excel TRUE/FALSE cells arrive as booleans: certain, so turned into text without a warning.
    if series.dtype == object:
        series = series.map(lambda v: ("true" if v else "false") if isinstance(v, bool | np.bool_) else v)
    text = _as_text(series)
    mapping = {}
    for value in _distinct_text(text):
        word = value.strip().casefold()
        if word in TRUE_WORDS:
            mapping[value] = "true"
        elif word in FALSE_WORDS:
            mapping[value] = "false"
    return _apply_mapping(
        text,
        mapping,
        warnings,
        column,
        "yes/no words were read as true/false",
        "ja/nee-woorden zijn gelezen als true/false",
    )


def enum_key(value: str) -> str:
    return re.sub(r"[\s\-_]+", "_", value.strip().casefold())


def _normalise_enum(series: pd.Series, column: str, allowed: tuple[str, ...], warnings: list[ReadWarning]):
    text = _as_text(series)
    keys = {enum_key(a): a for a in allowed}
    if len(keys) != len(allowed):  # two allowed values differ only in case or separators: not certain
        keys = {a.casefold(): a for a in allowed}
    mapping = {}
    allowed_set = set(allowed)
    for value in _distinct_text(text):
        if value not in allowed_set:
            found = keys.get(enum_key(value)) or keys.get(value.casefold())
            if found:
                mapping[value] = found
    return _apply_mapping(
        text,
        mapping,
        warnings,
        column,
        "values were matched to the allowed spelling",
        "waarden zijn omgezet naar de toegestane schrijfwijze",
    )
