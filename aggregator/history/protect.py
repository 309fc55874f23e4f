"""The door of the release history: protect a new release for every reader class that receives it, together
with every earlier release that class holds.

A release is not alone. A late submission that changes a published month, a year-to-date table next to last
month's, last month's release next to this month's and a committee member who also reads the public report all
let an attacker subtract one published figure from another. `protect_with_history` builds, per reader class
(related.py), one combined problem (combine.py, series.py), protects and audits it, and hands back the new
release's pattern and the snapshot the ledger keeps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from aggregator.aggregation import TableCells
from aggregator.aggregation.release import params_for
from aggregator.cellkey import ViewKind
from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import AuditResult, ProtectionProblem, RuleParams
from aggregator.disclosure.suppression import SuppressionResult, protect, subproblem
from aggregator.errors import DisclosureError, ReleaseRefused
from aggregator.protocol import Protocol
from aggregator.store import Store
from imvo_submit.periods import Period

from .combine import HistoryProblem, combine
from .ledger import load_snapshot
from .related import held_releases, reader_classes
from .reuse import recorded_current
from .snapshot import Snapshot, current_snapshot, release_months, snapshot_of


@dataclass(frozen=True)
class HistoryOutcome:
    """A new release protected for every reader class that receives it: its pattern and the audit of its own
    readers (over its own cells), the snapshot the ledger keeps, the earlier releases it was protected
    together with, and the reader classes whose audit it passed."""

    suppression: SuppressionResult
    audit: AuditResult
    snapshot: Snapshot | None  # None for a release protected alone (a protocol comparison)
    audited_with: list[str]
    reader_classes: list[str] = field(default_factory=list)


def protect_with_history(
    store: Store,
    protocol: Protocol,
    period: Period | str,
    audience_id: str,
    components: list[TableCells],
    problem: ProtectionProblem,
    *,
    waived: Mapping[str, frozenset[str]],
) -> HistoryOutcome:
    """Protect and audit the release for each reader class that receives it (related.reader_classes): its own
    audience's readers first, then every class that also reads it, each with its own rules and every earlier
    release it holds (revisions, cumulative tables and month-to-month differences included). A class can
    only hide more of the release; hiding more never narrows an interval, so every class stays protected.

    Raises DisclosureError if the tables cannot be protected on their own, ReleaseRefused if they cannot be
    made safe together with what was published before."""
    period = Period.of(period)
    release = _Release(store, protocol, period, audience_id, waived)
    classes = reader_classes(protocol, audience_id)
    held = {c: held_releases(store, protocol, c) for c in classes}
    months = release_months(protocol, period, components)
    snapshot_args = (store, protocol, period, audience_id, components, problem)
    if held[audience_id] or len(months) > 1:
        snapshot = snapshot_of(*snapshot_args)
        own = release.protect_own(snapshot, [load_snapshot(store, r) for r in held[audience_id]], problem)
    else:
        # The snapshot's own-contribution records (millions at 10,000 companies) are numpy work that mostly
        # releases the GIL: built on the second core while the tables are protected (it reads no DuckDB).
        # When it is only recorded, the gap cells' records, which the ledger does not keep, are left out.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imvo-snapshot") as pool:
            pending = pool.submit(snapshot_of, *snapshot_args, gap_records=len(classes) > 1)
            result, checked = protect_alone(protocol, period, audience_id, problem)
            own = _Own(result, checked, pending.result(), problem)
    pattern = own.result.suppressed.copy()
    for other in classes[1:]:
        pattern = release.protect_class(other, own.snapshot, [load_snapshot(store, r) for r in held[other]], pattern)
    result, checked = own.result, own.audit
    if not np.array_equal(pattern, result.suppressed):  # another class hid more: the own readers' audit again
        checked = release.reaudit_own(own, pattern)
        secondary = pattern & ~own.snapshot.problem.primary
        result = replace(result, suppressed=pattern, secondary=secondary, cost=float(problem.cost[secondary].sum()))
    earlier = sorted({r for c in classes for r in held[c]})
    return HistoryOutcome(result, checked, replace(own.snapshot, hidden=pattern.copy()), earlier, classes)


def protect_alone(
    protocol: Protocol, period: Period, audience_id: str, problem: ProtectionProblem
) -> tuple[SuppressionResult, AuditResult]:
    """A release related to no earlier one: protected and audited on its own."""
    result = protect(problem, protocol.defaults.suppression)
    checked = audit(problem, result.suppressed)
    if not checked.passed:
        raise DisclosureError(
            f"the suppression pattern for {protocol.covenant.id} {period} ({audience_id}) failed its audit "
            f"on {len(checked.failures)} cell(s); nothing was released",
            hint="report this to the maintainers with the audit report from the secretariat folder",
        )
    return result, checked


def history_for(
    store: Store,
    protocol: Protocol,
    reader_class: str,
    new: Snapshot | None,
    earlier: Sequence[Snapshot],
    waived: Mapping[str, frozenset[str]] | None = None,
) -> HistoryProblem:
    """The combined problem of what a reader class holds: the new release (if any), the earlier releases, the
    current cells of every month they cover and the month-to-month differences, every model cell judged by
    the rules of the class's audience (the rules of the releases addressed to its readers)."""
    snaps = ([new] if new is not None else []) + list(earlier)
    months = sorted({m for s in snaps for m in s.months})
    tables = sorted({t for s in snaps for t in s.tables if t} & {t.id for t in protocol.tables})
    current = {}
    for m in months:
        # a month the new release is not about needs no judging by this class: a release of another audience
        # serves; else only one judged by the class's own rules
        judged_here = [s for s in earlier if new is not None and m not in new.months or s.audience_id == reader_class]
        recorded = recorded_current(store, protocol, m, tables, judged_here)
        current[m] = recorded or current_snapshot(store, protocol, [reader_class], m, tables, waived or {})

    def rules(table_id: str, _earlier_audience: str = "") -> RuleParams:
        return params_for(protocol, table_id, reader_class)

    return combine(new, earlier, current, lambda table_id, audience: rules(table_id), differences=rules)


@dataclass(frozen=True)
class _Own:
    """The release protected for its own audience's readers."""

    result: SuppressionResult  # over the release's cells
    audit: AuditResult
    snapshot: Snapshot  # what the ledger keeps
    problem: ProtectionProblem  # the release's problem when it was protected alone
    combined: HistoryProblem | None = None  # else the combined problem ...
    hidden: np.ndarray | None = None  # ... and its pattern over every cell


@dataclass(frozen=True)
class _Release:
    store: Store
    protocol: Protocol
    period: Period
    audience_id: str
    waived: Mapping[str, frozenset[str]]

    @property
    def what(self) -> str:
        return f"the {self.protocol.covenant.id} release of {self.period} for '{self.audience_id}'"

    def protect_own(self, snapshot: Snapshot, earlier: list[Snapshot], problem: ProtectionProblem) -> _Own:
        """Protect the new cells for the audience's own readers in the combined problem, then restrict the
        pattern and audit to them."""
        combined = history_for(self.store, self.protocol, self.audience_id, snapshot, earlier, self.waived)
        combined = _focused(combined, snapshot.months)
        try:
            full = protect(combined.problem, self.protocol.defaults.suppression)
        except DisclosureError as exc:
            raise self.refusal(combined, self.audience_id, exc.message) from exc
        checked = full.audit if full.audit is not None else audit(combined.problem, full.suppressed)
        self.check(combined, checked, self.audience_id)
        result, restricted = _restricted(combined, full, checked, snapshot.problem)
        return _Own(result, restricted, _without_known(snapshot, combined), problem, combined, full.suppressed)

    def protect_class(self, reader_class: str, snapshot: Snapshot, earlier: list[Snapshot], pattern: np.ndarray):
        """The new cells' pattern, grown until the readers of another class are protected too: by their own
        rules, with everything they hold. The release's own requirements do not apply to them (its cells
        stay hidden where its rules hide them, as cells needing no protection of their own)."""
        zero = np.zeros(snapshot.problem.size)
        as_read = replace(snapshot, problem=replace(snapshot.problem, upl=zero, lpl=zero))
        combined = history_for(self.store, self.protocol, reader_class, as_read, earlier, self.waived)
        combined = _focused(combined, snapshot.months)
        p, n = combined.problem, combined.new_cells
        hidden = ~p.fixed  # every cell never published is unknown to the reader ...
        hidden[:n] &= pattern  # ... and of the new release, those it hides (and the reader did not know)
        if audit(p, hidden, verdict_only=True).passed:
            return pattern
        forced = np.zeros(p.size, dtype=bool)
        forced[:n] = hidden[:n] & ~p.primary[:n]
        try:
            grown = protect(replace(p, primary=p.primary | forced), self.protocol.defaults.suppression)
        except DisclosureError as exc:
            raise self.refusal(combined, reader_class, exc.message) from exc
        self.check(combined, audit(p, grown.suppressed, verdict_only=True), reader_class)
        return grown.suppressed[:n] | pattern

    def reaudit_own(self, own: _Own, pattern: np.ndarray) -> AuditResult:
        """The own readers' audit of the final pattern (over the release's cells)."""
        if own.combined is None:
            return audit(own.problem, pattern)
        p, n = own.combined.problem, own.combined.new_cells
        assert own.hidden is not None
        hidden = own.hidden.copy()
        hidden[:n] = pattern & ~p.fixed[:n]
        checked = audit(p, hidden)
        self.check(own.combined, checked, self.audience_id)
        return _restricted(own.combined, replace(own.result, suppressed=hidden), checked, own.snapshot.problem)[1]

    def check(self, combined: HistoryProblem, checked: AuditResult, reader_class: str) -> None:
        if not checked.passed:
            cell, who, lo, hi, reason = checked.failures[0]
            key = combined.problem.keys[cell].describe()
            detail = f"{key} is narrowed to [{lo:.6g}, {hi:.6g}] by {who} ({reason})"
            raise self.refusal(combined, reader_class, detail)

    def refusal(self, combined: HistoryProblem, reader_class: str, detail: str) -> ReleaseRefused:
        earlier = ", ".join(combined.earlier) or "none"
        readers = "its own readers" if reader_class == self.audience_id else f"the readers of '{reader_class}'"
        return ReleaseRefused(
            f"{self.what} cannot be made safe for {readers} together with what they hold (releases {earlier}): "
            + detail,
            hint="wait for more submissions in that cell, merge it into a larger category in the protocol, "
            "or leave the table out of this release",
        )


def _focused(combined: HistoryProblem, months: set[Period]) -> HistoryProblem:
    """The combined problem cut down to what the new release (about `months`) can change: the cells about
    those months, the differences, and of every other month only the groups of hidden cells a difference is
    linked to (hidden cells joined by relations, with the published cells of those relations). An attacker's
    reach of a cell depends only on its group (published cells are constants), and other months are linked to
    the new release only through differences, so nothing else can move."""
    p, n = combined.problem, combined.new_cells
    about = [bool(a & months) for a in combined.about] if combined.about else [True] * p.size
    keep = np.array(about, dtype=bool)
    keep[:n] = True
    difference = np.array([k.view is not None and k.view.kind is ViewKind.DIFFERENCE for k in p.keys])
    seeds = [c for total, parts in p.relations if difference[list(parts)].any() for c in (total, *parts)]
    keep |= _hidden_groups(p, np.array(seeds, dtype=np.int64))
    for total, parts in p.relations:  # the published cells of every relation a kept hidden cell is in
        cells = np.array((total, *parts))
        if (keep[cells] & ~p.fixed[cells]).any():
            keep[cells[p.fixed[cells]]] = True
    relations = [r for r in p.relations if keep[r[0]] and keep[list(r[1])].all()]
    if keep.all():
        return combined
    cells = np.flatnonzero(keep)
    trimmed = subproblem(replace(p, relations=relations), cells)
    return replace(combined, problem=trimmed, about=tuple(combined.about[c] for c in cells) if combined.about else ())


def _hidden_groups(p: ProtectionProblem, seeds: np.ndarray) -> np.ndarray:
    """The cells of the groups of hidden cells (linked through relations, published cells left out) that
    contain a seed, and the seeds."""
    parent = np.arange(p.size)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    for total, parts in p.relations:
        hidden = [c for c in (total, *parts) if not p.fixed[c]]
        for c in hidden[1:]:
            a, b = find(hidden[0]), find(c)
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(p.size)])
    wanted = np.isin(roots, roots[seeds[~p.fixed[seeds]]]) & ~p.fixed
    wanted[seeds] = True
    return wanted


def _restricted(
    combined: HistoryProblem, full: SuppressionResult, checked: AuditResult, new: ProtectionProblem
) -> tuple[SuppressionResult, AuditResult]:
    """The combined pattern and audit over the new release's cells. A cell already published unchanged is
    fixed in the model; if it fails this audience's rules it is still shown suppressed."""
    n = combined.new_cells
    hidden = full.suppressed[:n] | (combined.known & new.primary)
    secondary = hidden & ~new.primary
    result = replace(
        full,
        suppressed=hidden,
        secondary=secondary,
        cost=float(new.cost[secondary].sum()),
        lower_bound=float("nan"),
        optimal=False,
        audit=None,
    )
    restricted = AuditResult(
        lo=checked.lo[:n],
        hi=checked.hi[:n],
        failures=[],
        exact_disclosures=int(checked.exact_disclosures),
        insiders_checked=int(checked.insiders_checked),
        lp_solves=int(checked.lp_solves),
    )
    return result, restricted


def _without_known(snapshot: Snapshot, combined: HistoryProblem) -> Snapshot:
    """The ledger records a cell published unchanged before as needing no protection: it is known already."""
    new = snapshot.problem
    known_primary = combined.known & new.primary
    problem = replace(
        new,
        primary=new.primary & ~known_primary,
        upl=np.where(known_primary, 0.0, new.upl),
        lpl=np.where(known_primary, 0.0, new.lpl),
    )
    return replace(snapshot, problem=problem)
