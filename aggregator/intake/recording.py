"""Recording decisions: up to COMMIT_EVERY files share one transaction (one synced commit, one insert of their
records, one row insert per template and one log statement for all of them) and are delivered and moved only
after it commits."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from aggregator import log as action_log
from aggregator.exact_totals import PeriodTotals
from aggregator.store import Store
from aggregator.workspace import Workspace
from imvo_submit.states import FileState, Reason
from imvo_submit.validation import rules_version

from . import files
from .model import Decision, Filed, FileOutcome
from .opening import RegistryLookups, header_fields, header_or_none

# Files per transaction. Each commit syncs the encrypted write-ahead log (a few ms); more files per commit save
# little beyond this, and a crash redoes at most this many files.
COMMIT_EVERY = 32
# ... and validated rows held for one transaction's insert: a few very large files commit on their own, so
# memory stays that of the largest file, as with one transaction per file.
COMMIT_ROWS = 200_000

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "country": "VARCHAR",
    "enum": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "TIMESTAMP",
}
RECORD_COLUMNS = (
    "submission_id",
    "company_id",
    "covenant",
    "template",
    "period",
    "sealed_at",
    "received_at",
    "original_name",
    "state",
    "reason",
    "plaintext_blake3",
    "raw_path",
    "report_json",
    "warnings_json",
    "superseded_by",
    "receipt",
    "reason_category",
)


class Pending:
    """Decided files sharing one open transaction; delivered and filed away only after it commits."""

    def __init__(self, workspace: Workspace, store: Store, now: str):
        self.workspace, self.store, self.now = workspace, store, now
        self.registry = RegistryLookups(store)
        self.totals = PeriodTotals(store, workspace.protocols)
        self.log_head = str(action_log.head(store))  # every receipt of this intake carries it
        self.rules_version = rules_version()  # the rules every file of this intake is checked against
        self.files: list[Filed] = []
        self.rows = 0
        # The records of new files in the open transaction: inserted together at the commit (one statement
        # instead of one per file), and meanwhile looked up here as the store would answer for them.
        self.new: list[dict] = []
        self._new_states: dict[str, str] = {}
        self._new_accepted: dict[tuple, tuple[str, str | None, str | None]] = {}

    def holds(self, submission_id: str | None) -> bool:
        return any(f.submission_id == submission_id for f in self.files)

    def state_of(self, submission_id: str) -> str | None:
        """The state of a submission: recorded in the open transaction, or in the store before it."""
        if submission_id in self._new_states:
            return self._new_states[submission_id]
        sql = "SELECT state FROM submissions WHERE submission_id = ?"
        row = self.store.con.execute(sql, [submission_id]).fetchone()
        return None if row is None else row[0]

    def accepted(self, company_id: str, covenant: str, template: str, period: str) -> tuple | None:
        """(submission id, content hash, sealing time) of the accepted submission for this company, template and
        period, if any. One recorded in the open transaction comes first: the one the store may still hold was
        marked superseded when it was recorded (a file replacing one of the open transaction commits it first)."""
        key = (company_id, covenant, template, period)
        if key in self._new_accepted:
            return self._new_accepted[key]
        return self.store.con.execute(
            "SELECT submission_id, plaintext_blake3, sealed_at FROM submissions WHERE company_id = ? AND covenant = ? "
            "AND template = ? AND period = ? AND state = 'accepted'",
            list(key),
        ).fetchone()

    def add(self, filed: Filed) -> None:
        if not self.files:
            self.store.con.execute("BEGIN TRANSACTION")
        self.files.append(filed)
        self.rows += 0 if filed.decision.rows is None else len(filed.decision.rows)
        values = record(self.store, self.workspace, filed, self.now)
        if values is not None:
            self.new.append(values)
            self._new_states[values["submission_id"]] = values["state"]
            if values["state"] == FileState.ACCEPTED:
                key = tuple(values[c] for c in ("company_id", "covenant", "template", "period"))
                self._new_accepted[key] = (values["submission_id"], values["plaintext_blake3"], values["sealed_at"])
        if len(self.files) >= COMMIT_EVERY or self.rows >= COMMIT_ROWS:
            self.flush()

    def _forget_new(self) -> None:
        self.new, self._new_states, self._new_accepted = [], {}, {}

    def flush(self) -> None:
        """Commit the pending records, then deliver each file's receipt and move it to its final place."""
        if not self.files:
            return
        commit(self.store, self.files, self.now, self.new)
        self._forget_new()
        done, self.files, self.rows = self.files, [], 0
        if any(f.decision.replaces is not None for f in done):
            files.finish_moves(self.workspace, self.store)
        for filed in done:
            outcome = filed.decision.outcome
            delivered = files.deliver_receipt(self.workspace, filed.decision.header, filed.submission_id, filed.receipt)
            outcome.receipt = delivered or outcome.receipt  # an exact copy points to the receipt of its bytes
            files.file_away(filed.path, self.workspace.root / filed.final)

    def abandon(self) -> None:
        """After a failure: roll the uncommitted records back; their files stay where they were for the next run."""
        if self.files:
            self.files, self.rows = [], 0
            self._forget_new()
            try:
                self.store.con.execute("ROLLBACK")
            except duckdb.Error:  # the failure came after COMMIT (or DuckDB already ended the transaction)
                pass


def validation_reason(report) -> str:
    """One line for the clerk's overview; the full table stays with the submission (report_json)."""
    first = report.to_frame().iloc[0]
    where = f"row {int(first['row'])}, " if pd.notna(first["row"]) else ""
    column = f"column {first['column']}: " if isinstance(first["column"], str) and first["column"] else ""
    more = f" (and {report.n_problems - 1} more problems)" if report.n_problems > 1 else ""
    return f"the data does not meet the rules: {where}{column}{first['message_en']}{more}"


def insert_rows(store: Store, accepted: list[Filed]) -> None:
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


def _keyed_rows(accepted: list[Filed]) -> pd.DataFrame:
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


def insert_records(store: Store, records: list[dict]) -> None:
    """The records of new files, in their order, with one statement."""
    if not records:
        return
    columns = {c: [r[c] for r in records] for c in RECORD_COLUMNS}
    table = pa.table({c: pa.array(v, pa.binary() if c == "receipt" else pa.string()) for c, v in columns.items()})
    store.con.register("incoming_records", table)
    try:
        names = ", ".join(RECORD_COLUMNS)
        store.con.execute(f"INSERT INTO submissions ({names}) SELECT {names} FROM incoming_records")
    finally:
        store.con.unregister("incoming_records")


def commit(store: Store, pending: list[Filed], now: str, records: list[dict]) -> None:
    """End the open transaction: the new files' records (one insert), the accepted rows (one insert per
    template), a log entry per file, COMMIT."""
    insert_records(store, records)
    by_template: dict[tuple[str, str], list[Filed]] = {}
    for filed in pending:
        if filed.decision.rows is not None:
            by_template.setdefault((filed.decision.header.covenant, filed.decision.header.template), []).append(filed)
    for key in sorted(by_template):
        insert_rows(store, by_template[key])
    decisions = [_log_entry(filed) for filed in pending]
    action_log.append_many(store.con, decisions, now)
    store.con.execute("COMMIT")


def _log_entry(filed: Filed) -> tuple[str, dict[str, str | None]]:
    header, outcome = filed.decision.header, filed.decision.outcome
    details = {"submission": filed.submission_id, "file": outcome.file, "state": outcome.state}
    details |= {"reason": outcome.reason, "company": getattr(header, "company_id", None)}
    details |= {"period": getattr(header, "period", None), "template": getattr(header, "template", None)}
    if outcome.category is not None:
        details["category"] = outcome.category
    if filed.decision.replaces is not None:
        details["supersedes"] = filed.decision.replaces
    if filed.decision.detail:
        details["check_error"] = filed.decision.detail
    if filed.earlier is None:
        return "intake.decision", details
    details |= {"previous_state": filed.earlier.state, "previous_reason": filed.earlier.reason}
    return "intake.redecision", details


def record(store: Store, workspace: Workspace, filed: Filed, now: str) -> dict | None:
    """In the open transaction: the file's record, and its predecessor marked superseded. A re-decided file
    keeps its record (id, name, time received), which takes the new decision. A new file's record is returned,
    to be inserted with the others at the commit (Pending answers for it until then)."""
    decision, outcome = filed.decision, filed.decision.outcome
    values = {
        "submission_id": filed.submission_id,
        **dict(zip(("company_id", "covenant", "template", "period"), header_fields(decision.header), strict=True)),
        "sealed_at": getattr(decision.header, "created", None),
        "received_at": now if filed.earlier is None else filed.earlier.received_at,
        "original_name": outcome.file,
        "state": outcome.state,
        "reason": outcome.reason,
        "plaintext_blake3": decision.content_hash,
        "raw_path": filed.final.as_posix(),
        "report_json": decision.report_json,
        "warnings_json": json.dumps(outcome.warnings, ensure_ascii=False),
        "superseded_by": None,
        "receipt": filed.receipt,
        "reason_category": None if outcome.category is None else str(outcome.category),
    }
    if decision.replaces is not None:
        supersede(workspace, store, decision.replaces, filed.submission_id)
    if filed.earlier is None:
        return values
    changed = [c for c in RECORD_COLUMNS if c not in ("submission_id", "received_at", "original_name")]
    store.con.execute(
        f"UPDATE submissions SET {', '.join(f'{c} = ?' for c in changed)} WHERE submission_id = ?",
        [values[c] for c in changed] + [filed.submission_id],
    )
    return None


def supersede(workspace: Workspace, store: Store, old_id: str, new_id: str) -> None:
    """Mark the old accepted submission superseded, with its new place and a fresh receipt for its sender."""
    raw_path, received_at = store.con.execute(
        "SELECT raw_path, received_at FROM submissions WHERE submission_id = ?", [old_id]
    ).fetchone()
    old_file = workspace.root / raw_path
    header = header_or_none(old_file) if old_file.exists() else None
    outcome = FileOutcome(old_file.name, FileState.SUPERSEDED, "", category=Reason.REPLACED)
    old = Decision(outcome, header, signed=True)  # it was accepted
    receipt = files.make_receipt(workspace, old, old_id, received_at, str(action_log.head(store)))
    store.con.execute(
        "UPDATE submissions SET state = 'superseded', reason = ?, superseded_by = ?, raw_path = ?, "
        "receipt = coalesce(?, receipt), reason_category = ? WHERE submission_id = ?",
        [
            f"replaced by a newer submission {new_id[:12]}",
            new_id,
            (Path("received") / "superseded" / Path(raw_path).name).as_posix(),
            receipt,
            str(Reason.REPLACED),
            old_id,
        ],
    )
