"""Crash safety: an interrupted intake or batch, run again, ends exactly where an uninterrupted run ends.

Every case copies one prepared workspace (same secretariat keys, so the same sealed bytes open in each copy),
interrupts a run at one step (a RuntimeError injected into one internal function, or a real `kill -9` in a
child process), runs the same command again and compares the workspace with a reference copy that ran once
without interruption. The lock keeps a second command out while one is working.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from aggregator import batch, intake
from aggregator import log as action_log
from aggregator.errors import AggregatorError
from aggregator.intake import files, recording
from aggregator.registry import Registry
from aggregator.release import writer
from aggregator.workspace import Workspace, create_workspace, open_workspace
from imvo_submit.company import seal_submission
from imvo_submit.envelope import keys
from support.lab import PROTOCOL

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data" / "submissions" / "textile" / "2025-01"
PASSPHRASE = "correct horse battery staple"
REGISTERED = "2025-01-02T09:00:00Z"
NOW = "2025-02-28T09:00:00Z"
BATCH_NOW = "2026-01-01T00:00:00Z"
JAN = "2025-01"


def open_copy(template: Path, target: Path) -> Workspace:
    """A byte-for-byte copy of a prepared workspace (its keys too), opened."""
    shutil.copytree(template, target)
    return open_workspace(target, PASSPHRASE)


def fail_on_call(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, k: int, *, after: bool = False) -> None:
    """Make owner.name raise RuntimeError on its k-th call (before doing its work, or just after it)."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def injected(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == k and not after:
            raise RuntimeError(f"injected failure in {name} (call {k})")
        result = real(*args, **kwargs)
        if calls["n"] == k:
            raise RuntimeError(f"injected failure after {name} (call {k})")
        return result

    monkeypatch.setattr(owner, name, injected)


def tree(folder: Path) -> dict[str, str]:
    """Every file below `folder` (hidden ones included) -> sha256 of its bytes."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------------------------ intake


@dataclass(frozen=True)
class IntakeKit:
    template: Path  # a workspace with three registered companies and nothing received
    sealed: Path  # the sealed files every case drops in its inbox


def _seal(ws: Workspace, company_keys: dict, staging: Path, source: Path, company: str, created: str, name: str):
    sealed = seal_submission(
        source,
        staging,
        company_id=company,
        covenant="textile",
        period=JAN,
        recipient_key=keys.load_public_key(ws.keys_dir / "secretariat_encryption.pub"),
        signing_key=company_keys[company],
        created=created,
    )
    return sealed.rename(staging / name)


@pytest.fixture(scope="module")
def intake_kit(tmp_path_factory: pytest.TempPathFactory) -> IntakeKit:
    """Six files, sorted by name: T001 valid, its exact copy, T002 valid, a non-envelope, a forgery (T001's
    name, T002's key) and T001's later correction, which supersedes the first file."""
    root = tmp_path_factory.mktemp("intake-kit")
    patch = pytest.MonkeyPatch()
    try:
        ws = create_workspace(root / "ws", PASSPHRASE, [ROOT / "protocols" / "textile.toml"])
        company_keys = {c: keys.generate_signing_key() for c in ("T001", "T002", "T003")}
        with ws.open_store() as store:
            for company, key in company_keys.items():
                raw = keys.public_key_bytes(key.public_key())
                Registry(store).add(company, f"Company {company}", ["textile"], raw, now=REGISTERED)
    finally:
        patch.undo()
    sealed = root / "sealed"
    sealed.mkdir()
    materials = SAMPLES / "T001__materials.csv"
    first = _seal(ws, company_keys, sealed, materials, "T001", "2025-02-10T09:00:00Z", "a_t001.imvo")
    shutil.copyfile(first, sealed / "b_t001_copy.imvo")
    _seal(ws, company_keys, sealed, SAMPLES / "T002__materials.csv", "T002", "2025-02-10T09:00:00Z", "c_t002.imvo")
    (sealed / "d_junk.imvo").write_bytes(b"this is not a sealed submission\n")
    forged_keys = {"T001": company_keys["T002"]}
    _seal(ws, forged_keys, sealed, materials, "T001", "2025-02-11T09:00:00Z", "e_forged.imvo")
    corrected = root / "T001__materials.csv"
    text = materials.read_text(encoding="utf-8")
    assert "1082606.4" in text
    corrected.write_text(text.replace("1082606.4", "1082000.0", 1), encoding="utf-8")
    _seal(ws, company_keys, sealed, corrected, "T001", "2025-02-20T09:00:00Z", "f_t001_correction.imvo")
    return IntakeKit(ws.root, sealed)


def fill_inbox(kit: IntakeKit, inbox: Path) -> None:
    inbox.mkdir()
    for path in sorted(kit.sealed.iterdir()):
        shutil.copyfile(path, inbox / path.name)


def receipt_view(receipt: bytes | None) -> dict | None:
    """A receipt without the log head it carries: the head at the start of the intake run that wrote it, so a
    rerun after an interruption writes a later one (each is checked as an anchor of the log instead)."""
    if receipt is None:
        return None
    body = json.loads(bytes(receipt))["receipt"]
    return {k: v for k, v in body.items() if k != "log_head"}


def intake_state(ws: Workspace, inbox: Path) -> dict:
    """What must match an uninterrupted run: records, rows, filed files, receipts, inbox and the log."""
    with ws.open_store() as store:
        records = store.con.execute(
            "SELECT submission_id, original_name, state, reason, raw_path, superseded_by, receipt "
            "FROM submissions ORDER BY submission_id"
        ).fetchall()
        tables = [
            r[0]
            for r in store.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'rows_%' ORDER BY 1"
            ).fetchall()
        ]
        rows = {t: store.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        accepted_rows = None
        if "rows_textile_materials" in rows:
            accepted_rows = store.con.execute(
                "SELECT count(*) FROM rows_textile_materials JOIN submissions USING (submission_id) "
                "WHERE state = 'accepted'"
            ).fetchone()[0]
    receipts = {p.relative_to(ws.outbox_dir).as_posix(): p.read_bytes() for p in ws.outbox_dir.rglob("*.receipt")}
    anchors = {action_log.LogHead.parse(json.loads(r)["receipt"]["log_head"]) for r in receipts.values()}
    head, problems = action_log.verify_workspace_log(ws, anchors)
    return {
        "records": [(*r[:-1], receipt_view(r[-1])) for r in records],
        "rows": rows,
        "accepted_rows": accepted_rows,
        "received": tree(ws.received_dir),
        "outbox": {name: receipt_view(data) for name, data in sorted(receipts.items())},
        "inbox": sorted(p.name for p in inbox.iterdir()),
        "log_head": str(head),
        "log_problems": problems,
    }


@pytest.fixture(scope="module")
def intake_reference(intake_kit: IntakeKit, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("intake-reference")
    patch = pytest.MonkeyPatch()
    try:
        ws = open_copy(intake_kit.template, root / "ws")
        fill_inbox(intake_kit, root / "inbox")
        report = intake.run_intake(ws, root / "inbox", now=NOW)
        state = intake_state(ws, root / "inbox")
    finally:
        patch.undo()
    outcomes = {o.file: o.state for o in report.outcomes}
    # the kit covers every path: accepted, an exact copy, a quarantine and a correction that supersedes
    assert outcomes == {
        "a_t001.imvo": "accepted",
        "b_t001_copy.imvo": "duplicate",
        "c_t002.imvo": "accepted",
        "d_junk.imvo": "quarantined",
        "e_forged.imvo": "quarantined",
        "f_t001_correction.imvo": "accepted",
    }
    assert sorted(r[2] for r in state["records"]) == [
        "accepted",
        "accepted",
        "duplicate",
        "quarantined",
        "quarantined",
        "superseded",
    ]
    assert state["inbox"] == [] and state["log_problems"] == []
    return state


# (function owner, function name, k-th call, fail after the call instead of before it, files per transaction).
# With the default COMMIT_EVERY the kit's first five files share one transaction; the correction, whose
# predecessor is among them, starts a second one after the first is committed and filed away.
# With 2 files per transaction: (a, b), (c, d), (e, f).
INTAKE_FAILURES = [
    (recording, "commit", 1, False, None),
    (recording, "commit", 1, True, None),  # five files committed, nothing delivered or moved
    (recording, "commit", 2, False, None),  # the first five filed away, the correction's transaction rolled back
    (recording, "commit", 2, True, None),  # the correction committed; the superseded file not moved yet
    (recording, "commit", 2, True, 2),  # two transactions committed, the second not yet filed away
    (recording, "commit", 3, False, 2),  # the last transaction (the forgery and the correction) rolled back
    (recording, "record", 3, True, None),  # inside the first transaction, after three records went in
    (recording, "record", 2, True, 2),  # inside the first of several transactions
    (recording, "insert_rows", 1, True, None),  # inside the first transaction, after its rows went in
    (recording, "insert_rows", 2, True, None),  # inside the correction's transaction, after its rows went in
    (recording, "supersede", 1, True, None),  # inside the correction's transaction
    (action_log, "append_many", 1, True, None),  # the log entries written, not committed
    (action_log, "append_many", 2, False, 2),
    (files, "write_receipt", 1, False, None),
    (files, "write_receipt", 4, True, None),  # the last receipt: the copy and the forgery get none
    (files, "write_receipt", 3, False, 2),
    (files, "file_away", 1, False, None),
    (files, "file_away", 3, True, None),
    (files, "file_away", 6, False, None),  # the superseded file's move (it comes before the correction's own)
    (files, "file_away", 4, False, 2),  # the second transaction's last file
    (files, "finish_moves", 2, False, None),
    (action_log, "save_checkpoint", 1, False, None),  # everything done, the checkpoint not moved
]


@pytest.mark.parametrize(
    ("owner", "name", "k", "after", "every"),
    INTAKE_FAILURES,
    ids=[f"{n}-{k}-{'after' if a else 'before'}{f'-every{e}' if e else ''}" for _, n, k, a, e in INTAKE_FAILURES],
)
def test_an_intake_interrupted_at_any_step_ends_like_an_uninterrupted_one(
    intake_kit: IntakeKit,
    intake_reference: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    owner: object,
    name: str,
    k: int,
    after: bool,
    every: int | None,
):
    ws = open_copy(intake_kit.template, tmp_path / "ws")
    fill_inbox(intake_kit, tmp_path / "inbox")
    with monkeypatch.context() as patch:
        if every is not None:
            patch.setattr(recording, "COMMIT_EVERY", every)
        fail_on_call(patch, owner, name, k, after=after)
        with pytest.raises(RuntimeError, match="injected failure"):
            intake.run_intake(ws, tmp_path / "inbox", now=NOW)
    intake.run_intake(ws, tmp_path / "inbox", now=NOW)
    assert intake_state(ws, tmp_path / "inbox") == intake_reference


@pytest.mark.parametrize(("every", "rows"), [(1, None), (2, None), (5, None), (None, 1)])
def test_an_intake_ends_the_same_whatever_the_number_of_files_per_transaction(
    intake_kit: IntakeKit,
    intake_reference: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    every: int | None,
    rows: int | None,
):
    ws = open_copy(intake_kit.template, tmp_path / "ws")
    fill_inbox(intake_kit, tmp_path / "inbox")
    if every is not None:
        monkeypatch.setattr(recording, "COMMIT_EVERY", every)
    if rows is not None:  # every accepted file reaches the row budget: it commits with those before it
        monkeypatch.setattr(recording, "COMMIT_ROWS", rows)
    intake.run_intake(ws, tmp_path / "inbox", now=NOW)
    assert intake_state(ws, tmp_path / "inbox") == intake_reference


def kill_driver(modules: str, owners: str, run: str, **values) -> str:
    """A script that opens the workspace, SIGKILLs itself on the k-th call of owner.name, and runs `run`."""
    template = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        f"{modules}\n"
        f'owner = {{{{{owners}}}}}["{{owner}}"]\n'
        'real = getattr(owner, "{name}")\n'
        "calls = [0]\n"
        "def killing(*args, **kwargs):\n"
        "    calls[0] += 1\n"
        "    if calls[0] == {k}:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(*args, **kwargs)\n"
        'setattr(owner, "{name}", killing)\n'
        'ws = workspace.open_workspace(Path(sys.argv[1]), "{passphrase}")\n'
        f"{run}\n"
    )
    return template.format(passphrase=PASSPHRASE, **values)


def run_killed(tmp_path: Path, script: str, *args: Path) -> None:
    """Run `script` in a child python that kills itself with SIGKILL; assert that it really died that way."""
    driver = tmp_path / "driver.py"
    driver.write_text(script, encoding="utf-8")
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(driver), *map(str, args)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


@pytest.mark.parametrize(
    ("owner", "name", "k"),
    [
        ("files", "file_away", 3),  # after the third file's commit, before its move
        ("log", "append_many", 1),  # inside the first transaction: rows, records and log in, not committed
    ],
    ids=["between-commit-and-move", "inside-a-transaction"],
)
def test_an_intake_killed_with_sigkill_ends_like_an_uninterrupted_one(
    intake_kit: IntakeKit, intake_reference: dict, tmp_path: Path, owner: str, name: str, k: int
):
    ws = open_copy(intake_kit.template, tmp_path / "ws")
    fill_inbox(intake_kit, tmp_path / "inbox")
    script = kill_driver(
        "from aggregator import intake, workspace\nfrom aggregator import log as action_log\n"
        "from aggregator.intake import files",
        '"files": files, "log": action_log',
        f"intake.run_intake(ws, Path(sys.argv[2]), now={NOW!r})",
        owner=owner,
        name=name,
        k=k,
    )
    run_killed(tmp_path, script, ws.root, tmp_path / "inbox")
    assert len(list((tmp_path / "inbox").iterdir())) > 3  # it really stopped halfway
    intake.run_intake(ws, tmp_path / "inbox", now=NOW)
    assert intake_state(ws, tmp_path / "inbox") == intake_reference


# ------------------------------------------------------------------------------------------------- batch

# One materials table, one audience (the history tests' protocol), four balanced companies.

FOUR_COMPANIES = {
    "A": {"cotton": 40, "polyester": 30, "wool": 20},
    "B": {"cotton": 35, "polyester": 30, "wool": 25},
    "C": {"cotton": 30, "polyester": 35, "wool": 30},
    "D": {"cotton": 30, "polyester": 25, "wool": 20},
}


def submit(ws: Workspace, company: str, weights: dict[str, float], *, supersede: bool = False) -> None:
    """Store an accepted submission directly (intake is tested above); `supersede` replaces the company's one."""
    with ws.open_store() as store:
        con = store.con
        (n,) = con.execute("SELECT count(*) FROM submissions").fetchone()
        sid = f"s{n + 1}"
        if supersede:
            con.execute("UPDATE submissions SET state = 'superseded' WHERE company_id = ?", [company])
        con.execute(
            "INSERT INTO submissions (submission_id, company_id, covenant, template, period, received_at, "
            "original_name, state, reason, plaintext_blake3, raw_path) VALUES (?, ?, 'textile', 'materials', ?, "
            "'t', 'f', 'accepted', 'ok', ?, 'r')",
            [sid, company, JAN, hashlib.sha256(sid.encode()).hexdigest()],
        )
        for i, (material, weight) in enumerate(sorted(weights.items())):
            con.execute(
                "INSERT INTO rows_textile_materials VALUES (?, ?, ?, ?, ?, 'none', ?)",
                [sid, company, JAN, i, material, weight],
            )


@pytest.fixture(scope="module")
def batch_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batch-kit")
    (root / "protocol.toml").write_text(PROTOCOL, encoding="utf-8")
    patch = pytest.MonkeyPatch()
    try:
        ws = create_workspace(root / "ws", PASSPHRASE, [root / "protocol.toml"])
        with ws.open_store() as store:
            store.ensure_rows_table(
                "textile", "materials", {"material": "VARCHAR", "certification": "VARCHAR", "weight_kg": "DOUBLE"}
            )
            for company in (*FOUR_COMPANIES, "L"):
                store.con.execute(
                    "INSERT INTO companies VALUES (?, ?, ?, ['textile'], 'active', NULL, 'x')",
                    [company, company, company],
                )
        for company, weights in FOUR_COMPANIES.items():
            submit(ws, company, weights)
    finally:
        patch.undo()
    return ws.root


def release_once(ws: Workspace, out: Path, *, revision: bool = False) -> batch.BatchReport:
    return batch.run_batch(ws, "textile", JAN, out_dir=out, now=BATCH_NOW, revision=revision)


def revise(ws: Workspace, out: Path) -> batch.BatchReport:
    """A late correction of company A, released as a revision of January."""
    submit(ws, "A", {"cotton": 45, "polyester": 30, "wool": 20}, supersede=True)
    return release_once(ws, out, revision=True)


def batch_state(ws: Workspace, out: Path) -> dict:
    with ws.open_store() as store:
        releases = store.con.execute("SELECT release_id, is_revision FROM releases ORDER BY release_id").fetchall()
        cells = store.con.execute(
            "SELECT release_id, table_id, component, cell_key, value, status FROM released_cells ORDER BY ALL"
        ).fetchall()
    head, problems = action_log.verify_workspace_log(ws)
    return {
        "releases": releases,
        "cells": cells,
        "out": tree(out),
        "secretariat": tree(ws.secretariat_dir),
        "log_head": str(head),
        "log_problems": problems,
    }


@pytest.fixture(scope="module")
def batch_reference(batch_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The state after one uninterrupted release, and after that release and its uninterrupted revision."""
    root = tmp_path_factory.mktemp("batch-reference")
    patch = pytest.MonkeyPatch()
    try:
        ws = open_copy(batch_template, root / "ws")
        assert [o.released for o in release_once(ws, root / "out").outcomes] == [True]
        first = batch_state(ws, root / "out")
        assert [o.released for o in revise(ws, root / "out").outcomes] == [True]
        revised = batch_state(ws, root / "out")
    finally:
        patch.undo()
    assert first["releases"] == [("textile-2025-01-committee-r1", False)] and first["log_problems"] == []
    assert "textile/2025-01/committee/manifest.json" in first["out"]
    assert "textile/2025-01/committee.superseded-1/manifest.json" in revised["out"]
    return {"first": first, "revised": revised}


def no_partial_folders(out: Path) -> bool:
    return not [p for p in out.rglob(".*partial*")] if out.exists() else True


BATCH_FAILURES: list[tuple[object, str, int, bool]] = [
    (batch, "_record_ledger", 1, False),  # the files are written, the ledger never heard of them
    (writer, "_write_one", 3, False),  # in the middle of writing the committee files
    (writer, "manifest_bytes", 1, False),  # every file written, the manifest not
    (writer, "_swap_into_place", 1, False),
    (batch, "render_audit_files", 1, False),  # the committee files in place, the audit report not
    (action_log, "append", 1, False),  # inside the ledger's transaction (its release.write entry)
    (batch, "_record_ledger", 1, True),  # recorded, the batch.run entry not yet logged
    (action_log, "append", 2, False),  # the batch.run entry itself
    (action_log, "save_checkpoint", 1, False),  # recorded and logged, the checkpoint not moved
]
BATCH_IDS = [f"{n}-{k}-{'after' if a else 'before'}" for _, n, k, a in BATCH_FAILURES]
RECORDED_BEFORE_THE_FAILURE = {"_record_ledger-1-after", "append-2-before", "save_checkpoint-1-before"}


@pytest.mark.parametrize(("owner", "name", "k", "after"), BATCH_FAILURES, ids=BATCH_IDS)
def test_a_batch_interrupted_at_any_step_ends_like_an_uninterrupted_one(
    batch_template: Path,
    batch_reference: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    owner: object,
    name: str,
    k: int,
    after: bool,
):
    ws = open_copy(batch_template, tmp_path / "ws")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        fail_on_call(patch, owner, name, k, after=after)
        with pytest.raises(RuntimeError, match="injected failure"):
            release_once(ws, out)
    assert no_partial_folders(out)
    report = release_once(ws, out)
    first, state = batch_reference["first"], batch_state(ws, out)
    if f"{name}-{k}-{'after' if after else 'before'}" in RECORDED_BEFORE_THE_FAILURE:
        # The release went out before the interruption: the rerun never releases it twice and says why. Only
        # the log differs from an uninterrupted run (the rerun's batch.run entry lists it as refused).
        assert not report.outcomes[0].released and "already received" in report.outcomes[0].reason
        assert (state["releases"], state["cells"]) == (first["releases"], first["cells"])
        assert (state["out"], state["secretariat"]) == (first["out"], first["secretariat"])
        assert state["log_problems"] == []
    else:
        assert [(o.released, o.reason) for o in report.outcomes] == [(True, "released")]
        assert state == first


@pytest.mark.parametrize(("owner", "name"), [(batch, "_record_ledger"), (writer, "_write_one")])
def test_an_interrupted_revision_ends_like_an_uninterrupted_one(
    batch_template: Path, batch_reference: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner, name
):
    ws = open_copy(batch_template, tmp_path / "ws")
    out = tmp_path / "out"
    release_once(ws, out)
    with monkeypatch.context() as patch:
        fail_on_call(patch, owner, name, 1)
        with pytest.raises(RuntimeError, match="injected failure"):
            revise(ws, out)
    report = release_once(ws, out, revision=True)
    assert [(o.released, o.reason) for o in report.outcomes] == [(True, "released")]
    assert batch_state(ws, out) == batch_reference["revised"]


@pytest.mark.parametrize(
    ("owner", "name", "k", "left_behind"),
    [
        ("batch", "_record_ledger", 1, "committee/manifest.json"),  # written, never recorded
        ("writer", "_write_one", 3, ".committee.partial-*"),  # a hidden staging folder the writer never removed
    ],
    ids=["before-the-ledger", "while-writing"],
)
def test_a_batch_killed_with_sigkill_ends_like_an_uninterrupted_one(
    batch_template: Path, batch_reference: dict, tmp_path: Path, owner: str, name: str, k: int, left_behind: str
):
    ws = open_copy(batch_template, tmp_path / "ws")
    out = tmp_path / "out"
    script = kill_driver(
        "from aggregator import batch, workspace\nfrom aggregator.release import writer",
        '"batch": batch, "writer": writer',
        f"batch.run_batch(ws, 'textile', {JAN!r}, out_dir=Path(sys.argv[2]), now={BATCH_NOW!r})",
        owner=owner,
        name=name,
        k=k,
    )
    run_killed(tmp_path, script, ws.root, out)
    assert list((out / "textile" / JAN).glob(left_behind))
    report = release_once(ws, out)
    assert [(o.released, o.reason) for o in report.outcomes] == [(True, "released")]
    assert batch_state(ws, out) == batch_reference["first"]


def test_a_recorded_release_is_never_removed_by_a_rerun(batch_template: Path, tmp_path: Path):
    ws = open_copy(batch_template, tmp_path / "ws")
    out = tmp_path / "out"
    release_once(ws, out)
    before = tree(out)
    report = release_once(ws, out)
    assert not report.outcomes[0].released and "--revision" in report.outcomes[0].reason
    assert tree(out) == before


# -------------------------------------------------------------------------------------------------- lock


@dataclass
class HeldLock:
    release: Callable[[], None]


@pytest.fixture
def hold_lock():
    """Hold a workspace's lock in another thread (flock locks are per open file, so this blocks us too)."""
    threads: list[tuple[threading.Thread, threading.Event]] = []

    def hold(ws: Workspace) -> None:
        held, stop = threading.Event(), threading.Event()

        def holder() -> None:
            with ws.locked():
                held.set()
                stop.wait(30)

        thread = threading.Thread(target=holder, daemon=True)
        thread.start()
        assert held.wait(10)
        threads.append((thread, stop))

    yield hold
    for thread, stop in threads:
        stop.set()
        thread.join(10)


def test_a_second_intake_refuses_while_another_command_works(intake_kit: IntakeKit, tmp_path: Path, hold_lock):
    ws = open_copy(intake_kit.template, tmp_path / "ws")
    fill_inbox(intake_kit, tmp_path / "inbox")
    before = intake_state(ws, tmp_path / "inbox")
    hold_lock(ws)
    with pytest.raises(AggregatorError, match="another aggregator command is working on") as refused:
        intake.run_intake(ws, tmp_path / "inbox", now=NOW)
    assert refused.value.hint
    assert intake_state(ws, tmp_path / "inbox") == before


def test_a_second_batch_refuses_while_another_command_works(batch_template: Path, tmp_path: Path, hold_lock):
    ws = open_copy(batch_template, tmp_path / "ws")
    out = tmp_path / "out"
    before = batch_state(ws, out)
    hold_lock(ws)
    with pytest.raises(AggregatorError, match="another aggregator command is working on"):
        release_once(ws, out)
    assert batch_state(ws, out) == before
    assert not out.exists()


def test_the_lock_is_held_by_another_process_too(batch_template: Path, tmp_path: Path):
    ws = open_copy(batch_template, tmp_path / "ws")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from pathlib import Path
                from aggregator.workspace import Workspace
                ws = Workspace(Path(sys.argv[1]), "unused", [], b"")
                with ws.locked():
                    print("held", flush=True)
                    sys.stdin.readline()
                """
            ),
            str(ws.root),
        ],
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AggregatorError, match="another aggregator command is working on"):
            release_once(ws, tmp_path / "out")
    finally:
        holder.communicate("\n", timeout=30)
    # once the other command is done, the batch runs
    assert [o.released for o in release_once(ws, tmp_path / "out").outcomes] == [True]
