"""Intake: every sealed file in the inbox ends in exactly one state, recorded in the store with a reason.

Order of checks for one file: known format -> registered, active company -> signed with its current key ->
addressed to this secretariat and untampered (signature, then decryption) -> plausible header (covenant,
template, period) -> not a copy of something already accepted -> valid content. The raw file is moved to
`received/<state>/` only after its state is committed, so a crash at any point is finished by a rerun.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import envelope
from .errors import AggregatorError, EnvelopeError
from .registry import Registry
from .store import Store
from .validation import check_file, templates_for
from .workspace import Workspace

PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_SEALED_BYTES = 2 * 1024**3


@dataclass
class FileOutcome:
    file: str
    state: str  # accepted | duplicate | superseded | quarantined | already-received
    reason: str
    company_id: str | None = None
    covenant: str | None = None
    template: str | None = None
    period: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class IntakeReport:
    outcomes: list[FileOutcome]

    def count(self, state: str) -> int:
        return sum(o.state == state for o in self.outcomes)


class Quarantine(Exception):
    """Internal: this file goes to quarantine with `reason` (and the validation report, if any)."""

    def __init__(self, reason: str, report=None):
        super().__init__(reason)
        self.reason = reason
        self.report = report


@dataclass
class _Opened:
    header: envelope.EnvelopeHeader
    plaintext: bytes


def run_intake(
    workspace: Workspace, inbox: Path, *, now: str, expected_period: str | None = None
) -> IntakeReport:
    """Process every file in `inbox` (sorted by name, for determinism)."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise AggregatorError(f"the inbox {inbox} does not exist or is not a folder")
    files = sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))
    with workspace.locked(), workspace.open_store() as store:
        return IntakeReport([_process(workspace, store, f, now, expected_period) for f in files])


def _process(
    workspace: Workspace, store: Store, path: Path, now: str, expected_period: str | None
) -> FileOutcome:
    raw_sha = _sha256_file(path)
    known = store.con.execute(
        "SELECT state, raw_path, original_name FROM submissions WHERE submission_id = ?", [raw_sha]
    ).fetchone()
    if known is not None and known[2] == path.name:
        # A rerun after an interruption: the state is committed, only the move into received/ is left.
        _file_away(path, workspace.root / known[1])
        return FileOutcome(path.name, "already-received", f"this file was processed before ({known[0]})")
    if known is not None:
        return _exact_copy(workspace, store, path, raw_sha, known[0], now)
    raw_rel = Path("received") / "pending" / f"{raw_sha[:16]}--{_safe_name(path.name)}"
    try:
        opened = _open(workspace, store, path)
        outcome = _accept(workspace, store, path, raw_sha, raw_rel, opened, now, expected_period)
    except Quarantine as q:
        outcome = _quarantine(store, path, raw_sha, raw_rel, q, now)
    final = Path("received") / outcome.state / raw_rel.name
    store.con.execute(
        "UPDATE submissions SET raw_path = ? WHERE submission_id = ?", [final.as_posix(), raw_sha]
    )
    _file_away(path, workspace.root / final)
    return outcome


def _exact_copy(
    workspace: Workspace, store: Store, path: Path, raw_sha: str, first_state: str, now: str
) -> FileOutcome:
    """The same sealed file again under another name: recorded as a duplicate, never counted twice."""
    copy_id = hashlib.sha256(f"{raw_sha}|copy|{path.name}".encode()).hexdigest()
    final = Path("received") / "duplicate" / f"{copy_id[:16]}--{_safe_name(path.name)}"
    header = _header_or_none(path)
    outcome = FileOutcome(
        path.name,
        "duplicate",
        f"identical to a file received before ({first_state}); not counted twice",
        *(getattr(header, f, None) for f in ("company_id", "covenant", "template", "period")),
    )
    _record(store, copy_id, final, header, outcome, now)
    _file_away(path, workspace.root / final)
    return outcome


def _header_or_none(path: Path):
    try:
        return envelope.read_header(path)
    except EnvelopeError:
        return None


def _open(workspace: Workspace, store: Store, path: Path) -> _Opened:
    if path.stat().st_size > MAX_SEALED_BYTES:
        raise Quarantine("the file is larger than 2 GB; submissions are much smaller, so it was not opened")
    try:
        header = envelope.read_header(path)
    except EnvelopeError as exc:
        raise Quarantine(f"not a valid sealed submission: {exc.message}") from None
    registry = Registry(store)
    company = registry.find(header.company_id)
    if company is None:
        raise Quarantine(f"company {header.company_id} is not registered with the secretariat")
    if company.status != "active":
        raise Quarantine(f"company {header.company_id} is revoked and may not submit")
    key_bytes = registry.active_key(header.company_id, header.signer_fingerprint)
    if key_bytes is None:
        raise Quarantine(
            f"the file is signed with key {header.signer_fingerprint}, which is not the current registered key "
            f"of {header.company_id}"
        )
    try:
        _, plaintext = envelope.open_file(
            path, workspace.decryption_key, envelope.keys.signing_public_key_from_bytes(key_bytes)
        )
    except EnvelopeError as exc:
        raise Quarantine(exc.message) from None
    return _Opened(header, plaintext)


def _check_header(workspace: Workspace, store: Store, header, now: str, expected_period: str | None) -> None:
    company = Registry(store).get(header.company_id)
    if header.covenant not in workspace.protocols:
        raise Quarantine(f"covenant '{header.covenant}' is not handled by this secretariat")
    if header.covenant not in company.covenants:
        raise Quarantine(f"company {header.company_id} is not a member of covenant '{header.covenant}'")
    if header.template not in templates_for(header.covenant):
        raise Quarantine(f"'{header.template}' is not a template of covenant '{header.covenant}'")
    if not PERIOD.match(header.period or ""):
        raise Quarantine(f"'{header.period}' is not a reporting period (YYYY-MM)")
    if header.period > now[:7]:
        raise Quarantine(f"the reporting period {header.period} lies in the future")
    if expected_period and header.period != expected_period:
        raise Quarantine(
            f"the file was sealed for period {header.period}, but this intake is for {expected_period} "
            "(a replay or a file sent in the wrong month)"
        )


def _accept(
    workspace: Workspace,
    store: Store,
    path: Path,
    raw_sha: str,
    raw_rel: Path,
    opened: _Opened,
    now: str,
    expected_period: str | None,
) -> FileOutcome:
    header = opened.header
    _check_header(workspace, store, header, now, expected_period)
    outcome = FileOutcome(
        path.name, "accepted", "", header.company_id, header.covenant, header.template, header.period
    )
    current = store.con.execute(
        "SELECT submission_id, plaintext_sha256, sealed_at FROM submissions WHERE company_id = ? AND covenant = ? "
        "AND template = ? AND period = ? AND state = 'accepted'",
        [header.company_id, header.covenant, header.template, header.period],
    ).fetchone()
    if current is not None and current[1] == header.plaintext_sha256:
        outcome.state, outcome.reason = (
            "duplicate",
            f"same content as submission {current[0][:12]} (not counted twice)",
        )
        _record(store, raw_sha, raw_rel, header, outcome, now)
        return outcome
    if current is not None and current[2] >= header.created:
        raise Quarantine(
            f"the file was sealed at {header.created}, before the submission already accepted for this period "
            f"({current[2]}): an old file sent again"
        )
    result = check_file(opened.plaintext, header.covenant, header.template)
    outcome.warnings = [str(w) for w in result.warnings]
    if not result.ok:
        raise Quarantine(_validation_reason(result.report), result.report)
    template = result.spec
    outcome.reason = "valid" if current is None else f"valid; replaces submission {current[0][:12]}"
    with store.transaction() as con:
        _insert_rows(store, header, raw_sha, result.frame, template)
        if current is not None:
            con.execute(
                "UPDATE submissions SET state = 'superseded', reason = ?, superseded_by = ? WHERE submission_id = ?",
                [f"replaced by a newer submission {raw_sha[:12]}", raw_sha, current[0]],
            )
        receipt = envelope.make_receipt(header, raw_sha, now, "accepted", workspace.signing_key)
        _record(
            store,
            raw_sha,
            raw_rel,
            header,
            outcome,
            now,
            receipt=receipt,
            warnings=outcome.warnings,
            commit=False,
        )
    return outcome


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


def _insert_rows(store: Store, header, raw_sha: str, frame: pd.DataFrame, template) -> None:
    types = {c.name: DUCKDB_TYPES[c.type] for c in template.columns}
    table = store.ensure_rows_table(header.covenant, header.template, types)
    rows = frame.reset_index(names="source_row")
    rows.insert(0, "period", header.period)
    rows.insert(0, "company_id", header.company_id)
    rows.insert(0, "submission_id", raw_sha)
    columns = ["submission_id", "company_id", "period", "source_row", *template.column_names]
    store.con.register("incoming_rows", rows[columns])
    try:
        store.con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM incoming_rows")
    finally:
        store.con.unregister("incoming_rows")


def _record(
    store: Store,
    raw_sha: str,
    raw_rel: Path,
    header,
    outcome: FileOutcome,
    now: str,
    *,
    receipt: bytes | None = None,
    warnings: list[str] | None = None,
    report_json: str | None = None,
    commit: bool = True,
) -> None:
    values = [
        raw_sha,
        getattr(header, "company_id", None),
        getattr(header, "covenant", None),
        getattr(header, "template", None),
        getattr(header, "period", None),
        getattr(header, "created", None),
        now,
        outcome.file,
        outcome.state,
        outcome.reason,
        getattr(header, "plaintext_sha256", None),
        raw_rel.as_posix(),
        report_json,
        json.dumps(warnings or [], ensure_ascii=False),
        None,
        receipt,
    ]
    sql = "INSERT INTO submissions VALUES (" + ", ".join("?" * len(values)) + ")"
    if commit:
        with store.transaction() as con:
            con.execute(sql, values)
    else:
        store.con.execute(sql, values)


def _quarantine(
    store: Store, path: Path, raw_sha: str, raw_rel: Path, q: Quarantine, now: str
) -> FileOutcome:
    header = _header_or_none(path)
    outcome = FileOutcome(
        path.name,
        "quarantined",
        q.reason,
        getattr(header, "company_id", None),
        getattr(header, "covenant", None),
        getattr(header, "template", None),
        getattr(header, "period", None),
    )
    report_json = None if q.report is None else json.dumps(q.report.to_dict(), ensure_ascii=False)
    _record(store, raw_sha, raw_rel, header, outcome, now, report_json=report_json)
    return outcome


def _file_away(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if src.exists():
        shutil.move(src, dst)


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[:100]
    return cleaned or "file"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
