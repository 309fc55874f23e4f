"""What the command lines print (issue 21, items 8 and 9): warnings where the clerk looks, exit codes a script
can trust, whole lines in a pipe, one JSON document per command, and overrides that are recorded.

Before: ambiguous numbers were warned about only by `imvo-submit check`; a batch that released nothing exited 0
and recorded an empty run; tables were cut at 80 columns in a pipe (a key fingerprint read out by phone was
cut); there was no --version and no --json on `log verify`; overrides existed in the store but no command
recorded one.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from aggregator import log as action_log
from aggregator.cli.secretariat import main as aggregator
from imvo_submit import envelope
from imvo_submit.cli.main import main as imvo_submit
from support.cli import json_result
from support.intake_world import MATERIALS, World, build_world
from support.lab import FEB, JAN, NOW, PASSPHRASE, Lab, four_company_workspace


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


# ---------------------------------------------------------------- item 8: ambiguous numbers reach the clerk


def test_an_ambiguous_number_reaches_intake_output_status_and_the_receipt(world: World, tmp_path: Path):
    ambiguous = tmp_path / "materials.csv"  # 1.234 kg, or 1234 kg? Nothing else in the file tells.
    ambiguous.write_text("material,certification,weight_kg\ncotton,none,1.234\npolyester,none,1337\n")
    world.seal(ambiguous, template="materials")
    result = world.cli("intake", str(world.inbox))
    assert result.exit_code == 0
    note = [line for line in result.output.splitlines() if line.startswith("note: ")]
    assert note and "weight_kg: '1.234' could be read two ways; read as 1.234 (uncertain: please check)" in note[0]
    rows = json_result(world.cli("status", "2025-01", "--json"))["rows"]
    (row,) = [r for r in rows if r["state"] == "accepted"]
    assert row["category"] == "valid_check_numbers"
    assert any("could be read two ways" in w for w in row["warnings"])
    listed = world.cli("status", "2025-01").output
    assert "could be read two ways" in listed  # an accepted file with numbers to check is listed
    (receipt,) = (world.ws.outbox_dir / "T001").iterdir()
    assert envelope.verify_receipt(receipt.read_bytes(), world.signing_public_key())["reason_category"] == (
        "valid_check_numbers"
    )


# ---------------------------------------------------------------- item 9: exit codes, pipes, versions, JSON


def test_a_batch_that_releases_nothing_exits_1_and_records_nothing(world: World, tmp_path: Path):
    world.seal(MATERIALS)
    world.intake()
    with world.ws.open_store() as store:
        before = action_log.head(store)
    result = world.cli("batch", "textile", "2025-01", "--out", str(tmp_path / "out"))  # data too recent for all
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "nothing was released, and nothing was recorded"
    with world.ws.open_store() as store:
        assert action_log.head(store) == before
        assert store.con.execute("SELECT count(*) FROM releases").fetchone() == (0,)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.csv"))


def test_a_table_in_a_pipe_is_printed_whole_at_any_terminal_width(world: World):
    with world.ws.open_store() as store:
        fingerprints = store.con.execute("SELECT fingerprint FROM company_keys ORDER BY company_id").fetchall()
    env = {"AGGREGATOR_WORKSPACE": str(world.ws.root), "AGGREGATOR_PASSPHRASE": PASSPHRASE, "COLUMNS": "40"}
    env["AGGREGATOR_PASSPHRASE"] = world.ws.passphrase
    listed = CliRunner(env=env).invoke(aggregator, ["companies", "list"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split("\t") == ["company_id", "name", "group_id", "covenants", "status", "fingerprint"]
    for (fingerprint,), line in zip(fingerprints, lines[1:], strict=True):
        assert line.split("\t")[-1] == fingerprint  # 39 characters, none cut


@pytest.mark.parametrize(("tool", "name"), [(aggregator, "aggregator"), (imvo_submit, "imvo-submit")])
def test_both_tools_tell_their_version(tool, name: str):
    from aggregator import __version__

    done = CliRunner().invoke(tool, ["--version"])
    assert (done.exit_code, done.output) == (0, f"{name} {__version__}\n")


def _leaves(group: click.Group, path: tuple[str, ...]):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaves(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


COMMANDS = [*_leaves(aggregator, ("aggregator",)), *_leaves(imvo_submit, ("imvo-submit",))]


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_takes_json(name: str, command: click.Command):
    assert any("--json" in p.opts for p in command.params), f"{name} has no --json"


def test_log_verify_answers_in_json_and_fails_on_a_broken_log(world: World):
    verified = world.cli("log", "verify", "--json")
    result = json_result(verified)
    assert result["intact"] is True and result["problems"] == []
    assert result["head"].startswith(f"{result['entries']}:")
    with world.ws.open_store() as store:
        store.con.execute("UPDATE action_log SET details_json = '{}' WHERE seq = 1")
    broken = world.cli("log", "verify", "--json")
    assert broken.exit_code == 1
    assert json_result(broken)["intact"] is False


def test_an_error_in_json_mode_is_one_document_too(world: World):
    done = world.cli("status", "2025-13", "--json")
    assert done.exit_code == 2
    from support.cli import json_error

    assert json_error(done) == {
        "message": "'2025-13' is not a reporting period",
        "hint": "write it as YYYY-MM, e.g. 2025-03",
    }
    assert done.stderr.startswith("error: '2025-13' is not a reporting period")


# ---------------------------------------------------------------- item 9: manual overrides are recorded


def test_an_override_is_recorded_with_its_reason_logged_and_applied_by_the_next_batch(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AGGREGATOR_PASSPHRASE", PASSPHRASE)
    ws = four_company_workspace(tmp_path)

    def run(*args: str):
        return CliRunner().invoke(aggregator, ["--workspace", str(ws.root), "--now", NOW, *args])

    assert run("batch", "textile", JAN, "--out", str(tmp_path / "out")).exit_code == 0
    cells = json_result(run("releases", "show", f"textile-{JAN}-committee-r1", "--json"))["cells"]
    cotton = next(c for c in cells if "cotton" in c["cell_key"])
    assert cotton["status"] == "published"
    added = run("overrides", "add", "textile", cotton["cell_key"], "--table", "weight", "--unsafe", "--reason", "asked")
    assert added.exit_code == 0, added.output
    with ws.open_store() as store:
        lab = Lab.on_store(ws.protocol("textile"), store)
        # January's figures again, cotton changed for every company (so no month-to-month difference is unsafe)
        january = {"A": (40, 30, 20), "B": (35, 30, 25), "C": (30, 35, 30), "D": (30, 25, 20)}
        for (company, (_, polyester, wool)), cotton_kg in zip(january.items(), (41, 36, 31, 29), strict=True):
            lab.submit(company, FEB, {"cotton": cotton_kg, "polyester": polyester, "wool": wool})
    assert run("batch", "textile", FEB, "--out", str(tmp_path / "out")).exit_code == 0
    feb = json_result(run("releases", "show", f"textile-{FEB}-committee-r1", "--json"))["cells"]
    assert next(c for c in feb if c["cell_key"] == cotton["cell_key"])["status"] == "suppressed"
    listed = json_result(run("overrides", "list", "--json"))["overrides"]
    assert [(o["action"], o["reason"], o["in_force"]) for o in listed] == [("unsafe", "asked", True)]
    revoked = run("overrides", "revoke", "textile", cotton["cell_key"], "--reason", "consent withdrawn")
    assert revoked.exit_code == 0, revoked.output
    listed = json_result(run("overrides", "list", "--json"))["overrides"]
    assert [o["in_force"] for o in listed] == [False, False]
    logged = json_result(run("log", "show", "--action", "override", "--json"))["entries"]
    assert [(e["details"]["action"], e["details"]["reason"]) for e in logged] == [
        ("unsafe", "asked"),
        ("revoked", "consent withdrawn"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["textile", "not|a|key", "--table", "weight", "--safe", "--reason", "x"], "is not a cell key"),
        (["textile", "KEY", "--table", "nope", "--safe", "--reason", "x"], "no table 'nope'"),
        (["textile", "KEY", "--table", "weight", "--safe", "--reason", " "], "an override needs a reason"),
        (["nope", "KEY", "--table", "weight", "--safe", "--reason", "x"], "covenant 'nope' has no protocol"),
    ],
)
def test_override_mistakes_are_refused(tmp_path: Path, monkeypatch, args: list[str], message: str):
    monkeypatch.setenv("AGGREGATOR_PASSPHRASE", PASSPHRASE)
    ws = four_company_workspace(tmp_path)
    key = "materials|sum(weight_kg)|-|material=cotton"
    done = CliRunner().invoke(
        aggregator,
        ["--workspace", str(ws.root), "--now", NOW, "overrides", "add", *[key if a == "KEY" else a for a in args]],
    )
    assert done.exit_code == 2 and message in done.stderr, done.output
    with ws.open_store() as store:
        assert store.con.execute("SELECT count(*) FROM overrides").fetchone() == (0,)
