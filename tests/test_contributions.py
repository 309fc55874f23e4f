"""Contributions as columns: reads by contributor, renumbering, merging and the insiders worth auditing."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.disclosure.contributions import Contributions, lexsort

records = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.dictionaries(st.integers(0, 9), st.floats(-50, 50, allow_nan=False), max_size=6),
    max_size=4,
)


@given(records)
def test_columns_read_like_the_mapping_they_were_made_of(mapping):
    own = Contributions.of(mapping)
    assert own.as_dict() == {who: dict(sorted(cells.items())) for who, cells in sorted(mapping.items())}
    assert own.contributors == sorted(mapping) and len(own) == sum(len(c) for c in mapping.values())
    for who, cells in mapping.items():
        probe = np.arange(10)
        assert own.values_at(who, probe).tolist() == [cells.get(c, 0.0) for c in probe]
    assert own.values_at("nobody", np.arange(3)).tolist() == [0.0, 0.0, 0.0]


@given(records, st.lists(st.integers(0, 9), unique=True, max_size=10))
def test_a_subproblem_keeps_the_records_of_its_cells_renumbered(mapping, cells):
    restricted = Contributions.of(mapping).restricted(np.array(cells, dtype=np.int64))
    position = {c: k for k, c in enumerate(cells)}
    expected = {w: {position[c]: v for c, v in mine.items() if c in position} for w, mine in mapping.items()}
    assert restricted.as_dict() == {w: dict(sorted(m.items())) for w, m in sorted(expected.items()) if m}


@given(records, records)
def test_concatenated_parts_keep_every_record_over_the_union_of_names(first, second):
    shifted = {w: {c + 10: v for c, v in cells.items()} for w, cells in second.items()}
    both = Contributions.concat([Contributions.of(first), Contributions.of(shifted)])
    expected = {w: {**first.get(w, {}), **shifted.get(w, {})} for w in set(first) | set(shifted)}
    assert both.as_dict() == {w: dict(sorted(m.items())) for w, m in sorted(expected.items())}
    assert both.only(["b", "z"]).as_dict() == ({"b": dict(sorted(expected["b"].items()))} if "b" in expected else {})


def test_merged_cells_keep_the_record_of_the_lowest_cell_and_the_largest_insider_wins_ties_by_name():
    names = np.array(["a", "b", "c"], dtype=object)
    # cells 0, 2 and 3 merge into 0; 1 stays; b has records in 2 and 3 only: the one of cell 2 is kept
    records = Contributions(names, np.array([0, 0, 1, 1, 2]), np.array([3, 0, 3, 2, 1]), np.array([9.0, 1, 7, 5, 5]))
    moved = records.moved(np.array([0, 1, 0, 0]))
    assert moved.as_dict() == {"a": {0: 1.0}, "b": {0: 5.0}, "c": {1: 5.0}}
    # cell 0: b (5) beats a (1); cell 1: c alone; a tie of |values| goes to the greater name
    assert moved.largest_in(np.array([True, True])) == ["b", "c"]
    tie = Contributions(names, np.array([0, 1]), np.array([0, 0]), np.array([-4.0, 4.0]))
    assert tie.largest_in(np.array([True])) == ["b"]
    assert tie.largest_in(np.array([False])) == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.integers(0, 2**40)), max_size=40),
    st.booleans(),
)
def test_combined_key_sort_is_lexsort(rows, huge):
    keys = (
        tuple(np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
        if rows
        else (np.zeros(0, np.int64),) * 3
    )
    if huge and rows:  # keys that do not fit one int64 together: lexsort itself
        keys = (keys[0], keys[1] * 2**30, keys[2])
    assert lexsort(keys).tolist() == np.lexsort(keys).tolist()
