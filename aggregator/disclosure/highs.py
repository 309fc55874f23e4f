"""What the audit and the suppression share about driving HiGHS."""

from __future__ import annotations

import highspy
import numpy as np

# The plain C++ binding: `highspy.Highs()` registers Python callbacks for every solver event (a cost on each of
# the thousands of small solves) and prints its banner to stdout before any option can silence it, and library
# code must not print. pyproject.toml pins highspy below 2 so that this binding is there.
from highspy._core import _Highs


def silent_highs(**options: object) -> highspy.Highs:
    """A silent, single-threaded, deterministic HiGHS instance with the given extra options."""
    solver = _Highs()
    for option, value in {"output_flag": False, "threads": 1, "random_seed": 0, **options}.items():
        solver.setOptionValue(option, value)
    return solver


def pass_lp(h: highspy.Highs, cost, lower, upper, row_lo, row_hi, start, index, value, integer=False) -> None:
    """Load a row-wise LP (or MIP when `integer`) into `h`."""
    lp = highspy.HighsLp()
    lp.num_col_ = len(cost)
    lp.num_row_ = len(row_lo)
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(lower, dtype=float)
    lp.col_upper_ = np.asarray(upper, dtype=float)
    lp.row_lower_ = np.asarray(row_lo, dtype=float)
    lp.row_upper_ = np.asarray(row_hi, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.asarray(start, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value, dtype=float)
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * len(cost)
    h.passModel(lp)


def run_warm_then_cold(solver: highspy.Highs) -> highspy.HighsModelStatus:
    """Solve from the last basis; if that does not end optimal, solve again from scratch.

    A warm start can stall on badly scaled data (values from 1e-3 to 1e10 in one component: status unknown,
    seen in the property tests); only a cold start's verdict is believed."""
    solver.run()
    status = solver.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        solver.clearSolver()
        solver.run()
        status = solver.getModelStatus()
    return status
