"""Release history: the permanent ledger of every release, and the attacker's view across releases.

One door for the batch, `protect_with_history` (a new release protected for every reader class that receives
it, together with every earlier release that class holds), and one for re-auditing the ledger,
`audit_release` / `audit_history` (and `insider_rows`: each insider's interval, for the secretariat). The
ledger's records go in with `record_release` and come out with `load_snapshot`, `list_releases` and
`show_release`. Modules: snapshot (what the ledger keeps of a release), ledger (its SQL), related (reader
classes and what they hold), combine, series (month-to-month differences) and builder (the combined problem),
protect (the door), audit.
"""

from .audit import InsiderRow, ReleaseAudit, audit_history, audit_release, insider_rows
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
from .related import held_releases, holdings, reader_classes
from .snapshot import Snapshot, current_snapshot, snapshot_of

__all__ = [
    "HistoryOutcome",
    "HistoryProblem",
    "InsiderRow",
    "ReleaseAudit",
    "ReleaseDetail",
    "ReleaseRow",
    "Snapshot",
    "UnknownRelease",
    "audit_history",
    "audit_release",
    "combine",
    "current_snapshot",
    "held_releases",
    "history_for",
    "holdings",
    "insider_rows",
    "list_releases",
    "load_snapshot",
    "protect_alone",
    "protect_with_history",
    "reader_classes",
    "record_release",
    "release_count",
    "releases_of",
    "show_release",
    "snapshot_of",
    "with_gap_records",
]
