"""The single-machine ceiling: the monthly batch at 100,000 companies (about 100M rows), stage by stage.

    .venv/bin/python -m bench.ceiling --work /tmp/imvo-ceiling [--companies 100000] [--chunk 10000]
        [--steps prepare,load,read,cells,batch] [--memory-cap-gib 16]

The data is generated in chunks of `--chunk` companies (sample_data.generate with seed SEED + chunk number,
company and group ids prefixed with the chunk, so every chunk is a distinct set of companies) and written
straight to Parquet, one folder per chunk, with its production locations also as a CSV file. Nothing goes
through 100,000 sealed envelopes: the per-file intake is measured at 1,000 and 10,000 companies by the suite.

Steps, each in a fresh child process (bench/stages.py where the suite has the stage), watched for memory (the
child is stopped above `--memory-cap-gib`, to keep a shared machine usable, and the step is recorded as
stopped with its cause):
- prepare: generate and write every chunk (setup, timed only for the record);
- load: every chunk's rows into one encrypted Store, chunk after chunk (Store.append_rows, as the suite);
- read: seal/open and read + validate of every chunk's production-location CSV, with their floors;
- cells: build_release_cells for the committee's tables with the floors (stages.stage_cells);
- batch: the committee's release as the monthly batch makes it (stages.stage_batch: cell statistics,
  protection, audit, outputs, ledger, with the protection and ledger floors).
Results (JSON lines) go to <work>/ceiling.jsonl: time, peak RSS, disk (store size) and status of each step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20250101
ROWS_SCALE = 14.0
MARKER = "BENCH-RESULT "


def _relabel(table, prefix: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in ("company_id", "group_id"):
        if name in table.column_names:
            column = pc.binary_join_element_wise(pa.scalar(prefix), table[name].cast(pa.string()), "")
            table = table.set_column(table.column_names.index(name), name, column)
    return table


def step_prepare(job: dict) -> list[dict]:
    import pyarrow.csv as pacsv

    from sample_data.generate import COLUMNS, generate_covenant, write_parquet

    rows, started = 0, time.perf_counter()
    for k in range(job["chunks"]):
        data = Path(job["work"]) / f"chunk-{k:02d}"
        if (data / "done").exists():
            rows += json.loads((data / "done").read_text())["rows"]
            continue
        covenant = generate_covenant(job["chunk"], 1, ROWS_SCALE, SEED + k)
        covenant.companies = _relabel(covenant.companies, f"K{k:02d}")
        covenant.tables = {name: _relabel(t, f"K{k:02d}") for name, t in covenant.tables.items()}
        write_parquet(covenant, data)
        locations = covenant.tables["production_locations"].select(list(COLUMNS["production_locations"]))
        pacsv.write_csv(locations, data / "production_locations.csv")
        info = {"rows": covenant.rows(), "rows_file": locations.num_rows}
        (data / "done").write_text(json.dumps(info))
        rows += info["rows"]
        del covenant, locations
    return [{"stage": "prepare (untimed in the suite)", "seconds": time.perf_counter() - started, "rows": rows}]


def step_load(job: dict) -> list[dict]:
    from bench.measure import measure
    from bench.stages import _arrow_tables, load_into_store, row

    store = Path(job["work"]) / "store.duckdb"
    store.unlink(missing_ok=True)
    chunks = [Path(job["work"]) / f"chunk-{k:02d}" for k in range(job["chunks"])]

    def load_all() -> int:
        return sum(load_into_store(store, _arrow_tables(chunk)) for chunk in chunks)

    done = measure(load_all)
    disk = sum(p.stat().st_size for p in store.parent.glob("store.duckdb*"))
    return [row("load into store", done.result, "rows", done, store_bytes=disk)]


def step_read(job: dict) -> list[dict]:
    """Seal/open and read + validate of every chunk's production-location CSV (one file per chunk)."""
    from bench.stages import stage_envelope, stage_read_validate

    totals: dict[str, dict] = {}
    for k in range(job["chunks"]):
        data = Path(job["work"]) / f"chunk-{k:02d}"
        info = json.loads((data / "done").read_text())
        sub = {"data": str(data), "work": job["work"], "rows_file": info["rows_file"]}
        for r in [*stage_envelope(sub), *stage_read_validate(sub)]:
            t = totals.setdefault(r["stage"], {**r, "seconds": 0.0, "floor_seconds": 0.0, "size": 0, "peak_rss_mb": 0})
            t["seconds"] += r["seconds"]
            t["floor_seconds"] += r["floor_seconds"]
            t["size"] += r["size"]
            t["peak_rss_mb"] = max(t["peak_rss_mb"], r["peak_rss_mb"])
    for t in totals.values():
        t["ratio"] = round(t["seconds"] / t["floor_seconds"], 2)
        t["files"] = job["chunks"]
    return list(totals.values())


def step_stage(kind: str):
    def run(job: dict) -> list[dict]:
        from bench.stages import STAGES

        chunks = [Path(job["work"]) / f"chunk-{k:02d}" for k in range(job["chunks"])]
        rows_total = sum(json.loads((chunk / "done").read_text())["rows"] for chunk in chunks)
        return STAGES[kind]({**job, "rows_total": rows_total})

    return run


STEPS = {
    "prepare": step_prepare,
    "load": step_load,
    "read": step_read,
    "cells": step_stage("cells"),
    "batch": step_stage("batch"),
}


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (DuckDB runs in-process; the intake worker does not run)."""
    total = 0.0
    try:
        out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], capture_output=True, text=True)
        total = sum(int(x) for x in out.stdout.split()) / 1024
    except (OSError, ValueError):
        pass
    return total


def run_step(step: str, job: dict, cap_mb: float, log: Path) -> None:
    cmd = [sys.executable, "-m", "bench.ceiling", "--child", json.dumps({**job, "step": step})]
    started, peak = time.perf_counter(), 0.0
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = None
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        if peak > cap_mb:
            proc.kill()
            stopped = f"stopped: memory above the cap of {cap_mb / 1024:.0f} GiB (peak {peak:,.0f} MB)"
            break
        time.sleep(0.5)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if stopped or proc.returncode != 0 or not lines:
        last = (stderr.strip().splitlines() or ["no output"])[-1][:300]
        results = [{"stage": step, "status": stopped or f"error (exit {proc.returncode}): {last}"}]
    else:
        results = json.loads(lines[-1][len(MARKER) :])
    disk = sum(p.stat().st_size for p in Path(job["work"]).rglob("*") if p.is_file())
    with open(log, "a", encoding="utf-8") as fh:
        for r in results:
            entry = {"step": step, "wall_seconds": round(wall, 1), "sampled_peak_mb": round(peak), "work_bytes": disk}
            fh.write(json.dumps(entry | r) + "\n")
    print(f"{step}: {wall:.0f} s, peak {peak:,.0f} MB, work folder {disk / 1e9:.1f} GB: {results}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--steps", default="prepare,load,read,cells,batch")
    parser.add_argument("--memory-cap-gib", type=float, default=16.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        print(MARKER + json.dumps(STEPS[job["step"]](job), default=float), flush=True)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    job = {"work": str(args.work), "chunks": -(-args.companies // args.chunk), "chunk": args.chunk}
    log = args.work / "ceiling.jsonl"
    for step in args.steps.split(","):
        run_step(step, job, args.memory_cap_gib * 1024, log)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
