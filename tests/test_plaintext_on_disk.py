"""No plaintext outside memory and the encrypted store (issue 22, item 1): kill the batch at every step with
SIGKILL, then scan the machine's temp folders and the workspace for the true values of hidden cells.

Before this, the secretariat's audit report (every hidden cell's true value) was rendered in
/dev/shm/.audit-*/ and stayed there after a kill; a 0-byte .tmp stayed in secretariat/. The short sweep runs
in `make test`; `IMVO_FULL_SWEEP=1 .venv/bin/python -m pytest tests/test_plaintext_on_disk.py` kills at every
step, before and after it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from aggregator import batch
from aggregator.workspace import Workspace, create_workspace, open_workspace
from support.lab import PROTOCOL

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "correct horse battery staple"
JAN, NOW = "2025-01", "2026-01-01T00:00:00Z"
# wool has two contributors (fewer than the protocol's three): hidden, and another cell with it
WEIGHTS = {
    "A": {"cotton": 40113.5, "polyester": 30221.25, "wool": 7731.25},
    "B": {"cotton": 35227.75, "polyester": 30119.5, "wool": 6519.5},
    "C": {"cotton": 30331.25, "polyester": 35413.75},
    "D": {"cotton": 30417.5, "polyester": 25529.25},
}
# (module, function, k-th call) for every step of a release; each is killed before and (full sweep) after
STEPS = [
    ("batch", "protect_release", 1),
    ("batch", "_release_record", 1),
    ("writer", "_write_one", 1),
    ("writer", "manifest_bytes", 1),
    ("writer", "_swap_into_place", 1),
    ("batch", "render_audit_files", 1),
    ("fileio", "atomic_write_path", 1),
    ("fileio", "atomic_write_path", 2),
    ("os", "replace", 1),
    ("batch", "_record_ledger", 1),
    ("action_log", "append", 1),
    ("action_log", "append", 2),
    ("action_log", "save_checkpoint", 1),
]
SHORT = {("batch", "render_audit_files", 1, True), ("fileio", "atomic_write_path", 1, False)}
SHORT |= {("os", "replace", 1, False), ("batch", "_record_ledger", 1, False)}
FULL = os.environ.get("IMVO_FULL_SWEEP") == "1"
CASES = [(*step, after) for step in STEPS for after in (False, True)]
CASES = [c for c in CASES if FULL or c in SHORT]


def needles(hidden: list[float]) -> list[bytes]:
    """A hidden value as the audit report writes it (HTML, XLSX XML, Dutch notation)."""
    found = []
    for value in hidden:
        text = f"{value:.2f}"
        grouped = f"{value:,.2f}"
        dutch = grouped.replace(",", " ").replace(".", ",").replace(" ", ".")
        found += [text.encode(), text.replace(".", ",").encode(), grouped.encode(), dutch.encode()]
    return found


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    root = tmp_path_factory.mktemp("plain")
    (root / "protocol.toml").write_text(PROTOCOL, encoding="utf-8")
    ws = create_workspace(root / "ws", PASSPHRASE, [root / "protocol.toml"])
    with ws.session(NOW) as store:
        store.ensure_rows_table(
            "textile", "materials", {"material": "VARCHAR", "certification": "VARCHAR", "weight_kg": "DOUBLE"}
        )
        for company, weights in WEIGHTS.items():
            store.con.execute("INSERT INTO companies VALUES (?, ?, ?, ['textile'], 'active', NULL, 'x')", [company] * 3)
            store.con.execute(
                "INSERT INTO submissions (submission_id, company_id, covenant, template, period, received_at, "
                "original_name, state, reason, raw_path) VALUES (?, ?, 'textile', 'materials', ?, 't', 'f', "
                "'accepted', 'ok', 'r')",
                [f"s-{company}", company, JAN],
            )
            for i, (material, weight) in enumerate(sorted(weights.items())):
                store.con.execute(
                    "INSERT INTO rows_textile_materials VALUES (?, ?, ?, ?, ?, 'none', ?)",
                    [f"s-{company}", company, JAN, i, material, weight],
                )
    probe = _copy(root / "ws", root / "probe")
    report = batch.run_batch(probe, "textile", JAN, out_dir=root / "probe-out", now=NOW)
    assert [o.released for o in report.outcomes] == [True]
    hidden = [sum(w["wool"] for w in WEIGHTS.values() if "wool" in w)]  # the primary cell: 14,250.75
    company_values = [v for weights in WEIGHTS.values() for v in weights.values()]
    sealed = {p.name for p in probe.secretariat_dir.rglob("*.sealed")}
    assert sealed == {"audit.html.sealed", "audit.xlsx.sealed"}
    html = probe.open_private_file(next(probe.secretariat_dir.rglob("audit.html.sealed")))
    assert any(needle in html for needle in needles(hidden))  # the report does hold the secret
    return root / "ws", needles(hidden + company_values)


def _copy(source: Path, target: Path) -> Workspace:
    shutil.copytree(source, target)
    return open_workspace(target, PASSPHRASE)


DRIVER = """
import os, signal, sys
from pathlib import Path
from aggregator import batch, workspace
from imvo_submit import fileio
from aggregator import log as action_log
from aggregator.release import writer
owner = {{"batch": batch, "fileio": fileio, "os": os, "action_log": action_log, "writer": writer}}["{owner}"]
real = getattr(owner, "{name}")
calls = [0]
def killing(*args, **kwargs):
    calls[0] += 1
    if calls[0] == {k} and not {after}:
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    if calls[0] == {k} and {after}:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(owner, "{name}", killing)
ws = workspace.open_workspace(Path(sys.argv[1]), "{passphrase}")
batch.run_batch(ws, "textile", "{period}", out_dir=Path(sys.argv[2]), now="{now}")
"""


def scan(folder: Path, secrets: list[bytes], *, newer_than: float | None = None, skip: Path | None = None) -> list:
    """Files under `folder` (inside zip files too) holding a secret: [(path, secret)]."""
    hits = []
    for path in _files_under(folder):
        try:
            if skip is not None and path.is_relative_to(skip) or not path.is_file() or path.is_symlink():
                continue
            if newer_than is not None and path.stat().st_mtime < newer_than:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        parts = [data]
        if data[:2] == b"PK":
            try:
                with zipfile.ZipFile(path) as archive:
                    parts += [archive.read(member) for member in archive.namelist()]
            except (zipfile.BadZipFile, OSError, ValueError):
                pass
        hits += [(path, s) for s in secrets if any(s in part for part in parts)]
    return hits


def _files_under(folder: Path):
    """Every file under `folder`; a folder that vanishes meanwhile (another process's temporary folder in /tmp)
    is passed over instead of failing the scan, as os.walk does."""
    for where, _, names in os.walk(folder):
        for name in names:
            yield Path(where) / name


def leftovers(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith((".tmp", ".partial")) and p.is_file())


@pytest.mark.parametrize(("owner", "name", "k", "after"), CASES, ids=[f"{o}.{n}-{k}-{a}" for o, n, k, a in CASES])
def test_a_batch_killed_at_any_step_leaves_no_plaintext_on_disk(template, tmp_path, owner, name, k, after):
    source, secrets = template
    ws, out = _copy(source, tmp_path / "ws"), tmp_path / "out"
    started = time.time() - 1
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(owner=owner, name=name, k=k, after=after, passphrase=PASSPHRASE,
                                    period=JAN, now=NOW), encoding="utf-8")  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(driver), str(ws.root), str(out)], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    temp_dirs = {Path(tempfile.gettempdir()), Path("/dev/shm"), Path("/var/tmp")}
    for folder in temp_dirs:
        assert scan(folder, secrets, newer_than=started, skip=tmp_path.parent) == [], folder
    assert not [p for p in Path("/dev/shm").glob(".audit-*") if p.stat().st_mtime >= started]
    assert scan(ws.root, secrets) == []

    rerun = batch.run_batch(open_workspace(ws.root, PASSPHRASE), "textile", JAN, out_dir=out, now=NOW)
    assert [o.released for o in rerun.outcomes] == [True] or "already received" in rerun.outcomes[0].reason
    assert scan(ws.root, secrets) == [] and leftovers(ws.root) == []


def test_the_next_command_removes_what_a_kill_left(template, tmp_path):
    """A temporary file in secretariat/ (ciphertext at most) and a legacy /dev/shm scratch folder of ours."""
    ws = _copy(template[0], tmp_path / "ws")
    stray = ws.secretariat_dir / "textile" / ".audit.html.sealed.x1y2.tmp"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"")
    scratch = None
    if Path("/dev/shm").is_dir():
        scratch = Path(tempfile.mkdtemp(prefix=".audit-", dir="/dev/shm"))
        (scratch / "audit.html").write_text("true values", encoding="utf-8")
    with ws.session(NOW):
        pass
    assert not stray.exists() and (scratch is None or not scratch.exists())
