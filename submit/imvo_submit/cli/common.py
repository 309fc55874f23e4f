"""What both command-line tools share: passphrases, clocks, the period, progress bars (output: output.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import AggregatorError
from ..periods import Period
from ..text import printable
from .output import err_console


def version_option(program: str, version: str) -> Callable:
    """`--version`: the program's name and version."""
    return click.version_option(version, "--version", prog_name=program, message="%(prog)s %(version)s")


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
