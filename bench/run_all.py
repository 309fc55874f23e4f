"""The benchmark suite: every stage at every scale, each in a fresh child process with a time cap.

Two families of sizes:
- company scales (100, 1,000, 10,000 companies; one textile period from sample_data.generate): seal, open,
  read + validate, load into the store, cell statistics, the whole batch (release_audience) with the time of
  its protection and ledger parts, writing outputs and one audit of the final pattern, then a corrected
  release of the same period (the release history path); also the intake of one sealed file per company and
  template (run_intake, as the secretariat receives them: up to 1,000 companies in quick mode, 10,000 in full);
- start-up: `imvo-submit --help` and `aggregator --help` from spawn to exit, against `python -c pass`;
- a table-size ladder (~100 to ~100,000 cells; bench_suppression's tables and synthetic cell statistics):
  primary rules, secondary suppression per method, the LP lower bound, the audit.
Each stage's floor is measured in the same child on the same data (see bench/stages.py).
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.bench_suppression import TABLES as SUPPRESSION_TABLES
from bench.stages import BATCH_PARTS, CLI_COMMANDS, MARKER

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEED = 20250101
COLUMNS = [
    "run", "mode", "scale", "stage", "size", "size_unit", "seconds", "peak_rss_mb", "growth_mb",
    "floor", "floor_seconds", "ratio", "floor_value", "quality_ratio", "status", "details",
]  # fmt: skip
FLOORS = {
    "seal": "raw ChaCha20-Poly1305 encrypt",
    "open": "raw ChaCha20-Poly1305 decrypt",
    "read + validate": "pyarrow.csv.read_csv",
    "load into store": "plain DuckDB CREATE TABLE into an encrypted file",
    "cell statistics": "per-contributor DuckDB GROUP BY (inner cell x company)",
    "protection": "one audit of the final pattern",
    "ledger": "plain DuckDB CREATE TABLE of the same records into an encrypted file",
    "intake (envelopes)": "raw ChaCha20-Poly1305 decrypt + pyarrow.csv.read_csv of every file",
    **dict.fromkeys(CLI_COMMANDS, "python -c pass"),
}
# an extra rung between bench_suppression's 1,936- and 66,976-cell tables
LADDER_TABLES = sorted(
    [*SUPPRESSION_TABLES, ("3d-20x15x20h", (20, 15, 20), ("h4", None, "h4"), 80, 6.0)],
    key=lambda t: math.prod(t[1]),
)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    mode: str
    scales: tuple[tuple[int, float], ...]  # (companies, rows_scale); rows_scale 14 gives ~1,000 rows/company
    primary_cells: tuple[int, ...]
    tables: tuple[tuple, ...]  # bench_suppression table specs
    methods: tuple[str, ...]
    cap: float  # seconds per stage; a child still running after cap + setup allowance is killed
    optimal_max: int  # tables above this many cells skip the "optimal" method
    intake_max: int = 1_000  # scales up to this many companies also time the intake of their sealed files
    intake_cap: float = 1800.0  # seconds for the intake stage, setup included (writing and sealing 40,000 files)
    series: tuple[int, float, int] = (1_000, 14.0, 12)  # a year of monthly releases: companies, rows_scale, months
    series_cap: float = 7200.0  # seconds for the whole series (one child)


QUICK = Plan(
    mode="quick",
    scales=((100, 1.4), (1000, 1.4)),
    primary_cells=(100, 1_000, 10_000, 100_000),
    tables=tuple(t for t in LADDER_TABLES if math.prod(t[1]) <= 300),
    methods=("fast", "optimal", "auto"),
    cap=60.0,
    optimal_max=2_500,
    series=(100, 1.4, 6),
    series_cap=1800.0,
)
FULL = Plan(
    mode="full",
    scales=((100, 14.0), (1_000, 14.0), (10_000, 14.0)),
    primary_cells=(100, 1_000, 10_000, 100_000, 1_000_000),
    tables=tuple(LADDER_TABLES),
    methods=("fast", "optimal", "auto"),
    cap=180.0,
    optimal_max=12_000,
    intake_max=10_000,
)


def run_job(job: dict, labels: list[str], timeout: float) -> list[dict]:
    """Run one stage in a fresh interpreter; a child past `timeout` is killed and its stages read 'timeout'."""
    cmd = [sys.executable, "-m", "bench.stages", json.dumps(job)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [{"stage": label, "status": f"timeout (> {timeout:.0f} s)"} for label in labels]
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [{"stage": label, "status": f"error: {last[:200]}"} for label in labels]
    return json.loads(lines[-1][len(MARKER) :])


def _company_jobs(prep: dict, data: Path, work: Path, intake: bool) -> list[tuple[dict, list[str]]]:
    base = {"data": str(data), "work": str(work), **prep}
    return [
        *([({**base, "kind": "intake"}, ["intake (envelopes)"])] if intake else []),
        ({**base, "kind": "envelope"}, ["seal", "open"]),
        ({**base, "kind": "read_validate"}, ["read + validate"]),
        ({**base, "kind": "load"}, ["load into store"]),
        ({**base, "kind": "cells"}, ["cell statistics"]),
        ({**base, "kind": "batch"}, [stage for stage, _unit in BATCH_PARTS]),
        ({**base, "kind": "revision"}, ["linked release (revision)"]),
    ]


def run_company_scale(plan: Plan, companies: int, rows_scale: float, tmp: Path, say: Progress) -> list[dict]:
    scale = f"{companies} companies"
    data, work = tmp / f"data-{companies}", tmp / f"work-{companies}"
    work.mkdir(parents=True)
    job = {"kind": "prepare_scale", "data": str(data), "companies": companies, "rows_scale": rows_scale}
    prepared = run_job({**job, "seed": SEED}, ["prepare scale"], 4 * plan.cap)
    if prepared[0].get("status", "ok") != "ok":
        return [{"size_unit": "rows", **prepared[0], "scale": scale}]
    prep = {k: prepared[0][k] for k in ("rows_file", "rows_total")}
    say(f"{scale}: {prep['rows_total']:,} rows ({prep['rows_file']:,} production locations)")
    rows = []
    for stage_job, labels in _company_jobs(prep, data, work, companies <= plan.intake_max):
        cap = plan.intake_cap if stage_job["kind"] == "intake" else plan.cap
        for result in run_job(stage_job, labels, cap + 120):
            rows.append({"size_unit": "rows", **result, "scale": scale})
            say(_line(rows[-1]))
    return rows


def run_table(plan: Plan, spec: tuple, tmp: Path, say: Progress) -> list[dict]:
    name, shape, hier, contributors, mean = spec
    problem = tmp / f"{name}.pkl"
    base = {"problem": str(problem), "table": name, "cap": plan.cap}
    prep = {"kind": "prepare_problem", "shape": list(shape), "hier": list(hier), "contributors": contributors}
    prepared = run_job({**base, **prep, "mean": mean}, ["prepare table"], 4 * plan.cap)
    if "primary" not in prepared[0]:
        return [{**prepared[0], "scale": name}]
    size, rows = prepared[0]["size"], []
    jobs = [({**base, "kind": "lp_bound"}, ["lp lower bound"])]
    for method in plan.methods:
        if method == "optimal" and size > plan.optimal_max:
            rows.append({"stage": "suppression optimal", "size": size, "size_unit": "cells",
                         "status": f"not run (over {plan.optimal_max:,} cells)"})  # fmt: skip
            continue
        jobs.append(({**base, "kind": "suppression", "method": method}, [f"suppression {method}"]))
    jobs.append(({**base, "kind": "audit"}, ["audit"]))
    for job, labels in jobs:
        # the library's own time limit is `cap`; the kill is a backstop for a stage that ignores it
        rows += run_job(job, labels, plan.cap + 120)
        say(_line({**rows[-1], "scale": name}))
    return [{"size": size, "size_unit": "cells", **r, "scale": name} for r in rows]


def run_series(plan: Plan, tmp: Path, say: Progress) -> list[dict]:
    """Monthly releases audited as a series (bench/series.py): one row per release, size = its month number."""
    companies, rows_scale, months = plan.series
    work = tmp / "series"
    work.mkdir(parents=True)
    job = {"kind": "series", "work": str(work), "companies": companies, "rows_scale": rows_scale, "months": months}
    scale = f"{companies} companies, {months} months"
    rows = run_job({**job, "seed": SEED}, ["monthly release in a series"], plan.series_cap)
    out = []
    for r in rows:
        out.append({"size_unit": "months", **r, "scale": scale})
        say(_line(out[-1]))
    return out


def run_cli(say: Progress, times: int = 7) -> list[dict]:
    """`imvo-submit --help` and `aggregator --help` as users start them, against `python -c pass`."""
    rows = run_job({"kind": "cli", "times": times}, list(CLI_COMMANDS), 60 * times)
    out = [{"size": 1, "size_unit": "commands", **r, "scale": "start-up"} for r in rows]
    for r in out:
        say(_line(r))
    return out


def run_primary(plan: Plan, say: Progress) -> list[dict]:
    rows = []
    for cells in plan.primary_cells:
        rows += run_job({"kind": "primary", "cells": cells}, ["primary rules"], plan.cap + 60)
        rows[-1] = {"size": cells, "size_unit": "cells", **rows[-1], "scale": f"{cells} cells"}
        say(_line(rows[-1]))
    return rows


def _line(r: dict) -> str:
    if r.get("status", "ok") != "ok" and "seconds" not in r:
        return f"  {r.get('scale', '')}: {r['stage']}: {r['status']}"
    ratio = f" ({r['ratio']}x floor)" if r.get("ratio") is not None else ""
    return f"  {r['scale']}: {r['stage']} {r['seconds']:.3f} s{ratio}, peak {r['peak_rss_mb']:.0f} MB"


def add_quality(rows: list[dict]) -> None:
    """Suppression quality: secondary cost over the LP lower bound of the same table (1.0 = provably optimal)."""
    bounds = {r["scale"]: r.get("bound") for r in rows if r["stage"] == "lp lower bound"}
    for r in rows:
        bound = bounds.get(r["scale"])
        if r["stage"].startswith("suppression") and "cost" in r and bound is not None:
            r["floor_value"] = bound
            r["quality_ratio"] = round(r["cost"] / bound, 3) if bound > 0 else (1.0 if r["cost"] == 0 else None)


def tidy(rows: list[dict], run: str, mode: str) -> list[dict]:
    """One CSV row per measurement: fixed columns, everything stage-specific in `details` (JSON)."""
    out = []
    for r in rows:
        row = {c: r.get(c) for c in COLUMNS}
        row.update(run=run, mode=mode, floor=FLOORS.get(r["stage"], "lp lower bound (quality)" if
                   r["stage"].startswith("suppression") else None), status=r.get("status", "ok"))  # fmt: skip
        row["details"] = json.dumps({k: v for k, v in r.items() if k not in COLUMNS}, sort_keys=True)
        out.append(row)
    return out


def run_plan(plan: Plan, say: Progress, only: set[str] | None = None) -> list[dict]:
    """Every measurement of the plan; `only` limits it to 'companies', 'cli', 'series', 'primary' and/or
    'tables'."""
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="imvo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if not only or "companies" in only:
            for companies, rows_scale in plan.scales:
                rows += run_company_scale(plan, companies, rows_scale, tmp, say)
        if not only or "cli" in only:
            rows += run_cli(say)
        if not only or "series" in only:
            rows += run_series(plan, tmp, say)
        if not only or "primary" in only:
            rows += run_primary(plan, say)
        if not only or "tables" in only:
            for spec in plan.tables:
                rows += run_table(plan, spec, tmp, say)
    add_quality(rows)
    return rows


def write_csv(rows: list[dict], stamp: str) -> tuple[Path, Path]:
    """bench/results/<stamp>.csv and a copy as latest.csv (written to a temporary name, then renamed)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    targets = (RESULTS_DIR / f"{stamp}.csv", RESULTS_DIR / "latest.csv")
    for target in targets:
        partial = target.with_suffix(".csv.partial")
        with open(partial, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        partial.replace(target)
    return targets


def part_of(row: dict) -> str:
    """Which part of the plan a result row belongs to: 'companies', 'series', 'cli', 'primary' or 'tables'."""
    if row["size_unit"] in ("rows", "records") or row["stage"] in {stage for stage, _unit in BATCH_PARTS}:
        return "companies"
    if row["size_unit"] == "months":
        return "series"
    if row["size_unit"] == "commands":
        return "cli"
    return "primary" if row["stage"] == "primary rules" else "tables"


def kept_rows(path: Path, rerun: set[str]) -> list[dict]:
    """Rows of an earlier results CSV for the parts not run again (their `run` column names that run)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if part_of(r) not in rerun]


def e2e_textile(timeout: float = 300.0) -> dict:
    """The 60-company textile sample, one period, end to end in a fresh interpreter (start-up included)."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.e2e_textile"], cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"status": f"timeout (> {timeout:.0f} s)"}
    wall = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if not lines:  # exit code 1 with a result means "ran, but nothing was released": reported, not an error
        return {"status": "error: " + (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return {"status": "ok", "wall_seconds": round(wall, 2), **json.loads(lines[-1][len(MARKER) :])}
