"""Secondary suppression: hide as little as possible so that no primary cell can be recomputed.

One door: `protect(problem, method)`. Two methods share one attacker model (docs/suppression.md):

- "optimal" (optimal.py): a 0/1 model in HiGHS in the spirit of Fischetti & Salazar-Gonzalez (2001). Protection
  constraints are not written out; they are generated as Benders (capacity) cuts (cuts.py) from the dual of the
  attacker LPs (attack.py) of the current pattern, for the outsider and for every insider, until none is violated.
- "fast" (fast.py): a greedy pattern (every hidden cell gets a hidden partner in each relation, chosen by cost
  with a one-step look-ahead) followed by audit-and-repair driven by the same cuts. Scales to 100k+ cells.

Both return a pattern that passes our attacker check (outsider and insiders) and is confirmed by the
independent audit (`aggregator.disclosure.audit`).
"""

from aggregator.disclosure.suppression.protect import (
    AUTO_OPTIMAL_MAX_CELLS,
    SuppressionResult,
    check_pattern,
    independent_blocks,
    lp_lower_bound,
    protect,
    subproblem,
)

__all__ = [
    "AUTO_OPTIMAL_MAX_CELLS",
    "SuppressionResult",
    "check_pattern",
    "independent_blocks",
    "lp_lower_bound",
    "protect",
    "subproblem",
]
