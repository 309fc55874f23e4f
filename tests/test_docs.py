"""Every command of both command lines is documented in the README, with the first line of its help text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from aggregator.cli.secretariat import main as aggregator
from imvo_submit.cli.main import main as imvo_submit

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def walk(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
    """Every command and subcommand below `command` (not the tool itself), as 'tool group command'."""
    if len(path) > 1:
        yield " ".join(path), command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], (*path, name))


COMMANDS = [*walk(imvo_submit, ("imvo-submit",)), *walk(aggregator, ("aggregator",))]


def test_the_walk_finds_the_commands_we_know():
    names = {name for name, _ in COMMANDS}
    assert {"imvo-submit seal", "imvo-submit verify-receipt", "aggregator intake"} <= names
    assert {"aggregator companies add", "aggregator companies rotate-key", "aggregator status"} <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_command_is_in_the_readme_with_its_help(name: str, command: click.Command):
    assert command.help, f"`{name}` has no help text"
    first_line = command.help.strip().splitlines()[0]
    assert f"| `{name}` | {first_line} |" in README, (
        f"README.md's command reference lacks `{name}` or its help changed; add or update the row:\n"
        f"| `{name}` | {first_line} |"
    )
