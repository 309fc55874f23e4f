"""Display labels of dimensions and codes in the covenant's language (rules/reference/labels.toml)."""

from __future__ import annotations

import functools
import tomllib

from aggregator.protocol.model import TOTAL_CODE, Dimension, Protocol
from imvo_submit.validation.rules import RULES_DIR

LABELS_FILE = RULES_DIR / "reference" / "labels.toml"
TOTAL_LABEL = {"en": "Total", "nl": "Totaal"}


@functools.cache
def _labels() -> dict:
    with open(LABELS_FILE, "rb") as handle:
        return tomllib.load(handle)


def code_label(protocol: Protocol, dimension: Dimension, code: str, language: str) -> str:
    """A code's label: the total, the hierarchy's own label, labels.toml, or the code made readable."""
    if code == TOTAL_CODE:
        return TOTAL_LABEL[language]
    if dimension.hierarchy is not None:
        label = protocol.hierarchy(dimension.hierarchy).labels.get(code)
        if label is not None:
            return label(language)
    label = _labels().get("codes", {}).get(dimension.column, {}).get(code)
    return label[language] if label else code.replace("_", " ")


def dimension_label(column: str, language: str) -> str:
    """A dimension column's heading in the covenant's language."""
    label = _labels().get("columns", {}).get(column)
    return label[language] if label else column.replace("_", " ").capitalize()
