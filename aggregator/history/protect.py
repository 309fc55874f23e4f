"""The door of the release history: protect a new release together with every earlier release it relates to.

A release is not alone. A late submission that changes a published month, a year-to-date table next to last
month's and two audiences that talk to each other all let an attacker subtract one published figure from
another. `protect_with_history` finds the earlier releases the new one is arithmetically related to, builds
one combined problem (combine.py), protects and audits it, and hands back the new release's pattern and the
snapshot the ledger keeps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from aggregator.aggregation import TableCells
from aggregator.aggregation.release import params_for
from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import AuditResult, ProtectionProblem, RuleParams
from aggregator.disclosure.suppression import SuppressionResult, protect
from aggregator.errors import DisclosureError, ReleaseRefused
from aggregator.periods import Period
from aggregator.protocol import Protocol
from aggregator.store import Store

from .combine import HistoryProblem, combine
from .ledger import load_snapshot
from .related import own_readers_view, related_releases
from .snapshot import Snapshot, current_snapshot, release_months, snapshot_of


@dataclass(frozen=True)
class HistoryOutcome:
    """A new release protected with its history: its pattern and audit (over its own cells), the snapshot
    the ledger keeps, and the earlier releases it was protected together with."""

    suppression: SuppressionResult
    audit: AuditResult
    snapshot: Snapshot | None  # None for a release protected alone (a protocol comparison)
    audited_with: list[str]


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
    """Protect and audit the release's problem together with every earlier release it is related to.

    Raises DisclosureError if the tables cannot be protected on their own, ReleaseRefused if they cannot be
    made safe together with what was published before."""
    period = Period.of(period)
    months = release_months(protocol, period, components)
    related = related_releases(store, protocol, audience_id, months)
    snapshot_args = (store, protocol, period, audience_id, components, problem)
    if related or len(months) > 1:
        snapshot = snapshot_of(*snapshot_args)
        earlier = [load_snapshot(store, r) for r in related]
        release = _Release(store, protocol, period, audience_id, waived)
        result, checked, snapshot = release.protect_combined(snapshot, earlier)
    else:
        # The snapshot's own-contribution records (millions at 10,000 companies) are numpy work that mostly
        # releases the GIL: built on the second core while the tables are protected (it reads no DuckDB).
        # It is only recorded, so the gap cells' records, which the ledger does not keep, are left out.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imvo-snapshot") as pool:
            pending = pool.submit(snapshot_of, *snapshot_args, gap_records=False)
            result, checked = protect_alone(protocol, period, audience_id, problem)
            snapshot = pending.result()
    return HistoryOutcome(result, checked, replace(snapshot, hidden=result.suppressed.copy()), related)


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
    audience_id: str,
    new: Snapshot | None,
    earlier: Sequence[Snapshot],
    waived: Mapping[str, frozenset[str]] | None = None,
) -> HistoryProblem:
    """Build the current month cells the new release and the earlier ones need, and combine everything.

    With a new release the current cells are judged by its audience's rules; without one (auditing the
    ledger) by the loosest rules of the audiences that received the releases."""
    snaps = ([new] if new is not None else []) + list(earlier)
    months = sorted({m for s in snaps for m in s.months})
    tables = sorted({t for s in snaps for t in s.tables if t} & {t.id for t in protocol.tables})
    judges = [audience_id] if new is not None else sorted({s.audience_id for s in earlier}) or [audience_id]
    current = {m: current_snapshot(store, protocol, judges, m, tables, waived or {}) for m in months}

    def change_rules(table_id: str, earlier_audience: str) -> list[RuleParams]:
        # A release must not let its own audience subtract what its rules protect, nor let anyone learn more
        # about a change to an earlier release than that release's audience may; the ledger audit checks what
        # every release enforced at least: the earlier audience's rules.
        judges = {earlier_audience} | ({audience_id} if new is not None else set())
        return [params_for(protocol, table_id, a) for a in sorted(judges)]

    return combine(new, earlier, current, change_rules)


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

    def protect_combined(
        self, snapshot: Snapshot, earlier: list[Snapshot]
    ) -> tuple[SuppressionResult, AuditResult, Snapshot]:
        """Protect the new cells in the combined problem, then restrict the pattern and audit to them."""
        combined = history_for(self.store, self.protocol, self.audience_id, snapshot, earlier, self.waived)
        try:
            full = protect(combined.problem, self.protocol.defaults.suppression)
        except DisclosureError as exc:
            raise self.refusal(combined, exc.message) from exc
        n = combined.new_cells
        own_only = own_readers_view(self.protocol, self.audience_id, earlier)
        if len(own_only) < len(earlier):
            # Each requirement was capped at what readers of every visible audience knew before; readers of
            # this audience alone know less, so the pattern must also protect them with only their own
            # releases known.
            pattern = self.protect_for_own_readers(snapshot, own_only, full)
            full = replace(full, suppressed=np.concatenate([pattern, full.suppressed[n:]]), audit=None)
        checked = full.audit if full.audit is not None else audit(combined.problem, full.suppressed)
        if not checked.passed:
            cell, who, lo, hi, reason = checked.failures[0]
            key = combined.problem.keys[cell].describe()
            raise self.refusal(combined, f"{key} is narrowed to [{lo:.6g}, {hi:.6g}] by {who} ({reason})")
        return (*_restricted(combined, full, checked, snapshot.problem), _without_known(snapshot, combined))

    def protect_for_own_readers(self, snapshot: Snapshot, own_only: list[Snapshot], full: SuppressionResult):
        """The new cells' pattern, grown until it also passes with only this audience's earlier releases known.

        Hiding more never narrows an interval, so the grown pattern still passes the combined audit."""
        alone = history_for(self.store, self.protocol, self.audience_id, snapshot, own_only, self.waived)
        p, n = alone.problem, alone.new_cells
        never_published = ~p.fixed
        never_published[:n] = False
        hidden = never_published.copy()
        hidden[:n] = full.suppressed[:n]
        if audit(p, hidden).passed:
            return hidden[:n]
        # keep what is hidden already (as cells needing no protection of their own) and protect again
        forced = hidden & ~p.primary
        try:
            return protect(replace(p, primary=p.primary | forced), self.protocol.defaults.suppression).suppressed[:n]
        except DisclosureError as exc:
            raise self.refusal(alone, exc.message) from exc

    def refusal(self, combined: HistoryProblem, detail: str) -> ReleaseRefused:
        earlier = ", ".join(combined.earlier) or "none"
        return ReleaseRefused(
            f"{self.what} cannot be made safe together with what was released before (releases {earlier}): " + detail,
            hint="wait for more submissions in that cell, merge it into a larger category in the protocol, "
            "or leave the table out of this release",
        )


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
