"""Writing files so that a failure leaves nothing behind: a temporary name next to the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write_path(path: Path, write_to: Callable[[Path], None], *, mode: int = 0o600) -> Path:
    """Let `write_to(temp_path)` write the file (for writers that want a path, e.g. xlsxwriter), then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temp = Path(name)
    try:
        write_to(temp)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def atomic_write(path: Path, write: Callable[[BinaryIO], None], *, mode: int = 0o600) -> Path:
    """Let `write(handle)` write the file's bytes; they are flushed to disk before the rename."""

    def write_to(temp: Path) -> None:
        with open(temp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())

    return atomic_write_path(path, write_to, mode=mode)
