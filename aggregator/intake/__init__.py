"""Intake: every sealed file in the inbox ends in exactly one state, recorded in the store with a reason.

Order of checks for one file: a regular file of the inbox (never read through a link) -> not empty, known
format -> registered, active company -> signed with its current key -> addressed to this secretariat and
untampered (signature, then decryption) -> plausible header (covenant, template, period, a sealing time that is
not in the future) -> not a copy of something already accepted -> valid content (checked in the worker process,
under memory and time limits).

Durability: a file's state (with its final place `received/<state>/...` and its signed receipt) is committed to
the store first; then the receipt is written to `outbox/<company>/<sealed file's SHA-256>.receipt` and the raw
file is moved. Receipts are keyed by the sealed file's content and company, never by the name it arrived under,
and written only for a file whose signature verified with the registered key of the company it names: a forgery
in a company's name never reaches that company's outbox. Each carries the action log's head at the start of the
intake (an anchor the company keeps) and the reason's category. A crash between those steps is finished by the
next run: a file still in the inbox whose state is recorded is only filed away, and a file left in another
`received/<state>/` folder than its record says is moved on. Decrypted data never touches the disk outside the
encrypted store.

Speed: up to COMMIT_EVERY files share one transaction (one synced commit, one row insert per template and one
log statement for all of them) and are delivered and moved only after it commits, so a crash costs at most
that many files' work, never their state: their records roll back together and the files are still in the inbox.

Modules: inbox (what is read), opening (sender and header), lookahead (checks ahead in the worker), deciding
(one file's decision), recording (the transaction), files (received/ and outbox/), runs (many files),
redecide (quarantined files decided again after an operator's mistake).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aggregator.workspace import Workspace

from . import files, worker
from .deciding import process
from .files import RECEIPT_SUFFIX
from .inbox import check_inbox, scan_inbox
from .lookahead import AHEAD_BYTES, AHEAD_FILES
from .model import FUTURE_SKEW_MINUTES, MAX_SEALED_BYTES, FileOutcome, IntakeReport, Skipped
from .recording import COMMIT_EVERY, COMMIT_ROWS, DUCKDB_TYPES, Pending
from .redecide import redecide
from .runs import check_clock_and_period, decide_in_chunks

__all__ = [
    "AHEAD_BYTES",
    "AHEAD_FILES",
    "COMMIT_EVERY",
    "COMMIT_ROWS",
    "DUCKDB_TYPES",
    "FUTURE_SKEW_MINUTES",
    "MAX_SEALED_BYTES",
    "RECEIPT_SUFFIX",
    "FileOutcome",
    "IntakeReport",
    "Skipped",
    "redecide",
    "run_intake",
]


def run_intake(
    workspace: Workspace,
    inbox: Path,
    *,
    now: str,
    expected_period: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    limits: worker.Limits | None = None,
) -> IntakeReport:
    """Process every regular file in `inbox` (sorted by name, for determinism); each ends in one
    `received/<state>/`. Hidden files, folders, links and special files are reported in `skipped` and left.

    Files are read and validated in a separate process under `limits` (memory, time): a file that exceeds
    them, or crashes that process, is quarantined with a plain reason and the intake goes on.
    `progress(file name, done, total)` is called before each file and once at the end (the CLI draws a bar)."""
    inbox = check_inbox(workspace, inbox)
    check_clock_and_period(now, expected_period)
    scan = scan_inbox(inbox)
    with workspace.session(now) as store:
        files.finish_moves(workspace, store)
        pending = Pending(workspace, store, now)
        report = decide_in_chunks(
            pending,
            scan.files,
            lambda path: path,
            lambda path, ahead, look: process(pending, path, expected_period, ahead, look),
            expected_period=expected_period,
            limits=limits,
            progress=progress,
        )
    report.skipped = scan.skipped + report.skipped
    return report
