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
from test_audit import table_problem

from aggregator.disclosure.audit import audit
from aggregator.disclosure.contributions import Contributions
from aggregator.disclosure.model import ProtectionProblem


@st.composite
def shared_tables(draw: st.DrawFn) -> tuple[ProtectionProblem, np.ndarray]:
    """An r x c table whose body cells are shared by up to five contributors (margins are their sums), with
    random primary cells, protection and pattern (primary cells always hidden)."""
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    n_who = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # each contributor reports in some cells; a lognormal-ish spread makes dominant contributors common
    present = rng.random((n_who, rows, cols)) < draw(st.floats(0.2, 0.9))
    amounts = np.where(present, np.round(rng.lognormal(2.0, 1.2, (n_who, rows, cols)), 1), 0.0)
    body = amounts.sum(axis=0)
    # tight a-priori upper bounds too: moves reflected through the truth must stay within them
    problem = table_problem(body, upper=draw(st.sampled_from([1.0, 1.1, 1.5])) * max(1.0, 2 * float(body.sum())))
    n_body = rows * cols
    # contributions to every cell, margins included (row totals, column totals, grand total)
    own = np.concatenate(
        [
            amounts.reshape(n_who, n_body),
            amounts.sum(axis=2),
            amounts.sum(axis=1),
            amounts.sum(axis=(1, 2))[:, None],
        ],
        axis=1,
    )
    problem.insiders = Contributions.of(
        {f"w{k}": {int(c): float(own[k, c]) for c in np.flatnonzero(own[k] > 0)} for k in range(n_who)}
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
    from aggregator.disclosure.suppression.fast import _close_pattern, _Pattern
    from aggregator.disclosure.suppression.structure import build_structure
    from bench.realistic import realistic_problem

    problem = realistic_problem(6, 2, (3, 2), 40, seed)
    pattern = _Pattern(build_structure(problem), problem.primary.astype(bool))
    _close_pattern(pattern, list(np.flatnonzero(pattern.hidden)))
    pruned = audit(problem, pattern.hidden)
    exhaustive = audit(problem, pattern.hidden, insider_pruning=False)
    assert _verdicts(pruned) == _verdicts(exhaustive)
    assert pruned.lp_solves < exhaustive.lp_solves


def test_pruning_spares_lps_on_a_table_with_many_contributors() -> None:
    # 6 x 6 body, 12 contributors; a chessboard of hidden cells: every insider is checked, few need an LP
    rng = np.random.default_rng(7)
    amounts = np.where(rng.random((12, 6, 6)) < 0.5, rng.integers(1, 50, (12, 6, 6)), 0).astype(float)
    problem = table_problem(amounts.sum(axis=0))
    own = amounts.reshape(12, 36)
    problem.insiders = Contributions.of(
        {f"w{k:02d}": {int(c): float(own[k, c]) for c in np.flatnonzero(own[k])} for k in range(12)}
    )
    hidden = np.zeros(problem.size, dtype=bool)
    hidden[[i * 6 + j for i in range(6) for j in range(6) if (i + j) % 2 == 0]] = True
    problem.primary[:36:7] = True
    problem.upl[problem.primary] = problem.lpl[problem.primary] = 1.0
    pruned = audit(problem, hidden)
    exhaustive = audit(problem, hidden, insider_pruning=False)
    assert _verdicts(pruned) == _verdicts(exhaustive)
    assert pruned.lp_solves * 2 < exhaustive.lp_solves
