"""Prior knowledge: what earlier releases published is capped out of a new release's requirements.

One row: total T = a + b + c with a = 10, b = 3, c = 2 (cells 0, 1, 2; T is cell 3). Epoch 1 is an earlier
release, epoch 2 the release that must protect a.
"""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import ProtectionProblem
from aggregator.disclosure.suppression import protect
from aggregator.errors import DisclosureError
from bench.realistic import realistic_problem
from support.keys import named

A, B, C, T = 0, 1, 2, 3


def row(protection: float, fixed: list[int], epoch: list[int] | None, insiders=None) -> ProtectionProblem:
    values = np.array([10.0, 3.0, 2.0, 15.0])
    return ProtectionProblem(
        keys=named("a", "b", "c", "total"),
        values=values,
        relations=[(T, (A, B, C))],
        lower=np.zeros(4),
        upper=np.full(4, 100.0),
        upl=np.array([protection, 0, 0, 0]),
        lpl=np.array([protection, 0, 0, 0]),
        primary=np.array([True, False, False, False]),
        cost=values.copy(),
        fixed=np.isin(np.arange(4), fixed),
        insiders=insiders or {},
        epoch=None if epoch is None else np.array(epoch),
    )


def hidden(*cells: int) -> np.ndarray:
    return np.isin(np.arange(4), cells)


def test_a_cell_an_earlier_release_already_pinned_is_no_new_disclosure():
    # b, c and T were published before: a = 15 - 3 - 2 was known before this release hid it.
    earlier = row(2.0, fixed=[B, C, T], epoch=[2, 1, 1, 1])
    assert audit(earlier, hidden(A)).passed
    # the same cells published in the release itself disclose a exactly
    same_release = row(2.0, fixed=[B, C, T], epoch=[2, 2, 2, 2])
    failures = audit(same_release, hidden(A)).failures
    assert [(f[0], f[1], f[4]) for f in failures] == [(A, "outsider", "exact disclosure")]
    assert not audit(row(2.0, fixed=[B, C, T], epoch=None), hidden(A)).passed


def test_a_partly_known_cell_keeps_all_the_protection_it_had():
    # T was published before: a <= 15 at most, 5 above its value; the rules ask 10. The release must keep the
    # 5 (hide both b and c), not give up the cell.
    problem = row(10.0, fixed=[T], epoch=[2, 2, 2, 1])
    assert not audit(problem, hidden(A, B)).passed  # a <= 12: 2 above, 5 were left
    assert audit(problem, hidden(A, B, C)).passed
    result = protect(problem, "optimal")
    assert list(result.suppressed) == [True, True, True, False]
    assert audit(problem, result.suppressed).passed
    # without the earlier release nothing explains the shortfall: no pattern protects a, and that is said
    with pytest.raises(DisclosureError, match="cannot be protected"):
        protect(row(10.0, fixed=[T], epoch=None), "optimal")


@pytest.mark.parametrize("method", ["optimal", "fast"])
def test_an_insider_who_knew_a_cell_before_does_not_block_the_release(method: str):
    # X alone makes up b. With T and c published before, X knew a = 15 - 2 - b <= 10 exactly upwards.
    insiders = {"X": {B: 3.0}}
    problem = row(2.0, fixed=[C, T], epoch=[2, 2, 1, 1], insiders=insiders)
    result = protect(problem, method)
    assert list(result.suppressed) == [True, True, False, False]
    assert audit(problem, result.suppressed).passed
    # had T and c been published by this release, X would learn a from it: refused
    with pytest.raises(DisclosureError, match="contributor X can narrow it upward"):
        protect(row(2.0, fixed=[C, T], epoch=[2, 2, 2, 2], insiders=insiders), method)


def test_only_cells_published_before_count_as_prior_knowledge():
    # T was published before; b and c are published by this release itself: a = 15 - 3 - 2 is new, a disclosure
    same_release = row(2.0, fixed=[B, C, T], epoch=[2, 2, 2, 1])
    assert [(f[0], f[4]) for f in audit(same_release, hidden(A)).failures] == [(A, "exact disclosure")]
    # b belongs to an earlier release but was never published there (not fixed): publishing it now is new too
    never_published = row(2.0, fixed=[C, T], epoch=[2, 1, 1, 1])
    assert [(f[0], f[4]) for f in audit(never_published, hidden(A)).failures] == [(A, "exact disclosure")]


def test_each_row_is_held_to_its_own_prior_knowledge():
    # two independent rows (the second twice the first), T published before in both, c now: a <= T - c is new
    # and short of the requirement in each row; each row's prior reach comes from its own row
    one, two = row(10.0, fixed=[T], epoch=[2, 2, 2, 1]), row(20.0, fixed=[T], epoch=[2, 2, 2, 1])
    both = ProtectionProblem(
        keys=named("a", "b", "c", "total", "a2", "b2", "c2", "total2"),
        values=np.concatenate([one.values, 2 * two.values]),
        relations=[(T, (A, B, C)), (T + 4, (A + 4, B + 4, C + 4))],
        lower=np.zeros(8),
        upper=np.full(8, 100.0),
        upl=np.concatenate([one.upl, two.upl]),
        lpl=np.concatenate([one.lpl, two.lpl]),
        primary=np.concatenate([one.primary, two.primary]),
        cost=np.ones(8),
        fixed=np.concatenate([one.fixed, two.fixed]),
        epoch=np.array([2, 2, 2, 1] * 2),
    )
    failures = audit(both, np.isin(np.arange(8), [A, B, A + 4, B + 4])).failures
    assert [(f[0], f[4]) for f in failures] == [(A, "upper protection not met"), (A + 4, "upper protection not met")]


@pytest.mark.parametrize("seed", [12, 13, 3])
def test_optimal_protects_a_second_release_wherever_fast_does(seed: int):
    # A company table whose every fifth cell without a requirement was published by an earlier release. The
    # optimal model once demanded the full requirement of cells earlier releases had pinned (exactly, or for an
    # insider closer than the rules ask): its LP became infeasible and the release was refused, while fast's
    # pattern passed the audit.
    problem = realistic_problem(4, 2, (2, 2), 30, seed)
    rng = np.random.default_rng(seed)
    earlier = ~problem.primary & (rng.random(problem.size) < 0.2)
    problem.fixed, problem.epoch = earlier, np.where(earlier, 1, 2)
    fast, best = protect(problem, "fast"), protect(problem, "optimal")
    assert audit(problem, fast.suppressed).passed and audit(problem, best.suppressed).passed
    assert best.cost <= fast.cost + 1e-6


def total_of_two(p: float, q: float, lpl: float, epoch=None, insiders=None, fixed=()) -> ProtectionProblem:
    """a = p + q (cells 0, 1, 2) and an unrelated cell z (3); a is primary with lower protection lpl."""
    values = np.array([p, q, p + q, 1.0])
    return ProtectionProblem(
        keys=named("p", "q", "a", "z"),
        values=values,
        relations=[(2, (0, 1))],
        lower=np.zeros(4),
        upper=np.full(4, 100.0),
        upl=np.array([0.0, 0.0, 1.0, 0.0]),
        lpl=np.array([0.0, 0.0, lpl, 0.0]),
        primary=np.array([False, False, True, False]),
        cost=values.copy(),
        fixed=np.isin(np.arange(4), fixed),
        insiders=insiders or {},
        epoch=None if epoch is None else np.array(epoch),
    )


def test_a_lower_side_narrowed_by_this_release_fails_even_with_earlier_releases():
    # z was published before (so earlier releases exist) but says nothing about a; publishing q now tells
    # everyone a >= q = 10, above the 8 the rules allow: new, so a failure on the lower side
    problem = total_of_two(3.0, 10.0, lpl=5.0, epoch=[2, 2, 2, 1], fixed=[3])
    failures = audit(problem, np.isin(np.arange(4), [0, 2])).failures
    assert [(f[0], f[1], f[4]) for f in failures] == [(2, "outsider", "lower protection not met")]
    assert failures[0][2:4] == pytest.approx((10.0, 100.0))


def test_an_insider_is_held_to_a_lower_requirement_unless_it_is_capped_at_the_bound():
    # X alone makes up p = 14 of a = 15 and has no part in a itself: with everything hidden it still knows a >= 14
    hidden = np.isin(np.arange(4), [0, 1, 2])
    # asked to stay unsure down to 0 (the a-priori bound): no release can do that, X's own figure is the limit
    capped = total_of_two(14.0, 1.0, lpl=15.0, insiders={"X": {0: 14.0}})
    assert audit(capped, hidden).passed
    # asked for 3 below the value (12): held to it, without an LP for what X knew before
    held = total_of_two(14.0, 1.0, lpl=3.0, insiders={"X": {0: 14.0}})
    assert [(f[0], f[1], f[4]) for f in audit(held, hidden).failures] == [(2, "X", "lower protection not met")]


@pytest.mark.parametrize("method", ["optimal", "fast"])
def test_suppression_counts_only_cells_published_before_as_prior_knowledge(method: str):
    # T published before: a <= 15 was known, 5 above; b belongs to an earlier release but was never published
    # there, so it is no prior knowledge: b and c must stay hidden to keep the 5
    problem = row(10.0, fixed=[T], epoch=[2, 1, 2, 1])
    assert list(protect(problem, method).suppressed) == [True, True, True, False]
    # c published by this release itself is no prior knowledge either: a <= 13 is new, and nothing can hide it
    with pytest.raises(DisclosureError, match="cell .*a.* cannot be protected"):
        protect(row(10.0, fixed=[C, T], epoch=[2, 2, 2, 1]), method)


@pytest.mark.parametrize("method", ["optimal", "fast"])
def test_suppression_does_not_ask_an_insider_for_more_than_its_own_figures_allow(method: str):
    # X's own p = 14 tells it a >= 14 before any release; a requirement down to the bound 0 is capped there
    problem = total_of_two(14.0, 1.0, lpl=15.0, insiders={"X": {0: 14.0}})
    result = protect(problem, method)
    assert result.suppressed[2] and audit(problem, result.suppressed).passed
