"""Intake: every sealed file in the inbox ends in exactly one state, recorded in the store with a reason.

Order of checks for one file: not empty, known format -> registered, active company -> signed with its current
key -> addressed to this secretariat and untampered (signature, then decryption) -> plausible header (covenant,
template, period) -> not a copy of something already accepted -> valid content.

Durability: a file's state (with its final place `received/<state>/...` and its signed receipt) is committed to
the store first; then the receipt is written to `outbox/<company>/<sealed file's SHA-256>.receipt` and the raw
file is moved. Receipts are keyed by the sealed file's content and company, never by the name it arrived under,
and written only for a file whose signature verified with the registered key of the company it names: a forgery
in a company's name never reaches that company's outbox. Each carries the action log's head at the start of the
intake (an anchor the company keeps). A crash between
those steps is finished by the next run: a file still in the inbox whose state is recorded is only filed away,
and a superseded file left in `received/accepted/` is moved on. Decrypted data never touches the disk outside
the encrypted store.

Speed: up to COMMIT_EVERY files share one transaction (one synced commit, one row insert per template and one
log statement for all of them) and are delivered and moved only after it commits, so a crash costs at most
that many files' work, never their state: their records roll back together and the files are still in the inbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import duckdb
import numpy as np
import pandas as pd

from . import envelope
from . import log as action_log
from .errors import HOSTILE_INPUT_ERRORS, AggregatorError, EnvelopeError
from .exact_totals import PeriodTotals
from .periods import Period
from .registry import Registry
from .states import FileState
from .store import Store
from .validation import CheckResult, templates_for, worker
from .workspace import Workspace

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# A 4-million-row CSV is about 180 MB and checks within the worker's default memory; the intake itself holds a
# file's plaintext and its checked rows, so larger files are refused before they are opened.
MAX_SEALED_BYTES = 512 * 1024**2
RECEIPT_SUFFIX = ".receipt"
# Files per transaction. Each commit syncs the encrypted write-ahead log (a few ms); more files per commit save
# little beyond this, and a crash redoes at most this many files.
COMMIT_EVERY = 32
# ... and validated rows held for one transaction's insert: a few very large files commit on their own, so
# memory stays that of the largest file, as with one transaction per file.
COMMIT_ROWS = 200_000
# Files opened and checked ahead of their decisions, together (check_files): a small file's check is nearly all
# per-call overhead. Only sealed files up to AHEAD_BYTES take part, so a chunk holds at most ~256 MB.
AHEAD_FILES = 256
AHEAD_BYTES = 1024**2


@dataclass
class FileOutcome:
    file: str
    state: FileState
    reason: str
    company_id: str | None = None
    covenant: str | None = None
    template: str | None = None
    period: str | None = None
    warnings: list[str] = field(default_factory=list)
    receipt: str | None = None  # path of the receipt in the outbox, relative to the workspace


@dataclass
class IntakeReport:
    outcomes: list[FileOutcome]

    def count(self, state: str) -> int:
        return sum(o.state == state for o in self.outcomes)


class Quarantine(Exception):
    """Internal: this file goes to quarantine with `reason` (and the validation report, if any)."""

    def __init__(self, reason: str, report=None, *, signed: bool = False, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.report = report
        self.signed = signed  # the file's signature verified with the registered key of the company it names
        self.detail = detail  # for the secretariat's log only: why a check ended without a verdict


@dataclass
class _Opened:
    header: envelope.EnvelopeHeader
    plaintext: bytes

    @property
    def content_hash(self) -> str:
        """BLAKE3 of the plaintext: the duplicate key, kept only in the encrypted store."""
        return blake3.blake3(self.plaintext).hexdigest()


@dataclass
class _Decision:
    """What to commit for one file: its outcome, the verified or claimed header, extras for the record."""

    outcome: FileOutcome
    header: envelope.EnvelopeHeader | None
    report_json: str | None = None
    replaces: str | None = None  # submission id of the accepted submission this one supersedes
    rows: pd.DataFrame | None = None  # the validated rows of an accepted file
    template: object = None  # their template (aggregator.validation.Template)
    signed: bool = False  # the signature verified with the registered key of header.company_id
    content_hash: str | None = None  # BLAKE3 of the plaintext, when it was decrypted
    detail: str = ""  # a failed check's traceback or last words, logged for the secretariat


def run_intake(
    workspace: Workspace,
    inbox: Path,
    *,
    now: str,
    expected_period: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    limits: worker.Limits | None = None,
) -> IntakeReport:
    """Process every file in `inbox` (sorted by name, for determinism); each ends in one `received/<state>/`.

    Files are read and validated in a separate process under `limits` (memory, time): a file that exceeds
    them, or crashes that process, is quarantined with a plain reason and the intake goes on.
    `progress(file name, done, total)` is called before each file and once at the end (the CLI draws a bar)."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise AggregatorError(
            f"the inbox {inbox} does not exist or is not a folder",
            hint="give the folder the sealed .imvo files were saved to",
        )
    if expected_period is not None:
        Period.parse(expected_period)
    if not TIMESTAMP.match(now):
        # Checked up front: receipts carry this time, and a bad clock must not stop an intake halfway.
        raise AggregatorError(f"'{now}' is not a UTC time written YYYY-MM-DDTHH:MM:SSZ")
    files = sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))
    with workspace.session(now) as store:
        _finish_superseded_moves(workspace, store)
        pending = _Pending(workspace, store, now)
        outcomes = []
        chunks = [files[at : at + AHEAD_FILES] for at in range(0, len(files), AHEAD_FILES)]
        try:
            with _Lookahead(workspace, pending.registry, now, expected_period, limits) as look:
                upcoming = look.start(chunks[0]) if chunks else None
                for n, chunk in enumerate(chunks):
                    ahead = upcoming.finish()
                    upcoming = look.start(chunks[n + 1]) if n + 1 < len(chunks) else None
                    for path in chunk:
                        if progress:
                            progress(path.name, len(outcomes), len(files))
                        outcomes.append(_process(pending, path, expected_period, ahead, look))
            pending.flush()
        except BaseException:
            pending.abandon()
            raise
    if progress:
        progress("done", len(files), len(files))
    return IntakeReport(outcomes)


class _RegistryLookups:
    """The registry's answers, memoised for one intake: it holds the workspace lock and never changes the
    registry, so each company and key is looked up once instead of three times per file."""

    def __init__(self, store: Store):
        self._registry = Registry(store)
        self._memo: dict[tuple[str, ...], object] = {}

    def _cached(self, method: str, *args: str):
        key = (method, *args)
        if key not in self._memo:
            self._memo[key] = getattr(self._registry, method)(*args)
        return self._memo[key]

    def find(self, company_id: str):
        return self._cached("find", company_id)

    def get(self, company_id: str):
        return self.find(company_id) or self._registry.get(company_id)  # the registry raises for a stranger

    def active_key(self, company_id: str, fingerprint: str) -> bytes | None:
        return self._cached("active_key", company_id, fingerprint)

    def key_owners(self, fingerprint: str) -> list[tuple[str, str | None]]:
        return self._cached("key_owners", fingerprint)


@dataclass
class _Ahead:
    """Small files opened and checked before their turn, those of one template together (check_files).

    Only what depends on the file alone is done ahead; every decision is still taken in turn, which finds here
    the very result it would compute. A file that fails to open or read is left out: its turn raises the same
    refusal."""

    opened: dict[Path, tuple[tuple[int, ...] | None, _Opened]]  # with the file's stamp when it was opened
    groups: list[list[Path]]  # the opened files by covenant and template, in the order of the checks
    answer: Callable[[], worker.Answer]
    checked: dict[Path, CheckResult] = field(default_factory=dict)

    def finish(self) -> _Ahead:
        for group, checked in zip(self.groups, self.answer(), strict=True):
            if not isinstance(checked, worker.Failed):  # a failed group's files are checked alone in turn
                self.checked.update(zip(group, checked, strict=True))
        return self

    def of(self, path: Path) -> tuple[_Opened | None, CheckResult | None]:
        """What was done ahead for `path`, if the file is still the one opened then (an inbox can change)."""
        stamp, opened = self.opened.get(path, (None, None))
        if opened is None or stamp is None or _stamp(path) != stamp:
            return None, None
        return opened, self.checked.get(path)


def _stamp(path: Path) -> tuple[int, ...] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


class _Lookahead:
    """Opens each chunk's small files and has the worker process check them while this process decides the
    chunk before; `check` has one file checked alone (a large one, or one whose chunk failed)."""

    def __init__(
        self,
        workspace: Workspace,
        registry: _RegistryLookups,
        now: str,
        expected_period: str | None,
        limits: worker.Limits | None,
    ):
        self.workspace, self.registry, self.now, self.expected_period = workspace, registry, now, expected_period
        self.worker = worker.acquire(limits)

    def __enter__(self) -> _Lookahead:
        return self

    def __exit__(self, *exc: object) -> None:
        worker.release(self.worker)

    def check(self, opened: _Opened) -> CheckResult:
        """The verdict on one file, checked alone; raises Quarantine when the check ended without one."""
        header = opened.header
        result = self.worker.check(header.covenant, header.template, opened.plaintext)
        if isinstance(result, worker.Failed):
            raise Quarantine(self.worker.limits.describe(result.stop), detail=result.detail)
        return result

    def start(self, paths: list[Path]) -> _Ahead:
        opened: dict[Path, tuple[tuple[int, ...] | None, _Opened]] = {}
        for path in paths:
            stamp = _stamp(path)
            if stamp is None or stamp[0] > AHEAD_BYTES:
                continue
            try:
                one = _open(self.workspace, self.registry, path)
                _check_header(self.workspace, self.registry, one.header, self.now, self.expected_period)
            except (Quarantine, OSError, *HOSTILE_INPUT_ERRORS):
                continue
            opened[path] = (stamp, one)
        by_template: dict[tuple[str, str], list[Path]] = {}
        for path, (_, one) in opened.items():
            by_template.setdefault((one.header.covenant, one.header.template), []).append(path)
        keys = sorted(by_template)
        groups = [by_template[key] for key in keys]
        work = [(*key, [opened[path][1].plaintext for path in group]) for key, group in zip(keys, groups, strict=True)]
        return _Ahead(opened, groups, self.worker.submit(work))


@dataclass
class _Filed:
    """A decided file whose record is written in the open transaction but not yet committed."""

    path: Path
    submission_id: str
    final: Path
    decision: _Decision
    receipt: bytes | None


class _Pending:
    """Decided files sharing one open transaction; delivered and filed away only after it commits."""

    def __init__(self, workspace: Workspace, store: Store, now: str):
        self.workspace, self.store, self.now = workspace, store, now
        self.registry = _RegistryLookups(store)
        self.totals = PeriodTotals(store, workspace.protocols)
        self.log_head = str(action_log.head(store))  # every receipt of this intake carries it
        self.files: list[_Filed] = []
        self.rows = 0

    def holds(self, submission_id: str | None) -> bool:
        return any(f.submission_id == submission_id for f in self.files)

    def add(self, filed: _Filed) -> None:
        if not self.files:
            self.store.con.execute("BEGIN TRANSACTION")
        self.files.append(filed)
        self.rows += 0 if filed.decision.rows is None else len(filed.decision.rows)
        _record(self.store, self.workspace, self.registry, filed, self.now)
        if len(self.files) >= COMMIT_EVERY or self.rows >= COMMIT_ROWS:
            self.flush()

    def flush(self) -> None:
        """Commit the pending records, then deliver each file's receipt and move it to its final place."""
        if not self.files:
            return
        _commit(self.store, self.files, self.now)
        files, self.files, self.rows = self.files, [], 0
        if any(f.decision.replaces is not None for f in files):
            _finish_superseded_moves(self.workspace, self.store)
        for filed in files:
            outcome = filed.decision.outcome
            delivered = _deliver_receipt(self.workspace, filed.decision.header, filed.submission_id, filed.receipt)
            outcome.receipt = delivered or outcome.receipt  # an exact copy points to the receipt of its bytes
            _file_away(filed.path, self.workspace.root / filed.final)

    def abandon(self) -> None:
        """After a failure: roll the uncommitted records back; their files stay in the inbox for the next run."""
        if self.files:
            self.files, self.rows = [], 0
            try:
                self.store.con.execute("ROLLBACK")
            except duckdb.Error:  # the failure came after COMMIT (or DuckDB already ended the transaction)
                pass


def _process(
    pending: _Pending, path: Path, expected_period: str | None, ahead: _Ahead, look: _Lookahead
) -> FileOutcome:
    workspace, store, now = pending.workspace, pending.store, pending.now
    raw_sha = _sha256_file(path)
    finished = _already_recorded(workspace, store, path, raw_sha)
    if finished is not None:
        return finished
    first = store.con.execute("SELECT state FROM submissions WHERE submission_id = ?", [raw_sha]).fetchone()
    if first is not None:
        decision = _exact_copy(workspace, path, raw_sha, first[0])
        submission_id = _copy_id(raw_sha, path.name)
    else:
        decision = _decide(pending, path, expected_period, ahead, look.check)
        submission_id = raw_sha
    if pending.holds(decision.replaces):
        # The replaced file must be committed and filed away first, so that it is moved on and receipted as
        # superseded exactly as when it came in an earlier intake.
        pending.flush()
    final = _received_path(decision.outcome.state, submission_id, path.name)
    receipt = _make_receipt(workspace, decision, raw_sha, now, pending.log_head)
    pending.add(_Filed(path, submission_id, final, decision, receipt))
    return decision.outcome


def _already_recorded(workspace: Workspace, store: Store, path: Path, raw_sha: str) -> FileOutcome | None:
    """A rerun after an interruption: the state is committed, only the receipt and the move are left."""
    row = store.con.execute(
        "SELECT state, raw_path, company_id, receipt FROM submissions "
        "WHERE submission_id IN (?, ?) AND original_name = ?",
        [raw_sha, _copy_id(raw_sha, path.name), path.name],
    ).fetchone()
    if row is None:
        return None
    state, raw_path, company_id, receipt = row
    receipt_path = None
    if receipt is not None and company_id is not None:
        receipt_path = _write_receipt(workspace, company_id, raw_sha, bytes(receipt))
    _file_away(path, workspace.root / raw_path)
    return FileOutcome(
        path.name,
        FileState.ALREADY_RECEIVED,
        f"this file was processed before ({state}); not counted twice",
        company_id,
        receipt=receipt_path,
    )


def _exact_copy(workspace: Workspace, path: Path, raw_sha: str, first_state: str) -> _Decision:
    """The same sealed file again under another name: recorded as a duplicate, never counted twice. It gets
    no receipt of its own: the receipt of these bytes (keyed by their hash) already says what became of them."""
    header = _header_or_none(path)
    outcome = FileOutcome(
        path.name,
        FileState.DUPLICATE,
        f"identical to a file received before ({first_state}); not counted twice",
        *_header_fields(header),
    )
    if header is not None:
        existing = _receipt_path(workspace, header.company_id, raw_sha)
        outcome.receipt = existing.relative_to(workspace.root).as_posix() if existing.exists() else None
    return _Decision(outcome, header)


def _decide(
    pending: _Pending,
    path: Path,
    expected_period: str | None,
    ahead: _Ahead,
    check: Callable[[_Opened], CheckResult],
) -> _Decision:
    """Open, check and validate a new file; every refusal becomes a quarantine decision with its reason."""
    opened = None
    try:
        opened, checked = ahead.of(path)
        opened = opened or _open(pending.workspace, pending.registry, path)
        return _accept(pending, path, opened, expected_period, checked or check)
    except HOSTILE_INPUT_ERRORS as exc:
        q = Quarantine(f"the file could not be read safely ({type(exc).__name__}); it is kept for inspection")
    except Quarantine as caught:
        q = caught
    header = _header_or_none(path)
    outcome = FileOutcome(path.name, FileState.QUARANTINED, q.reason, *_header_fields(header))
    report_json = None if q.report is None else json.dumps(q.report.to_dict(), ensure_ascii=False)
    signed = opened is not None or q.signed
    content = None if opened is None else opened.content_hash
    return _Decision(outcome, header, report_json=report_json, signed=signed, content_hash=content, detail=q.detail)


def _header_or_none(path: Path) -> envelope.EnvelopeHeader | None:
    try:
        return envelope.read_header(path)
    except (EnvelopeError, *HOSTILE_INPUT_ERRORS):
        return None


def _header_fields(header: envelope.EnvelopeHeader | None) -> list[str | None]:
    return [getattr(header, f, None) for f in ("company_id", "covenant", "template", "period")]


def _open(workspace: Workspace, registry: _RegistryLookups, path: Path) -> _Opened:
    size = path.stat().st_size
    if size == 0:
        raise Quarantine("the file is empty (0 bytes): nothing was sent")
    if size > MAX_SEALED_BYTES:
        raise Quarantine(
            f"the file is larger than {MAX_SEALED_BYTES // 1024**2} MB; submissions are much smaller, so it was not "
            "opened (a genuine file this large must be split into smaller ones)"
        )
    try:
        header = envelope.read_header(path)
    except EnvelopeError as exc:
        raise Quarantine(f"not a valid sealed submission: {exc.message}") from None
    key_bytes = _signing_key_of(registry, header)
    try:
        _, plaintext = envelope.open_file(
            path, workspace.decryption_key, envelope.keys.signing_public_key_from_bytes(key_bytes)
        )
    except EnvelopeError as exc:
        raise Quarantine(exc.message, signed=getattr(exc, "signer_verified", False)) from None
    return _Opened(header, plaintext)


def _signing_key_of(registry: _RegistryLookups, header: envelope.EnvelopeHeader) -> bytes:
    """The registered, current public key the file claims to be signed with; quarantines every other case."""
    company = registry.find(header.company_id)
    if company is None:
        raise Quarantine(f"company {header.company_id} is not registered with the secretariat")
    if company.status != "active":
        raise Quarantine(f"company {header.company_id} is revoked and may not submit")
    key_bytes = registry.active_key(header.company_id, header.signer_fingerprint)
    if key_bytes is not None:
        return key_bytes
    owners = registry.key_owners(header.signer_fingerprint)
    others = sorted(c for c, _ in owners if c != header.company_id)
    retired = [r for c, r in owners if c == header.company_id and r is not None]
    if others:
        raise Quarantine(
            f"the file claims to come from {header.company_id} but is signed with the key of company "
            f"{others[0]}: a forgery or a mix-up; not opened"
        )
    if retired:
        raise Quarantine(
            f"the file is signed with an old key of {header.company_id} (replaced on {retired[0]}); "
            "files signed with a replaced key are refused"
        )
    raise Quarantine(
        f"the file is signed with key {header.signer_fingerprint}, which is not a registered key of {header.company_id}"
    )


def _check_header(
    workspace: Workspace,
    registry: _RegistryLookups,
    header: envelope.EnvelopeHeader,
    now: str,
    expected_period: str | None,
) -> None:
    company = registry.get(header.company_id)
    if header.covenant not in workspace.protocols:
        raise Quarantine(f"covenant '{header.covenant}' is not handled by this secretariat")
    if header.covenant not in company.covenants:
        raise Quarantine(f"company {header.company_id} is not a member of covenant '{header.covenant}'")
    if header.template not in templates_for(header.covenant):
        raise Quarantine(f"'{header.template}' is not a template of covenant '{header.covenant}'")
    if not Period.is_valid(header.period):
        raise Quarantine(f"'{header.period}' is not a reporting period (YYYY-MM)")
    if header.period > now[:7]:
        raise Quarantine(f"the reporting period {header.period} lies in the future")
    if expected_period and header.period != expected_period:
        raise Quarantine(
            f"the file was sealed for period {header.period}, but this intake is for {expected_period} "
            "(a replay or a file sent in the wrong month)"
        )


def _accept(
    pending: _Pending,
    path: Path,
    opened: _Opened,
    expected_period: str | None,
    checked: CheckResult | Callable[[_Opened], CheckResult],
) -> _Decision:
    """`checked` is the file's check result when it was checked ahead, else the function that checks it."""
    header, store = opened.header, pending.store
    _check_header(pending.workspace, pending.registry, header, pending.now, expected_period)
    outcome = FileOutcome(path.name, FileState.ACCEPTED, "", *_header_fields(header))
    if header.deprecation:
        outcome.warnings.append(header.deprecation)
    content = opened.content_hash
    current = store.con.execute(
        "SELECT submission_id, plaintext_blake3, sealed_at FROM submissions WHERE company_id = ? AND covenant = ? "
        "AND template = ? AND period = ? AND state = 'accepted'",
        [header.company_id, header.covenant, header.template, header.period],
    ).fetchone()
    if current is not None and current[1] == content:
        outcome.state = FileState.DUPLICATE
        outcome.reason = f"same content as submission {current[0][:12]} (not counted twice)"
        return _Decision(outcome, header, signed=True, content_hash=content)
    if current is not None and current[2] >= header.created:
        raise Quarantine(
            f"the file was sealed at {header.created}, not after the submission already accepted for this "
            f"period (sealed at {current[2]}): an old file sent again"
        )
    result = checked if isinstance(checked, CheckResult) else checked(opened)
    outcome.warnings += [str(w) for w in result.warnings]
    if result.report.internal_errors:
        detail = "\n".join(result.report.internal_errors)
        raise Quarantine(worker.Limits().describe(worker.Stop.INTERNAL), result.report, detail=detail)
    if not result.ok:
        raise Quarantine(_validation_reason(result.report), result.report)
    too_large = pending.totals.admit(header.covenant, header.template, header.period, result.frame)
    if too_large is not None:
        raise Quarantine(too_large)
    outcome.reason = "valid" if current is None else f"valid; replaces submission {current[0][:12]}"
    replaces = None if current is None else current[0]
    return _Decision(
        outcome, header, replaces=replaces, rows=result.frame, template=result.spec, signed=True, content_hash=content
    )


DUCKDB_TYPES = {
    "string": "VARCHAR",
    "country": "VARCHAR",
    "enum": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "TIMESTAMP",
}


def _validation_reason(report) -> str:
    """One line for the clerk's overview; the full table stays with the submission (report_json)."""
    first = report.to_frame().iloc[0]
    where = f"row {int(first['row'])}, " if pd.notna(first["row"]) else ""
    column = f"column {first['column']}: " if isinstance(first["column"], str) and first["column"] else ""
    more = f" (and {report.n_problems - 1} more problems)" if report.n_problems > 1 else ""
    return f"the data does not meet the rules: {where}{column}{first['message_en']}{more}"


def _insert_rows(store: Store, accepted: list[_Filed]) -> None:
    """The validated rows of accepted files of one template, appended with one statement."""
    first = accepted[0].decision
    template = first.template
    types = {c.name: DUCKDB_TYPES[c.type] for c in template.columns}
    table = store.ensure_rows_table(first.header.covenant, first.header.template, types)
    rows = _keyed_rows(accepted)
    columns = ["submission_id", "company_id", "period", "source_row", *template.column_names]
    store.con.register("incoming_rows", rows[columns])
    try:
        store.append_rows(table, columns, "incoming_rows")
    finally:
        store.con.unregister("incoming_rows")


def _keyed_rows(accepted: list[_Filed]) -> pd.DataFrame:
    """Every file's rows (index = source row) under its submission id, company and period, in file order.

    The key columns are built once for all files: per-file inserts on small frames cost ~0.5 ms each."""
    frames = [filed.decision.rows for filed in accepted]
    rows = pd.concat(frames).reset_index(names="source_row")
    lengths = [len(frame) for frame in frames]
    keys = {
        "period": [filed.decision.header.period for filed in accepted],
        "company_id": [filed.decision.header.company_id for filed in accepted],
        "submission_id": [filed.submission_id for filed in accepted],
    }
    for name, values in keys.items():
        rows.insert(0, name, np.repeat(np.array(values, dtype=object), lengths))
    return rows


def _commit(store: Store, pending: list[_Filed], now: str) -> None:
    """End the open transaction: the accepted rows (one insert per template), a log entry per file, COMMIT."""
    by_template: dict[tuple[str, str], list[_Filed]] = {}
    for filed in pending:
        if filed.decision.rows is not None:
            by_template.setdefault((filed.decision.header.covenant, filed.decision.header.template), []).append(filed)
    for key in sorted(by_template):
        _insert_rows(store, by_template[key])
    decisions = [("intake.decision", _log_details(filed)) for filed in pending]
    action_log.append_many(store.con, decisions, now)
    store.con.execute("COMMIT")


def _log_details(filed: _Filed) -> dict[str, str | None]:
    header, outcome = filed.decision.header, filed.decision.outcome
    details = {"submission": filed.submission_id, "file": outcome.file, "state": outcome.state}
    details |= {"reason": outcome.reason, "company": getattr(header, "company_id", None)}
    details |= {"period": getattr(header, "period", None), "template": getattr(header, "template", None)}
    if filed.decision.replaces is not None:
        details["supersedes"] = filed.decision.replaces
    if filed.decision.detail:
        details["check_error"] = filed.decision.detail
    return details


def _record(store: Store, workspace: Workspace, registry: _RegistryLookups, filed: _Filed, now: str) -> None:
    """In the open transaction: the file's record, and its predecessor marked superseded."""
    decision, submission_id, final, receipt = filed.decision, filed.submission_id, filed.final, filed.receipt
    header, outcome = decision.header, decision.outcome
    values = [
        submission_id,
        *_header_fields(header)[:4],
        getattr(header, "created", None),
        now,
        outcome.file,
        outcome.state,
        outcome.reason,
        decision.content_hash,
        final.as_posix(),
        decision.report_json,
        json.dumps(outcome.warnings, ensure_ascii=False),
        None,
        receipt,
    ]
    if decision.replaces is not None:
        _supersede(workspace, store, decision.replaces, submission_id)
    store.con.execute("INSERT INTO submissions VALUES (" + ", ".join("?" * len(values)) + ")", values)


def _supersede(workspace: Workspace, store: Store, old_id: str, new_id: str) -> None:
    """Mark the old accepted submission superseded, with its new place and a fresh receipt for its sender."""
    raw_path, received_at = store.con.execute(
        "SELECT raw_path, received_at FROM submissions WHERE submission_id = ?", [old_id]
    ).fetchone()
    old_file = workspace.root / raw_path
    header = _header_or_none(old_file) if old_file.exists() else None
    old = _Decision(FileOutcome(old_file.name, FileState.SUPERSEDED, ""), header, signed=True)  # it was accepted
    receipt = _make_receipt(workspace, old, old_id, received_at, str(action_log.head(store)))
    store.con.execute(
        "UPDATE submissions SET state = 'superseded', reason = ?, superseded_by = ?, raw_path = ?, "
        "receipt = coalesce(?, receipt) WHERE submission_id = ?",
        [
            f"replaced by a newer submission {new_id[:12]}",
            new_id,
            (Path("received") / "superseded" / Path(raw_path).name).as_posix(),
            receipt,
            old_id,
        ],
    )


def _finish_superseded_moves(workspace: Workspace, store: Store) -> None:
    """Move superseded files still in received/accepted/ to received/superseded/ and deliver their receipt."""
    rows = store.con.execute(
        "SELECT raw_path, submission_id, company_id, receipt FROM submissions WHERE state = 'superseded' "
        "ORDER BY submission_id"
    ).fetchall()
    for raw_path, submission_id, company_id, receipt in rows:
        target = workspace.root / raw_path
        stale = workspace.received_dir / "accepted" / target.name
        if target.exists() or not stale.exists():
            continue
        if receipt is not None and company_id is not None:
            _write_receipt(workspace, company_id, submission_id, bytes(receipt))
        _file_away(stale, target)


def _make_receipt(
    workspace: Workspace, decision: _Decision, file_sha: str, received_at: str, log_head: str
) -> bytes | None:
    """A signed receipt, only for a file signed with the registered key of the company it names: the company
    that really sent it. A forged or unverifiable file gets none (its header is only a claim), and an exact copy
    none of its own (the receipt of its bytes exists)."""
    header = decision.header
    if header is None or not decision.signed or decision.outcome.reason.startswith("identical to a file"):
        return None
    state = decision.outcome.state
    return envelope.make_receipt(header, file_sha, received_at, state, workspace.signing_key, log_head=log_head)


def _deliver_receipt(
    workspace: Workspace, header: envelope.EnvelopeHeader | None, file_sha: str, receipt: bytes | None
) -> str | None:
    if receipt is None or header is None:
        return None
    return _write_receipt(workspace, header.company_id, file_sha, receipt)


def _receipt_path(workspace: Workspace, company_id: str, file_sha: str) -> Path:
    """outbox/<company>/<SHA-256 of the sealed file>.receipt: one receipt per file content and company."""
    return workspace.outbox_dir / _safe_name(company_id) / (file_sha + RECEIPT_SUFFIX)


def _write_receipt(workspace: Workspace, company_id: str, file_sha: str, receipt: bytes) -> str:
    """Write the receipt atomically; returns its path relative to the workspace."""
    target = _receipt_path(workspace, company_id, file_sha)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_name("." + target.name + ".partial")
    partial.write_bytes(receipt)
    os.replace(partial, target)
    return target.relative_to(workspace.root).as_posix()


def _received_path(state: str, submission_id: str, name: str) -> Path:
    return Path("received") / state / f"{submission_id[:16]}--{_safe_name(name)}"


def _copy_id(raw_sha: str, name: str) -> str:
    """The record id of an exact copy received under another name (the file hash itself is taken)."""
    return hashlib.sha256(f"{raw_sha}|copy|{name}".encode()).hexdigest()


def _file_away(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if src.exists():
        shutil.move(src, dst)


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[:100]
    return cleaned.lstrip(".") or "file"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
