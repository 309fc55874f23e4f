"""Releases as a series: the change of a cell between two months is a cell of its own.

A reader who holds January and February subtracts them. Where only a few companies' figures differ (one skipped
a month, joined, left or changed a figure), the difference is their contribution. So for two months m1 < m2
and every cell present in both, the *difference* D = C[m2] - C[m1] (the current cells, as the data stand now)
is judged by the primary rules like any cell: its contributors are the companies whose figures differ
(absent in one month counts as differing), its contributions their changes. An unsafe difference enters the
combined problem as `C[m2] = C[m1] + D`, hidden and primary; secondary suppression may then hide cells of the
new release (the earlier ones are fixed) to protect it. A safe difference adds nothing: it is implied by the
two months' cells and needs no protection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from aggregator.cellkey import CellKey, ViewKind
from aggregator.disclosure.contributions import Contributions, lexsort
from aggregator.disclosure.model import CellStats, PrimaryResult, RuleParams
from aggregator.disclosure.rules import evaluate_primary
from imvo_submit.periods import Period

from .builder import ProblemBuilder
from .snapshot import Snapshot

RulesOf = Callable[[str], RuleParams]  # table id -> the rules judging a difference of its cells
CHANGE_TOLERANCE = 1e-9  # of the larger of the two cells (at least 1): a smaller change is no change


@dataclass(frozen=True)
class MonthCells:
    """One month's current cells: the snapshot and the builder's cell id of each of its cells."""

    snapshot: Snapshot
    ids: list[int]

    def bases(self) -> dict[CellKey, int]:
        """Base key -> cell of the snapshot, for the cells a difference can be taken of (not helpers)."""
        snap = self.snapshot
        return {base: i for i, base in enumerate(snap.bases) if snap.linkable(i)}


def month_pairs(months: Iterable[Period], new_months: Iterable[Period] | None) -> list[tuple[Period, Period]]:
    """(earlier, later) pairs of distinct months: every pair with a month of the new release, or (no new
    release: auditing the ledger) every pair."""
    months = sorted(set(months))
    wanted = set(months) if new_months is None else set(new_months)
    return [(a, b) for i, a in enumerate(months) for b in months[i + 1 :] if a in wanted or b in wanted]


def link_differences(
    b: ProblemBuilder,
    current: Mapping[Period, MonthCells],
    pairs: Iterable[tuple[Period, Period]],
    rules_of: RulesOf,
    epoch_of: Callable[[Period, Period], int],
) -> int:
    """Add every unsafe difference between two months' current cells to the builder, with its relation and
    its contributors' changes; returns how many were added."""
    added = 0
    for first, second in pairs:
        if first in current and second in current:
            added += _link_pair(b, current[first], current[second], rules_of, epoch_of(first, second))
    return added


def _link_pair(b: ProblemBuilder, one: MonthCells, two: MonthCells, rules_of: RulesOf, epoch: int) -> int:
    bases_one, bases_two = one.bases(), two.bases()
    common = sorted(set(bases_one) & set(bases_two))
    if not common:
        return 0
    at_one = np.array([bases_one[k] for k in common], dtype=np.int64)
    at_two = np.array([bases_two[k] for k in common], dtype=np.int64)
    changes = _changes(one.snapshot, two.snapshot, at_one, at_two)
    tables = [two.snapshot.tables[i] for i in at_two]
    unsafe, protection = _judge(changes, len(common), tables, rules_of)
    cells = np.full(len(common), -1, dtype=np.int64)
    span = f"{one.snapshot.period}..{two.snapshot.period}"
    for p in np.flatnonzero(unsafe).tolist():
        cells[p] = _add_difference(b, common[p].in_view(ViewKind.DIFFERENCE, span), one.ids[at_one[p]],
                                   two.ids[at_two[p]], float(protection[p]), epoch)  # fmt: skip
    kept = cells[changes.cell] >= 0
    b.own.append(Contributions(changes.names, changes.who[kept], cells[changes.cell[kept]], changes.value[kept]))
    return int(unsafe.sum())


def _changes(one: Snapshot, two: Snapshot, at_one: np.ndarray, at_two: np.ndarray) -> Contributions:
    """Per common cell p (position in at_one/at_two) and contributor: its figure in the second month minus its
    figure in the first (0 where it has none), where that is not ~0. Sorted by cell, then contributor."""
    parts = []
    for snap, at, sign in ((one, at_one, -1.0), (two, at_two, 1.0)):
        own = snap.problem.insiders
        position = np.full(snap.problem.size, -1, dtype=np.int64)
        position[at] = np.arange(len(at))
        cell = position[own.cell]  # int64 cell indices, empty or not
        keep = cell >= 0
        parts.append(Contributions(own.names, own.who[keep], cell[keep], sign * own.value[keep]))
    joined = Contributions.concat(parts)
    order = lexsort((joined.who, joined.cell))
    who, cell, value = joined.who[order], joined.cell[order], joined.value[order]
    first = np.ones(len(cell), dtype=bool)  # the first record of each (cell, contributor)
    first[1:] = (who[1:] != who[:-1]) | (cell[1:] != cell[:-1])
    change = np.bincount(np.cumsum(first) - 1, weights=value, minlength=int(first.sum()))
    sizes = (np.ones(len(at_one)), np.abs(one.problem.values[at_one]), np.abs(two.problem.values[at_two]))
    scale = np.maximum.reduce(sizes)
    head = np.flatnonzero(first)
    changed = np.abs(change) > CHANGE_TOLERANCE * scale[cell[head]]
    return Contributions(joined.names, who[head][changed], cell[head][changed], change[changed])


def _judge(changes: Contributions, size: int, tables: list[str], rules_of: RulesOf) -> tuple[np.ndarray, np.ndarray]:
    """(unsafe, protection) per common cell: the primary rules of its table on the changed contributors'
    absolute changes (a lone company's change is a threshold case however large the cell)."""
    unsafe, protection = np.zeros(size, dtype=bool), np.zeros(size)
    by_table: dict[str, list[int]] = {}
    for p, table in enumerate(tables):
        by_table.setdefault(table, []).append(p)
    for table, members in sorted(by_table.items()):
        params = rules_of(table)
        result = _rules_on_changes(changes, np.array(members, dtype=np.int64), size, params)
        unsafe[members] = result.unsafe
        protection[members] = np.maximum(result.upl, result.lpl)
    return unsafe, protection


def _rules_on_changes(changes: Contributions, members: np.ndarray, size: int, params: RuleParams) -> PrimaryResult:
    """The rules on the cells `members`, each made of its changed contributors' |changes|."""
    k = params.top_k
    position = np.full(size, -1, dtype=np.int64)
    position[members] = np.arange(len(members))
    mine = position[changes.cell] >= 0
    cell, size_of = position[changes.cell[mine]], np.abs(changes.value[mine])
    order = np.lexsort((-size_of, cell))
    cell, size_of = cell[order], size_of[order]
    n = np.bincount(cell, minlength=len(members))
    rank = np.arange(len(cell)) - (np.cumsum(n) - n)[cell]
    top = np.zeros((len(members), k))
    within = rank < k
    top[cell[within], rank[within]] = size_of[within]
    total = np.bincount(cell, weights=size_of, minlength=len(members))
    stats = CellStats(total=total, n=n, top=top, waived=np.zeros(len(members)), n_all=n.copy(),
                      has_negative=np.zeros(len(members), dtype=bool))  # fmt: skip
    return evaluate_primary(stats, replace(params, negative_values="absolute"))


def _add_difference(b: ProblemBuilder, key: CellKey, first: int, second: int, protection: float, epoch: int) -> int:
    """The hidden difference cell second - first, with its relation second = first + difference. Its a-priori
    range follows from the two cells' bounds; the relations may imply a narrower one (bounds.py)."""
    lo, hi, value = b.columns["lower"], b.columns["upper"], b.columns["value"]
    difference = float(value[second]) - float(value[first])
    cell = b.add(
        key,
        months=b.months[first] | b.months[second],
        value=difference,
        lower=min(float(lo[second]) - float(hi[first]), difference),
        upper=max(float(hi[second]) - float(lo[first]), difference),
        upl=protection,
        lpl=protection,
        primary=True,
        fixed=False,
        cost=0.0,
        epoch=epoch,
    )
    b.relations.append((second, tuple(sorted((first, cell)))))
    return cell
