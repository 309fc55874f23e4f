"""Where files go: each sealed file to `received/<state>/`, each receipt to `outbox/<company>/`; and the moves a
crash left unfinished, completed by the next session."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from aggregator.store import Store
from aggregator.workspace import Workspace
from imvo_submit import envelope
from imvo_submit.states import FileState

from .model import Decision

RECEIPT_SUFFIX = ".receipt"
RECEIVED_STATES = (FileState.ACCEPTED, FileState.DUPLICATE, FileState.SUPERSEDED, FileState.QUARANTINED)


def make_receipt(
    workspace: Workspace, decision: Decision, file_sha: str, received_at: str, log_head: str
) -> bytes | None:
    """A signed receipt, only for a file signed with the registered key of the company it names: the company
    that really sent it. A forged or unverifiable file gets none (its header is only a claim), and an exact copy
    none of its own (the receipt of its bytes exists)."""
    header = decision.header
    if header is None or not decision.signed or decision.outcome.reason.startswith("identical to a file"):
        return None
    outcome = decision.outcome
    return envelope.make_receipt(
        header,
        file_sha,
        received_at,
        outcome.state,
        workspace.signing_key,
        log_head=log_head,
        reason_category=outcome.category,
    )


def deliver_receipt(
    workspace: Workspace, header: envelope.EnvelopeHeader | None, file_sha: str, receipt: bytes | None
) -> str | None:
    if receipt is None or header is None:
        return None
    return write_receipt(workspace, header.company_id, file_sha, receipt)


def receipt_path(workspace: Workspace, company_id: str, file_sha: str) -> Path:
    """outbox/<company>/<SHA-256 of the sealed file>.receipt: one receipt per file content and company."""
    return workspace.outbox_dir / safe_name(company_id) / (file_sha + RECEIPT_SUFFIX)


def write_receipt(workspace: Workspace, company_id: str, file_sha: str, receipt: bytes) -> str:
    """Write the receipt atomically; returns its path relative to the workspace."""
    target = receipt_path(workspace, company_id, file_sha)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_name("." + target.name + ".partial")
    partial.write_bytes(receipt)
    os.replace(partial, target)
    return target.relative_to(workspace.root).as_posix()


def received_path(state: str, submission_id: str, name: str) -> Path:
    return Path("received") / state / f"{submission_id[:16]}--{safe_name(name)}"


def copy_id(raw_sha: str, name: str) -> str:
    """The record id of an exact copy received under another name (the file hash itself is taken)."""
    return hashlib.sha256(f"{raw_sha}|copy|{name}".encode()).hexdigest()


def file_away(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if src.exists() and src != dst:
        shutil.move(src, dst)


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[:100]
    return cleaned.lstrip(".") or "file"


def sha256_file(path: Path) -> str:
    """The file's SHA-256, read without following a symbolic link (one put in place of the file meanwhile)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def finish_moves(workspace: Workspace, store: Store) -> None:
    """Complete the moves a crash interrupted after its records committed: a file still in another
    `received/<state>/` folder than its record says (a superseded file left under accepted/, a re-decided one
    left under quarantined/) is moved there, and its receipt delivered."""
    present = {state: _names_in(workspace.received_dir / state) for state in RECEIVED_STATES}
    rows = store.con.execute(
        "SELECT raw_path, submission_id, company_id, receipt FROM submissions ORDER BY submission_id"
    ).fetchall()
    for raw_path, submission_id, company_id, receipt in rows:
        target = Path(raw_path)
        if target.parent.name not in present or target.name in present[target.parent.name]:
            continue
        found = [state for state, names in present.items() if target.name in names]
        if not found:
            continue
        if receipt is not None and company_id is not None:
            write_receipt(workspace, company_id, submission_id, bytes(receipt))
        file_away(workspace.received_dir / found[0] / target.name, workspace.root / target)
        present[found[0]].discard(target.name)
        present[target.parent.name].add(target.name)


def _names_in(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()
