"""The two distributions as their users get them: wheels installed in fresh virtual environments outside the
repository, used only through their commands; and a company tool that runs on Windows and macOS as well."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPANY_PACKAGE = ROOT / "submit" / "imvo_submit"
SAMPLE = ROOT / "sample_data" / "submissions" / "textile" / "2025-01" / "T001__materials.csv"

# Standard-library modules that exist only on Unix, and os functions that Windows lacks.
UNIX_ONLY_MODULES = {"fcntl", "resource", "termios", "tty", "pty", "pwd", "grp", "posix", "syslog", "crypt", "spwd"}
UNIX_ONLY_OS = {"fork", "forkpty", "getuid", "geteuid", "getgid", "chown", "fchown", "lchown", "setsid", "killpg"}


def _imports_and_os_calls(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    modules, os_names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            os_names.add(node.attr)
    return modules, os_names


def test_the_company_tool_uses_nothing_unix_only():
    """Most CSR officers work on Windows: no module of the company tool, at any depth (imports inside functions
    too), may need a Unix-only module or os function."""
    found = {}
    for path in sorted(COMPANY_PACKAGE.rglob("*.py")):
        modules, os_names = _imports_and_os_calls(path)
        bad = sorted((modules & UNIX_ONLY_MODULES) | {f"os.{n}" for n in os_names & UNIX_ONLY_OS})
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    assert found == {}


def test_the_scan_finds_what_it_looks_for(tmp_path: Path):
    module = tmp_path / "unix.py"
    module.write_text("import os\n\ndef f():\n    import fcntl\n    return os.getuid()\n", encoding="utf-8")
    assert _imports_and_os_calls(module) == ({"os", "fcntl"}, {"getuid"})


def _run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    assert "Traceback" not in done.stderr
    return done


def _venv(where: Path, wheels: list[Path], env: dict[str, str]) -> Path:
    _run([sys.executable, "-m", "venv", str(where)], where.parent, env)
    _run([str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", *map(str, wheels)], where.parent, env)
    return where / "bin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, dict[str, str]]:
    """Both wheels built from this checkout; the company tool alone in one environment, the engine (which
    installs the company tool as its dependency) in another; a working folder outside the repository."""
    base = tmp_path_factory.mktemp("installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "IMVO", "AGGREGATOR"))}
    env |= {"HOME": str(base / "user"), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "COLUMNS": "200"}
    build = base / "build"
    shutil.copytree(ROOT, build / "src", ignore=shutil.ignore_patterns(".venv", "work", "out", ".git", "*.egg-info"))
    dist = base / "dist"
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist)]
    _run([*pip, str(build / "src" / "submit"), str(build / "src")], build, env)
    company_wheel, engine_wheel = sorted(dist.glob("imvo_submit-*.whl")), sorted(dist.glob("imvo_aggregator-*.whl"))
    company = _venv(base / "company-env", company_wheel, env)
    engine = _venv(base / "secretariat-env", company_wheel + engine_wheel, env)
    work = base / "work"
    work.mkdir()
    return company, engine, work, env


def test_the_company_tool_installs_without_the_engine(installed):
    company, _, work, env = installed
    assert not (company / "aggregator").exists()  # the secretariat's command is not there
    engine_only = "('duckdb', 'highspy', 'jinja2', 'aggregator')"
    probe = f"import importlib.util as u; print(sorted(m for m in {engine_only} if u.find_spec(m)))"
    assert _run([str(company / "python"), "-c", probe], work, env).stdout == "[]\n"
    assert _run([str(company / "imvo-submit"), "--version"], work, env).stdout == "imvo-submit 0.1.0\n"


def test_template_check_seal_intake_and_receipt_with_the_installed_commands(installed):
    company, engine, work, env = installed
    secretariat = env | {"AGGREGATOR_PASSPHRASE": "secretariat passphrase for the wheel test"}
    secretariat |= {"AGGREGATOR_WORKSPACE": str(work / "ws"), "AGGREGATOR_NOW": "2025-02-28T09:00:00Z"}
    officer = env | {"IMVO_SUBMIT_HOME": str(work / "home"), "IMVO_NOW": "2025-02-21T09:00:00Z"}
    officer |= {"IMVO_PASSPHRASE": "a long company passphrase for the wheel test"}
    aggregator, submit = str(engine / "aggregator"), str(company / "imvo-submit")

    samples = _run([aggregator, "protocols", "samples", "protocols"], work, secretariat)
    assert "wrote protocols/textile.toml" in samples.stdout
    _run([aggregator, "init", "--protocol", "protocols/textile.toml"], work, secretariat)
    keys = work / "ws" / "keys"

    template = _run([submit, "template", "--covenant", "textile", "--out", "textile.xlsx"], work, officer)
    assert "wrote textile.xlsx" in template.stdout
    assert (work / "textile.xlsx").stat().st_size > 5000  # the table sheets are there, not only the instructions
    _run([submit, "init", "--company", "T001", "--covenant", "textile", "--yes"]
         + ["--secretariat-key", str(keys / "secretariat_encryption.pub")]
         + ["--receipt-key", str(keys / "secretariat_signing.pub")], work, officer)  # fmt: skip
    _run([submit, "keygen"], work, officer)
    shutil.copyfile(SAMPLE, work / "materials.csv")
    checked = _run([submit, "check", "materials.csv"], work, officer)
    assert "materials.csv: OK (materials" in checked.stdout
    _run([submit, "seal", "materials.csv", "--period", "2025-01", "--out", "inbox"], work, officer)

    company_key = str(work / "home" / "company_signing.pub")
    _run([aggregator, "companies", "add", "T001", "--name", "Brand", "--covenant", "textile", "--key", company_key],
         work, secretariat)  # fmt: skip
    intake = _run([aggregator, "intake", "inbox"], work, secretariat)
    assert "accepted" in intake.stdout
    (receipt,) = (work / "ws" / "outbox" / "T001").glob("*.receipt")
    verified = _run([submit, "verify-receipt", str(receipt)], work, officer)
    assert "genuine, signed by the secretariat" in verified.stdout
    assert "accepted" in verified.stdout

    _run([aggregator, "rules", "export", "--out", "current.imvo-rules"], work, secretariat)
    updated = _run([submit, "rules", "update", "current.imvo-rules"], work, officer)
    assert "rules in force: " in updated.stdout and "the secretariat's bundle of 2025-02-28T09:00:00Z" in updated.stdout
