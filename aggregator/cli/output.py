"""How every `aggregator` command reports: the company tool's Output (imvo_submit.cli.output, docs/json.md), with
the store's errors added to the environment problems it reports with exit code 1."""

from __future__ import annotations

import errno
import sys

from imvo_submit.cli.output import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USER_ERROR,
    Output,
    cell_text,
    console,
    err_console,
    os_problem,
    reporting_for,
    shown,
    to_json,
)

from .. import __version__

__all__ = [
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USER_ERROR",
    "Output",
    "cell_text",
    "console",
    "err_console",
    "reporting",
    "shown",
    "to_json",
]


def _store_problem(exc: Exception) -> tuple[str, str] | None:
    """A DuckDB error as a clerk reads it; None for any other error (DuckDB is imported only when a command used
    it, so `--help` stays fast)."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is None or not isinstance(exc, duckdb.Error):
        return None
    from ..store import RESTORE_HINT, is_damage

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "no space left" in first.lower() or "disk is full" in first.lower():
        return os_problem(OSError(errno.ENOSPC, "No space left on device"))
    if is_damage(exc):
        return f"the store is damaged and cannot be read ({first})", RESTORE_HINT
    return (
        f"the store could not be read or written ({first})",
        "free disk space if it is full; otherwise run `aggregator log verify` and restore the store from a "
        "backup if it is damaged",
    )


reporting = reporting_for(__version__, _store_problem)
