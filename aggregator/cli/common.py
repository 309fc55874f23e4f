"""What both command-line tools share: error translation, passphrases, clocks, output."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import AggregatorError
from ..periods import Period

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# Exit codes (documented in the README): 0 ok, 1 the command ran but found problems (quarantined files, an
# invalid submission, a failed audit), 2 a usage or user error (message printed), 3 an internal error.
EXIT_PROBLEMS = 1
EXIT_USER_ERROR = 2


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's AggregatorError into `error:` / `hint:` lines and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AggregatorError as exc:
            # Messages quote file names and values: escape them, or rich would read `[...]` as markup.
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True)
            if exc.hint:
                err_console.print(f"[yellow]hint:[/] {escape(exc.hint)}", markup=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper


def checked_period(value: str | None) -> str | None:
    """The reporting period as given, checked before anything slow happens (a passphrase prompt, a batch)."""
    if value is not None:
        Period.parse(value)
    return value


def passphrase(env_var: str, prompt: str, *, confirm: bool = False) -> str:
    """The passphrase from `env_var` or an interactive prompt; never from the command line."""
    value = os.environ.get(env_var)
    if value:
        return value
    if not sys.stdin.isatty():
        raise AggregatorError(
            "a passphrase is needed and none was given",
            hint=f"set {env_var} or run the command in a terminal",
        )
    return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


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
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", markup=True)
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
            bar.update(task, description=f"{description}: {escape(step)}", completed=done, total=total)

        yield update
