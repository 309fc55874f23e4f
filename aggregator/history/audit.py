"""Auditing the ledger: every release a reader class holds, audited together against the data now."""

from __future__ import annotations

from dataclasses import dataclass, field

from aggregator import log as action_log
from aggregator.disclosure.audit import audit, insider_intervals
from aggregator.disclosure.model import AuditResult
from aggregator.protocol import Protocol
from aggregator.release.audit import InsiderRow
from aggregator.store import Store

from .combine import HistoryProblem
from .ledger import load_snapshot
from .protect import history_for
from .related import held_releases, reader_classes


def audit_history(store: Store, protocol: Protocol, reader_class: str) -> tuple[HistoryProblem, AuditResult]:
    """Audit every release the readers of a class hold together, against the data in the store now, by the
    rules of the class's audience (month-to-month differences included).

    Published cells are fixed facts; hidden cells, changes, differences and current cells are unknown. A
    passing result means no combination of everything the class holds narrows a protected cell too far
    beyond what was known before the release that protects it."""
    earlier = [load_snapshot(store, r) for r in held_releases(store, protocol, reader_class)]
    combined = history_for(store, protocol, reader_class, None, earlier)
    return combined, audit(combined.problem, ~combined.problem.fixed)


@dataclass
class ReleaseAudit:
    """A recorded release audited again: on its own, and for every reader class that holds it, together with
    everything that class holds."""

    release_id: str
    alone: AuditResult
    cells: int
    hidden: int
    classes: dict[str, AuditResult] = field(default_factory=dict)  # reader class -> its audit

    @property
    def passed(self) -> bool:
        return self.alone.passed and all(r.passed for r in self.classes.values())


def audit_release(store: Store, protocol: Protocol, release_id: str, now: str) -> ReleaseAudit:
    """Re-run the audit of a recorded release from the ledger (true values are kept in the encrypted store)."""
    snap = load_snapshot(store, release_id)
    alone = audit(snap.problem, snap.hidden)
    classes = {c: audit_history(store, protocol, c)[1] for c in reader_classes(protocol, snap.audience_id)}
    result = ReleaseAudit(release_id, alone, snap.problem.size, int(snap.hidden.sum()), classes)
    details = {"release": release_id, "alone": alone.passed} | {f"readers:{c}": r.passed for c, r in classes.items()}
    failures = len(alone.failures) + sum(len(r.failures) for r in classes.values())
    action_log.append(store, "audit.run", details | {"failures": failures}, now)
    return result


def insider_rows(store: Store, release_id: str) -> list[InsiderRow]:
    """Every insider's interval for every hidden primary cell of a recorded release on its own, computed again
    from the true values the ledger keeps (two LPs per insider and cell: seconds to minutes, so on request)."""
    snap = load_snapshot(store, release_id)
    p = snap.problem
    return [
        InsiderRow(
            snap.tables[i.cell],
            str(p.keys[i.cell]),
            i.insider,
            float(p.values[i.cell]),
            i.lo,
            i.hi,
            float(p.upl[i.cell]),
            float(p.lpl[i.cell]),
            i.passed,
        )
        for i in insider_intervals(p, snap.hidden)
    ]
