"""The built-in UN M49 hierarchy: country -> sub-region -> region."""

from __future__ import annotations

import csv
from typing import Any

from aggregator.protocol.model import Hierarchy, Text
from imvo_submit.validation.rules import RULES_DIR

# ------------------------------------------------------------------------------------------------ m49


def m49_hierarchy() -> Hierarchy:
    """Country (alpha-2) -> UN M49 sub-region -> region; the total is the world."""
    from imvo_submit.validation.reference import country_name, m49

    parent: dict[str, str] = {}
    labels: dict[str, Text] = {}
    dutch = _m49_dutch_names()
    for row in m49().itertuples(index=False):
        sub, region = _code(row.subregion_code), _code(row.region_code)
        labels[row.alpha2] = Text(country_name(row.alpha2, "en"), country_name(row.alpha2, "nl"))
        labels[sub] = Text(row.subregion, dutch.get(row.subregion, row.subregion))
        labels[region] = Text(row.region, dutch.get(row.region, row.region))
        parent[row.alpha2] = sub
        if sub != region:  # Antarctica's placeholder 999 is both its sub-region and its region
            parent[sub] = region
    return Hierarchy("m49", parent, labels)


def _m49_dutch_names() -> dict[str, str]:
    """Dutch names of the M49 regions and sub-regions (rules/reference/m49_names_nl.csv)."""
    path = RULES_DIR / "reference" / "m49_names_nl.csv"
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["name_en"]: row["name_nl"] for row in csv.DictReader(handle)}


def _code(value: Any) -> str:
    if value is None or value != value:  # None or NaN
        return ""
    text = str(value).strip()
    return text.zfill(3) if text.isdigit() else text
