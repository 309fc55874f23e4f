"""What the audit and the suppression share about driving HiGHS."""

from __future__ import annotations

import math

import highspy
import numpy as np

# The plain C++ binding: `highspy.Highs()` registers Python callbacks for every solver event (a cost on each of
# the thousands of small solves) and prints its banner to stdout before any option can silence it, and library
# code must not print. pyproject.toml pins highspy (1.16.0), so this binding is there.
from highspy._core import _Highs

# HiGHS's tolerances are absolute (1e-7): with bounds near 1e10 (amounts in euros) double precision cannot meet
# them and a solve ends "unknown", so the release is refused. HiGHS can scale every bound by a power of two, which
# is exact, and gives solutions and duals back in the model's own units; models whose largest finite bound
# passes _SCALE_ABOVE are brought down to about _SCALE_TO.
_SCALE_ABOVE = 2.0**20
_SCALE_TO = 2.0**10


def silent_highs(magnitude: float = 0.0, **options: object) -> highspy.Highs:
    """A silent, single-threaded, deterministic HiGHS instance with the given extra options, its bounds scaled
    for a model whose largest finite bound or right-hand side is `magnitude` (see `largest_bound`)."""
    solver = _Highs()
    settings = {"output_flag": False, "threads": 1, "random_seed": 0, **options}
    if magnitude > _SCALE_ABOVE:
        settings["user_bound_scale"] = -_scale_exponent(magnitude)
    for option, value in settings.items():
        solver.setOptionValue(option, value)
    return solver


def row_scale(magnitude: float) -> float:
    """The power of two that brings a row whose largest coefficient or right-hand side is `magnitude` to about
    _SCALE_TO (1 for rows within _SCALE_ABOVE): for rows of a MIP, whose integer columns cannot scale."""
    return 2.0 ** -_scale_exponent(magnitude) if magnitude > _SCALE_ABOVE else 1.0


def _scale_exponent(magnitude: float) -> int:
    return math.ceil(math.log2(magnitude / _SCALE_TO))


def largest_bound(*arrays: np.ndarray) -> float:
    """The largest finite magnitude among the given bounds and right-hand sides (0 when there is none)."""
    finite = [np.abs(a[np.isfinite(a)]) for a in (np.asarray(x, dtype=float) for x in arrays)]
    return max((float(f.max()) for f in finite if f.size), default=0.0)


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
