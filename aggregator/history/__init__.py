"""Release history: the permanent ledger of every release, and the attacker's view across releases.

One door for the batch, `protect_with_history` (a new release protected together with every earlier release
it is related to), and one for re-auditing the ledger, `audit_release` / `audit_history`. The ledger's
records go in with `record_release` and come out with `load_snapshot`, `list_releases` and `show_release`.
Modules: snapshot (what the ledger keeps of a release), ledger (its SQL), related (which releases a reader
holds), combine and builder (the combined problem), protect (the door), audit.
"""

from .audit import ReleaseAudit, audit_history, audit_release
from .combine import HistoryProblem, combine
from .ledger import (
    ReleaseDetail,
    ReleaseRow,
    UnknownRelease,
    list_releases,
    load_snapshot,
    record_release,
    release_count,
    releases_of,
    show_release,
    with_gap_records,
)
from .protect import HistoryOutcome, history_for, protect_alone, protect_with_history
from .related import own_readers_view, related_releases, visible_audiences
from .snapshot import Snapshot, current_snapshot, snapshot_of

__all__ = [
    "HistoryOutcome",
    "HistoryProblem",
    "ReleaseAudit",
    "ReleaseDetail",
    "ReleaseRow",
    "Snapshot",
    "UnknownRelease",
    "audit_history",
    "audit_release",
    "combine",
    "current_snapshot",
    "history_for",
    "list_releases",
    "load_snapshot",
    "own_readers_view",
    "protect_alone",
    "protect_with_history",
    "record_release",
    "related_releases",
    "release_count",
    "releases_of",
    "show_release",
    "snapshot_of",
    "visible_audiences",
    "with_gap_records",
]
