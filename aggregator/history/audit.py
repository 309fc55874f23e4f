"""Auditing the ledger: every release an audience may know, audited together against the data now."""

from __future__ import annotations

from dataclasses import dataclass

from aggregator import log as action_log
from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import AuditResult
from aggregator.protocol import Protocol
from aggregator.store import Store

from .combine import HistoryProblem
from .ledger import ledger_months, load_snapshot
from .protect import history_for
from .related import own_readers_view, related_releases


def audit_history(
    store: Store, protocol: Protocol, audience_id: str, *, own_only: bool = False
) -> tuple[HistoryProblem, AuditResult]:
    """Audit every release visible to the audience together, against the data in the store now.

    Published cells are fixed facts; hidden cells, changes and current cells are unknown. A passing result
    means no combination of everything released so far narrows a protected cell too far beyond what was
    known before the release that protects it. `own_only`: the view of a reader of this audience alone.
    """
    releases = related_releases(store, protocol, audience_id, ledger_months(store))
    earlier = [load_snapshot(store, r) for r in releases]
    if own_only:
        earlier = own_readers_view(protocol, audience_id, earlier)
    combined = history_for(store, protocol, audience_id, None, earlier)
    return combined, audit(combined.problem, ~combined.problem.fixed)


@dataclass
class ReleaseAudit:
    """A recorded release audited again: on its own, together with everything its audience may know, and
    with only its own audience's releases (the view of a reader who sees no other audience's)."""

    release_id: str
    alone: AuditResult
    with_history: AuditResult
    own_audience: AuditResult
    cells: int
    hidden: int


def audit_release(store: Store, protocol: Protocol, release_id: str, now: str) -> ReleaseAudit:
    """Re-run the audit of a recorded release from the ledger (true values are kept in the encrypted store)."""
    snap = load_snapshot(store, release_id)
    alone = audit(snap.problem, snap.hidden)
    _, together = audit_history(store, protocol, snap.audience_id)
    _, own = audit_history(store, protocol, snap.audience_id, own_only=True)
    result = ReleaseAudit(release_id, alone, together, own, snap.problem.size, int(snap.hidden.sum()))
    details = {"release": release_id, "alone": alone.passed, "with_history": together.passed, "own": own.passed}
    failures = len(alone.failures) + len(together.failures) + len(own.failures)
    action_log.append(store, "audit.run", details | {"failures": failures}, now)
    return result
