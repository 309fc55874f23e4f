"""Which entries of an inbox the intake reads: regular files only, never through a link, never the workspace."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aggregator.errors import AggregatorError
from aggregator.workspace import Workspace
from imvo_submit.text import printable

from .model import Skipped

HIDDEN = (
    "a hidden file: not read (names starting with '.' are system or temporary files); rename it if it is a submission"
)
FOLDER = "a folder: files inside folders are not read; move them into the inbox itself"
LINK = "a symbolic link: not followed, so nothing outside the inbox is read; put the file itself in the inbox"
SPECIAL = "not a regular file (a device, pipe or socket): not read"


@dataclass
class InboxScan:
    files: list[Path]  # regular files, sorted by name
    skipped: list[Skipped]


def check_inbox(workspace: Workspace, inbox: Path) -> Path:
    """The inbox, refused (before anything moves) when it is missing, or is, lies inside or holds the workspace:
    the intake moves every file it finds, and would file the store and the keys away as submissions."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise AggregatorError(
            f"the inbox {printable(str(inbox))} does not exist or is not a folder",
            hint="give the folder the sealed .imvo files were saved to",
        )
    real, root = inbox.resolve(), Path(workspace.root).resolve()
    if real == root or root in real.parents or real in root.parents:
        where = "is" if real == root else "lies inside" if root in real.parents else "holds"
        raise AggregatorError(
            f"the inbox {printable(str(inbox))} {where} the workspace {printable(str(workspace.root))}; the intake "
            "moves every file of its inbox, so nothing was touched",
            hint="give the folder the sealed .imvo files were saved to, outside the workspace; to decide a "
            "quarantined file again use `aggregator intake --redecide FILE`",
        )
    return inbox


def scan_inbox(inbox: Path) -> InboxScan:
    """Every entry of the inbox: the regular files to read, and the rest with the reason it is left alone."""
    files, skipped = [], []
    with os.scandir(inbox) as entries:
        found = sorted(entries, key=lambda e: e.name)
    for entry in found:
        kind = _kind(entry)
        if kind == "file":
            files.append(Path(entry.path))
        else:
            skipped.append(
                Skipped(entry.name, kind, {"hidden": HIDDEN, "folder": FOLDER, "link": LINK}.get(kind, SPECIAL))
            )
    return InboxScan(files, skipped)


def _kind(entry: os.DirEntry) -> str:
    if entry.name.startswith("."):
        return "hidden"
    try:
        if entry.is_symlink():
            return "link"
        if entry.is_dir(follow_symlinks=False):
            return "folder"
        if entry.is_file(follow_symlinks=False):
            return "file"
    except OSError:
        pass
    return "special"


def unreadable(path: Path, exc: OSError) -> Skipped:
    why = exc.strerror or type(exc).__name__
    return Skipped(path.name, "unreadable", f"cannot be read ({why.lower()}); left in the inbox")
