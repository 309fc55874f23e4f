"""Published ranges of hidden ratio cells: derived from the printed ratios alone, and always holding the truth.

A parent's ratio is its children's ratios averaged with their denominators as weights, which the reader does
not see. The ranges the release prints must follow from that and from the printed (rounded) ratios only: the
property test builds random weighted trees, hides random cells, and checks that every printed range holds the
hidden cell's true ratio.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.release.model import ReleasedCell, ReleasedTable
from aggregator.release.ratio_ranges import with_ratio_ranges

TOTAL = "_T"
PARENTS = {"NL": "EU", "BE": "EU", "DE": "EU", "BD": "AS", "CN": "AS"}  # EU and AS hang under the total


def parent_of(dimension: int, code: str) -> str | None:
    return None if code == TOTAL else PARENTS.get(code, TOTAL)


def table(values: dict[str, float | None], decimals: int = 1) -> ReleasedTable:
    """A 1-D ratio table over the tree above; None hides a cell (its true value is then 1.0, unused)."""
    depth = {TOTAL: 0, "EU": 1, "AS": 1}
    cells = [
        ReleasedCell((code,), (code,), (depth.get(code, 2),), value, "published" if value is not None else "secondary")
        for code, value in values.items()
    ]
    return ReleasedTable("r", "R", "%", ("country",), ("Country",), "ratio", cells, "", decimals)


def ranges(result: ReleasedTable) -> dict[str, tuple[float | None, float | None]]:
    return {c.codes[0]: (c.range_lo, c.range_hi) for c in result.cells if c.suppressed}


def test_a_hidden_parent_lies_between_its_printed_children():
    shown = with_ratio_ranges(table({TOTAL: 55.0, "EU": None, "NL": 40.0, "BE": 60.0, "DE": 52.34}), parent_of, True)
    assert ranges(shown) == {"EU": (39.9, 60.1)}  # 40.0 - 0.05 and 60.0 + 0.05, rounded outward


def test_the_only_hidden_child_of_a_printed_parent_lies_beyond_it_when_the_siblings_are_all_on_one_side():
    above = with_ratio_ranges(table({TOTAL: 70.0, "EU": 50.0, "AS": None}), parent_of, True)
    assert ranges(above) == {"AS": (69.9, None)}  # it pulls the average above 50: at least the total
    below = with_ratio_ranges(table({TOTAL: 30.0, "EU": 50.0, "AS": None}), parent_of, True)
    assert ranges(below) == {"AS": (0.0, 30.1)}  # ratios of non-negative parts are at least 0
    unknown_sign = with_ratio_ranges(table({TOTAL: 30.0, "EU": 50.0, "AS": None}), parent_of, False)
    assert ranges(unknown_sign) == {"AS": (None, 30.1)}


def test_nothing_is_derived_where_another_hidden_cell_could_move_the_average():
    both = with_ratio_ranges(table({TOTAL: 70.0, "EU": None, "AS": None}), parent_of, True)
    assert ranges(both) == {"EU": (None, None), "AS": (None, None)}
    level = with_ratio_ranges(table({TOTAL: 45.0, "EU": 45.0, "AS": None}), parent_of, True)
    assert ranges(level) == {"AS": (None, None)}  # any ratio with a small enough weight fits
    below_hidden = with_ratio_ranges(
        table({TOTAL: 70.0, "EU": 50.0, "AS": None, "BD": None, "CN": None}), parent_of, True
    )
    assert ranges(below_hidden) == {"AS": (69.9, None), "BD": (None, None), "CN": (None, None)}


LEAVES = ["NL", "BE", "DE", "BD", "CN"]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.tuples(st.floats(0, 1e4), st.floats(0.01, 1e4)),  # (numerator, denominator > 0) per leaf
        min_size=len(LEAVES),
        max_size=len(LEAVES),
    ),
    hidden=st.sets(st.sampled_from([TOTAL, "EU", "AS", *LEAVES])),
    decimals=st.integers(0, 2),
)
def test_every_printed_range_holds_the_true_ratio(parts, hidden, decimals):
    totals: dict[str, list[float]] = {}
    for leaf, (numerator, denominator) in zip(LEAVES, parts, strict=True):
        for code in (leaf, PARENTS[leaf], TOTAL):
            sums = totals.setdefault(code, [0.0, 0.0])
            sums[0] += numerator
            sums[1] += denominator
    truth = {code: 100.0 * n / d for code, (n, d) in totals.items()}
    shown = with_ratio_ranges(
        table({code: None if code in hidden else value for code, value in truth.items()}, decimals), parent_of, True
    )
    for code, (lo, hi) in ranges(shown).items():
        tolerance = 1e-9 * max(1.0, abs(truth[code]))
        assert lo is None or truth[code] >= lo - tolerance, (code, lo, truth[code])
        assert hi is None or truth[code] <= hi + tolerance, (code, hi, truth[code])
        assert lo is None or hi is None or lo <= hi
