"""Reference data: ISO 3166 country codes (pycountry) and the UN M49 regions (rules/reference/m49.csv).

Aggregation rolls countries up along m49(): country -> sub-region -> region -> world. Antarctica has no M49
region; it sits under the placeholder code 999 "No M49 region" (see rules/reference/README.md).
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pycountry

from imvo_submit.errors import ConfigError

M49_PATH = Path(__file__).resolve().parents[1] / "rules" / "reference" / "m49.csv"
M49_COLUMNS = ["alpha2", "name", "subregion_code", "subregion", "region_code", "region"]


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 code pycountry knows (upper case)."""
    return frozenset(c.alpha_2 for c in pycountry.countries)


def m49() -> pd.DataFrame:
    """One row per country: alpha2, name, subregion_code, subregion, region_code, region (codes as text)."""
    return _m49_table().copy()


@lru_cache(maxsize=1)
def _m49_table() -> pd.DataFrame:
    try:
        table = pd.read_csv(M49_PATH, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise ConfigError(f"cannot read the M49 table {M49_PATH}: {exc}") from exc
    if list(table.columns) != M49_COLUMNS:
        raise ConfigError(f"{M49_PATH}: columns must be {M49_COLUMNS}, not {list(table.columns)}")
    return table.sort_values("alpha2", ignore_index=True)


def country_name(code: str, language: str = "en") -> str:
    """The country's short name in English or Dutch, e.g. 'NL' -> 'Netherlands' / 'Nederland'."""
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    name = getattr(country, "common_name", None) or country.name
    return _dutch().gettext(country.name) if language == "nl" else name


def normalise_country(value: str) -> str | None:
    """The alpha-2 code for a code, alpha-3 code or English/Dutch name (any case); None when unknown.

    Only exact names are accepted (no fuzzy matching), so the mapping is certain.
    """
    return _country_lookup().get(value.strip().casefold())


@lru_cache(maxsize=1)
def _dutch() -> gettext.NullTranslations:
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["nl"], fallback=True)


@lru_cache(maxsize=1)
def _country_lookup() -> dict[str, str]:
    candidates: dict[str, set[str]] = {}
    dutch = _dutch()
    for country in pycountry.countries:
        names = {country.alpha_2, country.alpha_3, country.name, dutch.gettext(country.name)}
        for attr in ("common_name", "official_name"):
            if getattr(country, attr, None):
                names.add(getattr(country, attr))
        for name in names:
            candidates.setdefault(name.casefold(), set()).add(country.alpha_2)
    for alias, code in _ALIASES.items():
        candidates.setdefault(alias, set()).add(code)
    # A spelling that could mean two countries is not certain: leave it for the company to fix.
    return {key: next(iter(codes)) for key, codes in candidates.items() if len(codes) == 1}


# Everyday English names that ISO 3166 spells differently; each names one country without doubt.
_ALIASES = {
    "turkey": "TR",
    "uk": "GB",
    "great britain": "GB",
    "usa": "US",
    "russia": "RU",
    "laos": "LA",
    "iran": "IR",
    "syria": "SY",
    "moldova": "MD",
    "tanzania": "TZ",
    "ivory coast": "CI",
    "north korea": "KP",
    "czech republic": "CZ",
    "holland": "NL",
}
