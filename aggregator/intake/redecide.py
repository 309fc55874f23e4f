"""Quarantined files decided again, after an operator's mistake (a wrong --period, a company registered late).

A re-decided file keeps its record (submission id, name, time received) and takes the new decision exactly as
a new file would: accepted (superseding an older accepted one), a duplicate, or quarantined again with the
current reason. The record changes in the same transaction as the log entry (`intake.redecision`, with the
previous state and reason); after the commit the file moves from `received/quarantined/` to its new folder and
the company's receipt is replaced. A crash in between is finished by the next session (files.finish_moves).
Nothing is lost: each file is still in exactly one place, and its record says which.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aggregator.errors import AggregatorError
from aggregator.store import Store
from aggregator.workspace import Workspace
from imvo_submit.periods import Period
from imvo_submit.states import FileState
from imvo_submit.text import printable

from . import files, worker
from .deciding import decide
from .lookahead import Ahead, Lookahead
from .model import Earlier, Filed, FileOutcome, IntakeReport, Skipped
from .recording import Pending
from .runs import check_clock_and_period, decide_in_chunks

_SUBMISSION_PREFIX = re.compile(r"[0-9a-f]{8,64}")
_STATUS_HINT = "`aggregator status PERIOD` lists the quarantined files with their submission id"


@dataclass(frozen=True)
class Quarantined:
    """A quarantined submission as recorded."""

    submission_id: str
    original_name: str
    raw_path: str
    received_at: str
    reason: str
    period: str | None

    @property
    def received_name(self) -> str:
        return Path(self.raw_path).name


def redecide(
    workspace: Workspace,
    *,
    now: str,
    names: Sequence[str] = (),
    period: str | None = None,
    expected_period: str | None = None,
    limits: worker.Limits | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> IntakeReport:
    """Decide again the quarantined files `names` (the name a file arrived under, its name in
    received/quarantined/, or its submission id of at least 8 characters) and every quarantined file sealed for
    `period`. `expected_period` is the period this decision is for, as `intake --period`."""
    check_clock_and_period(now, expected_period)
    if period is not None:
        Period.parse(period)
    if not names and period is None:
        raise AggregatorError(
            "name the quarantined files to decide again, or a period",
            hint="use --redecide FILE (repeatable) or --redecide-period YYYY-MM; " + _STATUS_HINT,
        )
    with workspace.session(now) as store:
        files.finish_moves(workspace, store)
        chosen = choose(store, names, period)
        pending = Pending(workspace, store, now)
        return decide_in_chunks(
            pending,
            chosen,
            lambda one: workspace.root / one.raw_path,
            lambda one, ahead, look: _again(pending, one, expected_period, ahead, look),
            expected_period=expected_period,
            limits=limits,
            progress=progress,
        )


def choose(store: Store, names: Sequence[str], period: str | None) -> list[Quarantined]:
    """The quarantined submissions named, or sealed for `period`, each once, oldest first. A name that matches
    no quarantined file, or several, is refused before anything is decided."""
    rows = store.con.execute(
        "SELECT submission_id, original_name, raw_path, received_at, reason, period FROM submissions "
        "WHERE state = 'quarantined' ORDER BY received_at, original_name, submission_id"
    ).fetchall()
    quarantined = [Quarantined(*row) for row in rows]
    wanted = {q.submission_id for q in quarantined if period is not None and q.period == period}
    for name in names:
        wanted.add(_one_named(store, quarantined, name).submission_id)
    return [q for q in quarantined if q.submission_id in wanted]


def _one_named(store: Store, quarantined: list[Quarantined], name: str) -> Quarantined:
    base = Path(name).name
    found = [
        q
        for q in quarantined
        if base in (q.original_name, q.received_name)
        or (_SUBMISSION_PREFIX.fullmatch(base) is not None and q.submission_id.startswith(base))
    ]
    if len(found) == 1:
        return found[0]
    shown = printable(name)
    if found:
        ids = ", ".join(q.submission_id[:12] for q in found)
        raise AggregatorError(
            f"'{shown}' names {len(found)} quarantined files (submissions {ids})",
            hint="give the submission id of the one to decide again",
        )
    other = store.con.execute(
        "SELECT state FROM submissions WHERE original_name = ? OR starts_with(submission_id, ?) LIMIT 1",
        [base, base if _SUBMISSION_PREFIX.fullmatch(base) else "\x00"],
    ).fetchone()
    if other is not None:
        raise AggregatorError(
            f"'{shown}' is not quarantined (it is {other[0]}); only quarantined files are decided again",
            hint=_STATUS_HINT,
        )
    raise AggregatorError(f"no quarantined file is named '{shown}'", hint=_STATUS_HINT)


def _again(
    pending: Pending, one: Quarantined, expected_period: str | None, ahead: Ahead, look: Lookahead
) -> FileOutcome | Skipped:
    path = pending.workspace.root / one.raw_path
    if not path.is_file() or path.is_symlink():
        return Skipped(
            one.original_name,
            "missing",
            f"the quarantined file is missing from {Path(one.raw_path).parent.as_posix()}/; nothing was decided",
        )
    decision = decide(pending, path, expected_period, ahead, look.check)
    outcome = decision.outcome
    # messages name the file as opened, here its name in received/quarantined/: name it as it arrived
    outcome.file, outcome.reason = one.original_name, outcome.reason.replace(path.name, one.original_name)
    if pending.holds(decision.replaces):
        pending.flush()
    final = files.received_path(decision.outcome.state, one.submission_id, one.original_name)
    receipt = files.make_receipt(pending.workspace, decision, one.submission_id, one.received_at, pending.log_head)
    earlier = Earlier(FileState.QUARANTINED, one.reason, one.raw_path, one.received_at)
    pending.add(Filed(path, one.submission_id, final, decision, receipt, earlier))
    return decision.outcome
