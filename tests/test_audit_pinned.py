"""The audit's full output on fixed instances, pinned: verdicts, intervals and the number of LPs it solved.

The other audit tests check verdicts against a plain LP and the pruned insider audit against the exhaustive
one; neither notices a change that keeps the verdicts but alters how the audit gets there (a pruning step that
stops settling sides, a shared point no longer reused) until a table is large enough for it to cost minutes.
Every output here is deterministic, so this file pins it. After a deliberate change to the audit, check the
new figures (the verdicts must not move; fewer LPs is the point of most changes) and write them again with

    AUDIT_PIN_REWRITE=1 .venv/bin/python -m pytest tests/test_audit_pinned.py
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import AuditResult, ProtectionProblem
from bench.problems import table_problem
from bench.realistic import greedy_pattern, realistic_problem
from support.pinned import chessboard, pinned_outputs

PINNED = "audit_pinned.json"


def companies(countries: int, flat: tuple[int, int], n: int, seed: int) -> tuple[ProtectionProblem, np.ndarray]:
    """bench.realistic's company tables (holdings, the three rules) under the greedy pattern: many failures."""
    problem = realistic_problem(countries, 2, flat, n, seed)
    return problem, greedy_pattern(problem)


def shared(seed: int, upper_factor: float) -> tuple[ProtectionProblem, np.ndarray]:
    """A small table shared by five contributors with random primary and hidden cells; tight a-priori upper
    bounds (factor 1.0) keep moves reflected through the truth from staying feasible."""
    rng = np.random.default_rng(seed)
    rows, cols = 3 + seed % 2, 4 + seed % 3
    present = rng.random((5, rows, cols)) < 0.6
    amounts = np.where(present, np.round(rng.lognormal(2.0, 1.2, (5, rows, cols)), 1), 0.0)
    problem = table_problem(contributions={f"w{k}": amounts[k] for k in range(5)}, upper_factor=upper_factor)
    primary = (rng.random(problem.size) < 0.5) & (problem.values > 0)
    problem.primary = primary
    problem.upl = np.where(primary, np.maximum(1.0, 0.2 * problem.values), 0.0)
    problem.lpl = np.where(primary, np.minimum(problem.upl, problem.values), 0.0)
    return problem, primary | (rng.random(problem.size) < 0.4)


def with_history(problem: ProtectionProblem, hidden: np.ndarray, seed: int) -> tuple[ProtectionProblem, np.ndarray]:
    """The same table as the second of two releases: some published cells were published by the first."""
    rng = np.random.default_rng(seed)
    problem.epoch = np.full(problem.size, 2)
    earlier = ~hidden & (rng.random(problem.size) < 0.5)
    problem.fixed = earlier
    problem.epoch[earlier] = 1
    return problem, hidden


CASES: dict[str, Callable[[], tuple[ProtectionProblem, np.ndarray]]] = {
    "chessboard": chessboard,
    "companies-1": lambda: companies(6, (3, 2), 40, 1),
    "companies-2": lambda: companies(6, (3, 2), 40, 2),
    "companies-3": lambda: companies(6, (3, 2), 40, 3),
    "companies-5": lambda: companies(8, (3, 3), 60, 5),
    **{f"shared-{s}-{f}": (lambda s=s, f=f: shared(s, f)) for s in range(4) for f in (1.0, 1.1)},
    "history-companies-2": lambda: with_history(*companies(6, (3, 2), 40, 2), seed=2),
    "history-shared-1": lambda: with_history(*shared(1, 1.1), seed=1),
}


def outputs(result: AuditResult) -> dict:
    def numbers(values: np.ndarray) -> list[float | None]:
        return [None if math.isnan(v) else float(v) for v in values.tolist()]

    return {
        "lp_solves": result.lp_solves,
        "exact_disclosures": result.exact_disclosures,
        "insiders_checked": result.insiders_checked,
        "failures": [[int(c), who, reason, float(lo), float(hi)] for c, who, lo, hi, reason in result.failures],
        "lo": numbers(result.lo),
        "hi": numbers(result.hi),
    }


def run_case(name: str, mode: str) -> dict:
    problem, hidden = CASES[name]()
    if mode == "repair":  # a repair loop's second audit: the first one's components and moves in the cache
        cache: dict = {}
        audit(problem, hidden & problem.primary, cache=cache, verdict_only=True)
        return outputs(audit(problem, hidden, cache=cache, verdict_only=True))
    if mode == "outsider":
        return outputs(audit(problem, hidden, verdict_only=True, insiders=False))
    if mode == "exhaustive":  # every insider's own LPs: the reference the pruned audit is held to
        return outputs(audit(problem, hidden, insider_pruning=False))
    return outputs(audit(problem, hidden, verdict_only=mode == "verdict"))


MODES = ("full", "verdict", "repair", "outsider", "exhaustive")
KEYS = [f"{name}/{mode}" for name in CASES for mode in MODES]


@pytest.fixture(scope="module")
def pinned() -> dict:
    return pinned_outputs(PINNED, "AUDIT_PIN_REWRITE", lambda: {key: run_case(*key.split("/")) for key in KEYS})


@pytest.mark.parametrize("key", KEYS)
def test_the_audit_output_on_a_fixed_instance_is_the_pinned_one(key: str, pinned: dict) -> None:
    found, expected = run_case(*key.split("/")), pinned[key]
    assert [f[:3] for f in found["failures"]] == [f[:3] for f in expected["failures"]]
    bounds = [b for f in found["failures"] for b in f[3:]]
    assert bounds == pytest.approx([b for f in expected["failures"] for b in f[3:]], abs=1e-6)
    for side in ("lo", "hi"):
        assert [v is None for v in found[side]] == [v is None for v in expected[side]]
        assert [v for v in found[side] if v is not None] == pytest.approx(
            [v for v in expected[side] if v is not None], abs=1e-6
        )
    counts = ("lp_solves", "exact_disclosures", "insiders_checked")
    assert {k: found[k] for k in counts} == {k: expected[k] for k in counts}


def test_the_pinned_instances_exercise_what_they_are_for(pinned: dict) -> None:
    # failures by outsiders and insiders, on both sides, and work the cache spares in the repair loop
    reasons = {(f[1] == "outsider", f[2]) for key in KEYS for f in pinned[key]["failures"]}
    assert {(True, "exact disclosure"), (False, "upper protection not met")} <= reasons
    assert any(reason.startswith("lower") for _, reason in reasons)
    assert all(pinned[f"{n}/repair"]["lp_solves"] <= pinned[f"{n}/verdict"]["lp_solves"] for n in CASES)
