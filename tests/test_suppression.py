"""Secondary suppression: known optimal patterns, hierarchies, linked tables, fixed cells, and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.disclosure.suppression import (
    SuppressionResult,
    check_pattern,
    independent_blocks,
    lp_lower_bound,
    merge_problems,
    protect,
    table_problem,
)
from aggregator.errors import DisclosureError

GRID = np.array([[10.0, 20, 30], [40, 50, 60], [70, 80, 90]])


def mark_primary(problem, key: str, protection: float = 5.0) -> int:
    i = problem.keys.index(key)
    problem.primary[i] = True
    problem.upl[i] = problem.lpl[i] = protection
    return i


def hidden_keys(problem, result: SuppressionResult) -> set[str]:
    return {problem.keys[i] for i in np.flatnonzero(result.suppressed)}


def assert_safe(problem, result: SuppressionResult) -> None:
    assert result.suppressed[problem.primary].all()
    assert not result.suppressed[problem.fixed].any()
    assert check_pattern(problem, result.suppressed) == []
    try:
        from aggregator.disclosure.audit import audit
    except ImportError:
        return
    assert audit(problem, result.suppressed).passed


@pytest.mark.parametrize("method", ["optimal", "fast"])
def test_one_inner_primary_needs_a_rectangle(method):
    problem = table_problem(GRID)
    mark_primary(problem, "t|value|d0=1|d1=1")
    result = protect(problem, method)
    assert result.n_secondary == 3 and result.cost == 3.0
    rows = {k.split("|")[2] for k in hidden_keys(problem, result)}
    cols = {k.split("|")[3] for k in hidden_keys(problem, result)}
    assert len(rows) == 2 and len(cols) == 2  # four corners of one rectangle
    assert_safe(problem, result)


def test_value_cost_picks_the_cheapest_rectangle():
    problem = table_problem(GRID, cost="value")
    mark_primary(problem, "t|value|d0=1|d1=1")
    result = protect(problem, "optimal")
    assert hidden_keys(problem, result) == {
        "t|value|d0=0|d1=0",
        "t|value|d0=0|d1=1",
        "t|value|d0=1|d1=0",
        "t|value|d0=1|d1=1",
    }
    assert result.cost == pytest.approx(70.0)
    assert result.optimal and result.lower_bound <= result.cost + 1e-6
    assert result.lower_bound == pytest.approx(70.0, rel=1e-4)
    assert lp_lower_bound(problem) <= result.cost + 1e-6


def test_no_primary_cells_means_nothing_hidden():
    result = protect(table_problem(GRID), "auto")
    assert not result.suppressed.any() and result.cost == 0.0 and result.optimal


def test_one_dimensional_hierarchy_hides_a_sibling():
    # leaves 0..3 -> regions A (0, 1) and B (2, 3) -> total T
    problem = table_problem(np.array([5.0, 7.0, 9.0, 11.0]), hierarchies=[{"A": [0, 1], "B": [2, 3], "T": ["A", "B"]}])
    mark_primary(problem, "t|value|d0=0", protection=2.0)
    for method in ("optimal", "fast"):
        result = protect(problem, method)
        assert hidden_keys(problem, result) == {"t|value|d0=0", "t|value|d0=1"}
        assert_safe(problem, result)


def test_hierarchical_primary_region_needs_a_second_region():
    problem = table_problem(np.array([5.0, 7.0, 9.0, 11.0]), hierarchies=[{"A": [0, 1], "B": [2, 3], "T": ["A", "B"]}])
    mark_primary(problem, "t|value|d0=A", protection=2.0)
    result = protect(problem, "optimal")
    keys = hidden_keys(problem, result)
    assert {"t|value|d0=B", "t|value|d0=T"} & keys  # its sibling or the total above it
    assert {"t|value|d0=0", "t|value|d0=1"} & keys  # and one of its own children
    assert result.n_secondary == 2
    assert_safe(problem, result)


def test_linked_tables_share_their_total():
    a = table_problem(np.array([[10.0, 20], [30, 40]]), name="A")
    b = table_problem(np.array([[15.0, 35], [25, 25]]), name="B")
    same = {"B|value|d0=T|d1=T": "A|value|d0=T|d1=T"}
    linked = merge_problems([a, b], same)
    assert linked.size == a.size + b.size - 1
    mark_primary(linked, "A|value|d0=0|d1=0")
    for method in ("optimal", "fast"):
        result = protect(linked, method)
        assert not any(k.startswith("B") for k in hidden_keys(linked, result))
        assert result.n_secondary == 3
        assert_safe(linked, result)


def test_fixed_cells_force_another_rectangle():
    problem = table_problem(GRID)
    mark_primary(problem, "t|value|d0=1|d1=1")
    for key in ("t|value|d0=0|d1=1", "t|value|d0=1|d1=0"):
        problem.fixed[problem.keys.index(key)] = True
    result = protect(problem, "optimal")
    keys = hidden_keys(problem, result)
    assert "t|value|d0=1|d1=2" in keys and "t|value|d0=2|d1=1" in keys
    assert result.n_secondary == 3
    assert_safe(problem, result)


def test_fixed_cells_that_make_protection_impossible_raise():
    problem = table_problem(GRID)
    mark_primary(problem, "t|value|d0=1|d1=1")
    for key in ("t|value|d0=1|d1=0", "t|value|d0=1|d1=2", "t|value|d0=1|d1=T"):
        problem.fixed[problem.keys.index(key)] = True
    for method in ("optimal", "fast"):
        with pytest.raises(DisclosureError, match=r"t\|value\|d0=1\|d1=1 cannot be protected"):
            protect(problem, method)


def test_a_fixed_primary_cell_is_refused():
    problem = table_problem(GRID)
    i = mark_primary(problem, "t|value|d0=1|d1=1")
    problem.fixed[i] = True
    with pytest.raises(DisclosureError, match="already published"):
        protect(problem)


def test_two_singletons_are_not_left_alone_in_a_row():
    # row 0: two single-contributor cells (A, B) and a total; each insider would learn the other's figure
    contributions = {
        "A": np.array([[30.0, 0, 0], [10, 10, 10]]),
        "B": np.array([[0.0, 40, 0], [10, 10, 10]]),
        "C": np.array([[0.0, 0, 50], [10, 10, 10]]),
        "D": np.array([[0.0, 0, 50], [10, 10, 10]]),
    }
    problem = table_problem(contributions=contributions, min_contributors=2)
    assert problem.primary.sum() == 2
    for method in ("optimal", "fast"):
        result = protect(problem, method)
        row0 = [k for k in hidden_keys(problem, result) if "d0=0" in k]
        assert len(row0) >= 3  # a third cell in the row, so neither insider can subtract
        assert_safe(problem, result)


def test_unknown_method_is_refused():
    with pytest.raises(DisclosureError, match="unknown suppression method"):
        protect(table_problem(GRID), "magic")


def test_same_input_same_pattern():
    problem = random_table(np.random.default_rng(3), 5, 6)
    first, second = protect(problem, "fast"), protect(problem, "fast")
    assert np.array_equal(first.suppressed, second.suppressed)
    assert np.array_equal(protect(problem, "optimal").suppressed, protect(problem, "optimal").suppressed)


def random_table(rng, rows: int, cols: int):
    contributions = {}
    for who in range(8):
        present = rng.random((rows, cols)) < 0.35
        contributions[f"c{who}"] = np.where(present, rng.integers(10, 31, (rows, cols)), 0).astype(float)
    return table_problem(contributions=contributions, cost="value")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), rows=st.integers(2, 5), cols=st.integers(2, 5))
def test_random_tables_both_methods_are_safe_and_optimal_is_cheapest(seed, rows, cols):
    problem = random_table(np.random.default_rng(seed), rows, cols)
    fast = protect(problem, "fast")
    assert_safe(problem, fast)
    best = protect(problem, "optimal", time_limit=30)
    assert_safe(problem, best)
    if best.optimal and best.method == "optimal":
        assert best.cost <= fast.cost + 1e-6
        assert best.lower_bound <= best.cost + 1e-6


def test_independent_tables_are_protected_block_by_block_with_the_same_optimum():
    a = table_problem(GRID, name="A", cost="value")
    b = table_problem(GRID * 2, name="B", cost="value")
    mark_primary(a, "A|value|d0=1|d1=1")
    mark_primary(b, "B|value|d0=0|d1=2")
    alone = [protect(a, "optimal"), protect(b, "optimal")]
    both = merge_problems([a, b])
    assert len(independent_blocks(both)) == 2
    result = protect(both, "optimal")
    assert result.optimal and result.cost == pytest.approx(sum(r.cost for r in alone))
    hidden = {k for k, h in zip(both.keys, result.suppressed, strict=True) if h}
    expected = {k for p, r in zip((a, b), alone, strict=True) for k, h in zip(p.keys, r.suppressed, strict=True) if h}
    assert hidden == expected
    assert_safe(both, result)
