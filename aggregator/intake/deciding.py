"""Deciding one file: finished before, an exact copy, or opened, checked and validated; every refusal becomes a
quarantine decision with its reason and category."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from aggregator.errors import HOSTILE_INPUT_ERRORS
from aggregator.store import Store
from aggregator.workspace import Workspace
from imvo_submit.envelope import EnvelopeHeader
from imvo_submit.states import FileState, Reason
from imvo_submit.validation import CheckResult

from . import files, worker
from .inbox import unreadable
from .lookahead import Ahead, Lookahead
from .model import Decision, Filed, FileOutcome, Opened, Quarantine, Skipped
from .opening import check_header, header_fields, header_or_none, open_sealed
from .recording import Pending, validation_reason

AMBIGUOUS_NUMBER = "ambiguous_number"  # the readers' warning code for a value that reads two ways


def process(
    pending: Pending, path: Path, expected_period: str | None, ahead: Ahead, look: Lookahead
) -> FileOutcome | Skipped:
    """Decide one inbox file and add it to the open transaction; a file that cannot be read is left alone."""
    workspace, store, now = pending.workspace, pending.store, pending.now
    if path.is_symlink():  # put in place of the file after the inbox was scanned
        return Skipped(path.name, "link", "a symbolic link: not followed; put the file itself in the inbox")
    try:
        raw_sha = files.sha256_file(path)
    except OSError as exc:
        return unreadable(path, exc)
    finished = already_recorded(workspace, store, path, raw_sha)
    if finished is not None:
        return finished
    first = pending.state_of(raw_sha)
    if first is not None:
        decision = exact_copy(workspace, path, raw_sha, first)
        submission_id = files.copy_id(raw_sha, path.name)
    else:
        decision = decide(pending, path, expected_period, ahead, look.check)
        submission_id = raw_sha
    if pending.holds(decision.replaces):
        # The replaced file must be committed and filed away first, so that it is moved on and receipted as
        # superseded exactly as when it came in an earlier intake.
        pending.flush()
    final = files.received_path(decision.outcome.state, submission_id, path.name)
    receipt = files.make_receipt(workspace, decision, raw_sha, now, pending.log_head)
    pending.add(Filed(path, submission_id, final, decision, receipt))
    return decision.outcome


def already_recorded(workspace: Workspace, store: Store, path: Path, raw_sha: str) -> FileOutcome | None:
    """A rerun after an interruption: the state is committed, only the receipt and the move are left."""
    row = store.con.execute(
        "SELECT state, raw_path, company_id, receipt FROM submissions "
        "WHERE submission_id IN (?, ?) AND original_name = ?",
        [raw_sha, files.copy_id(raw_sha, path.name), path.name],
    ).fetchone()
    if row is None:
        return None
    state, raw_path, company_id, receipt = row
    receipt_path = None
    if receipt is not None and company_id is not None:
        receipt_path = files.write_receipt(workspace, company_id, raw_sha, bytes(receipt))
    files.file_away(path, workspace.root / raw_path)
    return FileOutcome(
        path.name,
        FileState.ALREADY_RECEIVED,
        f"this file was processed before ({state}); not counted twice",
        company_id,
        receipt=receipt_path,
    )


def exact_copy(workspace: Workspace, path: Path, raw_sha: str, first_state: str) -> Decision:
    """The same sealed file again under another name: recorded as a duplicate, never counted twice. It gets
    no receipt of its own: the receipt of these bytes (keyed by their hash) already says what became of them."""
    header = header_or_none(path)
    outcome = FileOutcome(
        path.name,
        FileState.DUPLICATE,
        f"identical to a file received before ({first_state}); not counted twice",
        *header_fields(header),
        category=Reason.DUPLICATE,
    )
    if header is not None:
        existing = files.receipt_path(workspace, header.company_id, raw_sha)
        outcome.receipt = existing.relative_to(workspace.root).as_posix() if existing.exists() else None
    return Decision(outcome, header)


def decide(
    pending: Pending,
    path: Path,
    expected_period: str | None,
    ahead: Ahead,
    check: Callable[[Opened], CheckResult],
) -> Decision:
    """Open, check and validate a new file; every refusal becomes a quarantine decision with its reason."""
    opened = None
    try:
        opened, checked = ahead.of(path)
        opened = opened or open_sealed(pending.workspace, pending.registry, path)
        return accept(pending, path, opened, expected_period, checked or check)
    except HOSTILE_INPUT_ERRORS as exc:
        q = Quarantine(
            f"the file could not be read safely ({type(exc).__name__}); it is kept for inspection",
            category=Reason.UNREADABLE,
        )
    except Quarantine as caught:
        q = caught
    header = header_or_none(path)
    outcome = FileOutcome(path.name, FileState.QUARANTINED, q.reason, *header_fields(header), category=q.category)
    outcome.warnings = ([opened.header.deprecation] if opened and opened.header.deprecation else []) + q.warnings
    outcome.warnings += outdated_rules(opened.header, pending.rules_version) if opened else []
    report_json = None if q.report is None else json.dumps(q.report.to_dict(), ensure_ascii=False)
    signed = opened is not None or q.signed
    content = None if opened is None else opened.content_hash
    return Decision(outcome, header, report_json=report_json, signed=signed, content_hash=content, detail=q.detail)


def outdated_rules(header: EnvelopeHeader, current: str) -> list[str]:
    """A note when the company checked the file against other rules than the secretariat's current ones (the
    file is validated with the current rules all the same)."""
    if header.rules_version in (None, current):
        return []  # sealed before imvo-submit recorded its rules, or with the current ones
    return [
        f"checked by the company against rules {header.rules_version}, not the current {current}; it was validated "
        "with the current rules: send the company the current rules bundle (`aggregator rules export`)"
    ]


def accept(
    pending: Pending,
    path: Path,
    opened: Opened,
    expected_period: str | None,
    checked: CheckResult | Callable[[Opened], CheckResult],
) -> Decision:
    """`checked` is the file's check result when it was checked ahead, else the function that checks it."""
    header = opened.header
    check_header(pending.workspace, pending.registry, header, pending.now, expected_period)
    outcome = FileOutcome(path.name, FileState.ACCEPTED, "", *header_fields(header), category=Reason.VALID)
    if header.deprecation:
        outcome.warnings.append(header.deprecation)
    outcome.warnings += outdated_rules(header, pending.rules_version)
    content = opened.content_hash
    current = pending.accepted(header.company_id, header.covenant, header.template, header.period)
    if current is not None and current[1] == content:
        outcome.state, outcome.category = FileState.DUPLICATE, Reason.DUPLICATE
        outcome.reason = f"same content as submission {current[0][:12]} (not counted twice)"
        return Decision(outcome, header, signed=True, content_hash=content)
    if current is not None and current[2] >= header.created:
        raise Quarantine(
            f"the file was sealed at {header.created}, not after the submission already accepted for this "
            f"period (sealed at {current[2]}): an old file sent again",
            category=Reason.REPLAY,
        )
    result = _verdict(pending, opened, checked)
    outcome.warnings += [str(w) for w in result.warnings]
    if any(getattr(w, "code", None) == AMBIGUOUS_NUMBER for w in result.warnings):
        outcome.category = Reason.CHECK_NUMBERS
    outcome.reason = "valid" if current is None else f"valid; replaces submission {current[0][:12]}"
    replaces = None if current is None else current[0]
    return Decision(
        outcome, header, replaces=replaces, rows=result.frame, template=result.spec, signed=True, content_hash=content
    )


def _verdict(pending: Pending, opened: Opened, checked: CheckResult | Callable[[Opened], CheckResult]) -> CheckResult:
    """The file's passed check; a failed one, or a check that ended without a verdict, quarantines it."""
    header = opened.header
    result = checked if isinstance(checked, CheckResult) else checked(opened)
    noted = [str(w) for w in result.warnings]
    if result.report.internal_errors:
        detail = "\n".join(result.report.internal_errors)
        reason = worker.Limits().describe(worker.Stop.INTERNAL)
        raise Quarantine(reason, result.report, category=Reason.LIMITS, detail=detail)
    if not result.ok:
        raise Quarantine(validation_reason(result.report), result.report, category=Reason.CONTENT, warnings=noted)
    too_large = pending.totals.admit(header.covenant, header.template, header.period, result.frame)
    if too_large is not None:
        raise Quarantine(too_large, category=Reason.CONTENT, warnings=noted)
    return result
