"""Primary rules: both sides of every boundary, waivers, negative values, overrides, and random microdata."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.disclosure.model import CellStats, RuleParams
from aggregator.disclosure.rules import REL_TOL, NegativeContributionsError, evaluate_primary
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


# --------------------------------------------------------------------------- the tolerance, at every magnitude
# (gaps found by mutation testing, docs/mutation.md)


def one_cell(total: float, top: list[float], n: int | None = None, negative: bool = False) -> CellStats:
    """CellStats of one cell given directly (X, the top values), for boundaries stats_for cannot hit exactly."""
    return CellStats(
        total=np.array([total]),
        n=np.array([n if n is not None else len(top)]),
        top=np.array([top]),
        waived=np.array([0.0]),
        n_all=np.array([n if n is not None else len(top)]),
        has_negative=np.array([negative]),
    )


@pytest.mark.parametrize(("kept", "waived"), [(2.4 * 1e-6, 7.9 * 1e-6), (0.1, 0.3), (8.3 * 1e6, 5.7 * 1e6)])
def test_an_exact_25_percent_share_stays_safe_at_every_magnitude(kept: float, waived: float) -> None:
    # Four equal non-waived contributions and a waived one: X' = X - W is 4 * kept up to rounding noise.
    stats = stats_for([[kept] * 4 + [waived]], [[False] * 4 + [True]])
    assert kept > 0.25 * (stats.total[0] - stats.waived[0])  # the rounding trap is real at this magnitude
    assert not evaluate_primary(stats, RuleParams(min_contributors=1, dominance=((1, 25.0),))).unsafe[0]


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_a_share_just_above_the_limit_is_unsafe_at_every_magnitude(scale: float) -> None:
    # 25.000001% with (1, 25): an excess of 4e-8 of X', far above the 1e-9 tolerance, whatever the unit.
    cells = [[x * scale for x in (25.000001, 25.0, 25.0, 24.999999)]]
    result = evaluate_primary(stats_for(cells), RuleParams(min_contributors=1, dominance=((1, 25.0),)))
    assert result.unsafe[0] and result.upl[0] == pytest.approx(4e-6 * scale, rel=1e-3)
    p_result = evaluate_primary(stats_for([[x * scale for x in (1.0, 0.099999)]]), replace(OFF, p_percent=(10.0, 0)))
    assert p_result.unsafe[0]  # the remainder is just below 10% of x1


def test_dominance_fires_only_beyond_the_tolerance_scaled_by_100_over_k() -> None:
    # (1, 50): the excess 2 * T1 - X' is compared with 1e-9 * (100/k) * max(T1, X'). X' below is chosen so that
    # this tolerance is exactly 2**-29; T1 puts the excess at 0.99, 1 and 1.01 times it.
    x = 0.9313225746154785
    tolerance = REL_TOL * (100 / 50) * x
    assert tolerance == 2**-29
    params = replace(OFF, dominance=((1, 50.0),))
    verdicts = []
    for factor in (0.99, 1.0, 1.01):
        t1 = (x + factor * tolerance) / 2
        assert (2 * t1 - x == tolerance) == (factor == 1.0)
        verdicts.append(bool(evaluate_primary(one_cell(x, [t1, x - t1]), params).unsafe[0]))
    assert verdicts == [False, False, True]  # exceeding by exactly the tolerance is still "equal"


def test_a_zero_cell_whose_contributions_cancel_is_still_a_zero_cell() -> None:
    # Under "absolute" X is the signed sum (rounding noise of ~1e-10 here) while top holds magnitudes; the zero
    # rule's tolerance grows with those magnitudes. A small genuine value beside it is not a zero cell.
    contributions = [1e9 + 0.1, 0.2, -1e9, -0.3]
    total = sum(contributions)
    assert total != 0.0
    stats = CellStats(
        total=np.array([total, 0.75]),
        n=np.array([4, 2]),
        top=np.array([sorted((abs(x) for x in contributions), reverse=True), [0.5, 0.25, 0.0, 0.0]]),
        waived=np.array([0.0, 0.0]),
        n_all=np.array([4, 2]),
        has_negative=np.array([True, False]),
    )
    params = replace(OFF, zero_cell_protection=5.0, negative_values="absolute")
    result = evaluate_primary(stats, params)
    assert result.unsafe.tolist() == [True, False]
    assert result.reasons == [("zero",), ()] and result.upl.tolist() == [5.0, 0.0]


def test_below_magnitude_one_the_zero_rule_tolerance_is_an_absolute_1e9() -> None:
    params = replace(OFF, zero_cell_protection=5.0)
    verdicts = [bool(evaluate_primary(one_cell(x, [x]), params).unsafe[0]) for x in (0.5e-9, 1e-9, 1.5e-9, 1e-3)]
    assert verdicts == [True, True, False, False]


# --------------------------------------------------------------------------- negative values and the contract


def test_a_cell_whose_only_contributor_is_negative_is_refused_and_only_that_cell() -> None:
    with pytest.raises(NegativeContributionsError) as raised:
        evaluate_primary(stats_for([[10.0] * 5, [-5.0], [5.0, -1.0]]), RuleParams())
    assert raised.value.cells == (1, 2)


def test_a_long_list_of_negative_cells_names_ten_and_counts_the_rest() -> None:
    def refused(cells: int) -> NegativeContributionsError:
        with pytest.raises(NegativeContributionsError) as raised:
            evaluate_primary(stats_for([[-1.0, 5.0]] * cells), RuleParams())
        return raised.value

    assert refused(10).message.endswith("cells 0, 1, 2, 3, 4, 5, 6, 7, 8, 9")
    assert refused(12).message.startswith("12 cell(s) have negative contributions")
    assert refused(12).message.endswith("cells 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more")
    assert refused(12).hint == (
        'set negative_values = "absolute" in the protocol to apply the rules to absolute values, '
        "or correct the submissions"
    )


def test_absolute_policy_accepts_small_magnitudes_and_zero_padding() -> None:
    # |x| below 1 and a cell with fewer contributors than top values (padded with 0) are valid magnitudes.
    stats = CellStats(
        total=np.array([0.5, 10.0]),
        n=np.array([2, 1]),
        top=np.array([[0.3, 0.2], [10.0, 0.0]]),
        waived=np.array([0.0, 0.0]),
        n_all=np.array([2, 1]),
        has_negative=np.array([True, False]),
    )
    result = evaluate_primary(stats, RuleParams(min_contributors=2, dominance=(), negative_values="absolute"))
    assert result.unsafe.tolist() == [False, True]
    stats.top[0, 1] = -0.2
    message = r'^negative_values = "absolute" needs CellStats\.top as absolute values \(\|x\|\)$'
    with pytest.raises(ValueError, match=message):
        evaluate_primary(stats, RuleParams(min_contributors=2, dominance=(), negative_values="absolute"))


def test_unknown_negative_policy_hints_at_the_two_policies() -> None:
    with pytest.raises(DisclosureError) as raised:
        evaluate_primary(stats_for([[1, 2]]), RuleParams(negative_values="clip"))
    assert raised.value.hint == 'use "refuse" or "absolute" in the protocol'


def test_stats_whose_arrays_disagree_in_length_are_a_programming_error() -> None:
    stats = stats_for([[10, 20], [30]])
    stats.waived = stats.waived[:1]
    with pytest.raises(ValueError, match=r"^CellStats\.waived has 1 entries, total has 2$"):
        evaluate_primary(stats, RuleParams())
    stats = stats_for([[10, 20], [30]])
    stats.top = stats.top[:1]
    with pytest.raises(ValueError, match=r"CellStats\.top must have shape \(2, >= 1\), got \(1, 4\)"):
        evaluate_primary(stats, RuleParams())


def test_top_values_exactly_as_many_as_the_rules_need_are_enough() -> None:
    result = evaluate_primary(stats_for([[60, 20, 20]], width=2), RuleParams(dominance=((2, 60.0),)))
    assert result.unsafe[0] and "dominance(2,60)" in result.reasons[0]


def test_an_override_for_a_cell_beyond_the_table_is_refused() -> None:
    stats = stats_for([[10] * 6, [10] * 6])
    with pytest.raises(ValueError, match=r"^override for cell 2 but the table has 2 cells$"):
        evaluate_primary(stats, RuleParams(), overrides={2: True})
    assert evaluate_primary(stats, RuleParams(), overrides={1: True}).unsafe.tolist() == [False, True]
