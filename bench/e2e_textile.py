"""One textile period of the bundled sample end to end, as `make demo` does it: `python -m bench.e2e_textile`.

What "end to end" counts (the 10-second target of issue #8): the secretariat's monthly run, that is a fresh
Python interpreter that starts, imports the engine, opens the workspace (key derivation included), takes in the
inbox (verify, decrypt, validate, store, receipts) and runs the committee batch (aggregate, protect, audit,
write the release). It is timed from outside, from spawning that interpreter to its exit: `monthly_seconds`.

Not counted, but reported: creating the workspace and registering the 64 companies (done once, not monthly)
and sealing the 256 files, which each company does on its own computer (`seal_seconds`, all companies in a row).

Every phase is given as wall-clock seconds and as CPU seconds (`cpu`): the benchmark machine is shared, and
CPU time shows what the code costs when other work slows the clock.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_started = time.perf_counter()

from aggregator import batch  # noqa: E402
from aggregator.demo import (  # noqa: E402
    DEMO_PASSPHRASE,
    PROTOCOLS,
    RELEASE_DAY,
    load_companies,
    register_companies,
    seal_period,
    sealed_at,
)
from aggregator.intake import run_intake  # noqa: E402
from aggregator.workspace import create_workspace, open_workspace  # noqa: E402
from bench.stages import MARKER  # noqa: E402

PERIOD = "2025-01"
MONTHLY_FLAG = "--monthly"
MONTHLY_MARKER = "MONTHLY-RESULT "
ROOT = Path(__file__).resolve().parent.parent


class _Laps:
    """Wall and CPU seconds per named phase, in the order they ran."""

    def __init__(self, first: str, since: float):
        self.wall: dict[str, float] = {first: round(time.perf_counter() - since, 3)}
        self.cpu: dict[str, float] = {first: round(time.process_time(), 3)}  # CPU since the process started
        self._clock, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.wall[name] = round(now - self._clock, 3)
        self.cpu[name] = round(cpu - self._cpu, 3)
        self._clock, self._cpu = now, cpu


def monthly(root: Path) -> dict:
    """The secretariat's run (in the child interpreter): open the workspace, intake, batch."""
    laps = _Laps("start-up + imports", _started)
    workspace = open_workspace(root / "ws", DEMO_PASSPHRASE)
    workspace.store_key()  # the key derivation every command pays, counted on its own
    laps.lap("open workspace")
    intake = run_intake(workspace, root / "inbox", now=sealed_at(PERIOD, day=28), expected_period=PERIOD)
    laps.lap("intake")
    report = batch.run_batch(
        workspace, "textile", PERIOD, out_dir=root / "out", now=RELEASE_DAY, audiences=["monitoring_committee"]
    )
    laps.lap("batch")
    released = [o for o in report.outcomes if o.released]
    return {
        "accepted": intake.count("accepted"),
        "released": len(released),
        "cells": sum(o.summary.get("cells", 0) for o in released),
        "phases": laps.wall,
        "cpu": laps.cpu,
        "not_released": [f"{o.audience_id}: {o.reason.splitlines()[0]}" for o in report.outcomes if not o.released],
    }


def _run_monthly_child(root: Path) -> tuple[float, float, dict]:
    """(wall seconds from spawn to exit, the child's CPU seconds, its result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.e2e_textile", MONTHLY_FLAG, str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MONTHLY_MARKER)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError("the monthly run failed: " + (proc.stderr.strip().splitlines() or ["no output"])[-1])
    return wall, cpu, json.loads(lines[-1][len(MONTHLY_MARKER) :])


def run(root: Path) -> dict:
    laps = _Laps("imports", _started)
    workspace = create_workspace(root / "ws", DEMO_PASSPHRASE, [PROTOCOLS["textile"]])
    companies = [c for c in load_companies() if c.covenant == "textile"]
    register_companies(workspace, companies)
    laps.lap("workspace + registry")
    inbox = root / "inbox"
    inbox.mkdir()
    files = seal_period(workspace, {c.company_id: c for c in companies}, "textile", PERIOD, inbox)
    laps.lap("seal (companies' side)")
    wall, cpu, result = _run_monthly_child(root)
    return {
        "companies": len(companies),
        "files": files,
        "counted": "monthly_seconds: a fresh interpreter's start-up, imports, workspace opening, intake and batch",
        "monthly_seconds": round(wall, 3),
        "monthly_cpu_seconds": round(cpu, 3),
        "seal_seconds": laps.wall["seal (companies' side)"],
        "setup_seconds": laps.wall["workspace + registry"],
        **result,
        "preparation": {"phases": laps.wall, "cpu": laps.cpu},
    }


def main(argv: list[str]) -> int:
    if argv[:1] == [MONTHLY_FLAG]:
        print(MONTHLY_MARKER + json.dumps(monthly(Path(argv[1]))), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="imvo-e2e-") as tmp:
        result = run(Path(tmp))
    print(MARKER + json.dumps(result), flush=True)
    return 0 if result["released"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
