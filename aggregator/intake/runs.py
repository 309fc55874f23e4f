"""One run over many files, shared by the intake of an inbox and the re-decision of quarantined files: the
files in chunks, each chunk checked ahead by the worker while the one before is decided in turn."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from aggregator.errors import AggregatorError
from imvo_submit.periods import Period

from . import lookahead, worker
from .lookahead import Ahead, Lookahead
from .model import FileOutcome, IntakeReport, Skipped
from .recording import Pending

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
Item = TypeVar("Item")
Progress = Callable[[str, int, int], None]


def check_clock_and_period(now: str, expected_period: str | None) -> None:
    """Checked up front: receipts carry this time, and a bad clock must not stop an intake halfway."""
    if expected_period is not None:
        Period.parse(expected_period)
    if not TIMESTAMP.match(now):
        raise AggregatorError(f"'{now}' is not a UTC time written YYYY-MM-DDTHH:MM:SSZ")


def decide_in_chunks(
    pending: Pending,
    items: Sequence[Item],
    path_of: Callable[[Item], Path],
    decide_one: Callable[[Item, Ahead, Lookahead], FileOutcome | Skipped],
    *,
    expected_period: str | None,
    limits: worker.Limits | None,
    progress: Progress | None,
) -> IntakeReport:
    """Decide every item in order; the open transaction is committed at the end, or rolled back on failure
    (the files of uncommitted decisions stay where they were, for the next run)."""
    report = IntakeReport([])
    chunks = [items[at : at + lookahead.AHEAD_FILES] for at in range(0, len(items), lookahead.AHEAD_FILES)]
    try:
        with Lookahead(pending.workspace, pending.registry, pending.now, expected_period, limits) as look:
            upcoming = look.start([path_of(i) for i in chunks[0]]) if chunks else None
            for n, chunk in enumerate(chunks):
                ahead = upcoming.finish()
                upcoming = look.start([path_of(i) for i in chunks[n + 1]]) if n + 1 < len(chunks) else None
                for item in chunk:
                    if progress:
                        progress(path_of(item).name, len(report.outcomes) + len(report.skipped), len(items))
                    done = decide_one(item, ahead, look)
                    (report.skipped if isinstance(done, Skipped) else report.outcomes).append(done)
        pending.flush()
    except BaseException:
        pending.abandon()
        raise
    if progress:
        progress("done", len(items), len(items))
    return report
