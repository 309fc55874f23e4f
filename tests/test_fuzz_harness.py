"""`make fuzz` keeps working: every target (envelopes; CSV, XLSX, ODS and Parquet readers) runs a few cases
and reports no crash. The long run is `make fuzz` (3000 cases per target)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_fuzz_target_runs_and_finds_no_crash_in_a_short_run():
    done = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "fuzz_inputs.py"), "--examples", "8"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for target in ("generated XLSX", "mutated XLSX", "generated ODS", "mutated ODS", "generated Parquet"):
        assert any(target in line and "no crash" in line for line in lines), target
    assert lines[-1].endswith(" 0 crashes")
