"""Cell keys: the text form reads back to the same key, keys order by their text, and only valid text parses."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.cellkey import (
    CellKey,
    Coordinate,
    DimensionCoordinates,
    HelperRole,
    InvalidCellKey,
    Quantity,
    ViewKind,
)
from imvo_submit.periods import PeriodMode

ROOT = Path(__file__).resolve().parents[1]
LOCATIONS = Quantity("production_locations", "count")

identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
codes = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6)
quantities = st.builds(
    Quantity,
    identifiers,
    st.sampled_from(["count", "companies[group]", "sum(weight_kg)", "sum(wage*workers)"]),
    st.one_of(st.just("-"), st.text(min_size=1, max_size=8)),
    st.sampled_from(list(PeriodMode)),
)
coordinates = st.builds(Coordinate, identifiers, codes, st.one_of(st.none(), identifiers))


@st.composite
def keys(draw) -> CellKey:
    coords = draw(st.lists(coordinates, max_size=3, unique_by=lambda c: c.column))
    key = CellKey(draw(quantities), coords)
    if draw(st.booleans()):
        role = draw(st.sampled_from(list(HelperRole)))
        part = draw(st.integers(0, 40)) if role is HelperRole.GAP else None
        key = key.helper_cell(draw(identifiers), draw(st.integers(0, 999)), role, part)
    if draw(st.booleans()):
        kind = draw(st.sampled_from(list(ViewKind)))
        source = (
            "2025-03"
            if kind is ViewKind.CURRENT
            else draw(st.from_regex(r"[a-z]{1,6}-2025-0[1-9]-r[1-9]", fullmatch=True))
        )
        key = key.in_view(kind, source)
    return key


@given(keys())
def test_text_reads_back_to_the_same_key(key: CellKey) -> None:
    parsed = CellKey.parse(str(key))
    assert parsed == key
    assert (parsed.quantity, parsed.coordinates, parsed.helper, parsed.view) == (
        key.quantity,
        key.coordinates,
        key.helper,
        key.view,
    )


@given(st.lists(keys(), min_size=2, max_size=6))
def test_keys_order_by_their_text(many: list[CellKey]) -> None:
    assert [str(k) for k in sorted(many)] == sorted(str(k) for k in many)


def test_text_form_of_table_cells_and_helpers() -> None:
    bd = CellKey(LOCATIONS, [Coordinate("facility_type", "laundry"), Coordinate("country", "BD")])
    assert str(bd) == "production_locations|count|-|country=BD|facility_type=laundry"
    asia = CellKey(LOCATIONS, [Coordinate("country", "142", "m49")])
    assert str(asia) == "production_locations|count|-|country=m49:142"
    total = CellKey(LOCATIONS)
    assert str(total) == "production_locations|count|-|"
    assert (
        str(total.helper_cell("locations", 3, HelperRole.GAP, 1)) == "production_locations|count|-||~locations:3:gap1"
    )
    ytd = bd.with_periods(PeriodMode.YEAR_TO_DATE)
    assert str(ytd) == "production_locations|count|-@year_to_date|country=BD|facility_type=laundry"
    assert ytd.base == bd


def test_two_tables_never_share_a_helper_cell() -> None:
    total = CellKey(Quantity("risk_assessment", "companies[group]"))
    first = total.helper_cell("risks_by_country", 0, HelperRole.SUM)
    second = total.helper_cell("risks_by_theme", 0, HelperRole.SUM)
    assert first != second and first.is_helper and not total.is_helper


def test_codes_with_grammar_characters_are_escaped() -> None:
    odd = CellKey(LOCATIONS, [Coordinate("facility", "a|b:c%d")])
    assert str(odd) == "production_locations|count|-|facility=a%7Cb%3Ac%25d"
    assert CellKey.parse(str(odd)).coordinates[0].code == "a|b:c%d"


def test_views_are_spelled_out_in_messages() -> None:
    cotton = CellKey(Quantity("materials", "sum(weight_kg)"), [Coordinate("material", "cotton")])
    change = cotton.in_view(ViewKind.CHANGE, "textile-2025-01-committee-r1")
    assert str(change) == "~textile-2025-01-committee-r1:change:materials|sum(weight_kg)|-|material=cotton"
    assert change.describe() == f"{cotton} [its change since release textile-2025-01-committee-r1]"
    assert change.base == cotton


def test_keys_written_before_helpers_named_their_table_still_read() -> None:
    old = CellKey.parse("risk_assessment|companies[group]|-||~4:gap2")
    assert old.is_gap and old.helper.relation == 4 and old.helper.part == 2 and old.helper.table_id == ""
    assert str(old) == "risk_assessment|companies[group]|-||~4:gap2"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "production_locations|count",
        "production_locations|count|-|=BD",
        "production_locations|count|-|facility_type=x|country=BD",  # dimensions out of order
        "production_locations|count|-|country=BD|~x:1:gap",  # a gap without its part
        "production_locations|count|-@weekly|",
        "~oops|production_locations|count|-|",
    ],
)
def test_malformed_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidCellKey):
        CellKey.parse(text)


def test_table_cells_match_one_by_one_construction() -> None:
    country = DimensionCoordinates.of("country", ["_T", "142", "BD", "IN"], "m49", frozenset({"142"}))
    kind = DimensionCoordinates.of("facility_type", ["_T", "laundry"], None, frozenset())
    nodes = np.array([[0, 0], [1, 0], [2, 1], [3, 0], [0, 1]])
    built = CellKey.table_cells(LOCATIONS, [country, kind], nodes)
    one_by_one = [
        CellKey(LOCATIONS, [c for c in (country.coordinates[a], kind.coordinates[b]) if c is not None])
        for a, b in nodes
    ]
    assert built == one_by_one
    assert [str(k) for k in built] == [str(k) for k in one_by_one]


def test_no_key_text_is_taken_apart_outside_the_parser() -> None:
    """Only aggregator/cellkey.py splits or matches a key's text: elsewhere keys are values."""
    grammar = ("|~", "~other|", ":change:", ":current:")
    offenders = []
    for path in sorted((ROOT / "aggregator").rglob("*.py")):
        if path.name == "cellkey.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if any(mark in node.value for mark in grammar):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("split", "rsplit", "partition"):
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                if "|" in args:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} splits on '|'")
    assert not offenders, "\n".join(offenders)
