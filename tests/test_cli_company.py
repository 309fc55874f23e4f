"""`imvo-submit`: exact messages and exit codes for what a company's CSR officer does, right or wrong.

Exit codes: 0 done; 1 done with problems (an invalid file, a quarantined receipt); 2 a mistake, shown as an
`error:` line and a `hint:` line. Never a traceback for a user mistake.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aggregator.cli.secretariat import main as aggregator
from aggregator.registry import Registry
from aggregator.workspace import Workspace, create_workspace
from imvo_submit import company as company_mod
from imvo_submit.cli.main import main as imvo_submit
from imvo_submit.envelope import keys
from imvo_submit.validation import rules_version

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data" / "submissions" / "textile" / "2025-01"
SECRETARIAT_PASSPHRASE = "secretariat passphrase for tests"
COMPANY_PASSPHRASE = "company passphrase for tests"
NOW = "2025-02-28T09:00:00Z"
SEALED = "2025-02-21T09:00:00Z"


KNOWN_HINT = "use the covenant's short name: banking, food, forestry, gold, insurance, textile"


def only_receipt(workspace: Workspace) -> Path:
    """The one receipt in T001's outbox (named by the sealed file's SHA-256)."""
    (receipt,) = (workspace.outbox_dir / "T001").glob("*.receipt")
    return receipt


def run(args: list[str], env: dict[str, str] | None = None, tool=imvo_submit) -> Result:
    runner = CliRunner(env={"COLUMNS": "200", **(env or {})})
    result = runner.invoke(tool, args, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return create_workspace(tmp_path / "ws", SECRETARIAT_PASSPHRASE, [ROOT / "protocols" / "textile.toml"])


@pytest.fixture
def home(tmp_path: Path, workspace: Workspace) -> Path:
    """A company home set up with `imvo-submit init` and `imvo-submit keygen`, as the README says."""
    home = tmp_path / "home"
    result = run(
        [
            "init",
            "--company",
            "T001",
            "--covenant",
            "textile",
            "--secretariat-key",
            str(workspace.keys_dir / "secretariat_encryption.pub"),
            "--receipt-key",
            str(workspace.keys_dir / "secretariat_signing.pub"),
            "--yes",
            "--home",
            str(home),
        ]
    )
    assert result.exit_code == 0, result.output
    # The key as `imvo-submit keygen` makes it, with cheap key derivation: every seal must unlock it.
    company_mod.keygen(company_mod.open_home(home), COMPANY_PASSPHRASE)
    return home


def company_env(home: Path, passphrase: str = COMPANY_PASSPHRASE) -> dict[str, str]:
    # sealed a week before the secretariat's fixed clock: a sealing time after it would be a wrong clock
    return {"IMVO_SUBMIT_HOME": str(home), "IMVO_PASSPHRASE": passphrase, "IMVO_NOW": SEALED}


def secretariat_env(workspace: Workspace) -> dict[str, str]:
    return {
        "AGGREGATOR_WORKSPACE": str(workspace.root),
        "AGGREGATOR_PASSPHRASE": SECRETARIAT_PASSPHRASE,
        "AGGREGATOR_NOW": NOW,
    }


def copy_sample(tmp_path: Path, name: str = "T001__materials.csv") -> Path:
    target = tmp_path / "files" / name
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(SAMPLES / name, target)
    return target


def invalid_living_wage(tmp_path: Path) -> Path:
    target = copy_sample(tmp_path, "T001__living_wage.csv")
    target.write_text(target.read_text(encoding="utf-8").replace("BD,17175,", "BD,-17175,"), encoding="utf-8")
    return target


# ---------------------------------------------------------------- set-up


def test_init_shows_the_fingerprints_and_writes_the_home(tmp_path: Path, workspace: Workspace):
    encryption = workspace.keys_dir / "secretariat_encryption.pub"
    signing = workspace.keys_dir / "secretariat_signing.pub"
    home = tmp_path / "home"
    result = run(
        ["init", "--company", "T001", "--covenant", "textile", "--secretariat-key", str(encryption)]
        + ["--receipt-key", str(signing), "--yes", "--home", str(home)]
    )
    assert result.exit_code == 0
    assert f"secretariat encryption key fingerprint: {keys.fingerprint(keys.load_public_key(encryption))}" in (
        result.output
    )
    assert f"secretariat receipt key fingerprint: {keys.fingerprint(keys.load_public_key(signing))}" in (result.output)
    assert (home / "config.toml").read_text(encoding="utf-8") == 'company_id = "T001"\ncovenant = "textile"\n'


@pytest.mark.parametrize(
    ("company", "covenant", "message"),
    [
        ('T0"01', "textile", "error: 'T0\"01' is not a valid company id"),
        ("T001", "fishing", "error: 'fishing' is not a covenant this tool knows"),
    ],
)
def test_init_refuses_a_bad_company_id_or_covenant(tmp_path, workspace, company, covenant, message):
    result = run(
        ["init", "--company", company, "--covenant", covenant, "--yes", "--home", str(tmp_path / "home")]
        + ["--secretariat-key", str(workspace.keys_dir / "secretariat_encryption.pub")]
        + ["--receipt-key", str(workspace.keys_dir / "secretariat_signing.pub")]
    )
    assert result.exit_code == 2
    assert message in result.stderr
    assert "hint: " in result.stderr
    assert not (tmp_path / "home" / "config.toml").exists()


@pytest.mark.parametrize(
    ("encryption", "signing", "problem"),
    [
        (
            "secretariat_signing.pub",
            "secretariat_encryption.pub",
            "error: the two key files are swapped: {keys}/secretariat_signing.pub is the secretariat's receipt "
            "signing key and {keys}/secretariat_encryption.pub its encryption key\n",
        ),
        (
            "secretariat_signing.pub",
            "secretariat_signing.pub",
            "error: {keys}/secretariat_signing.pub is a signing key, not the secretariat's encryption key "
            "(--secretariat-key)\n",
        ),
        (
            "secretariat_encryption.pub",
            "secretariat_encryption.pub",
            "error: {keys}/secretariat_encryption.pub is an encryption key, not the secretariat's receipt signing "
            "key (--receipt-key)\n",
        ),
    ],
)
def test_init_refuses_swapped_secretariat_keys(tmp_path, workspace, encryption, signing, problem):
    """A swapped pair was accepted, and `seal` then failed with "AttributeError: ... has no attribute 'kem'"."""
    home = tmp_path / "home"
    result = run(
        ["init", "--company", "T001", "--covenant", "textile", "--yes", "--home", str(home)]
        + ["--secretariat-key", str(workspace.keys_dir / encryption)]
        + ["--receipt-key", str(workspace.keys_dir / signing)]
    )
    assert result.exit_code == 2
    assert result.stderr == problem.format(keys=workspace.keys_dir) + (
        "hint: give --secretariat-key the secretariat's encryption key (secretariat_encryption.pub) and "
        "--receipt-key its receipt signing key (secretariat_signing.pub)\n"
    )
    assert result.stdout == ""  # no fingerprints to confirm, nothing written
    assert not home.exists()


def test_seal_with_a_home_whose_keys_were_swapped_before_init_checked_them(tmp_path: Path, home: Path):
    encryption, signing = home / "secretariat_encryption.pub", home / "secretariat_signing.pub"
    swapped = encryption.read_bytes()
    encryption.write_bytes(signing.read_bytes())
    signing.write_bytes(swapped)
    result = run(["seal", str(copy_sample(tmp_path)), "--period", "2025-01"], env=company_env(home))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {encryption} holds a signing key, not the secretariat's encryption key\n"
        "hint: run `imvo-submit init` again with --secretariat-key secretariat_encryption.pub and "
        "--receipt-key secretariat_signing.pub\n"
    )


def test_keygen_writes_the_key_and_refuses_to_overwrite_it(home: Path):
    fresh = home.parent / "fresh"
    fresh.mkdir()
    shutil.copyfile(home / "config.toml", fresh / "config.toml")
    result = run(["keygen"], env=company_env(fresh))
    assert result.exit_code == 0
    fpr = keys.fingerprint(keys.load_public_key(fresh / "company_signing.pub"))
    assert result.output == (
        f"your public key: {fresh / 'company_signing.pub'}\n"
        f"fingerprint: {fpr}  send the .pub file to the secretariat and confirm this by phone\n"
    )
    assert keys.load_private_key(fresh / "company_signing.key", COMPANY_PASSPHRASE)
    result = run(["keygen"], env=company_env(home))
    assert result.exit_code == 2
    assert f"error: a signing key already exists in {home}" in result.stderr
    assert "hint: to replace it, move the old key away first" in result.stderr


def test_one_passphrase_policy_for_the_company_key_and_the_secretariat(tmp_path: Path, home: Path):
    """The company key once took a 4-character passphrase where the secretariat's needed 8: both command lines
    now refuse it with the same words (imvo_submit.passphrase.check_passphrase)."""
    fresh = home.parent / "fresh"
    fresh.mkdir()
    shutil.copyfile(home / "config.toml", fresh / "config.toml")
    expected = (
        "error: the passphrase is too short (4 characters; at least 12 are needed)\n"
        "hint: use a sentence of four or more words that nobody could guess, e.g. from a book you own\n"
    )
    company = run(["keygen"], env=company_env(fresh, "abcd"))
    assert (company.exit_code, company.stderr) == (2, expected)
    assert not (fresh / "company_signing.key").exists()
    env = {"AGGREGATOR_WORKSPACE": str(tmp_path / "ws2"), "AGGREGATOR_PASSPHRASE": "abcd"}
    secretariat = run(["init", "--protocol", str(ROOT / "protocols" / "textile.toml")], env=env, tool=aggregator)
    assert (secretariat.exit_code, secretariat.stderr) == (2, expected)
    assert not (tmp_path / "ws2").exists()


def test_commands_without_a_home_say_how_to_set_one_up(tmp_path: Path):
    result = run(["seal", str(copy_sample(tmp_path)), "--period", "2025-01"], env=company_env(tmp_path / "none"))
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'none'} is not set up for a company" in result.stderr
    assert "hint: run `imvo-submit init --company ID" in result.stderr


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["template", "--covenant", "textiel"],
            "'textiel' is not a covenant this tool knows; did you mean 'textile'?",
            KNOWN_HINT,
        ),
        (
            ["template", "--covenant", "reference"],  # a folder of rules/, not a covenant
            "'reference' is not a covenant this tool knows",
            KNOWN_HINT,
        ),
        (
            ["check", "{file}", "--covenant", "Textiel"],
            "'Textiel' is not a covenant this tool knows; did you mean 'textile'?",
            KNOWN_HINT,
        ),
        (
            ["check", "{file}", "--template", "nope"],
            "'nope' is not a template of covenant 'textile'",
            "templates of textile: living_wage, materials, production_locations, risk_assessment",
        ),
        (
            ["seal", "{file}", "--period", "2025-01", "--template", "living_wages"],
            "'living_wages' is not a template of covenant 'textile'; did you mean 'living_wage'?",
            "templates of textile: living_wage, materials, production_locations, risk_assessment",
        ),
    ],
)
def test_an_unknown_covenant_or_template_is_refused_with_the_known_ones(tmp_path, home, args, message, hint):
    """`template --covenant textiel` wrote an empty workbook and exited 0; `check --template nope` reported an
    internal check error."""
    source = copy_sample(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    env = company_env(home)
    del env["IMVO_PASSPHRASE"]  # no prompt may appear: the name is checked first
    result = run([a.format(file=source) for a in args], env=env)
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\nhint: {hint}\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no template, report or sealed file


def test_init_with_a_misspelt_covenant_suggests_the_known_one(tmp_path, workspace):
    result = run(
        ["init", "--company", "T001", "--covenant", "textil", "--yes", "--home", str(tmp_path / "home")]
        + ["--secretariat-key", str(workspace.keys_dir / "secretariat_encryption.pub")]
        + ["--receipt-key", str(workspace.keys_dir / "secretariat_signing.pub")]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: 'textil' is not a covenant this tool knows; did you mean 'textile'?\nhint: {KNOWN_HINT}\n"
    )


def test_companies_add_refuses_a_covenant_the_workspace_does_not_handle(tmp_path, home, workspace):
    result = run(
        ["companies", "add", "T001", "--name", "Alpha BV", "--covenant", "textiel"]
        + ["--key", str(home / "company_signing.pub")],
        env=secretariat_env(workspace),
        tool=aggregator,
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: covenant 'textiel' has no protocol in this workspace (known: textile); did you mean 'textile'?\n"
        f"hint: for a new covenant, add its protocol file to {workspace.root / 'workspace.toml'}\n"
    )
    with workspace.open_store() as store:
        assert Registry(store).find("T001") is None


@pytest.mark.parametrize(
    "args",
    [
        ["releases", "list", "--covenant", "textiel"],
        ["waivers", "list", "--covenant", "textiel"],
        ["overrides", "list", "--covenant", "textiel"],
        ["waivers", "revoke", "T001", "--covenant", "textiel"],
        ["waivers", "add", "T001", "--covenant", "textiel"],
        ["batch", "textiel", "2025-01"],
    ],
)
def test_secretariat_commands_refuse_a_misspelt_covenant(workspace: Workspace, args: list[str]):
    """A list filtered by a misspelt covenant read as "nothing recorded"."""
    result = run(args, env=secretariat_env(workspace), tool=aggregator)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: covenant 'textiel' has no protocol in this workspace (known: textile); did you mean 'textile'?\n"
    )


# ---------------------------------------------------------------- check and seal


def test_check_of_a_valid_file_says_ok(tmp_path: Path, home: Path):
    result = run(["check", str(copy_sample(tmp_path))], env=company_env(home))
    assert result.exit_code == 0
    assert result.output == f"T001__materials.csv: OK (materials, 2 rows, rules {rules_version()})\n"


def test_check_of_an_invalid_file_lists_the_problems_and_writes_reports(tmp_path: Path, home: Path):
    source = invalid_living_wage(tmp_path)
    result = run(["check", str(source)], env=company_env(home))
    assert result.exit_code == 1
    assert "workers_covered" in result.output
    assert "the same list is in T001__living_wage.errors.xlsx and T001__living_wage.errors.csv" in result.output
    assert source.with_name("T001__living_wage.errors.xlsx").is_file()
    assert "workers_covered" in source.with_name("T001__living_wage.errors.csv").read_text(encoding="utf-8")


def test_seal_of_an_invalid_file_is_refused_with_the_report(tmp_path: Path, home: Path):
    source = invalid_living_wage(tmp_path)
    result = run(["seal", str(source), "--period", "2025-01"], env=company_env(home))
    assert result.exit_code == 1
    assert result.output.startswith(
        "not sealed: T001__living_wage.csv does not meet the textile rules; nothing was sealed\n"
    )
    assert "workers_covered" in result.output
    assert source.with_name("T001__living_wage.errors.xlsx").is_file()
    assert source.with_name("T001__living_wage.errors.csv").is_file()
    assert not list(source.parent.glob("*.imvo"))


def test_seal_checks_the_file_before_it_asks_for_the_passphrase(tmp_path: Path, home: Path, monkeypatch):
    """A file that fails the rules never prompts: the officer would type the passphrase for nothing."""
    import imvo_submit.cli.main as cli

    asked = []
    monkeypatch.setattr(cli, "passphrase", lambda *args, **kwargs: asked.append(args) or COMPANY_PASSPHRASE)
    env = company_env(home)
    del env["IMVO_PASSPHRASE"]
    result = run(["seal", str(invalid_living_wage(tmp_path)), "--period", "2025-01"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("not sealed: T001__living_wage.csv does not meet the textile rules")
    assert asked == []
    result = run(["seal", str(copy_sample(tmp_path)), "--period", "2025-01"], env=env)
    assert result.exit_code == 0, result.output
    assert asked == [("IMVO_PASSPHRASE", "Passphrase of your key")]


def test_seal_of_a_valid_file_writes_one_sealed_file(tmp_path: Path, home: Path):
    source = copy_sample(tmp_path)
    out = tmp_path / "outgoing"
    result = run(["seal", str(source), "--period", "2025-01", "--out", str(out)], env=company_env(home))
    assert result.exit_code == 0, result.output
    target = out / "T001_textile_materials_2025-01.imvo"
    assert result.output == (
        f"sealed: {target}\nsend this one file to the secretariat's inbox; keep the receipt you get back\n"
    )
    assert target.read_bytes().startswith(b"IMVOSEAL")


@pytest.mark.parametrize("period", ["2025-13", "2025-3", "March"])
def test_seal_with_a_bad_period_is_refused_before_the_passphrase(tmp_path: Path, home: Path, period: str):
    env = company_env(home)
    del env["IMVO_PASSPHRASE"]  # no prompt may appear: the period is checked first
    result = run(["seal", str(copy_sample(tmp_path)), "--period", period], env=env)
    assert result.exit_code == 2
    assert result.stderr == (f"error: '{period}' is not a reporting period\nhint: write it as YYYY-MM, e.g. 2025-03\n")


def test_seal_with_a_wrong_passphrase(tmp_path: Path, home: Path):
    result = run(["seal", str(copy_sample(tmp_path)), "--period", "2025-01"], env=company_env(home, "not it"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: wrong passphrase for {home / 'company_signing.key'}\nhint: ")
    assert not list(tmp_path.rglob("*.imvo"))


def test_a_passphrase_is_required_when_there_is_no_terminal(tmp_path: Path, home: Path):
    result = run(["seal", str(copy_sample(tmp_path)), "--period", "2025-01"], env={"IMVO_SUBMIT_HOME": str(home)})
    assert result.exit_code == 2
    assert result.stderr == (
        "error: a passphrase is needed and none was given\nhint: set IMVO_PASSPHRASE or run the command in a terminal\n"
    )


# ---------------------------------------------------------------- one workbook, several tables


def filled_workbook(tmp_path: Path, wage_change: tuple[str, str] | None = None) -> Path:
    """The textile template workbook as a company fills it: the materials and living_wage sheets (from the
    sample files), the other table sheets left empty."""
    import csv

    import openpyxl

    target = tmp_path / "files" / "T001_2025-01.xlsx"
    target.parent.mkdir(exist_ok=True)
    run(["template", "--covenant", "textile", "--out", str(target)])
    book = openpyxl.load_workbook(target)
    for sheet in ("materials", "living_wage"):
        text = (SAMPLES / f"T001__{sheet}.csv").read_text(encoding="utf-8")
        if sheet == "living_wage" and wage_change:
            text = text.replace(*wage_change)
        rows = list(csv.reader(text.splitlines()))
        assert [c.value for c in book[sheet][1]] == rows[0]
        for row in rows[1:]:
            book[sheet].append([float(v) if v.replace(".", "").lstrip("-").isdigit() else v for v in row])
    book.save(target)
    return target


def test_a_workbook_with_several_filled_sheets_is_checked_sheet_by_sheet(tmp_path: Path, home: Path):
    """It was refused with "the workbook has data in several template sheets": the template invites it."""
    source = filled_workbook(tmp_path)
    result = run(["check", str(source)], env=company_env(home))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"sheet living_wage of T001_2025-01.xlsx: OK (living_wage, 9 rows, rules {rules_version()})\n"
        f"sheet materials of T001_2025-01.xlsx: OK (materials, 2 rows, rules {rules_version()})\n"
    )
    doc = json.loads(run(["check", str(source), "--json"], env=company_env(home)).stdout)["result"]
    assert (doc["file"], doc["ok"]) == (str(source), True)
    assert [(t["template"], t["ok"], t["rows"]) for t in doc["tables"]] == [
        ("living_wage", True, 9),
        ("materials", True, 2),
    ]


def test_seal_of_a_workbook_seals_each_filled_sheet_as_its_own_file(tmp_path: Path, home: Path, workspace):
    source = filled_workbook(tmp_path)
    inbox = tmp_path / "inbox"
    result = run(["seal", str(source), "--period", "2025-01", "--out", str(inbox), "--json"], env=company_env(home))
    assert result.exit_code == 0, result.output
    sealed = [inbox / "T001_textile_living_wage_2025-01.imvo", inbox / "T001_textile_materials_2025-01.imvo"]
    doc = json.loads(result.stdout)["result"]
    assert doc == {"sealed": str(sealed[0]), "sealed_files": [str(p) for p in sealed], "period": "2025-01"}
    assert sorted(inbox.iterdir()) == sealed
    _register(workspace, home)
    intake = run(["intake", str(inbox), "--json"], env=secretariat_env(workspace), tool=aggregator)
    assert intake.exit_code == 0, intake.output
    files = json.loads(intake.stdout)["result"]["files"]
    assert sorted((f["template"], f["state"]) for f in files) == [
        ("living_wage", "accepted"),
        ("materials", "accepted"),
    ]
    with workspace.open_store() as store:
        for template, rows in (("living_wage", 9), ("materials", 2)):
            assert store.con.execute(f"SELECT count(*) FROM rows_textile_{template}").fetchone()[0] == rows


def test_seal_of_a_workbook_with_one_failing_sheet_seals_nothing(tmp_path: Path, home: Path):
    source = filled_workbook(tmp_path, wage_change=("BD,17175,", "BD,-17175,"))
    result = run(["seal", str(source), "--period", "2025-01"], env=company_env(home))
    assert result.exit_code == 1
    assert result.output.startswith(
        "not sealed: sheet living_wage of T001_2025-01.xlsx does not meet the textile rules; nothing was sealed\n"
    )
    assert "the same list is in T001_2025-01.living_wage.errors.xlsx and T001_2025-01.living_wage.errors.csv" in (
        result.output
    )
    assert not list(tmp_path.rglob("*.imvo"))
    assert source.with_name("T001_2025-01.living_wage.errors.csv").is_file()
    result = run(["seal", str(source), "--period", "2025-01", "--template", "materials"], env=company_env(home))
    assert result.exit_code == 0, result.output  # naming the template seals that sheet alone
    assert [p.name for p in tmp_path.rglob("*.imvo")] == ["T001_textile_materials_2025-01.imvo"]


# ---------------------------------------------------------------- Dutch output


def ambiguous_materials(tmp_path: Path) -> Path:
    target = tmp_path / "files" / "T001__materials.csv"  # 1.234 kg, or 1234 kg? Nothing else in the file tells.
    target.parent.mkdir(exist_ok=True)
    target.write_text("material,certification,weight_kg\ncotton,none,1.234\npolyester,none,1337\n", encoding="utf-8")
    return target


def test_check_in_dutch_says_everything_in_dutch(tmp_path: Path, home: Path):
    """`--language nl` left the `note:` lines and the verdict in English."""
    result = run(["check", str(ambiguous_materials(tmp_path)), "--language", "nl"], env=company_env(home))
    assert result.exit_code == 0
    assert result.output == (
        "let op: weight_kg: '1.234' kan op twee manieren gelezen worden; gelezen als 1.234 (onzeker: controleer "
        f"dit)\nT001__materials.csv: in orde (materials, 2 regels, controleregels {rules_version()})\n"
    )
    result = run(["check", str(invalid_living_wage(tmp_path)), "--language", "nl"], env=company_env(home))
    assert result.exit_code == 1
    assert result.output == (
        "1 problemen gevonden in 9 regels\n"
        "  regel 2, workers_covered: workers_covered -17175 valt buiten het bereik; het moet >= 0 en <= 100000000 "
        "zijn\n"
        "dezelfde lijst staat in T001__living_wage.errors.xlsx en T001__living_wage.errors.csv\n"
    )


def test_seal_in_dutch(tmp_path: Path, home: Path):
    """seal had no --language: its refusal, report and notes were English only."""
    result = run(
        ["seal", str(invalid_living_wage(tmp_path)), "--period", "2025-01", "--language", "nl"], env=company_env(home)
    )
    assert result.exit_code == 1
    assert result.output == (
        "niet verzegeld: T001__living_wage.csv voldoet niet aan de regels van textile; er is niets verzegeld\n"
        "1 problemen gevonden in 9 regels\n"
        "  regel 2, workers_covered: workers_covered -17175 valt buiten het bereik; het moet >= 0 en <= 100000000 "
        "zijn\n"
        "dezelfde lijst staat in T001__living_wage.errors.xlsx en T001__living_wage.errors.csv\n"
    )
    source = ambiguous_materials(tmp_path)
    result = run(["seal", str(source), "--period", "2025-01", "--language", "nl"], env=company_env(home))
    assert result.exit_code == 0, result.output
    assert result.output == (
        "let op: weight_kg: '1.234' kan op twee manieren gelezen worden; gelezen als 1.234 (onzeker: controleer "
        "dit)\n"
        f"verzegeld: {source.parent / 'T001_textile_materials_2025-01.imvo'}\n"
        "stuur dit ene bestand naar de inbox van het secretariaat; bewaar het ontvangstbewijs dat u terugkrijgt\n"
    )


@pytest.mark.parametrize(("language", "separator"), [("en", ","), ("nl", ";")])
def test_the_error_report_csv_uses_the_dialect_of_the_committee_csvs(tmp_path, home, language, separator):
    """The error report always used ',' while a Dutch committee CSV uses ';' (Dutch Excel splits on ';')."""
    from aggregator.release.flat import CSV_DELIMITER

    assert CSV_DELIMITER[language] == separator
    source = invalid_living_wage(tmp_path)
    assert run(["check", str(source), "--language", language], env=company_env(home)).exit_code == 1
    lines = source.with_name("T001__living_wage.errors.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == separator.join(["row", "column", "value", "rule", "message_en", "message_nl"])
    assert lines[1].startswith(separator.join(["2", "workers_covered", "'-17175", "range", ""]))  # no formula


def test_template_in_dutch_says_what_to_do_next_in_dutch(tmp_path: Path):
    target = tmp_path / "sjabloon.xlsx"
    result = run(["template", "--covenant", "textile", "--language", "nl", "--out", str(target)])
    assert result.exit_code == 0
    assert result.output == (
        f"{target} geschreven: vul per tabel één blad in en voer dan `imvo-submit check sjabloon.xlsx` uit\n"
    )


# ---------------------------------------------------------------- receipts, round trip through both tools


def _register(workspace: Workspace, home: Path) -> None:
    result = run(
        ["companies", "add", "T001", "--name", "Alpha BV", "--covenant", "textile"]
        + ["--key", str(home / "company_signing.pub")],
        env=secretariat_env(workspace),
        tool=aggregator,
    )
    assert result.exit_code == 0, result.output


def test_companies_add_refuses_a_key_registered_to_another_company(home: Path, workspace: Workspace):
    _register(workspace, home)
    fpr = keys.fingerprint(keys.load_public_key(home / "company_signing.pub"))
    result = run(
        ["companies", "add", "T002", "--name", "Beta BV", "--covenant", "textile"]
        + ["--key", str(home / "company_signing.pub")],
        env=secretariat_env(workspace),
        tool=aggregator,
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: key {fpr} is registered to company T001; one key cannot sign for two companies\n"
        "hint: ask T002 for the .pub file of its own key (made with `imvo-submit keygen` on its own computer), "
        "and compare the fingerprint with it by phone\n"
    )
    with workspace.open_store() as store:
        assert Registry(store).find("T002") is None


def _seal_and_take_in(tmp_path: Path, home: Path, workspace: Workspace, source: Path, period: str) -> Result:
    inbox = tmp_path / "inbox"
    result = run(["seal", str(source), "--period", period, "--out", str(inbox)], env=company_env(home))
    assert result.exit_code == 0, result.output
    return run(["intake", str(inbox)], env=secretariat_env(workspace), tool=aggregator)


def test_receipt_round_trip_through_both_command_lines(tmp_path: Path, home: Path, workspace: Workspace):
    _register(workspace, home)
    intake = _seal_and_take_in(tmp_path, home, workspace, copy_sample(tmp_path), "2025-01")
    assert intake.exit_code == 0, intake.output
    receipt = only_receipt(workspace)
    result = run(["verify-receipt", str(receipt)], env=company_env(home))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{receipt.name}: genuine, signed by the secretariat"
    assert "  file:         T001__materials.csv" in lines
    assert "  company:      T001" in lines
    assert "  period:       2025-01" in lines
    assert f"  received at:  {NOW}" in lines
    assert lines[-2:] == [
        "  state:        accepted: your data was accepted and will count in the aggregates",
        "  why:          valid: the data met every rule",
    ]


def test_a_quarantined_receipt_exits_1(tmp_path: Path, home: Path, workspace: Workspace):
    _register(workspace, home)
    intake = _seal_and_take_in(tmp_path, home, workspace, copy_sample(tmp_path), "2025-06")  # in the future
    assert intake.exit_code == 1
    receipt = only_receipt(workspace)
    result = run(["verify-receipt", str(receipt)], env=company_env(home))
    assert result.exit_code == 1
    assert result.output.splitlines()[-2:] == [
        "  state:        quarantined: this file was NOT accepted; contact the secretariat to hear why and "
        "send a corrected file",
        "  why:          period: the reporting period was not the one expected, or lies in the future",
    ]


def test_a_changed_receipt_is_called_forged(tmp_path: Path, home: Path, workspace: Workspace):
    _register(workspace, home)
    _seal_and_take_in(tmp_path, home, workspace, copy_sample(tmp_path), "2025-01")
    receipt = only_receipt(workspace)
    doc = json.loads(receipt.read_text(encoding="utf-8"))
    doc["receipt"]["state"] = "accepted" if doc["receipt"]["state"] != "accepted" else "duplicate"
    forged = tmp_path / "forged.receipt"
    forged.write_text(json.dumps(doc), encoding="utf-8")
    result = run(["verify-receipt", str(forged)], env=company_env(home))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: this receipt is forged or was changed: its signature does not match the secretariat key\n"
        "hint: ask the secretariat for a new receipt\n"
    )


def test_a_file_that_is_not_a_receipt(tmp_path: Path, home: Path):
    not_a_receipt = copy_sample(tmp_path)
    result = run(["verify-receipt", str(not_a_receipt)], env=company_env(home))
    assert result.exit_code == 2
    assert result.stderr == "error: this file is not a receipt (it is not JSON)\n"


def test_a_receipt_signed_by_another_key_names_the_key(tmp_path: Path, home: Path, workspace: Workspace):
    _register(workspace, home)
    _seal_and_take_in(tmp_path, home, workspace, copy_sample(tmp_path), "2025-01")
    receipt = only_receipt(workspace)
    other = create_workspace(tmp_path / "other", SECRETARIAT_PASSPHRASE, [ROOT / "protocols" / "textile.toml"])
    shutil.copyfile(other.keys_dir / "secretariat_signing.pub", home / "secretariat_signing.pub")
    result = run(["verify-receipt", str(receipt)], env=company_env(home))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: this receipt was signed by key ")
    assert "hint: check that you use the secretariat's current public key" in result.stderr
    with workspace.open_store() as store:  # the registry was untouched by all of this
        assert Registry(store).get("T001").status == "active"
