"""No file stops the secretariat: each is read and validated in a worker process with memory and time limits.

Each test drops a file built to break one limit next to a valid one: the first ends in quarantine with a plain
reason, the second is accepted, and the intake returns normally.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aggregator import intake as intake_mod
from aggregator.intake import lookahead as lookahead_mod
from aggregator.intake import worker
from imvo_submit.validation import schema
from support.intake_world import MATERIALS, World, build_world
from support.workbooks import xlsx

ROOT = Path(__file__).resolve().parent.parent
HEADER = "facility_id,country,facility_type,tier,workers_band,order_volume_pieces,order_value_eur\n"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


def one_cell_workbook(corner: str) -> bytes:
    """A 1.5 KB workbook: a header cell at A1 and one value at `corner` (the reader sizes its grid by it)."""
    sheet = (
        b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>country</t></is></c></row>'
        b'<row r="1048576"><c r="' + corner.encode() + b'"><v>1</v></c></row></sheetData></worksheet>'
    )
    return xlsx([sheet])


@pytest.fixture(scope="module")
def million_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid production-locations file of a million rows (42 MB): its check needs a few hundred MB."""
    path = tmp_path_factory.mktemp("big") / "locations.csv"
    rows = "".join(f"F{i:09d},BD,cut_make_trim,1,1-50,{i % 1000},{i % 777}.5\n" for i in range(1_000_000))
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


def seal_bytes(world: World, tmp_path: Path, data: bytes, name: str, company: str = "T002") -> Path:
    source = tmp_path / f"{name}.src"
    source.write_bytes(data)
    return world.seal(source, company=company, template="living_wage", check=False, name=name)


def states(report) -> dict[str, tuple[str, str]]:
    return {o.file: (o.state, o.reason) for o in report.outcomes}


def test_a_workbook_whose_one_cell_sits_at_xfd1048576_costs_one_file_not_the_intake(world: World, tmp_path: Path):
    # Before: the reader asked for 512 GiB and the intake process aborted, every run again, naming no file.
    # The intake runs in a child process here, so that the old behaviour fails this test instead of pytest.
    seal_bytes(world, tmp_path, one_cell_workbook("XFD1048576"), "a_bomb.imvo")
    world.seal(MATERIALS, company="T001", name="b_valid.imvo")
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from aggregator import workspace
        from imvo_submit import passphrase
        from aggregator.intake import run_intake
        passphrase.weaken_for_tests(2**10)  # as tests/conftest.py: the workspace's keys were made at this cost
        ws = workspace.open_workspace(Path({str(world.ws.root)!r}), {world.ws.passphrase!r})
        report = run_intake(ws, Path({str(world.inbox)!r}), now="2025-02-28T09:00:00Z")
        print(json.dumps({{o.file: [o.state, o.reason] for o in report.outcomes}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["b_valid.imvo"][0] == "accepted"
    state, reason = outcome["a_bomb.imvo"]
    assert state == "quarantined"
    assert "uses cells up to XFD1048576" in reason and "delete the rows and columns beyond your data" in reason
    assert not list(world.inbox.iterdir())


def test_a_reader_that_aborts_for_want_of_memory_costs_one_file(world: World, tmp_path: Path):
    # 16 columns by a million rows passes the declared-size check (16,777,216 cells) but makes the native
    # reader allocate 512 MB at once; under a 128 MB limit it aborts, and only its file is quarantined.
    seal_bytes(world, tmp_path, one_cell_workbook("P1048576"), "a_abort.imvo")
    world.seal(MATERIALS, company="T001", name="b_valid.imvo")
    limits = worker.Limits(memory_bytes=128 * 1024**2)
    outcome = states(world.intake(limits=limits))
    assert outcome["b_valid.imvo"][0] == "accepted"
    assert outcome["a_abort.imvo"] == ("quarantined", limits.describe(worker.Stop.MEMORY))
    assert "needed more than the 0.125 GB of memory allowed" in outcome["a_abort.imvo"][1]


def test_a_valid_file_that_needs_more_memory_than_allowed_is_quarantined(world: World, million_rows: Path):
    world.seal(million_rows, company="T001", name="a_large.imvo")
    world.seal(MATERIALS, company="T002", name="b_valid.imvo")
    limits = worker.Limits(memory_bytes=64 * 1024**2)
    outcome = states(world.intake(limits=limits))
    assert outcome["a_large.imvo"] == ("quarantined", limits.describe(worker.Stop.MEMORY))
    assert outcome["b_valid.imvo"][0] == "accepted"
    # with the default limits the same file is accepted
    assert worker.Worker().check("textile", "production_locations", million_rows.read_bytes()).ok


def test_a_file_that_takes_longer_than_allowed_is_quarantined_and_logged(world: World, million_rows: Path):
    world.seal(million_rows, company="T001", name="a_slow.imvo")
    world.seal(MATERIALS, company="T002", name="b_valid.imvo")
    # The import time of a fresh checking process does not count; the million rows take over a second even on a
    # fast idle machine (1.5 s was not enough there), the small valid file a small fraction of that.
    limits = worker.Limits(seconds=0.4)
    outcome = states(world.intake(limits=limits))
    assert outcome["a_slow.imvo"] == ("quarantined", "checking the file took longer than 0.4 seconds, so it was "
                                      "stopped; the file is kept for inspection")  # fmt: skip
    assert outcome["b_valid.imvo"][0] == "accepted"
    assert world.record("a_slow.imvo")["state"] == "quarantined"


def test_an_exception_inside_a_check_quarantines_the_file_and_logs_the_traceback(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Without a second interpreter the checks run in this process, where a check can be made to raise.
    monkeypatch.setattr(worker, "_idle", [])
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))

    def broken(values):
        raise KeyError("a check that raises")

    monkeypatch.setattr(schema, "no_duplicates", broken)
    duplicates = b"country,workers_covered,wage_paid_monthly_eur,living_wage_benchmark_eur,benchmark_source\n"
    duplicates += b"BD,5,119.5,256.6,anker\n" * 3
    seal_bytes(world, tmp_path, duplicates, "a_three_duplicates.imvo")
    outcome = states(world.intake())
    assert outcome["a_three_duplicates.imvo"] == ("quarantined", worker.Limits().describe(worker.Stop.INTERNAL))
    assert outcome["a_three_duplicates.imvo"][1].startswith("internal check error")
    with world.ws.open_store() as store:
        (details,) = store.con.execute(
            "SELECT details_json FROM action_log WHERE action = 'intake.decision'"
        ).fetchone()
    assert "KeyError: 'a check that raises'" in json.loads(details)["check_error"]


def test_a_chunk_whose_check_crashes_is_checked_again_file_by_file(world: World, tmp_path: Path, monkeypatch):
    # Small files are checked ahead in chunks; when a chunk's process dies, no file of it is blamed without
    # being checked alone: here the bomb ends in quarantine and its neighbours are accepted.
    monkeypatch.setattr(intake_mod, "AHEAD_FILES", 8)
    seal_bytes(world, tmp_path, one_cell_workbook("P1048576"), "b_abort.imvo")
    world.seal(MATERIALS, company="T001", name="a_valid.imvo")
    world.seal(MATERIALS, company="T003", name="c_valid.imvo")
    outcome = states(world.intake(limits=worker.Limits(memory_bytes=128 * 1024**2)))
    assert [outcome[f][0] for f in ("a_valid.imvo", "b_abort.imvo", "c_valid.imvo")] == [
        "accepted",
        "quarantined",
        "accepted",
    ]


def test_a_file_checked_alone_while_the_next_chunk_is_checked_ahead(world: World, tmp_path: Path, monkeypatch):
    # The first chunk's check crashes, so its files are checked again one by one while the worker still owes
    # the answer for the next chunk: that answer is kept for its turn, and every file gets its own verdict.
    monkeypatch.setattr(lookahead_mod, "AHEAD_FILES", 2)
    world.seal(MATERIALS, company="T001", name="a_valid.imvo")
    seal_bytes(world, tmp_path, one_cell_workbook("P1048576"), "b_abort.imvo")
    world.seal(MATERIALS, company="T003", name="c_valid.imvo")
    world.seal(MATERIALS, company="T002", name="d_valid.imvo")
    outcome = states(world.intake(limits=worker.Limits(memory_bytes=128 * 1024**2)))
    assert [outcome[f][0] for f in ("a_valid.imvo", "b_abort.imvo", "c_valid.imvo", "d_valid.imvo")] == [
        "accepted",
        "quarantined",
        "accepted",
        "accepted",
    ]
