"""How every command reports: text for people, or one JSON document for programs (`--json`, docs/json.md).

Text goes through rich on a terminal (tables, colour) and as plain lines in a pipe or a file: a table is then
one tab-separated line per row under a header line, never cut to a terminal's width (a key fingerprint read
out by phone must arrive whole). Names and values from outside are shown escaped (imvo_submit.text.printable),
so a file name cannot send escape codes to the terminal.

With --json a command prints exactly one JSON object on stdout, with or without an error:

    {"command": "aggregator intake", "version": "0.1.0", "ok": true, "exit_code": 0,
     "result": <the command's result>, "error": null}

`error` is {"message", "hint"} when the command failed (then `result` is null). Exit codes: 0 done; 1 done, with
problems to look at (or an environment problem: a full disk, a damaged store); 2 a mistake in the command or its
input. Errors are also written to stderr as `error:` and `hint:` lines.
"""

from __future__ import annotations

import errno
import functools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import AggregatorError
from ..text import printable

JSON_FORMAT_VERSION = 1
EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USER_ERROR = 2

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class Output:
    """What one command prints. In JSON mode text calls print nothing and `finish` prints the document."""

    def __init__(self, command: str, as_json: bool, version: str):
        self.command, self.json, self.version = command, as_json, version

    # ---- text for people

    def line(self, text: str = "") -> None:
        """A line of rich markup; values from outside must be passed through `shown`."""
        if not self.json:
            console.print(text)

    def plain(self, text: str) -> None:
        """Lines printed as they are (no markup), after escaping what could act on a terminal."""
        if not self.json:
            for line in str(text).split("\n"):
                console.print(printable(line), markup=False)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
        if self.json:
            return
        texts = [[cell_text(v) for v in row] for row in rows]
        if console.is_terminal:
            table = Table(*columns, title=title)
            for row in texts:
                table.add_row(*(escape(t) for t in row))
            console.print(table)
            return
        if title:
            click.echo(printable(title))
        for row in [list(columns), *texts]:
            click.echo("\t".join(row))  # tabs as they are (rich would expand them to spaces)

    # ---- the end of the command

    def finish(self, result: Any = None, exit_code: int = EXIT_OK) -> NoReturn:
        """Print the JSON document (in JSON mode) and end the command with `exit_code`."""
        if self.json:
            self._document(result, exit_code, None)
        click.get_current_context().exit(exit_code)

    def fail(self, message: str, hint: str | None, exit_code: int) -> NoReturn:
        err_console.print(f"[bold red]error:[/] {escape(printable(message))}")
        if hint:
            err_console.print(f"[yellow]hint:[/] {escape(printable(hint))}")
        if self.json:
            self._document(None, exit_code, {"message": message, "hint": hint})
        click.get_current_context().exit(exit_code)

    def _document(self, result: Any, exit_code: int, error: dict | None) -> None:
        doc = {
            "command": self.command,
            "version": self.version,
            "format": JSON_FORMAT_VERSION,
            "ok": exit_code == EXIT_OK,
            "exit_code": exit_code,
            "result": result,
            "error": error,
        }
        click.echo(to_json(doc))


def shown(value: Any) -> str:
    """A value from outside inside rich markup: escaped for the terminal and for rich."""
    return escape(printable(cell_text(value)))


def cell_text(value: Any) -> str:
    """Table text: unknown values (None, NaN) show as '', everything else as its printable text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return printable(str(value))


def to_json(doc: Any) -> str:
    """JSON with every character that could act on a terminal written as a \\u escape (valid JSON either way)."""
    text = json.dumps(_plain(doc), ensure_ascii=False, indent=1, allow_nan=False, default=str)
    if text.isascii():
        return text  # json.dumps escapes every control character below 0x20 itself
    return "".join(_json_char(c) for c in text)


def _json_char(char: str) -> str:
    if ord(char) < 0x7F or printable(char) == char:
        return char
    units = char.encode("utf-16-be")
    return "".join(f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2))


def _plain(value: Any) -> Any:
    """NaN (a suppressed or unknown value) as null; enums and paths as their text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


Describe = Callable[[Exception], "tuple[str, str] | None"]


def reporting_for(version: str, *problems: Describe) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The `reporting` decorator of a program at `version`. Each of `problems` turns an environment error of the
    program's own (e.g. a database's) into a message and a hint, reported with exit code 1, and returns None for
    an error it does not know."""

    def reporting(command: Callable[..., Any]) -> Callable[..., Any]:
        """A command that takes `--json` and an `out: Output`; its failures become `error:`/`hint:` lines (and
        the JSON document) with exit code 2 for a mistake, 1 for an environment problem; never a traceback."""

        @click.option("--json", "as_json", is_flag=True, help="Print one JSON document (docs/json.md) instead of text.")
        @functools.wraps(command)
        def wrapper(*args: Any, as_json: bool = False, **kwargs: Any) -> Any:
            out = Output(_command_name(click.get_current_context()), as_json, version)
            try:
                return command(*args, out=out, **kwargs)
            except AggregatorError as exc:
                out.fail(exc.message, exc.hint, getattr(exc, "exit_code", EXIT_USER_ERROR))
            except OSError as exc:
                out.fail(*os_problem(exc), EXIT_PROBLEMS)
            except click.exceptions.Exit:
                raise  # the command's own end (Output.finish)
            except Exception as exc:
                for describe in problems:
                    problem = describe(exc)
                    if problem is not None:
                        out.fail(*problem, EXIT_PROBLEMS)
                raise

        return wrapper

    return reporting


def _command_name(ctx: click.Context) -> str:
    """'aggregator companies list': the program's own name, whatever name it was started under."""
    names = []
    while ctx is not None:
        names.append(ctx.command.name if ctx.parent is None else ctx.info_name)
        ctx = ctx.parent
    return " ".join(str(n) for n in reversed(names))


def os_problem(exc: OSError) -> tuple[str, str]:
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno in _DISK_FULL:
        return (
            f"the disk is full: nothing more could be written{where}",
            "free space on the disk, then run the command again; an interrupted intake or batch is finished by "
            "running it again, and nothing is counted twice",
        )
    return (
        f"cannot read or write{where}: {exc.strerror or exc}",
        "check that the file or folder exists and that you may read and write it",
    )
