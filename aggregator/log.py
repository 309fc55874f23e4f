"""The tamper-evident action log: every action of the secretariat, hash-chained, inside the encrypted store.

Each entry is one row of `action_log` (seq, logged_at, actor, action, details_json, prev_hash, hash) where

    hash = SHA-256( canonical JSON of {seq, time, actor, action, details, prev_hash} )

and prev_hash is the hash of the entry before it (64 zeros for the first). Changing, removing, inserting or
reordering any entry breaks the chain at that point, and `verify_log` names the entry.

What the chain alone cannot see is the removal of the *last* entries (or a rollback of the whole store to an
older copy): the shorter chain is still consistent. So the head of the log (entry count and last hash) is also
kept as a *checkpoint* outside the store, in `log_head.json` next to it, sealed with an HMAC whose key is
derived from the store key. A checkpoint is a promise: "the log had at least this many entries, ending in this
hash". Every command that changes the store checks it before it starts and moves it when it is done; a missing
checkpoint beside a non-empty log is an error, never a fresh start (`reset_checkpoint` writes a new one only
against an anchor). Anyone holding the passphrase can still rewrite the store *and* reseal the checkpoint;
against that insider only anchors kept elsewhere help: the head is written into every release manifest and
every receipt, and `verify_log(..., anchors=[...])` checks them (`read_anchor` takes COUNT:HASH, a manifest
or a receipt).
See docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb

from imvo_submit.fileio import atomic_write

from .errors import AggregatorError
from .store import Store

GENESIS_HASH = "0" * 64
CHECKPOINT_NAME = "log_head.json"
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_CHECKPOINT_KEY_INFO = b"imvo action log checkpoint v1"

# The actions the engine records (callers may add others that match _ACTION).
ACTIONS = (
    "workspace.create",  # secretariat keys created
    "company.register",
    "company.revoke",
    "company.rotate_key",
    "intake.decision",  # one per file: accepted, duplicate, superseded, quarantined
    "override.set",  # a manual cell override, with its reason
    "waiver.set",
    "batch.run",
    "release.write",
    "audit.run",
    "log.checkpoint_reset",  # a lost checkpoint replaced, with the anchors it was checked against
)


@dataclass(frozen=True)
class LogEntry:
    seq: int
    time: str
    actor: str
    action: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class LogHead:
    """The log's length and the hash of its last entry (GENESIS_HASH for an empty log)."""

    count: int
    hash: str

    def __str__(self) -> str:
        return f"{self.count}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> LogHead:
        """'COUNT:HASH', as printed by `aggregator log verify`."""
        count, _, digest = text.strip().partition(":")
        if not count.isdigit() or not _HASH.match(digest):
            raise AggregatorError(
                f"'{text}' is not a log head",
                hint="write it as COUNT:HASH, as `aggregator log verify` prints it",
            )
        return cls(int(count), digest)


class _WorkspaceLike(Protocol):
    root: Path

    def store_key(self) -> str: ...

    def open_store(self) -> Store: ...


# ---------------------------------------------------------------- writing


def append(
    store_or_con: Store | duckdb.DuckDBPyConnection,
    action: str,
    details: dict[str, Any],
    now: str,
    *,
    actor: str = "secretariat",
) -> LogEntry:
    """Append one entry and return it. Runs on the caller's connection, so inside an open transaction the
    entry commits or rolls back with the change it describes; outside one it is committed at once."""
    return append_many(store_or_con, [(action, details)], now, actor=actor)[0]


def append_many(
    store_or_con: Store | duckdb.DuckDBPyConnection,
    actions: Sequence[tuple[str, dict[str, Any]]],
    now: str,
    *,
    actor: str = "secretariat",
) -> list[LogEntry]:
    """Append one entry per (action, details), in order, with one read of the head and one insert.

    The chain is the same as calling `append` for each; an intake that records hundreds of decisions in one
    transaction pays for one statement instead of two per entry."""
    con = _connection(store_or_con)
    for action, _ in actions:
        _check_entry_fields(action, actor, now)
    last = con.execute("SELECT seq, hash FROM action_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (0, GENESIS_HASH) if last is None else last
    written, rows = [], []
    for action, details in actions:
        seq, details_json = seq + 1, _canonical(details)
        entry = LogEntry(seq, now, actor, action, json.loads(details_json), prev_hash, "")
        entry = LogEntry(**{**entry.__dict__, "hash": entry_hash(entry)})
        written.append(entry)
        rows.append((seq, now, actor, action, details_json, prev_hash, entry.hash))
        prev_hash = entry.hash
    if rows:
        con.execute(
            "INSERT INTO action_log VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows)),
            [value for row in rows for value in row],
        )
    return written


def entry_hash(entry: LogEntry) -> str:
    """SHA-256 over the canonical JSON of everything in the entry except the hash itself."""
    body = {
        "seq": entry.seq,
        "time": entry.time,
        "actor": entry.actor,
        "action": entry.action,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(_canonical(body).encode("ascii")).hexdigest()


def _canonical(doc: Any) -> str:
    try:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AggregatorError(
            f"log details must be plain JSON (text, numbers, lists, objects; no NaN): {exc}"
        ) from None


def _check_entry_fields(action: str, actor: str, now: str) -> None:
    if not _ACTION.match(action):
        raise AggregatorError(f"'{action}' is not a log action name (lower case words joined by dots)")
    if not actor.strip() or not now.strip():
        raise AggregatorError("a log entry needs an actor and a time")


def _connection(store_or_con: Store | duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return store_or_con.con if isinstance(store_or_con, Store) else store_or_con


# ---------------------------------------------------------------- reading


def entries(
    store_or_con: Store | duckdb.DuckDBPyConnection, *, last: int | None = None, action: str | None = None
) -> list[LogEntry]:
    """Entries in order of seq; `last` keeps only the newest n (after filtering by `action` prefix)."""
    rows = (
        _connection(store_or_con)
        .execute("SELECT seq, logged_at, actor, action, details_json, prev_hash, hash FROM action_log ORDER BY seq")
        .fetchall()
    )
    found = [_entry_from_row(r) for r in rows]
    if action:
        found = [e for e in found if e.action == action or e.action.startswith(action + ".")]
    return found[-last:] if last else found


def _entry_from_row(row: tuple) -> LogEntry:
    try:
        details = json.loads(row[4])
    except (TypeError, ValueError):
        details = None
    if not isinstance(details, dict):  # append only ever writes objects: anything else was edited in
        details = {"unreadable_details": str(row[4])}
    return LogEntry(row[0], row[1], row[2], row[3], details, row[5], row[6])


def head(store_or_con: Store | duckdb.DuckDBPyConnection) -> LogHead:
    row = _connection(store_or_con).execute("SELECT count(*), arg_max(hash, seq) FROM action_log").fetchone()
    return LogHead(int(row[0]), row[1] or GENESIS_HASH)


# ---------------------------------------------------------------- verifying


def verify_log(
    store_or_con: Store | duckdb.DuckDBPyConnection,
    *,
    checkpoint: LogHead | None = None,
    anchors: Iterable[LogHead] = (),
) -> list[str]:
    """Every problem found, in plain words; an empty list means the log is intact.

    Without a checkpoint or anchor, removing the newest entries cannot be detected (see the module doc).
    """
    rows = (
        _connection(store_or_con)
        .execute("SELECT seq, logged_at, actor, action, details_json, prev_hash, hash FROM action_log ORDER BY seq")
        .fetchall()
    )
    problems = _chain_problems(rows)
    by_seq = {r[0]: r[6] for r in rows}
    if checkpoint is not None:
        problems += _head_problems(by_seq, checkpoint, "the checkpoint")
    for anchor in anchors:
        problems += _head_problems(by_seq, anchor, f"the anchor {anchor.count}:{anchor.hash[:12]}")
    return problems


def _chain_problems(rows: list[tuple]) -> list[str]:
    problems: list[str] = []
    prev_seq, prev_hash = 0, GENESIS_HASH
    for row in rows:
        seq, stored_details, stored_prev, stored_hash = row[0], row[4], row[5], row[6]
        if seq != prev_seq + 1:
            problems.append(
                f"entries {prev_seq + 1} to {seq - 1} are missing: they were deleted"
                if seq > prev_seq + 1
                else f"entry {seq} appears out of order"
            )
        if stored_prev != prev_hash:
            problems.append(
                f"entry {seq} does not follow entry {prev_seq}: an entry before it was removed, inserted, "
                "changed or moved"
            )
        entry = _entry_from_row(row)
        if "unreadable_details" in entry.details or entry_hash(entry) != stored_hash:
            problems.append(f"entry {seq} ({row[3]}) was changed after it was written")
        elif _canonical(entry.details) != stored_details:
            problems.append(f"entry {seq} ({row[3]}) was rewritten after it was written")
        prev_seq, prev_hash = seq, stored_hash
    return problems


def _head_problems(by_seq: dict[int, str], expected: LogHead, what: str) -> list[str]:
    if expected.count == 0:
        return []
    if expected.count not in by_seq:
        have = max(by_seq, default=0)
        return [
            f"{what} says the log had {expected.count} entries, but it ends at entry {have}: the newest "
            "entries were deleted or the store was replaced by an older copy"
        ]
    if by_seq[expected.count] != expected.hash:
        return [f"entry {expected.count} is not the one {what} recorded: the log was rewritten"]
    return []


def read_anchor(text: str) -> LogHead:
    """An anchor: 'COUNT:HASH', or the path of a release manifest.json or a receipt, which record the head."""
    path = Path(text)
    if not path.is_file():
        return LogHead.parse(text)
    try:
        doc = json.loads(path.read_bytes()[: 1024 * 1024])
        recorded = doc["receipt"]["log_head"] if "receipt" in doc else doc["log_head"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        recorded = None
    if not isinstance(recorded, str):
        raise AggregatorError(
            f"{path} records no log head", hint="give a release manifest.json, a receipt, or COUNT:HASH"
        )
    return LogHead.parse(recorded)


# ---------------------------------------------------------------- checkpoint outside the store


def checkpoint_key(store_key_hex: str) -> bytes:
    """The HMAC key for the checkpoint file, derived from the store key (so no extra secret to keep)."""
    return hmac.new(bytes.fromhex(store_key_hex), _CHECKPOINT_KEY_INFO, hashlib.sha256).digest()


def write_checkpoint(path: Path, log_head: LogHead, key: bytes, now: str) -> None:
    """Write the sealed checkpoint atomically (temporary file, then rename), readable by the owner only."""
    body = {"count": log_head.count, "hash": log_head.hash, "written_at": now}
    doc = {**body, "mac": _mac(key, body)}
    text = json.dumps(doc, sort_keys=True, indent=1) + "\n"
    atomic_write(Path(path), lambda handle: handle.write(text.encode("ascii")), mode=0o600)


def read_checkpoint(path: Path, key: bytes) -> LogHead | None:
    """The checkpoint in `path`, None if there is none; raises AggregatorError if it was altered."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="ascii"))
        body = {k: doc[k] for k in ("count", "hash", "written_at")}
        sealed = hmac.compare_digest(str(doc["mac"]), _mac(key, body))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        sealed = False
    if not sealed:
        raise AggregatorError(
            f"the log checkpoint {path.name} was altered or belongs to another store (its seal does not match)",
            hint="treat the workspace as tampered with; compare it with your backups",
        )
    return LogHead(int(body["count"]), str(body["hash"]))


def _mac(key: bytes, body: dict[str, Any]) -> str:
    return hmac.new(key, _canonical(body).encode("ascii"), hashlib.sha256).hexdigest()


def _checkpoint_problems(workspace: _WorkspaceLike, store: Store, anchors: Iterable[LogHead] = ()) -> list[str]:
    """The chain, the checkpoint (missing beside a non-empty log is a problem) and any anchors."""
    path, key = Path(workspace.root) / CHECKPOINT_NAME, checkpoint_key(workspace.store_key())
    problems: list[str] = []
    try:
        checkpoint = read_checkpoint(path, key)
    except AggregatorError as exc:
        checkpoint, problems = None, [exc.message]
    if checkpoint is None and not problems and head(store).count > 0:
        problems.append(
            f"the log checkpoint {CHECKPOINT_NAME} is missing although the log has entries: the store may have "
            "been replaced by an older copy, with the checkpoint deleted to hide it"
        )
    return problems + verify_log(store, checkpoint=checkpoint, anchors=anchors)


def check_checkpoint(workspace: _WorkspaceLike, store: Store) -> None:
    """Refuse (AggregatorError) to start a command that changes the store when the log fails its checkpoint."""
    problems = _checkpoint_problems(workspace, store)
    if problems:
        raise AggregatorError(
            f"the action log failed its check, so nothing was changed: {problems[0]}",
            hint=_RECOVERY_HINT,
        )


_RECOVERY_HINT = (
    "run `aggregator log verify` to see every problem; if only log_head.json was lost, restore it from a backup "
    "or run `aggregator log reset-checkpoint --anchor` with the newest release manifest or receipt you have"
)


def save_checkpoint(workspace: _WorkspaceLike, store: Store, now: str) -> LogHead:
    """Move the workspace's checkpoint to the current head; call after each command that changed the store.

    Refuses (AggregatorError) when the log no longer matches the previous checkpoint, or the checkpoint is
    missing beside a non-empty log, so a deletion is never papered over by a new checkpoint.
    """
    problems = _checkpoint_problems(workspace, store)
    if problems:
        raise AggregatorError(
            f"the action log failed its check, so its checkpoint was not moved: {problems[0]}",
            hint=_RECOVERY_HINT,
        )
    return _write_head(workspace, store, now)


def _write_head(workspace: _WorkspaceLike, store: Store, now: str) -> LogHead:
    current = head(store)
    write_checkpoint(Path(workspace.root) / CHECKPOINT_NAME, current, checkpoint_key(workspace.store_key()), now)
    return current


def reset_checkpoint(workspace: _WorkspaceLike, store: Store, anchors: Sequence[LogHead], now: str) -> LogHead:
    """Replace a lost or unreadable checkpoint, only when the chain is intact and contains every anchor (at
    least one: the newest head kept outside the workspace). The reset is itself logged."""
    if not anchors:
        raise AggregatorError(
            "a new checkpoint needs at least one anchor",
            hint="give the newest release manifest.json or receipt you have, or a COUNT:HASH printed earlier",
        )
    problems = verify_log(store, anchors=anchors)
    if problems:
        raise AggregatorError(f"the checkpoint was not reset: {problems[0]}", hint=_RECOVERY_HINT)
    details = {"anchors": [str(a) for a in anchors], "previous_head": str(head(store))}
    append(store, "log.checkpoint_reset", details, now)
    return _write_head(workspace, store, now)


def verify_workspace_log(workspace: _WorkspaceLike, anchors: Iterable[LogHead] = ()) -> tuple[LogHead, list[str]]:
    """(current head, problems) for a workspace: the whole store read (every table, every column, the primary
    keys' indexes), the chain, its checkpoint file and any anchors. A store that cannot be opened raises
    StoreDamaged (or a wrong passphrase)."""
    with workspace.open_store() as store:
        unreadable = store.unreadable_parts()
        if any("action_log" in problem for problem in unreadable):
            return LogHead(0, GENESIS_HASH), unreadable
        return head(store), unreadable + _checkpoint_problems(workspace, store, anchors)


__all__ = [
    "ACTIONS",
    "CHECKPOINT_NAME",
    "GENESIS_HASH",
    "LogEntry",
    "LogHead",
    "append",
    "append_many",
    "check_checkpoint",
    "checkpoint_key",
    "entries",
    "entry_hash",
    "head",
    "read_anchor",
    "read_checkpoint",
    "reset_checkpoint",
    "save_checkpoint",
    "verify_log",
    "verify_workspace_log",
    "write_checkpoint",
]
