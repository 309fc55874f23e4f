"""One protection problem over a new release, the earlier releases it is related to and the current data.

Model (docs/protocols.md, "Release history"):

- the *current* cells of every month involved, C[m], computed from the data in the store now;
- every earlier release's cells: published ones are fixed facts, hidden ones stay hidden with the protection
  they had (primary) or none (secondary);
- per earlier cell e covering months S: e = sum over m in S of C[m] + change, where the hidden *change* cell is
  what the submissions that changed since contribute (old minus new); it is primary with the protection the
  rules give those changed contributions, so subtracting two releases cannot reveal a late company's figures;
- per new cell covering months S: new = sum over m in S of C[m].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from aggregator.aggregation.contributions import incidences
from aggregator.cellkey import CellKey, ViewKind
from aggregator.disclosure.contributions import Contributions, lexsort
from aggregator.disclosure.model import CellStats, ProtectionProblem, RuleParams
from aggregator.disclosure.rules import evaluate_primary
from imvo_submit.periods import Period

from .builder import ProblemBuilder
from .series import MonthCells, RulesOf, link_differences, month_pairs
from .snapshot import Snapshot

RulesFor = Callable[[str, str], RuleParams]  # (table id, audience id) -> the rules judging a change


@dataclass(frozen=True)
class HistoryProblem:
    """The new release and its history as one protection problem.

    The first `new_cells` cells are the new release's, in its own order. `known` (over the new cells) marks
    cells whose value an earlier release already published unchanged: fixed in the model (they add nothing),
    though a cell that fails the new audience's rules is still shown suppressed.
    """

    problem: ProtectionProblem
    new_cells: int
    known: np.ndarray
    earlier: list[str]
    differences: int = 0  # month-to-month differences the rules call unsafe (series.py)
    about: tuple[frozenset[Period], ...] = ()  # per cell, the months it is about


def combine(
    new: Snapshot | None,
    earlier: Sequence[Snapshot],
    current: Mapping[Period, Snapshot],
    params_of: RulesFor,
    *,
    differences: RulesOf | None = None,
) -> HistoryProblem:
    """One problem over the new release (if any), the earlier releases and the current month cells.

    `params_of(table_id, audience_id)` gives the rules that judge a change cell of an earlier release to that
    audience (the reader class's own, history_for). `differences`
    (table id -> rules) adds the unsafe month-to-month differences (series.py) of every pair of months with
    a month of the new release (all pairs without one)."""
    b = ProblemBuilder()
    earlier = sorted(earlier, key=lambda snap: (snap.sequence, snap.release_id))
    epochs = Epochs(new, earlier)
    new_ids = b.add_snapshot(new, None, new=True, epoch=epochs.new) if new is not None else []
    months = _CurrentCells(b, current, epochs)
    earlier_ids = [
        b.add_snapshot(snap, (ViewKind.EARLIER, snap.release_id), new=False, epoch=epochs.of[snap.release_id])
        for snap in earlier
    ]
    b.widen_bounds()  # before the change cells, whose bounds follow from their linked cells'
    unchanged: dict[tuple[CellKey, tuple[Period, ...]], int] = {}  # -> epoch of its first publication
    for snap, ids in zip(earlier, earlier_ids, strict=True):
        _link_earlier(b, snap, ids, months, params_of, epochs, unchanged)
    months.publish_unchanged(unchanged)
    known = _link_new(b, new, new_ids, months, unchanged)
    added = 0
    if differences is not None:
        cells = {m: MonthCells(snap, months.ids[m]) for m, snap in months.snaps.items()}
        pairs = month_pairs(cells, None if new is None else new.months)
        added = link_differences(b, cells, pairs, differences, epochs.difference)
    if new is not None:
        b.judge_only(new.months)
    b.merge_equal_cells(keep_apart=len(new_ids))
    earlier_ids = [s.release_id for s in earlier]
    return HistoryProblem(b.problem(), len(new_ids), known, earlier_ids, added, tuple(b.months))


class _CurrentCells:
    """The current cells of every month in the builder, found by (month, base key)."""

    def __init__(self, b: ProblemBuilder, current: Mapping[Period, Snapshot], epochs: Epochs):
        self.b = b
        self.snaps = dict(sorted(current.items()))
        self.own = {m: s.problem.insiders for m, s in self.snaps.items()}
        self.base = {
            m: {base: i for i, base in enumerate(s.bases) if not s.problem.keys[i].is_helper}
            for m, s in self.snaps.items()
        }
        self.ids = {
            m: b.add_snapshot(s, (ViewKind.CURRENT, str(m)), new=False, epoch=epochs.current(m))
            for m, s in self.snaps.items()
        }
        self.cell = {(m, base): self.ids[m][i] for m, bases in self.base.items() for base, i in bases.items()}

    def parts(self, snap: Snapshot, i: int) -> list[int]:
        """The current cells cell i of `snap` sums: one per month of its span that has data."""
        return [self.cell[(m, snap.bases[i])] for m in snap.spans[i] if (m, snap.bases[i]) in self.cell]

    def publish_unchanged(self, unchanged: Mapping[tuple[CellKey, tuple[Period, ...]], int]) -> None:
        """A month's current cell that an earlier release published unchanged is a known fact."""
        for m, snap in self.snaps.items():
            for i, cell in enumerate(self.ids[m]):
                first = unchanged.get((snap.bases[i], (m,)))
                if first is not None:
                    self.b.publish(cell, first)


def _link_earlier(
    b: ProblemBuilder,
    snap: Snapshot,
    ids: list[int],
    months: _CurrentCells,
    params_of: RulesFor,
    epochs: Epochs,
    unchanged: dict[tuple[CellKey, tuple[Period, ...]], int],
) -> None:
    """Each linkable cell of an earlier release = its current cells + its change cell (when it changed);
    the contributors' own changes become their contributions to the change cells."""
    changes = _changes(snap, months.own, months.base)
    bounds = np.searchsorted(changes.cell, np.arange(snap.problem.size + 1)).tolist()
    change_cell = np.full(snap.problem.size, -1, dtype=np.int64)
    for i in range(snap.problem.size):
        if not snap.linkable(i):
            continue
        parts = months.parts(snap, i)
        changed = _change_cell(b, snap, i, ids[i], parts, changes.value[bounds[i] : bounds[i + 1]], params_of, epochs)
        if changed is not None:
            change_cell[i] = changed
        elif not parts:
            continue  # an empty cell then and now: nothing to link
        b.relations.append((ids[i], tuple(sorted(parts + ([changed] if changed is not None else [])))))
        if changed is None and not snap.hidden[i]:
            where = (snap.bases[i], snap.spans[i])
            unchanged[where] = min(unchanged.get(where, epochs.of[snap.release_id]), epochs.of[snap.release_id])
    kept = change_cell[changes.cell] >= 0  # each contributor's own change is its contribution to the change cell
    b.own.append(Contributions(changes.names, changes.who[kept], change_cell[changes.cell[kept]], changes.value[kept]))


def _link_new(
    b: ProblemBuilder,
    new: Snapshot | None,
    new_ids: list[int],
    months: _CurrentCells,
    unchanged: Mapping[tuple[CellKey, tuple[Period, ...]], int],
) -> np.ndarray:
    """Each linkable new cell = its current cells; returns which new cells an earlier release published
    unchanged (known facts)."""
    known = np.zeros(len(new_ids), dtype=bool)
    if new is None:
        return known
    for i in range(new.problem.size):
        if not new.linkable(i):
            continue
        parts = months.parts(new, i)
        if parts:
            b.relations.append((new_ids[i], tuple(sorted(parts))))
        first = unchanged.get((new.bases[i], new.spans[i]))
        if first is not None:
            known[i] = True
            b.publish(new_ids[i], first)
    return known


class Epochs:
    """When each cell of the combined problem became known, in release order (ProtectionProblem.epoch).

    Earlier releases count 1, 2, ... in ledger order and the new release comes last. A month's current
    cells date from the latest release covering that month; a change to an earlier cell from the first
    release after it that touches its months: only from then on could anyone subtract the two."""

    def __init__(self, new: Snapshot | None, earlier: Sequence[Snapshot]):
        self.of = {snap.release_id: n for n, snap in enumerate(earlier, start=1)}
        self.new = len(earlier) + 1
        self.months: list[tuple[int, set[Period]]] = [(self.of[snap.release_id], snap.months) for snap in earlier]
        if new is not None:
            self.months.append((self.new, new.months))

    def current(self, month: Period) -> int:
        return max((e for e, months in self.months if month in months), default=self.new)

    def difference(self, first: Period, second: Period) -> int:
        """A difference between two months is known once both months are."""
        return max(self.current(first), self.current(second))

    def change(self, snap: Snapshot, i: int) -> int:
        after = [e for e, months in self.months if e > self.of[snap.release_id] and months & set(snap.spans[i])]
        return min(after, default=self.new + 1)


def _changes(
    snap: Snapshot, month_own: Mapping[Period, Contributions], month_base: Mapping[Period, dict[CellKey, int]]
) -> Contributions:
    """Per linkable cell of an earlier release, each contributor's own change: its contribution then minus
    its contributions now to the current cells of the same base over the months the cell spans (added up in
    the order of the months), where that is not ~0 (1e-9 of the cell). Sorted by cell, then contributor."""
    then = snap.problem.insiders
    size = snap.problem.size
    linkable = np.fromiter((snap.linkable(i) for i in range(size)), dtype=bool, count=size)
    links: dict[Period, list[tuple[int, int, int]]] = {}  # month -> (earlier cell, current cell, place in span)
    for i in np.flatnonzero(linkable).tolist():
        for k, m in enumerate(snap.spans[i]):
            j = month_base.get(m, {}).get(snap.bases[i])
            if j is not None:
                links.setdefault(m, []).append((i, j, k))
    batches = [then]
    places = [np.zeros(len(then.cell), dtype=np.int64)]
    for m, triples in sorted(links.items()):
        now, pairs = month_own[m], np.array(triples, dtype=np.int64)
        record, link = incidences(now.cell, pairs[:, 1])
        batches.append(Contributions(now.names, now.who[record], pairs[link, 0], now.value[record]))
        places.append(pairs[link, 2])
    joined = Contributions.concat(batches)
    is_then = np.zeros(len(joined), dtype=bool)
    is_then[: len(then)] = True
    keep = linkable[joined.cell]
    return _summed_changes(joined.where(keep), is_then[keep], np.concatenate(places)[keep], snap.problem.values)


def _summed_changes(joined: Contributions, is_then: np.ndarray, place: np.ndarray, values: np.ndarray) -> Contributions:
    """Per (cell, contributor): then - (0.0 + now_1 + now_2 ...), the months added in span order as record by
    record (bincount adds in input order); changes of ~0 left out."""
    order = lexsort((place, joined.who, joined.cell))
    who, cell, value, is_then = joined.who[order], joined.cell[order], joined.value[order], is_then[order]
    pair = np.r_[True, (who[1:] != who[:-1]) | (cell[1:] != cell[:-1])] if len(cell) else np.zeros(0, dtype=bool)
    group = np.cumsum(pair) - 1
    then_value = np.zeros(int(pair.sum()))
    then_value[group[is_then]] = value[is_then]
    change = then_value - np.bincount(group[~is_then], weights=value[~is_then], minlength=len(then_value))
    first = np.flatnonzero(pair)
    scale = np.maximum(1.0, np.abs(values.astype(float)))
    changed = np.abs(change) > 1e-9 * scale[cell[first]]
    return Contributions(joined.names, who[first][changed], cell[first][changed], change[changed])


def _change_cell(
    b: ProblemBuilder,
    snap: Snapshot,
    i: int,
    old: int,
    parts: list[int],
    change: np.ndarray,
    params_of: RulesFor,
    epochs: Epochs,
) -> int | None:
    """The hidden cell 'earlier value minus current value' of one earlier cell, or None when nothing changed.

    Its contributions are each contributor's own `change` (_changes); the rules judge the changed
    contributors' absolute changes, so a late company alone in a change is a threshold case however large
    the cell is."""
    scale = max(1.0, abs(float(snap.problem.values[i])))
    current_value = sum(b.columns["value"][p] for p in parts)
    value = float(snap.problem.values[i]) - current_value
    if not len(change) and abs(value) <= 1e-9 * scale:
        return None
    unsafe, protection = _judge_change(change.tolist(), params_of(snap.tables[i], snap.audience_id))
    # A-priori range: from the earlier cell's bounds (its value when it was published: a fact) and the current
    # cells' bounds. The requirement is capped at what an attacker who knows the earlier value could reach
    # at most (its sole contributor does): beyond that the audit would ask for the impossible, as it caps
    # requirements at a-priori bounds for any other cell. Capping a requirement tells the attacker nothing.
    earlier_value = b.columns["value"][old]
    old_lo = b.columns["lower"][old] if snap.hidden[i] else earlier_value
    old_hi = b.columns["upper"][old] if snap.hidden[i] else earlier_value
    current_lo = sum(b.columns["lower"][p] for p in parts)
    current_hi = sum(b.columns["upper"][p] for p in parts)
    return b.add(
        snap.problem.keys[i].in_view(ViewKind.CHANGE, snap.release_id),
        months=snap.spans[i],
        value=value,
        lower=min(old_lo - current_hi, value),
        upper=max(old_hi - current_lo, value),
        upl=min(protection, max(0.0, earlier_value - current_lo - value)),
        lpl=min(protection, max(0.0, value - (earlier_value - current_hi))),
        primary=unsafe,
        fixed=False,
        cost=0.0,
        epoch=epochs.change(snap, i),
    )


def _judge_change(changes: list[float], params: RuleParams) -> tuple[bool, float]:
    """(unsafe, protection) of a change cell: the primary rules on the changed contributors' |changes|."""
    if not changes:
        return False, 0.0
    sizes = sorted((abs(v) for v in changes), reverse=True)
    top = np.zeros((1, params.top_k))
    top[0, : min(len(sizes), params.top_k)] = sizes[: params.top_k]
    stats = CellStats(
        total=np.array([sum(sizes)]),
        n=np.array([len(sizes)]),
        top=top,
        waived=np.zeros(1),
        n_all=np.array([len(sizes)]),
        has_negative=np.zeros(1, dtype=bool),
    )
    result = evaluate_primary(stats, replace(params, negative_values="absolute"))
    return bool(result.unsafe[0]), max(float(result.upl[0]), float(result.lpl[0]))
