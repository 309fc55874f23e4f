"""What the audit and the suppression share about driving HiGHS."""

from __future__ import annotations

import highspy


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
