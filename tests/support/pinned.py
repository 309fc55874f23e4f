"""Outputs pinned in a JSON file under tests/vectors/, rewritten on request (the pinned-output tests)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aggregator.disclosure.model import ProtectionProblem
from bench.problems import table_problem

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def pinned_outputs(name: str, rewrite_variable: str, compute: Callable[[], dict]) -> dict:
    """The outputs pinned in tests/vectors/<name>; when the environment sets `rewrite_variable`, `compute()`
    writes them afresh first (after a deliberate change, once its new figures are checked)."""
    path = VECTORS / name
    if os.environ.get(rewrite_variable):
        path.write_text(json.dumps(compute(), indent=0, sort_keys=True) + "\n", encoding="utf-8")
    return json.loads(path.read_text(encoding="utf-8"))


def chessboard() -> tuple[ProtectionProblem, np.ndarray]:
    """A 6 x 6 body with margins shared by 12 contributors; every other body cell hidden, a third of those
    primary with a protection of 1: every insider is checked, few need an LP of their own."""
    rng = np.random.default_rng(7)
    amounts = np.where(rng.random((12, 6, 6)) < 0.5, rng.integers(1, 50, (12, 6, 6)), 0).astype(float)
    problem = table_problem(contributions={f"w{k:02d}": amounts[k] for k in range(12)})
    body = np.arange(7 * 7).reshape(7, 7)[:6, :6]  # cell (i, j); the total "T" comes last in each dimension
    hidden = np.zeros(problem.size, dtype=bool)
    hidden[[int(body[i, j]) for i in range(6) for j in range(6) if (i + j) % 2 == 0]] = True
    problem.primary = np.zeros(problem.size, dtype=bool)
    problem.primary[np.flatnonzero(hidden)[::3]] = True
    problem.upl = np.where(problem.primary, 1.0, 0.0)
    problem.lpl = problem.upl.copy()
    return problem, hidden
