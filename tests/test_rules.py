"""Primary rules: both sides of every boundary, waivers, negative values, overrides, and random microdata."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.disclosure.model import CellStats, RuleParams
from aggregator.disclosure.rules import NegativeContributionsError, evaluate_primary
from aggregator.errors import DisclosureError

OFF = RuleParams(min_contributors=1, dominance=())  # every rule off; tests switch on the one they test


def stats_for(cells: list[list[float]], waived: list[list[bool]] | None = None, width: int = 4) -> CellStats:
    """CellStats as the stats builder makes them: one summed contribution per contributor per cell."""
    waived = waived or [[False] * len(c) for c in cells]
    top = np.zeros((len(cells), width))
    total, n, waived_sum, n_all, negative = [], [], [], [], []
    for i, (contributions, flags) in enumerate(zip(cells, waived, strict=True)):
        kept = sorted((x for x, w in zip(contributions, flags, strict=True) if not w), reverse=True)
        top[i, : min(width, len(kept))] = kept[:width]
        total.append(sum(contributions))
        n.append(len(kept))
        waived_sum.append(sum(x for x, w in zip(contributions, flags, strict=True) if w))
        n_all.append(len(contributions))
        negative.append(any(x < 0 for x in contributions))
    return CellStats(
        total=np.array(total, dtype=float),
        n=np.array(n),
        top=top,
        waived=np.array(waived_sum, dtype=float),
        n_all=np.array(n_all),
        has_negative=np.array(negative),
    )


# --------------------------------------------------------------------------- threshold


def test_four_contributors_fail_the_threshold_five_pass() -> None:
    params = RuleParams(min_contributors=5, safety_range_percent=10.0, dominance=())
    result = evaluate_primary(stats_for([[10, 10, 10, 10], [10, 10, 10, 10, 10]]), params)
    assert result.unsafe.tolist() == [True, False]
    assert result.reasons == [("threshold",), ()]
    assert result.upl.tolist() == [4.0, 0.0] and result.lpl.tolist() == [4.0, 0.0]


def test_threshold_protection_is_at_least_one() -> None:
    params = RuleParams(min_contributors=5, safety_range_percent=10.0, dominance=())
    result = evaluate_primary(stats_for([[2, 3]]), params)
    assert result.upl.tolist() == [1.0]


# --------------------------------------------------------------------------- dominance


def test_a_share_of_exactly_25_percent_is_safe_and_26_percent_is_not() -> None:
    params = RuleParams(min_contributors=1, dominance=((1, 25.0),))
    result = evaluate_primary(stats_for([[25, 25, 25, 25], [26, 25, 25, 24]]), params)
    assert result.unsafe.tolist() == [False, True]
    assert result.reasons[1] == ("dominance(1,25)",)
    assert result.upl[1] == pytest.approx(100 / 25 * 26 - 100)  # 4


def test_exact_25_percent_stays_safe_despite_rounding_in_total_minus_waived() -> None:
    # Four non-waived 0.1 plus a waived 0.3: total - waived is 0.39999999999999997 in floating point, so a
    # naive 0.1 > 0.25 * X' would call the exact 25% share unsafe.
    stats = stats_for([[0.1, 0.1, 0.1, 0.1, 0.3]], [[False] * 4 + [True]])
    assert 0.1 > 0.25 * (stats.total[0] - stats.waived[0])  # the trap is real
    result = evaluate_primary(stats, RuleParams(min_contributors=1, dominance=((1, 25.0),)))
    assert not result.unsafe[0]


def test_two_largest_dominance_boundary() -> None:
    params = RuleParams(min_contributors=1, dominance=((2, 60.0),))
    result = evaluate_primary(stats_for([[30, 30, 20, 20], [31, 30, 20, 19]]), params)
    assert result.unsafe.tolist() == [False, True]
    assert result.upl[1] == pytest.approx(100 / 60 * 61 - 100)


# --------------------------------------------------------------------------- p% and (p,q)


def test_p_percent_at_the_limit_is_safe_just_below_is_not() -> None:
    params = RuleParams(min_contributors=1, dominance=(), p_percent=(10.0, 1))
    # x1 = 100: the rest beyond the two largest must be at least 10.
    result = evaluate_primary(stats_for([[100, 40, 6, 4], [100, 40, 5, 4]]), params)
    assert result.unsafe.tolist() == [False, True]
    assert result.reasons[1] == ("p%",)
    assert result.upl[1] == pytest.approx(10 - 9)


def test_p_percent_with_a_coalition_of_two() -> None:
    params = RuleParams(min_contributors=1, dominance=(), p_percent=(10.0, 2))
    result = evaluate_primary(stats_for([[100, 50, 40, 10], [100, 50, 40, 9]]), params)
    assert result.unsafe.tolist() == [False, True]
    assert result.upl[1] == pytest.approx(1.0)


def test_single_contributor_fails_p_percent_with_full_protection() -> None:
    params = RuleParams(min_contributors=1, dominance=(), p_percent=(15.0, 1))
    result = evaluate_primary(stats_for([[80]]), params)
    assert result.unsafe[0] and result.upl[0] == pytest.approx(12.0)


def test_pq_rule_boundary() -> None:
    params = RuleParams(min_contributors=1, dominance=(), pq=(10.0, 50.0, 1))  # p/q = 0.2
    result = evaluate_primary(stats_for([[100, 20, 20], [100, 20, 19]]), params)
    assert result.unsafe.tolist() == [False, True]
    assert result.reasons[1] == ("pq",)
    assert result.upl[1] == pytest.approx(20 - 19)


def test_protection_is_the_largest_over_the_rules_that_fired() -> None:
    params = RuleParams(min_contributors=5, safety_range_percent=10.0, dominance=((1, 25.0),))
    result = evaluate_primary(stats_for([[90, 10]]), params)
    assert result.reasons == [("threshold", "dominance(1,25)")]
    assert result.upl[0] == pytest.approx(max(10.0, 4 * 90 - 100))  # 260


# --------------------------------------------------------------------------- zero and empty cells


def test_zero_cell_is_unsafe_only_when_the_rule_is_on_and_only_upward() -> None:
    cells = [[0, 0, 0, 0, 0, 0]]
    assert not evaluate_primary(stats_for(cells), OFF).unsafe[0]
    result = evaluate_primary(stats_for(cells), RuleParams(min_contributors=1, dominance=(), zero_cell_protection=3))
    assert result.unsafe[0] and result.reasons == [("zero",)]
    assert (result.upl[0], result.lpl[0]) == (3.0, 0.0)


def test_empty_cell_is_never_unsafe() -> None:
    params = RuleParams(zero_cell_protection=3.0, p_percent=(10.0, 1))
    result = evaluate_primary(stats_for([[]]), params)
    assert not result.unsafe[0] and result.reasons == [()] and result.upl[0] == 0


# --------------------------------------------------------------------------- waivers


def test_waiver_of_the_dominant_company_turns_the_cell_safe() -> None:
    params = RuleParams(min_contributors=5, dominance=((1, 25.0),))
    cells = [[60, 10, 10, 10, 10, 10]]
    assert evaluate_primary(stats_for(cells), params).unsafe[0]
    waived = [[True, False, False, False, False, False]]
    assert not evaluate_primary(stats_for(cells, waived), params).unsafe[0]


def test_waived_contributions_count_as_public_so_the_rest_can_fall_below_the_threshold() -> None:
    # Five contributors, one waived: the other four can be recovered as total - waived, so four remain.
    params = RuleParams(min_contributors=5, safety_range_percent=10.0, dominance=())
    result = evaluate_primary(stats_for([[10, 10, 10, 10, 50]], [[False] * 4 + [True]]), params)
    assert result.unsafe[0] and result.reasons == [("threshold",)]
    assert result.upl[0] == pytest.approx(4.0)  # 10% of X' = 40, not of the published 90


def test_cell_whose_contributors_all_waived_is_safe() -> None:
    result = evaluate_primary(stats_for([[70, 30]], [[True, True]]), RuleParams())
    assert not result.unsafe[0]


# --------------------------------------------------------------------------- negative values


def test_negative_contributions_are_refused_naming_the_cells() -> None:
    stats = stats_for([[10, 10, 10, 10, 10], [30, -5, 10, 10, 10], [1, 1, 1, 1, 1], [-1, 5, 5, 5, 5]])
    with pytest.raises(NegativeContributionsError) as raised:
        evaluate_primary(stats, RuleParams())
    assert isinstance(raised.value, DisclosureError)
    assert raised.value.cells == (1, 3)
    assert "cells 1, 3" in raised.value.message
    assert 'negative_values = "absolute"' in raised.value.hint


def test_absolute_policy_applies_the_rules_to_absolute_values() -> None:
    # Contributions 30, -50, 10, 10, 10: the builder supplies |x| sums: X = 110, top = 50, 30, 10, 10.
    stats = CellStats(
        total=np.array([110.0]),
        n=np.array([5]),
        top=np.array([[50.0, 30.0, 10.0, 10.0]]),
        waived=np.array([0.0]),
        n_all=np.array([5]),
        has_negative=np.array([True]),
    )
    result = evaluate_primary(stats, RuleParams(negative_values="absolute"))
    assert result.unsafe[0] and result.reasons == [("dominance(1,25)",)]
    assert result.upl[0] == pytest.approx(4 * 50 - 110)
    stats.top = -stats.top
    with pytest.raises(ValueError, match="absolute values"):
        evaluate_primary(stats, RuleParams(negative_values="absolute"))


def test_unknown_negative_policy_is_a_config_mistake() -> None:
    with pytest.raises(DisclosureError, match="unknown negative_values policy 'clip'"):
        evaluate_primary(stats_for([[1, 2]]), RuleParams(negative_values="clip"))


# --------------------------------------------------------------------------- overrides and contract


def test_overrides_force_unsafe_with_the_safety_range_and_force_safe_with_no_protection() -> None:
    params = RuleParams(min_contributors=5, safety_range_percent=10.0, dominance=((1, 25.0),))
    stats = stats_for([[10] * 6, [90, 10], [5] * 6])
    result = evaluate_primary(stats, params, overrides={0: True, 1: False})
    assert result.unsafe.tolist() == [True, False, False]
    assert result.upl.tolist() == [6.0, 0.0, 0.0] and result.lpl.tolist() == [6.0, 0.0, 0.0]
    assert result.reasons == [("override",), ("threshold", "dominance(1,25)", "override"), ()]


def test_stats_with_too_few_top_values_are_a_programming_error() -> None:
    stats = stats_for([[10, 20, 30]], width=1)
    with pytest.raises(ValueError, match="top"):
        evaluate_primary(stats, RuleParams(dominance=((2, 60.0),)))


def test_rules_do_not_modify_their_input_and_repeat_exactly() -> None:
    stats = stats_for([[60, 10, 10, 10], [10] * 5])
    before = stats.top.copy()
    first, second = evaluate_primary(stats, RuleParams()), evaluate_primary(stats, RuleParams())
    np.testing.assert_array_equal(stats.top, before)
    np.testing.assert_array_equal(first.upl, second.upl)
    assert first.reasons == second.reasons


# --------------------------------------------------------------------------- random microdata


PARAMS = st.builds(
    RuleParams,
    min_contributors=st.sampled_from([1, 3, 5]),
    safety_range_percent=st.sampled_from([0.0, 10.0, 25.0]),
    dominance=st.sampled_from([(), ((1, 25.0),), ((2, 60.0), (1, 33.0)), ((3, 75.0),)]),
    p_percent=st.sampled_from([None, (10.0, 1), (15.0, 2)]),
    pq=st.sampled_from([None, (10.0, 40.0, 1)]),
    zero_cell_protection=st.sampled_from([None, 2.0]),
)


def independent_requirement(kept: list[int], params: RuleParams) -> tuple[bool, Fraction, Fraction]:
    """Every rule recomputed in exact arithmetic from one cell's non-waived contributions: unsafe, LPL, UPL."""
    if not kept:
        return False, Fraction(0), Fraction(0)
    xs = sorted(kept, reverse=True) + [0] * 4
    total = Fraction(sum(kept))
    needs: list[Fraction] = []
    if len(kept) < params.min_contributors:
        needs.append(max(Fraction(params.safety_range_percent) / 100 * total, Fraction(1)))
    for n_top, k in params.dominance:
        t_n = Fraction(sum(xs[:n_top]))
        if t_n * 100 > Fraction(k) * total:
            needs.append(100 / Fraction(k) * t_n - total)
    shares = []
    if params.p_percent:
        shares.append((Fraction(params.p_percent[0]) / 100, params.p_percent[1]))
    if params.pq:
        shares.append((Fraction(params.pq[0]) / Fraction(params.pq[1]), params.pq[2]))
    for share, coalition in shares:
        rest = total - sum(xs[: coalition + 1])
        if rest < share * xs[0]:
            needs.append(share * xs[0] - rest)
    both = max(needs, default=Fraction(0))
    if params.zero_cell_protection is not None and total == 0:  # the zero rule protects upward only
        return True, both, max(both, Fraction(params.zero_cell_protection))
    return bool(needs), both, both


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(0, 60), st.booleans()), min_size=0, max_size=7), min_size=1, max_size=12),
    PARAMS,
)
def test_rules_agree_with_an_exact_recomputation_from_raw_contributions(
    cells: list[list[tuple[int, bool]]], params: RuleParams
) -> None:
    contributions = [[float(x) for x, _ in cell] for cell in cells]
    waived = [[w for _, w in cell] for cell in cells]
    result = evaluate_primary(stats_for(contributions, waived, width=4), params)
    for i, cell in enumerate(cells):
        unsafe, lpl, upl = independent_requirement([x for x, w in cell if not w], params)
        assert result.unsafe[i] == unsafe, (cell, result.reasons[i])
        assert result.lpl[i] == pytest.approx(float(lpl), abs=1e-9)
        assert result.upl[i] == pytest.approx(float(upl), abs=1e-9)
