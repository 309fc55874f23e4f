"""One textile period of the bundled sample end to end, as `make demo` does it: `python -m bench.e2e_textile`.

Creates a workspace in a temporary folder, registers the sample's textile companies, seals their files for
2025-01 (the companies' side), runs the intake and the committee batch. The orchestrator times the whole
child process, start-up and imports included; this module reports its phases.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

_started = time.perf_counter()

from aggregator import batch  # noqa: E402
from aggregator.demo import (  # noqa: E402
    DEMO_PASSPHRASE,
    DEMO_SCRYPT_N,
    PROTOCOLS,
    RELEASE_DAY,
    load_companies,
    register_companies,
    seal_period,
    sealed_at,
)
from aggregator.intake import run_intake  # noqa: E402
from aggregator.workspace import create_workspace  # noqa: E402
from bench.stages import MARKER  # noqa: E402

PERIOD = "2025-01"


def run(root: Path) -> dict:
    phases: dict[str, float] = {"imports": time.perf_counter() - _started}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        phases[name] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    workspace = create_workspace(root / "ws", DEMO_PASSPHRASE, [PROTOCOLS["textile"]], scrypt_n=DEMO_SCRYPT_N)
    companies = [c for c in load_companies() if c.covenant == "textile"]
    register_companies(workspace, companies)
    lap("workspace + registry")
    inbox = root / "inbox"
    inbox.mkdir()
    files = seal_period(workspace, {c.company_id: c for c in companies}, "textile", PERIOD, inbox)
    lap("seal (companies' side)")
    intake = run_intake(workspace, inbox, now=sealed_at(PERIOD, day=28), expected_period=PERIOD)
    lap("intake")
    report = batch.run_batch(
        workspace, "textile", PERIOD, out_dir=root / "out", now=RELEASE_DAY, audiences=["monitoring_committee"]
    )
    lap("batch")
    released = [o for o in report.outcomes if o.released]
    return {
        "companies": len(companies),
        "files": files,
        "accepted": intake.count("accepted"),
        "released": len(released),
        "cells": sum(o.summary.get("cells", 0) for o in released),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "not_released": [f"{o.audience_id}: {o.reason.splitlines()[0]}" for o in report.outcomes if not o.released],
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="imvo-e2e-") as tmp:
        result = run(Path(tmp))
    print(MARKER + json.dumps(result), flush=True)
    return 0 if result["released"] else 1


if __name__ == "__main__":
    sys.exit(main())
