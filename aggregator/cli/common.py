"""What the secretariat's commands share: the company tool's passphrase prompt, clock and progress bars
(imvo_submit.cli.common), and the workspace (output: output.py)."""

from __future__ import annotations

from collections.abc import Callable

import click
from rich.markup import escape

from imvo_submit.cli import common as shared
from imvo_submit.cli.common import checked_period, passphrase, progress_bar, utc_now
from imvo_submit.text import printable

from .. import __version__
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
    "registry",
    "reporting",
    "secretariat_workspace",
    "shown",
    "utc_now",
    "version_option",
]

SECRETARIAT_PASSPHRASE_ENV = "AGGREGATOR_PASSPHRASE"


def version_option(program: str) -> Callable:
    """`--version`: the program's name and the engine's version."""
    return shared.version_option(program, __version__)


def registry(store):
    """The company registry of an open store (imported when a command uses it: `--help` stays fast)."""
    from ..registry import Registry

    return Registry(store)


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
