"""Number notation: whether a column uses Dutch (1.234,5) or English (1,234.5) notation, and the values
that could be read either way (reported as ambiguous)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pa_compute

from imvo_submit.validation.readers.arrow_text import arrow_of, certainly_plain_numbers
from imvo_submit.validation.readers.common import ReadWarning

_SIGN = r"^[+-]?"
_NUMBER_FORMS = {
    "dot_decimal": _SIGN + r"\d*\.\d+$",
    "comma_decimal": _SIGN + r"\d*,\d+$",
    "dot_groups": _SIGN + r"\d{1,3}(?:\.\d{3})+$",
    "comma_groups": _SIGN + r"\d{1,3}(?:,\d{3})+$",
    "dutch_full": _SIGN + r"\d{1,3}(?:\.\d{3})+,\d+$",
    "english_full": _SIGN + r"\d{1,3}(?:,\d{3})+\.\d+$",
}


@dataclass
class _Evidence:
    """Which values of one column are certainly Dutch, certainly English, or could be either."""

    dutch: pd.Series
    english: pd.Series
    ambiguous: pd.Series

    @property
    def locale(self) -> str | None:
        nl, en = bool(self.dutch.any()), bool(self.english.any())
        return "mixed" if nl and en else "nl" if nl else "en" if en else None


def _evidence(text: pd.Series, integer: bool) -> _Evidence:
    form = {name: text.str.fullmatch(pattern).fillna(False).astype(bool) for name, pattern in _NUMBER_FORMS.items()}
    multi_dot = text.str.count(r"\.").fillna(0) > 1
    multi_comma = text.str.count(",").fillna(0) > 1
    dot_groups, comma_groups = form["dot_groups"], form["comma_groups"]
    if integer:
        # In a whole-number column '1.234' and '1,234' can only be thousands: either reading gives 1234.
        return _Evidence(
            form["comma_decimal"] & ~comma_groups | form["dutch_full"] | dot_groups,
            form["dot_decimal"] & ~dot_groups | form["english_full"] | comma_groups,
            pd.Series(False, index=text.index),
        )
    return _Evidence(
        form["comma_decimal"] & ~comma_groups | form["dutch_full"] | dot_groups & multi_dot,
        form["dot_decimal"] & ~dot_groups | form["english_full"] | comma_groups & multi_comma,
        dot_groups & ~multi_dot | comma_groups & ~multi_comma,
    )


def _needs_decision(text: pd.Series) -> bool:
    """True when some value has a comma or dot-grouped digits ('1.234'): the notation must be decided."""
    arrow = arrow_of(text)
    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    if all(certainly_plain_numbers(chunk) for chunk in chunks):
        return False
    if pa_compute.any(pa_compute.match_substring(arrow, ",")).as_py():
        return True
    if not pa_compute.any(pa_compute.match_substring(arrow, ".")).as_py():
        return False  # a literal search is several times cheaper than the regex: whole numbers skip it
    return bool(pa_compute.any(pa_compute.match_substring_regex(arrow, _NUMBER_FORMS["dot_groups"])).as_py())


def _to_plain(text: pd.Series, locale: str) -> pd.Series:
    if locale == "nl":
        return text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return text.str.replace(",", "", regex=False)


class NumberLocales:
    """Decides per column whether numbers use Dutch (1.234,5) or English (1,234.5) notation.

    A column with only certain Dutch or only certain English values gets that notation. Values that could be
    either ('1.234' in a decimal column) follow their column, else the other number columns of the file,
    else the separator (';' suggests Dutch Excel), else English; the last two are reported as uncertain.
    """

    def __init__(self, frame: pd.DataFrame, columns: list[Any], locale_hint: str | None):
        self.frame = frame
        self.columns = {c.name: c for c in columns}
        self.locale_hint = locale_hint
        self._evidence: dict[str, _Evidence | None] = {}
        self._file_locale: str | None | bool = False  # False: not computed yet

    @staticmethod
    def _text_part(series: pd.Series) -> pd.Series | None:
        if series.dtype == object:
            is_text = series.map(lambda v: isinstance(v, str))
            return series.where(is_text, None).astype("str") if is_text.any() else None
        if pd.api.types.is_string_dtype(series.dtype):
            return series
        return None

    def evidence(self, column: str) -> _Evidence | None:
        """None when the column needs no decision: no commas and no dot-grouped values (the common case)."""
        if column not in self._evidence:
            text = self._text_part(self.frame[column])
            needs = text is not None and _needs_decision(text)
            is_integer = self.columns[column].type == "integer"
            self._evidence[column] = _evidence(text, is_integer) if needs else None
        return self._evidence[column]

    @property
    def file_locale(self) -> str | None:
        """The notation all number columns with certain values agree on, if they do."""
        if self._file_locale is False:
            seen = set()
            for name in self.columns:
                ev = self.evidence(name)
                if ev is not None:
                    seen.add(ev.locale)
                else:
                    text = self._text_part(self.frame[name])
                    if text is not None and text.str.contains(r"\d\.\d", regex=True).fillna(False).any():
                        seen.add("en")
            seen -= {None, "mixed"}
            self._file_locale = seen.pop() if len(seen) == 1 else None
        return self._file_locale  # type: ignore[return-value]

    def apply(self, series: pd.Series, column: str, kind: str, warnings: list[ReadWarning]) -> pd.Series:
        evidence = self.evidence(column)
        if evidence is None:
            return series
        text = self._text_part(series)
        fallback, certain = self._fallback()
        locale = evidence.locale
        if evidence.ambiguous.any() and locale in (None, "mixed"):
            self._warn_ambiguous(evidence, text, column, fallback, certain, warnings)
        if locale == "mixed":
            self._warn_mixed(column, warnings)
        column_locale = fallback if locale in (None, "mixed") else locale
        dutch = evidence.dutch | (evidence.ambiguous & (column_locale == "nl")) if locale == "mixed" else None
        plain = _plain_numbers(text, evidence, column_locale, dutch)
        changed = (plain.ne(text).fillna(False) & text.notna()).astype(bool)
        if changed.any():
            shown = column_locale if locale != "mixed" else "mixed"
            self._warn_changed(column, shown, text, plain, changed, warnings)
        return series.where(~changed, plain)

    def _fallback(self) -> tuple[str, bool]:
        if self.file_locale:
            return self.file_locale, True
        return (self.locale_hint or "en"), False

    def _warn_ambiguous(self, ev, text, column, fallback, certain, warnings) -> None:
        example = text[ev.ambiguous].iloc[0]
        plain = _to_plain(pd.Series([example], dtype="str"), fallback).iloc[0]
        why_en = "as the other number columns of the file" if certain else "uncertain: please check"
        why_nl = "zoals de andere getalkolommen van het bestand" if certain else "onzeker: controleer dit"
        warnings.append(
            ReadWarning(
                "ambiguous_number",
                f"{column}: '{example}' could be read two ways; read as {plain} ({why_en})",
                f"{column}: '{example}' kan op twee manieren gelezen worden; gelezen als {plain} ({why_nl})",
                column,
                int(ev.ambiguous.sum()),
            )
        )

    @staticmethod
    def _warn_mixed(column: str, warnings: list[ReadWarning]) -> None:
        warnings.append(
            ReadWarning(
                "mixed_number_notation",
                f"{column}: mixes Dutch (1.234,5) and English (1,234.5) notation; each value was read by its own form",
                f"{column}: mengt Nederlandse (1.234,5) en Engelse (1,234.5) notatie; elke waarde is apart gelezen",
                column,
            )
        )

    @staticmethod
    def _warn_changed(column, locale, text, plain, changed, warnings) -> None:
        count = int(changed.sum())
        first = changed.to_numpy().nonzero()[0][0]
        example = f"'{text.iloc[first]}' -> {plain.iloc[first]}"
        notation_en = {
            "nl": "Dutch notation (decimal comma)",
            "en": "English notation (thousands commas)",
        }.get(locale, "mixed notation")
        notation_nl = {
            "nl": "Nederlandse notatie (decimale komma)",
            "en": "Engelse notatie (komma voor duizendtallen)",
        }.get(locale, "gemengde notatie")
        warnings.append(
            ReadWarning(
                "number_notation",
                f"{column}: numbers read in {notation_en} ({count} cells, e.g. {example})",
                f"{column}: getallen gelezen in {notation_nl} ({count} cellen, bijv. {example})",
                column,
                count,
            )
        )


def _plain_numbers(text: pd.Series, ev: _Evidence, locale: str, dutch: pd.Series | None) -> pd.Series:
    """Plain '1234.5' text for every value that has a recognised number form; other values unchanged."""
    numeric = ev.dutch | ev.english | ev.ambiguous
    if dutch is None:
        converted = _to_plain(text, locale)
    else:
        converted = _to_plain(text, "en").where(~dutch, _to_plain(text, "nl"))
    return text.where(~numeric, converted)
