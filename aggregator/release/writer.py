"""The one door of the release stage: write every committee file of a release, all or nothing.

Files are written into a hidden temporary directory next to the target and renamed into place only
when all of them (and the manifest) are complete, so a failure leaves no half-written release.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.release.flat import write_csv, write_parquet
from aggregator.release.html import render_report
from aggregator.release.model import InvalidRelease, Release
from aggregator.release.xlsx import write_xlsx

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "imvo-release/1"


@dataclass(frozen=True)
class ReleaseFile:
    name: str  # path relative to the release directory, with '/' separators
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class ReleaseFiles:
    """What a writer produced: the final directory and every file with its sha256 (manifest last)."""

    directory: Path
    files: tuple[ReleaseFile, ...]

    def by_name(self, name: str) -> ReleaseFile:
        for item in self.files:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def manifest_sha256(self) -> str:
        return self.by_name(MANIFEST).sha256


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_plan(release: Release) -> list[tuple[str, Callable[[Path], None]]]:
    """Every committee file as (relative name, function writing it), in a fixed order."""
    stem = f"{release.covenant_id}_{release.period}_{release.audience_id}"
    plan: list[tuple[str, Callable[[Path], None]]] = [
        (f"{stem}.xlsx", lambda path: write_xlsx(release, path)),
        (
            f"{stem}.html",
            lambda path: path.write_text(render_report(release), encoding="utf-8", newline="\n"),
        ),
    ]
    for table in release.tables:
        plan.append((f"csv/{table.table_id}.csv", lambda path, t=table: write_csv(release, t, path)))
        plan.append((f"parquet/{table.table_id}.parquet", lambda path, t=table: write_parquet(release, t, path)))
    return plan


def write_release(release: Release, out_dir: Path) -> ReleaseFiles:
    """Write the committee files of `release` to out_dir/<covenant>/<period>/<audience>/.

    Raises InvalidRelease when the target already exists (unless the release is a revision, in which
    case the earlier files are kept next to it as `<audience>.superseded-<n>`) or the audit summary
    cannot go into the manifest. On any failure nothing is left at the target.
    """
    release.check()
    target = release.target_dir(out_dir)
    if target.exists() and not release.is_revision:
        raise InvalidRelease(
            f"a release already exists at {target}",
            hint="a corrected release for a published period must be marked as a revision (is_revision=True)",
        )
    with staging_directory(target) as staging:
        written = [_write_one(staging, name, write) for name, write in file_plan(release)]
        manifest = manifest_bytes(release, written)
        _write_bytes(staging / MANIFEST, manifest)
        written.append((MANIFEST, hashlib.sha256(manifest).hexdigest(), len(manifest)))
    files = tuple(ReleaseFile(name, target / name, digest, size) for name, digest, size in written)
    return ReleaseFiles(target, files)


def _write_one(staging: Path, name: str, write: Callable[[Path], None]) -> tuple[str, str, int]:
    path = staging / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path)
    _fsync(path)
    return name, sha256_file(path), path.stat().st_size


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def manifest_bytes(release: Release, files: list[tuple[str, str, int]]) -> bytes:
    """The manifest: identity of the release, provenance, every file's sha256; sorted keys, fixed layout."""
    document = {
        "format": MANIFEST_FORMAT,
        "covenant": {"id": release.covenant_id, "name": release.covenant_name},
        "period": release.period,
        "audience": {"id": release.audience_id, "name": release.audience_name},
        "language": release.language,
        "created": release.created,
        "is_revision": release.is_revision,
        "protocol": {"version": release.protocol_version, "sha256": release.protocol_sha256.lower()},
        "code_version": release.code_version,
        "log_head": release.log_head,
        "files": [{"name": n, "sha256": d, "bytes": s} for n, d, s in sorted(files)],
        "tables": [_table_summary(t) for t in release.tables],
        "audit_summary": release.audit_summary,
    }
    try:
        text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False, default=_plain)
    except (TypeError, ValueError) as exc:
        raise InvalidRelease(
            f"the audit summary cannot be written to the manifest: {exc}",
            hint="use only strings, finite numbers, booleans, lists and dicts in audit_summary",
        ) from None
    return (text + "\n").encode("utf-8")


def _table_summary(table: Any) -> dict[str, Any]:
    suppressed = sum(1 for cell in table.cells if cell.suppressed)
    return {
        "table_id": table.table_id,
        "title": table.title,
        "cells": len(table.cells),
        "suppressed": suppressed,
    }


def _plain(value: Any) -> Any:
    """numpy scalars (from the audit) become plain Python numbers; anything else is refused."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@contextmanager
def staging_directory(target: Path) -> Iterator[Path]:
    """Yield a fresh hidden directory next to `target`; on success it becomes `target`, else it vanishes."""
    created = _make_parents(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            _remove_if_empty(folder)
        raise
    _fsync(target.parent)


def _make_parents(folder: Path) -> list[Path]:
    """Create missing parent folders; return the ones created so a failure can remove them again."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (someone else's release) or already gone


def _swap_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    # A revision: keep the earlier files beside it, never overwrite what was published.
    number = 1
    while (aside := target.with_name(f"{target.name}.superseded-{number}")).exists():
        number += 1
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
