"""`aggregator`: exact messages and exit codes for what secretariat staff do, right or wrong.

Exit codes: 0 done; 1 done with problems (quarantined files); 2 a mistake, shown as an `error:` line and a
`hint:` line. Never a traceback for a user mistake.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aggregator.cli.secretariat import main as aggregator
from aggregator.workspace import Workspace, create_workspace
from imvo_submit.company import seal_submission
from imvo_submit.envelope import keys
from support.cli import json_result

ROOT = Path(__file__).resolve().parent.parent
MATERIALS = ROOT / "sample_data" / "submissions" / "textile" / "2025-01" / "T001__materials.csv"
PASSPHRASE = "secretariat passphrase for tests"
NOW = "2025-02-28T09:00:00Z"


def run(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    runner = CliRunner(env={"COLUMNS": "250", **(env or {})})
    result = runner.invoke(aggregator, args, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return create_workspace(tmp_path / "ws", PASSPHRASE, [ROOT / "protocols" / "textile.toml"])


@pytest.fixture
def env(workspace: Workspace) -> dict[str, str]:
    return {"AGGREGATOR_WORKSPACE": str(workspace.root), "AGGREGATOR_PASSPHRASE": PASSPHRASE, "AGGREGATOR_NOW": NOW}


@pytest.fixture
def company_key(tmp_path: Path):
    """T001's signing key and its .pub file, as `imvo-submit keygen` makes them."""
    key = keys.generate_signing_key()
    pub = tmp_path / "T001.pub"
    keys.save_public_key(key.public_key(), pub)
    return key, pub


def add_company(env: dict[str, str], pub: Path, company: str = "T001", name: str = "Alpha BV") -> Result:
    return run(["companies", "add", company, "--name", name, "--covenant", "textile", "--key", str(pub)], env)


def seal_into(inbox: Path, workspace: Workspace, key, period: str = "2025-01", company: str = "T001") -> Path:
    return seal_submission(
        MATERIALS,
        inbox,
        company_id=company,
        covenant="textile",
        period=period,
        recipient_key=keys.load_public_key(workspace.keys_dir / "secretariat_encryption.pub"),
        signing_key=key,
        created="2025-02-10T09:00:00Z",
    )


# ---------------------------------------------------------------- workspace and passphrase mistakes


def test_a_missing_workspace_is_named_before_any_passphrase_is_asked(tmp_path: Path):
    missing = tmp_path / "nowhere"
    result = run(["status", "2025-01"], {"AGGREGATOR_WORKSPACE": str(missing), "AGGREGATOR_PASSPHRASE": None})
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {missing} is not a workspace (no workspace.toml)\n"
        "hint: create one with `aggregator --workspace FOLDER init --protocol protocols/textile.toml`, or point "
        "to an existing one with --workspace or AGGREGATOR_WORKSPACE\n"
    )


def test_a_wrong_passphrase_says_so(env: dict[str, str], workspace: Workspace):
    result = run(["companies", "list"], {**env, "AGGREGATOR_PASSPHRASE": "not the passphrase"})
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: wrong passphrase for the workspace {workspace.root}\n"
        "hint: type it again, or check the passphrase in AGGREGATOR_PASSPHRASE\n"
    )


def test_no_passphrase_and_no_terminal(env: dict[str, str]):
    result = run(["companies", "list"], {**env, "AGGREGATOR_PASSPHRASE": None})
    assert result.exit_code == 2
    assert result.stderr == (
        "error: a passphrase is needed and none was given\n"
        "hint: set AGGREGATOR_PASSPHRASE or run the command in a terminal\n"
    )


@pytest.mark.parametrize(
    "args",
    [["status", "2025-13"], ["intake", "INBOX", "--period", "2025-13"], ["batch", "textile", "2025-13"]],
    ids=["status", "intake", "batch"],
)
def test_a_bad_period_is_refused(tmp_path: Path, env: dict[str, str], args: list[str]):
    (tmp_path / "INBOX").mkdir()
    args = [str(tmp_path / "INBOX") if a == "INBOX" else a for a in args]
    result = run(args, {**env, "AGGREGATOR_PASSPHRASE": None})  # refused before any passphrase is needed
    assert result.exit_code == 2
    assert result.stderr == "error: '2025-13' is not a reporting period\nhint: write it as YYYY-MM, e.g. 2025-03\n"


def test_init_creates_a_workspace_and_refuses_to_overwrite_it(tmp_path: Path):
    env = {"AGGREGATOR_WORKSPACE": str(tmp_path / "new"), "AGGREGATOR_PASSPHRASE": PASSPHRASE}
    protocol = str(ROOT / "protocols" / "textile.toml")
    result = run(["init", "--protocol", protocol], env)
    assert result.exit_code == 0, result.output
    signing = keys.load_public_key(tmp_path / "new" / "keys" / "secretariat_signing.pub")
    assert result.output.splitlines()[0] == f"created workspace {tmp_path / 'new'}"
    assert f"receipt signing key fingerprint: {keys.fingerprint(signing)}" in result.output
    again = run(["init", "--protocol", protocol], env)
    assert again.exit_code == 2
    assert (
        again.stderr
        == f"error: {tmp_path / 'new'} is already a workspace\nhint: use it as it is, or choose another folder\n"
    )


def test_init_refuses_a_short_passphrase(tmp_path: Path):
    env = {"AGGREGATOR_WORKSPACE": str(tmp_path / "new"), "AGGREGATOR_PASSPHRASE": "short"}
    result = run(["init", "--protocol", str(ROOT / "protocols" / "textile.toml")], env)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: the passphrase is too short (5 characters; at least 12 are needed)\n"
        "hint: use a sentence of four or more words that nobody could guess, e.g. from a book you own\n"
    )
    assert not (tmp_path / "new" / "workspace.toml").exists()


# ---------------------------------------------------------------- the company registry


def test_companies_add_list_revoke_and_rotate_key(tmp_path: Path, env: dict[str, str], company_key):
    key, pub = company_key
    fpr = keys.fingerprint(key.public_key())
    added = add_company(env, pub, name="Alpha [NL] BV")
    assert added.exit_code == 0
    assert added.output == f"registered T001 with key {fpr}: confirm this fingerprint with the company\n"

    listed = run(["companies", "list", "--json"], env)
    assert json_result(listed)["companies"] == [
        {
            "company_id": "T001",
            "name": "Alpha [NL] BV",
            "group_id": "T001",
            "covenants": "textile",
            "status": "active",
            "fingerprint": fpr,
        }
    ]
    table = run(["companies", "list"], env)
    assert "Alpha [NL] BV" in table.output  # brackets in names are text, not markup

    new_key = keys.generate_signing_key()
    new_pub = tmp_path / "T001-new.pub"
    keys.save_public_key(new_key.public_key(), new_pub)
    rotated = run(["companies", "rotate-key", "T001", "--key", str(new_pub)], env)
    assert rotated.exit_code == 0
    assert rotated.output == f"T001 now signs with key {keys.fingerprint(new_key.public_key())}\n"

    revoked = run(["companies", "revoke", "T001", "--reason", "left the covenant"], env)
    assert revoked.exit_code == 0
    assert revoked.output == "revoked T001: its files are quarantined from now on\n"
    assert json_result(run(["companies", "list", "--json"], env))["companies"][0]["status"] == "revoked"

    after = run(["companies", "rotate-key", "T001", "--key", str(pub)], env)
    assert after.exit_code == 2
    assert after.stderr == "error: company T001 is revoked; a revoked company cannot get a new key\n"


def test_companies_mistakes(tmp_path: Path, env: dict[str, str], company_key):
    _, pub = company_key
    add_company(env, pub)
    twice = add_company(env, pub)
    assert twice.exit_code == 2
    assert twice.stderr == (
        "error: company T001 is already registered\n"
        "hint: use `aggregator companies rotate-key T001` to give it a new key\n"
    )
    unknown = run(["companies", "revoke", "T404", "--reason", "x"], env)
    assert unknown.exit_code == 2
    assert (
        unknown.stderr == "error: company T404 is not registered\nhint: register it with `aggregator companies add`\n"
    )
    bad_id = add_company(env, pub, company="../etc")
    assert bad_id.exit_code == 2
    assert bad_id.stderr.startswith("error: '../etc' is not a valid company id: '.' (U+002E FULL STOP) is not ")
    not_a_key = tmp_path / "T002.pub"
    not_a_key.write_text("hello\n", encoding="utf-8")
    garbage = add_company(env, not_a_key, company="T002")
    assert garbage.exit_code == 2
    assert garbage.stderr.startswith("error: ")
    assert json_result(run(["companies", "list", "--json"], env))["companies"][0]["company_id"] == "T001"


def test_companies_list_when_empty(env: dict[str, str]):
    result = run(["companies", "list"], env)
    assert result.exit_code == 0
    assert result.output == "no companies registered yet; add one with `aggregator companies add`\n"


# ---------------------------------------------------------------- intake and status


def test_intake_with_a_quarantined_file_exits_1(tmp_path: Path, env: dict[str, str], workspace, company_key):
    key, pub = company_key
    add_company(env, pub)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    seal_into(inbox, workspace, key)
    (inbox / "[red]notes.csv").write_bytes(b"material,certification,weight_kg\ncotton,none,1\n")
    result = run(["intake", str(inbox), "--period", "2025-01"], env)
    assert result.exit_code == 1
    assert "T001_textile_materials_2025-01.imvo" in result.output
    assert "[red]notes.csv" in result.output  # a hostile name is shown as text, not read as markup
    assert "1 accepted, 1 quarantined; 1 receipts written to" in result.output
    assert not list(inbox.iterdir())


def test_intake_json_and_an_empty_inbox(tmp_path: Path, env: dict[str, str], workspace, company_key):
    key, pub = company_key
    add_company(env, pub)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    seal_into(inbox, workspace, key)
    result = run(["intake", str(inbox), "--json"], env)
    assert result.exit_code == 0
    (outcome,) = json_result(result)["files"]
    assert (outcome["state"], outcome["reason"], outcome["company_id"]) == ("accepted", "valid", "T001")
    assert re.fullmatch(r"outbox/T001/[0-9a-f]{64}\.receipt", outcome["receipt"])
    again = run(["intake", str(inbox)], env)
    assert (again.exit_code, again.output) == (0, "the inbox is empty: nothing to do\n")


def test_intake_of_a_missing_inbox(tmp_path: Path, env: dict[str, str]):
    result = run(["intake", str(tmp_path / "nope")], env)
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_status_lists_accepted_missing_and_quarantined(tmp_path: Path, env: dict[str, str], workspace, company_key):
    key, pub = company_key
    add_company(env, pub)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    seal_into(inbox, workspace, key)
    (inbox / "dropped.csv").write_bytes(b"not sealed\n")
    run(["intake", str(inbox)], env)

    result = run(["status", "2025-01"], env)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "textile: 1 accepted, 3 missing, 0 quarantined, 0 superseded, 0 duplicate"
    assert any("T001" in line and "living_wage" in line and "missing" in line for line in lines)
    assert "unreadable files: 0 accepted, 0 missing, 1 quarantined, 0 superseded, 0 duplicate" in lines
    assert any("dropped.csv" in line and "not a sealed IMVO submission" in line for line in lines)
    assert not any("nan" in line.split() for line in lines)

    frame = json_result(run(["status", "2025-01", "--json"], env))["rows"]
    states = sorted((r["template"] or "", r["state"]) for r in frame)
    assert states == [
        ("", "quarantined"),
        ("living_wage", "missing"),
        ("materials", "accepted"),
        ("production_locations", "missing"),
        ("risk_assessment", "missing"),
    ]
