"""The pruned insider audit gives the same verdicts as the exhaustive one (docs/rules.md, "Insider pruning").

The exhaustive audit solves, for every insider and every hidden primary cell it has no part in, that insider's
own min and max LP. The pruned one settles sides with points that respect several insiders' floors at once and
gives LPs only to the insiders whose floors cut off such a point.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.disclosure.audit import audit, insider_intervals
from aggregator.disclosure.model import ProtectionProblem
from aggregator.disclosure.suppression import protect
from bench.problems import table_problem
from bench.realistic import greedy_pattern, realistic_problem
from support.pinned import chessboard


@st.composite
def shared_tables(draw: st.DrawFn) -> tuple[ProtectionProblem, np.ndarray]:
    """An r x c table with margins whose body cells are shared by up to five contributors, with random primary
    cells, protection, a-priori upper bound (tight ones too: moves reflected through the truth must stay
    within them) and pattern (primary cells always hidden)."""
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    n_who = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # each contributor reports in some cells; a lognormal spread makes dominant contributors common
    present = rng.random((n_who, rows, cols)) < draw(st.floats(0.2, 0.9))
    amounts = np.where(present, np.round(rng.lognormal(2.0, 1.2, (n_who, rows, cols)), 1), 0.0)
    if not amounts.any():
        amounts[0, 0, 0] = 1.0
    problem = table_problem(
        contributions={f"w{k}": amounts[k] for k in range(n_who)},
        upper_factor=draw(st.sampled_from([1.0, 1.1, 1.5])),
    )
    primary = np.array(draw(st.lists(st.booleans(), min_size=problem.size, max_size=problem.size)))
    primary &= problem.values > 0
    problem.primary = primary
    share = draw(st.sampled_from([0.05, 0.2, 0.5, 1.0]))
    problem.upl = np.where(primary, np.maximum(1.0, share * problem.values), 0.0)
    problem.lpl = np.where(primary, np.minimum(problem.upl, problem.values), 0.0)
    extra = np.array(draw(st.lists(st.booleans(), min_size=problem.size, max_size=problem.size)))
    return problem, primary | extra


def _verdicts(result) -> set[tuple[int, str, str]]:
    return {(cell, who, reason) for cell, who, _, _, reason in result.failures}


@settings(max_examples=150, deadline=None)
@given(shared_tables(), st.booleans())
def test_pruned_insider_audit_gives_the_exhaustive_verdicts(case, verdict_only: bool) -> None:
    problem, hidden = case
    pruned = audit(problem, hidden, verdict_only=verdict_only)
    exhaustive = audit(problem, hidden, verdict_only=verdict_only, insider_pruning=False)
    assert _verdicts(pruned) == _verdicts(exhaustive)
    assert pruned.insiders_checked == exhaustive.insiders_checked
    lows = {(c, w): (lo, hi) for c, w, lo, hi, _ in exhaustive.failures}
    for cell, who, lo, hi, _ in pruned.failures:
        assert (lo, hi) == pytest.approx(lows[(cell, who)], abs=1e-6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pruned_insider_audit_gives_the_exhaustive_verdicts_on_small_company_tables(seed: int) -> None:
    # bench.realistic's shape (3-D, country -> region, holdings, the three rules) at a small size, under the
    # greedy pattern fast starts from (many insider failures, many insiders per component)
    problem = realistic_problem(6, 2, (3, 2), 40, seed)
    hidden = greedy_pattern(problem)
    pruned = audit(problem, hidden)
    exhaustive = audit(problem, hidden, insider_pruning=False)
    assert _verdicts(pruned) == _verdicts(exhaustive)
    assert pruned.lp_solves < exhaustive.lp_solves


def test_pruning_spares_lps_on_a_table_with_many_contributors() -> None:
    # 6 x 6 body with margins, 12 contributors; a chessboard of hidden body cells: every insider is checked,
    # few need an LP of their own
    problem, hidden = chessboard()
    pruned = audit(problem, hidden)
    exhaustive = audit(problem, hidden, insider_pruning=False)
    assert _verdicts(pruned) == _verdicts(exhaustive)
    assert pruned.lp_solves * 2 < exhaustive.lp_solves


def test_protect_of_a_small_company_table_is_deterministic_and_passes_the_exhaustive_audit() -> None:
    problem = realistic_problem(8, 2, (3, 3), 60, 5)
    first, second = protect(problem, "fast"), protect(problem, "fast")
    np.testing.assert_array_equal(first.suppressed, second.suppressed)
    assert audit(problem, first.suppressed, insider_pruning=False).passed


@settings(max_examples=80, deadline=None)
@given(shared_tables())
def test_each_insiders_interval_holds_the_truth_within_the_outsiders_and_gives_the_audits_verdicts(case) -> None:
    # The secretariat's insiders.xlsx: every insider's own interval for the hidden primary cells it is judged
    # on. An insider knows more than an outsider, so its interval lies within the outsider's; the truth is in
    # both; and the intervals that fail are exactly the insider failures of the (exhaustive) audit.
    problem, hidden = case
    checked = audit(problem, hidden, insider_pruning=False)
    rows = insider_intervals(problem, hidden)
    assert rows == sorted(rows) and len({(r.cell, r.insider) for r in rows}) == len(rows)
    for r in rows:
        assert hidden[r.cell] and problem.primary[r.cell]
        assert r.lo - 1e-6 <= problem.values[r.cell] <= r.hi + 1e-6
        assert checked.lo[r.cell] - 1e-6 <= r.lo and r.hi <= checked.hi[r.cell] + 1e-6
    failed = {(c, w, lo, hi) for c, w, lo, hi, _ in checked.failures if w != "outsider"}
    assert {(r.cell, r.insider, r.lo, r.hi) for r in rows if not r.passed} == failed
    outsider_failed = {c for c, w, *_ in checked.failures if w == "outsider"}
    assert not outsider_failed & {r.cell for r in rows}


def test_insider_intervals_list_each_insider_of_a_chessboard() -> None:
    # 12 contributors, a chessboard of hidden body cells: the insiders judged on a cell are the contributors
    # to the other hidden cells of its component that have no part in it, each with an interval of its own
    problem, hidden = chessboard()
    rows = insider_intervals(problem, hidden)
    names = problem.insiders.names
    for cell in {r.cell for r in rows}:
        owners = {str(names[w]) for w, c in zip(problem.insiders.who, problem.insiders.cell, strict=True) if c == cell}
        insiders = {r.insider for r in rows if r.cell == cell}
        assert insiders and not insiders & owners
    assert len({r.insider for r in rows}) > 1 and all(r.passed for r in rows) == audit(problem, hidden).passed
