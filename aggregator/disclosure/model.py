"""The data that flows through disclosure control: cell statistics in, a protection problem, a pattern out.

Aggregation (DuckDB) produces `CellStats` per table component and the additivity relations between cells;
the primary rules turn stats into requirements; suppression and the audit work on a `ProtectionProblem`,
which is the attacker's view of a whole release (all linked tables in one system of equations).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from aggregator.cellkey import CellKey
from aggregator.disclosure.contributions import Contributions


@dataclass(frozen=True)
class RuleParams:
    """Primary-rule parameters of one table for one audience (from the protocol's [disclosure] sections).

    Boundaries are documented in docs/rules.md. A rule is off when its field is None / empty.
    """

    min_contributors: int = 5  # threshold rule: unsafe when 0 < N < min_contributors
    safety_range_percent: float = 10.0  # protection required for threshold-rule cells, % of X (at least 1)
    dominance: tuple[tuple[int, float], ...] = ((1, 25.0),)  # (n, k): unsafe when T_n > k/100 * X
    p_percent: tuple[float, int] | None = None  # (p, coalition c): unsafe when X - T_(c+1) < p/100 * x1
    pq: tuple[float, float, int] | None = None  # (p, q, c): unsafe when X - T_(c+1) < p/q * x1
    zero_cell_protection: float | None = None  # when set, X == 0 with N > 0 is unsafe, needing this UPL
    negative_values: str = "refuse"  # "refuse" (error naming the cell) | "absolute" (rules on |x|)

    @property
    def top_k(self) -> int:
        """How many of the largest contributions per cell the rules need."""
        needs = [n for n, _ in self.dominance] + [1]
        if self.p_percent:
            needs.append(self.p_percent[1] + 1)
        if self.pq:
            needs.append(self.pq[2] + 1)
        return max(needs)


@dataclass
class CellStats:
    """Per-cell statistics needed by the primary rules, one entry per cell (arrays of equal length).

    Contributions are summed per contributor (company or group) before these are computed. Waived
    contributors (who consented to publication) are left out of `n` and `top` and reported in `waived`.
    """

    total: np.ndarray  # X: the published value of the cell (all contributions, waived ones included)
    n: np.ndarray  # N: number of non-waived contributors with a record in the cell
    top: np.ndarray  # shape (cells, K): largest non-waived contributions, descending, zero-padded
    waived: np.ndarray  # sum of waived contributors' contributions in the cell
    n_all: np.ndarray  # number of contributors, waived ones included (0 means an empty cell)
    has_negative: np.ndarray  # bool: some contributor's summed contribution is negative


@dataclass
class PrimaryResult:
    """What the primary rules decided for each cell; reasons stay internal to the secretariat."""

    unsafe: np.ndarray  # bool
    upl: np.ndarray  # required upper protection (0 where safe)
    lpl: np.ndarray  # required lower protection (0 where safe)
    reasons: list[tuple[str, ...]]  # per cell: names of the rules that fired, e.g. ("threshold", "p%")


@dataclass
class ProtectionProblem:
    """The attacker's view of one release, as a system of linear relations over cells.

    Cell i has true value `values[i]`. Every relation (t, parts) states values[t] == sum(values[parts]).
    An attacker knows every published cell exactly, the relations, and the a-priori bounds. A hidden
    cell i is protected when the attacker's tightest interval [lo, hi] satisfies
    hi >= values[i] + upl[i] and lo <= values[i] - lpl[i].
    """

    keys: list[CellKey]  # unique; their order breaks ties (patterns never depend on table order)
    values: np.ndarray
    relations: list[tuple[int, tuple[int, ...]]]
    lower: np.ndarray  # a-priori lower bounds (0 for non-negative data)
    upper: np.ndarray  # a-priori upper bounds (by default 1.5 x the largest cell)
    upl: np.ndarray
    lpl: np.ndarray
    primary: np.ndarray  # bool: must be suppressed
    cost: np.ndarray  # cost of suppressing each cell (protocol: value, contributors, unity)
    fixed: np.ndarray  # bool: already published (earlier release or forced safe): never suppressed
    # the insiders' own summed contributions to the cells (a contributor -> {cell: amount} mapping is taken
    # too, for hand-built problems); the insider audit attacks with them
    insiders: Contributions | Mapping[str, Mapping[int, float]] = field(default_factory=Contributions.empty)
    # When each cell became known, in release order (None: a single release, nothing known before it). A
    # fixed cell with a smaller epoch than a primary cell was published before that cell's release: prior
    # knowledge. A release cannot take back what was published before it, so each requirement is capped at
    # what the attacker could already reach from prior knowledge alone (docs/rules.md, "Prior knowledge").
    epoch: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.insiders = Contributions.of(self.insiders)

    @property
    def size(self) -> int:
        return len(self.keys)

    def epochs(self) -> np.ndarray:
        """`epoch` as an int array (all zero when unset)."""
        if self.epoch is None:
            return np.zeros(self.size, dtype=np.int64)
        return np.asarray(self.epoch, dtype=np.int64)


def insider_floor(lower: np.ndarray, own: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The least value a contributor knows its cells have: its own share plus the least the others' share
    can be (0 with non-negative data, since it may be alone in the cell; the a-priori lower bound when data
    may be negative), and at least the cell's a-priori lower bound (a hidden count is at least 1 whoever
    contributes). Never above the true value, which is always feasible. The audit and the suppression
    share it (docs/rules.md)."""
    lower = np.asarray(lower, dtype=float)
    return np.minimum(np.maximum(lower, own + np.minimum(lower, 0.0)), values)


@dataclass
class AuditResult:
    """The attacker's tightest intervals for every hidden cell and whether each met its protection."""

    lo: np.ndarray  # NaN for published cells
    hi: np.ndarray
    # (cell index, attacker: "outsider" or a contributor id, lo, hi, reason) for every unmet requirement
    failures: list[tuple[int, str, float, float, str]]
    exact_disclosures: int  # hidden cells whose interval collapsed to a point
    insiders_checked: int
    lp_solves: int

    @property
    def passed(self) -> bool:
        return not self.failures
