"""What both command-line tools share: passphrases, clocks, the workspace, progress bars (output: output.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import __version__
from ..errors import AggregatorError
from ..periods import Period
from ..text import printable
from .output import EXIT_PROBLEMS, EXIT_USER_ERROR, Output, console, err_console, reporting, shown

__all__ = [
    "EXIT_PROBLEMS",
    "EXIT_USER_ERROR",
    "Output",
    "checked_period",
    "console",
    "err_console",
    "passphrase",
    "progress_bar",
    "reporting",
    "secretariat_workspace",
    "shown",
    "utc_now",
    "version_option",
]


def version_option(program: str) -> Callable:
    """`--version`: the program's name and version (the package version both tools share)."""
    return click.version_option(__version__, "--version", prog_name=program, message="%(prog)s %(version)s")


def checked_period(value: str | None) -> str | None:
    """The reporting period as given, checked before anything slow happens (a passphrase prompt, a batch)."""
    if value is not None:
        Period.parse(value)
    return value


def passphrase(env_var: str, prompt: str, *, confirm: bool = False) -> str:
    """The passphrase from `env_var` or an interactive prompt (on stderr, so --json output stays one document);
    never from the command line."""
    value = os.environ.get(env_var)
    if value:
        return value
    if not sys.stdin.isatty():
        raise AggregatorError(
            "a passphrase is needed and none was given",
            hint=f"set {env_var} or run the command in a terminal",
        )
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)


def utc_now(override: str | None = None) -> str:
    """ISO timestamp (seconds, UTC). `override` (from --now / IMVO_NOW) makes demos and tests reproducible."""
    if override:
        return override
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


SECRETARIAT_PASSPHRASE_ENV = "AGGREGATOR_PASSPHRASE"


def secretariat_workspace(ctx: click.Context):
    """Open the workspace named by --workspace: existence first (no pointless passphrase prompt), then the
    owner-only permission check (warnings only), then the passphrase."""
    from ..security import check_permissions
    from ..workspace import open_workspace, require_workspace

    root = ctx.obj["workspace"]
    require_workspace(root)
    for warning in check_permissions(root):
        err_console.print(f"[yellow]warning:[/] {escape(printable(warning))}", markup=True)
    return open_workspace(root, passphrase(SECRETARIAT_PASSPHRASE_ENV, "Secretariat passphrase"))


@contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr for long steps; yields the callback the library functions take."""
    if not enabled or not err_console.is_terminal:  # no bar in pipes, logs and tests
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"{description}: {escape(printable(step))}", completed=done, total=total)

        yield update
