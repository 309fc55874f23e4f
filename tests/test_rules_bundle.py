"""Rules that travel: the secretariat exports its rules as a signed bundle, a company installs it and checks,
templates and seals with exactly those rules; the sealed header names the rules version and the intake says
when a file was checked against other rules than the current ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aggregator.cli.secretariat import main as aggregator
from aggregator.intake import run_intake
from aggregator.registry import Registry
from aggregator.workspace import Workspace, create_workspace
from imvo_submit import bundle as bundles
from imvo_submit import company as company_mod
from imvo_submit.cli.main import main as imvo_submit
from imvo_submit.envelope import keys, read_header
from imvo_submit.envelope.format import canonical_json
from imvo_submit.envelope.signed import signature_block
from imvo_submit.errors import ConfigError
from imvo_submit.validation import check_file, covenants, rules_version, using_rules
from imvo_submit.validation.rules import RULES_DIR

ROOT = Path(__file__).resolve().parent.parent
MATERIALS = ROOT / "sample_data" / "submissions" / "textile" / "2025-01" / "T001__materials.csv"
SECRETARIAT_PASSPHRASE = "secretariat passphrase for tests"
COMPANY_PASSPHRASE = "company passphrase for tests"
NOW = "2025-02-28T09:00:00Z"


def run(args: list[str], env: dict[str, str] | None = None, tool=imvo_submit) -> Result:
    result = CliRunner(env={"COLUMNS": "200", **(env or {})}).invoke(tool, args, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return create_workspace(tmp_path / "ws", SECRETARIAT_PASSPHRASE, [ROOT / "protocols" / "textile.toml"])


def stricter_rules(tmp_path: Path) -> Path:
    """The shipped rules with a weight limit of 1,000 kg: T001's materials (a million kg of cotton) fail them."""
    folder = tmp_path / "stricter"
    shutil.copytree(RULES_DIR / "textile", folder / "textile")
    path = folder / "textile" / "materials.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("max = 1e+11", "max = 1000"), encoding="utf-8")
    return folder


def init_home(tmp_path: Path, workspace: Workspace, *extra: str) -> Result:
    return run(
        ["init", "--company", "T001", "--covenant", "textile", "--yes", "--home", str(tmp_path / "home")]
        + ["--secretariat-key", str(workspace.keys_dir / "secretariat_encryption.pub")]
        + ["--receipt-key", str(workspace.keys_dir / "secretariat_signing.pub"), *extra]
    )


def test_the_version_is_a_digest_of_the_rule_files(tmp_path: Path):
    assert rules_version() == rules_version(RULES_DIR)
    copy = tmp_path / "copy"
    for covenant in covenants():
        shutil.copytree(RULES_DIR / covenant, copy / covenant)
    assert rules_version(copy) == rules_version()  # the same rules from another folder: the same version
    assert rules_version(stricter_rules(tmp_path)) != rules_version()


def test_a_bundle_reads_back_as_the_rules_it_was_made_of(tmp_path: Path):
    key = Ed25519PrivateKey.generate()
    data = bundles.export_bundle(key, NOW, stricter_rules(tmp_path))
    bundle = bundles.read_bundle(data, key.public_key())
    assert bundle.covenants == ["textile"]
    assert bundle.rules_version == rules_version(tmp_path / "stricter")
    bundles.install_bundle(bundle, tmp_path / "installed")
    assert rules_version(tmp_path / "installed") == bundle.rules_version
    assert bundles.installed_version(tmp_path / "installed") == {"rules_version": bundle.rules_version, "created": NOW}


def _resigned(doc: dict, key: Ed25519PrivateKey) -> bytes:
    """The bundle document signed again with `key` after a change: what an attacker holding a key could make."""
    doc["signature"] = signature_block(key, bundles.BUNDLE_PREFIX + canonical_json(doc["rules"]))
    return json.dumps(doc).encode("utf-8")


def test_a_changed_forged_or_hostile_bundle_is_refused(tmp_path: Path):
    key = Ed25519PrivateKey.generate()
    data = bundles.export_bundle(key, NOW)
    doc = json.loads(data)
    changed = json.loads(data)
    changed["rules"]["files"]["textile/materials.toml"] += "\n# changed\n"
    with pytest.raises(ConfigError, match="changed or forged"):
        bundles.read_bundle(json.dumps(changed).encode(), key.public_key())
    with pytest.raises(ConfigError, match="not by the secretariat key"):
        bundles.read_bundle(data, Ed25519PrivateKey.generate().public_key())
    escaping = json.loads(data)
    escaping["rules"]["files"]["../../evil.toml"] = "x = 1"
    with pytest.raises(ConfigError, match="outside a covenant folder"):
        bundles.read_bundle(_resigned(escaping, key), key.public_key())
    wrong_version = json.loads(data)
    wrong_version["rules"]["rules_version"] = "0" * 12
    with pytest.raises(ConfigError, match="does not match its version"):
        bundles.read_bundle(_resigned(wrong_version, key), key.public_key())
    for junk in (b"", b"{", b"[]", json.dumps(doc | {"version": 9}).encode()):
        with pytest.raises(ConfigError):
            bundles.read_bundle(junk, key.public_key())


def test_a_company_checks_with_the_installed_bundle(tmp_path: Path, workspace: Workspace):
    assert check_file(MATERIALS, "textile", "materials").ok  # the shipped rules take a million kg
    bundle_path = tmp_path / "stricter.imvo-rules"
    bundle_path.write_bytes(bundles.export_bundle(workspace.signing_key, NOW, stricter_rules(tmp_path)))

    result = init_home(tmp_path, workspace, "--rules", str(bundle_path))
    assert result.exit_code == 0, result.output
    assert f"rules in force: {rules_version(tmp_path / 'stricter')} (the secretariat's bundle of {NOW})" in (
        result.output
    )
    env = {"IMVO_SUBMIT_HOME": str(tmp_path / "home")}
    checked = run(["check", str(shutil.copy(MATERIALS, tmp_path)), "--json"], env)
    assert checked.exit_code == 1  # the installed rules, not the shipped ones
    assert json.loads(checked.stdout)["result"]["rules_version"] == rules_version(tmp_path / "stricter")


def test_rules_update_installs_a_bundle_and_refuses_one_not_from_the_secretariat(tmp_path, workspace):
    assert init_home(tmp_path, workspace).exit_code == 0
    env = {"IMVO_SUBMIT_HOME": str(tmp_path / "home")}
    shown = json.loads(run(["rules", "show", "--json"], env).stdout)["result"]
    assert shown == {"rules_version": rules_version(), "installed": False, "created": None}

    foreign = tmp_path / "foreign.imvo-rules"
    foreign.write_bytes(bundles.export_bundle(Ed25519PrivateKey.generate(), NOW))
    refused = run(["rules", "update", str(foreign)], env)
    assert refused.exit_code == 2
    assert "error: this rules bundle was signed by key" in refused.stderr
    assert json.loads(run(["rules", "show", "--json"], env).stdout)["result"]["installed"] is False

    exported = run(
        ["rules", "export", "--out", str(tmp_path / "current.imvo-rules")], _secretariat(workspace), aggregator
    )
    assert exported.exit_code == 0, exported.output
    updated = run(["rules", "update", str(tmp_path / "current.imvo-rules"), "--json"], env)
    assert json.loads(updated.stdout)["result"] == {"rules_version": rules_version(), "installed": True, "created": NOW}


def test_the_seal_names_the_rules_and_the_intake_says_when_they_are_not_current(tmp_path, workspace):
    bundle_path = tmp_path / "stricter.imvo-rules"
    lenient = stricter_rules(tmp_path)
    path = lenient / "textile" / "materials.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("max = 1000", "max = 1e+12"), encoding="utf-8")
    bundle_path.write_bytes(bundles.export_bundle(workspace.signing_key, NOW, lenient))
    assert init_home(tmp_path, workspace, "--rules", str(bundle_path)).exit_code == 0
    home = company_mod.open_home(tmp_path / "home")
    company_mod.keygen(home, COMPANY_PASSPHRASE)
    with workspace.session(NOW) as store:
        public_key = keys.public_key_bytes(keys.load_signing_public_key(home.public_key_path))
        Registry(store).add("T001", "Brand", ["textile"], public_key, now=NOW)

    with using_rules(company_mod.installed_rules(home.root)):
        sealed = company_mod.seal_submission(
            MATERIALS,
            tmp_path / "inbox",
            company_id="T001",
            covenant="textile",
            period="2025-01",
            recipient_key=home.secretariat_encryption_key(),
            signing_key=home.signing_key(COMPANY_PASSPHRASE),
            created="2025-02-21T09:00:00Z",
        )
    assert read_header(sealed).rules_version == rules_version(lenient) != rules_version()

    (outcome,) = run_intake(workspace, tmp_path / "inbox", now=NOW).outcomes
    assert outcome.state == "accepted"
    assert outcome.warnings == [
        f"checked by the company against rules {rules_version(lenient)}, not the current {rules_version()}; it was "
        "validated with the current rules: send the company the current rules bundle (`aggregator rules export`)"
    ]


def _secretariat(workspace: Workspace) -> dict[str, str]:
    return {
        "AGGREGATOR_WORKSPACE": str(workspace.root),
        "AGGREGATOR_PASSPHRASE": SECRETARIAT_PASSPHRASE,
        "AGGREGATOR_NOW": NOW,
    }
