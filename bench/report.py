"""docs/BENCHMARKS.md and docs/bench_scaling.svg from one run's rows: machine, tables, slopes, targets."""

from __future__ import annotations

import json
import math
import os
import platform
from collections import defaultdict
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from aggregator.disclosure.suppression import AUTO_OPTIMAL_MAX_CELLS

LIBRARIES = ("duckdb", "pyarrow", "pandas", "numpy", "cryptography", "pandera", "highspy")
GIB = 1024.0
# stages of the monthly batch as run by the secretariat: intake (open, read + validate, load) then the batch
BATCH_PARTS = ("open", "read + validate", "load into store", "whole batch")
BATCH_FLOORS = ("open", "read + validate", "load into store", "cell statistics", "protection", "ledger")
# the stages judged against their floors (issue 23): x floor at most this (None: reported, no target of its own)
FLOOR_TARGETS = {"cell statistics": 1.5, "protection": None, "ledger": None, "intake (envelopes)": 5.0}
INTAKE_SCALES = (1000, 10000)  # the intake's target holds at these company scales
CLI_SECONDS = 0.3
SLOPE_MARGIN = 0.05  # timing noise on a shared machine: a slope this far above n log n still counts as met
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


# ------------------------------------------------------------------------------------------ machine


def _first(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.startswith(prefix)), "unknown")
    except OSError:
        return "unknown"


def machine() -> dict[str, str]:
    """CPU model, cores, memory, load, Python and library versions of this machine."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "memory": f"{int(mem_kib) / 1024 / 1024:.1f} GiB" if mem_kib.isdigit() else "unknown",
        "load": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


# --------------------------------------------------------------------------------------------- fits


def fit_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(seconds) against log(size); None with fewer than two sizes."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def nlogn_slope(n_min: float, n_max: float) -> float:
    """The log-log slope n log n itself has between n_min and n_max (a little above 1)."""
    if n_max <= n_min or n_min < 2:
        return 1.0
    return 1.0 + math.log(math.log(n_max) / math.log(n_min)) / math.log(n_max / n_min)


def ok_rows(rows: Iterable[dict]) -> list[dict]:
    return [r for r in rows if r["status"] == "ok" and _num(r["seconds"]) is not None and _num(r["size"])]


def _num(value) -> float | None:
    if value in (None, ""):
        return None
    return float(value)


def series(rows: Iterable[dict]) -> dict[str, list[tuple[float, float]]]:
    """stage -> sorted (size, seconds) points of the measurements that finished."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in ok_rows(rows):
        out[r["stage"]].append((float(r["size"]), float(r["seconds"])))
    return {k: sorted(v) for k, v in sorted(out.items())}


def slopes(rows: Iterable[dict]) -> list[dict]:
    """Per stage: fitted slope, the n log n slope over the same sizes and whether the stage stays below it."""
    unit = {r["stage"]: r["size_unit"] for r in ok_rows(rows)}
    out = []
    for stage, pts in series(rows).items():
        if pts[-1][0] < 2 * pts[0][0]:  # e.g. the release's cells at every company scale: no size range to fit
            continue
        slope = fit_slope(pts)
        if slope is None:
            continue
        # a release of a series may cost at most linearly more per month held; everything else n log n
        limit = 1.0 if unit[stage] == "months" else nlogn_slope(pts[0][0], pts[-1][0])
        out.append({"stage": stage, "unit": unit[stage], "from": pts[0][0], "to": pts[-1][0],
                    "slope": slope, "nlogn": limit, "met": slope <= limit + SLOPE_MARGIN})  # fmt: skip
    return out


# -------------------------------------------------------------------------------------------- targets


def _extra(row: dict, key: str):
    """A stage-specific figure: a key of a fresh row, or of the `details` JSON of a row read from a CSV."""
    if row.get(key) not in (None, ""):
        return row[key]
    return json.loads(row.get("details") or "{}").get(key)


def _company_scales(rows: list[dict]) -> list[str]:
    return sorted({r["scale"] for r in rows if r["size_unit"] == "rows"}, key=lambda s: int(s.split()[0]))


def batch_target(rows: list[dict]) -> dict:
    """The monthly batch at the largest company scale (open + read + validate + load + the whole batch, which
    is cell statistics, protection, outputs and ledger) against the sum of its floors (BATCH_FLOORS: raw AEAD,
    pyarrow read, plain load into an encrypted file, per-contributor GROUP BY, one audit of the final pattern,
    plain write of the ledger's records), target 2x; and against the earlier, lower sum (plain GROUP BY for
    the cell statistics, nothing for protection and ledger)."""
    scales = _company_scales(rows)
    if not scales:
        return {"measured": False}
    scale = scales[-1]
    at = {r["stage"]: r for r in rows if r["scale"] == scale}
    missing = [s for s in (*BATCH_PARTS, *BATCH_FLOORS) if s not in at or at[s]["status"] != "ok"]
    if missing:
        return {"measured": False, "scale": scale, "missing": missing}
    seconds = sum(float(at[s]["seconds"]) for s in BATCH_PARTS)
    floors = sum(float(at[s]["floor_seconds"]) for s in BATCH_FLOORS)
    plain = _extra(at["cell statistics"], "plain_group_by_seconds")
    old_floors = None
    if plain is not None:
        old_floors = sum(float(at[s]["floor_seconds"]) for s in BATCH_FLOORS[:3]) + float(plain)
    peak = max(float(at[s]["peak_rss_mb"]) for s in BATCH_PARTS)
    load = at["load into store"]
    in_memory = _extra(load, "in_memory_seconds")
    in_memory_floors = floors - float(load["floor_seconds"]) + float(in_memory) if in_memory not in (None, "") else None
    parts = {s: float(at[s]["floor_seconds"]) for s in BATCH_FLOORS}
    return {"measured": True, "scale": scale, "rows": int(float(at["load into store"]["size"])),
            "seconds": seconds, "floors": floors, "ratio": seconds / floors, "time_met": seconds <= 2 * floors,
            "old_floors": old_floors, "floor_parts": parts,
            "peak_mb": peak, "memory_met": peak <= 8 * GIB, "in_memory_floors": in_memory_floors}  # fmt: skip


def floor_targets(rows: list[dict]) -> list[dict]:
    """Each stage the issue judges against its floor, at each company scale measured: (stage, scale, ratio,
    target, met). Protection has no target of its own (it counts in the whole batch's)."""
    out = []
    for r in rows:
        target = FLOOR_TARGETS.get(r["stage"])
        if r["stage"] not in FLOOR_TARGETS or r["status"] != "ok" or _num(r["ratio"]) is None:
            continue
        if r["stage"] == "intake (envelopes)" and int(r["scale"].split()[0]) not in INTAKE_SCALES:
            continue
        ratio = float(r["ratio"])
        out.append({"stage": r["stage"], "scale": r["scale"], "seconds": float(r["seconds"]),
                    "floor": r["floor"], "floor_seconds": float(r["floor_seconds"]), "ratio": ratio,
                    "target": target, "met": None if target is None else ratio <= target})  # fmt: skip
    return out


def cli_targets(rows: list[dict]) -> list[dict]:
    """`--help` of both commands from spawn to exit (median), target CLI_SECONDS, next to `python -c pass`."""
    return [
        {
            "stage": r["stage"],
            "seconds": float(r["seconds"]),
            "floor_seconds": float(r["floor_seconds"]),
            "best": _extra(r, "best"),
            "met": float(r["seconds"]) < CLI_SECONDS,
        }  # fmt: skip
        for r in rows
        if r["size_unit"] == "commands" and r["status"] == "ok"
    ]


def series_target(rows: list[dict]) -> dict:
    """A year of monthly releases: per release (its month number k, so k - 1 earlier releases held) the time
    and the peak memory; both must grow at most linearly in k (fitted log-log slope <= 1 + SLOPE_MARGIN)."""
    done = [r for r in ok_rows(rows) if r["size_unit"] == "months"]
    if len(done) < 2:
        return {"measured": False}
    seconds = fit_slope([(float(r["size"]), float(r["seconds"])) for r in done])
    memory = fit_slope([(float(r["size"]), float(r["peak_rss_mb"])) for r in done])
    last = max(done, key=lambda r: float(r["size"]))
    total = sum(float(r["seconds"]) for r in done)
    return {"measured": True, "scale": last["scale"], "releases": len(done), "total": total,
            "last_seconds": float(last["seconds"]), "peak_mb": max(float(r["peak_rss_mb"]) for r in done),
            "time_slope": seconds, "memory_slope": memory,
            "met": seconds <= 1.0 + SLOPE_MARGIN and memory <= 1.0 + SLOPE_MARGIN}  # fmt: skip


# ------------------------------------------------------------------------------------------------ svg


def _ticks(lo: float, hi: float) -> list[int]:
    return list(range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1))


def svg_panel(data: dict[str, list[tuple[float, float]]], title: str, x_label: str, left: float) -> str:
    """One log-log panel (x = size, y = seconds), one line per stage, legend under the plot."""
    w, h, pad = 420.0, 300.0, 50.0
    xs = [x for pts in data.values() for x, _ in pts] or [1.0, 10.0]
    ys = [y for pts in data.values() for _, y in pts] or [0.01, 1.0]
    xt, yt = _ticks(min(xs), max(xs)), _ticks(min(ys), max(ys))
    xt, yt = (xt if len(xt) > 1 else [xt[0], xt[0] + 1]), (yt if len(yt) > 1 else [yt[0], yt[0] + 1])

    def px(x: float) -> float:
        return left + pad + (math.log10(x) - xt[0]) / (xt[-1] - xt[0]) * (w - pad - 10)

    def py(y: float) -> float:
        return 30 + (yt[-1] - math.log10(y)) / (yt[-1] - yt[0]) * (h - pad - 30)

    parts = [f'<text x="{left + w / 2:.0f}" y="18" text-anchor="middle" font-weight="bold">{title}</text>']
    for k in xt:
        parts.append(f'<line x1="{px(10**k):.1f}" y1="30" x2="{px(10**k):.1f}" y2="{h - pad:.0f}" stroke="#ddd"/>')
        parts.append(f'<text x="{px(10**k):.1f}" y="{h - pad + 15:.0f}" text-anchor="middle">1e{k}</text>')
    for k in yt:
        parts.append(f'<line x1="{left + pad:.0f}" y1="{py(10**k):.1f}" x2="{left + w - 10:.0f}" '
                     f'y2="{py(10**k):.1f}" stroke="#ddd"/>')  # fmt: skip
        parts.append(f'<text x="{left + pad - 5:.0f}" y="{py(10**k) + 4:.1f}" text-anchor="end">1e{k} s</text>')
    parts.append(f'<text x="{left + w / 2:.0f}" y="{h - pad + 32:.0f}" text-anchor="middle">{x_label}</text>')
    for i, (stage, pts) in enumerate(data.items()):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in pts]
        ly = h + 5 + 16 * i
        parts.append(f'<rect x="{left + pad:.0f}" y="{ly - 9:.0f}" width="12" height="4" fill="{colour}"/>')
        parts.append(f'<text x="{left + pad + 18:.0f}" y="{ly:.0f}">{stage}</text>')
    return "\n".join(parts)


def scaling_svg(rows: list[dict]) -> str:
    """Two log-log panels: company-scale stages against rows, table stages against cells."""
    all_series = series(rows)
    unit = {r["stage"]: r["size_unit"] for r in ok_rows(rows)}
    by_rows = {s: p for s, p in all_series.items() if unit[s] == "rows"}
    by_cells = {s: p for s, p in all_series.items() if unit[s] == "cells"}
    height = 300 + 20 + 16 * max(len(by_rows), len(by_cells), 1)
    body = svg_panel(by_rows, "Company scales", "contribution rows", 0) + "\n"
    body += svg_panel(by_cells, "Table sizes", "cells", 440)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="880" height="{height}" '
        f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n'
        f"{body}\n</svg>\n"
    )


# ------------------------------------------------------------------------------------------- markdown


def _fmt(value, digits: int = 3) -> str:
    number = _num(value)
    if number is None:
        return "-"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.{digits}g}"


def stage_table(rows: list[dict], *units: str) -> list[str]:
    lines = [
        "| scale | stage | size | seconds | peak RSS MB | growth MB | floor | floor s | x floor | quality | status |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["size_unit"] not in units and r["size_unit"]:
            continue
        quality = _fmt(r["quality_ratio"]) if _num(r["quality_ratio"]) is not None else "-"
        r = {**r, "status": str(r["status"]).replace("|", "\\|")}  # a cell key in a message must not split the row
        lines.append(
            f"| {r['scale']} | {r['stage']} | {_fmt(r['size'])} | {_fmt(r['seconds'])} | "
            f"{_fmt(r['peak_rss_mb'], 4)} | {_fmt(r['growth_mb'], 4)} | {r['floor'] or '-'} | "
            f"{_fmt(r['floor_seconds'])} | {_fmt(r['ratio'])} | {quality} | {r['status']} |"
        )
    return lines


def _yes(flag: bool) -> str:
    return "**met**" if flag else "**not met**"


def targets_section(rows: list[dict], e2e: dict) -> list[str]:
    lines = ["## Targets", ""]
    bt = batch_target(rows)
    if bt.get("measured"):
        parts = ", ".join(f"{name} {sec:.2f} s" for name, sec in bt["floor_parts"].items())
        lines += [
            f"- Monthly batch at {bt['scale']} ({bt['rows']:,} rows; open + read + validate + load + the whole batch "
            f"(cell statistics, protection, outputs, ledger)): {bt['seconds']:.1f} s against 2 x {bt['floors']:.1f} s "
            f"of floors ({parts}): {bt['ratio']:.2f}x the floors, target 2x: {_yes(bt['time_met'])}. Peak memory "
            f"{bt['peak_mb'] / GIB:.2f} GiB, target 8 GiB: {_yes(bt['memory_met'])}.",
        ]
        if bt.get("old_floors"):
            lines.append(
                f"  Against the earlier, lower sum (plain GROUP BY for cell statistics, no floor for protection and "
                f"ledger): {bt['old_floors']:.1f} s, {bt['seconds'] / bt['old_floors']:.2f}x."
            )
        if bt.get("in_memory_floors"):
            lines.append(
                f"  With an in-memory `CREATE TABLE` (which writes nothing) as the load floor instead, the floors add "
                f"up to {bt['in_memory_floors']:.1f} s and the batch is {bt['seconds'] / bt['in_memory_floors']:.2f}x."
            )
    else:
        lines.append(f"- Monthly batch: not measured in this run (missing: {', '.join(bt.get('missing', ['all']))}).")
    judged = floor_targets(rows)
    if judged:
        lines += ["", "- Stages against their floors, each measured in the same child process on the same data:", "",
                  "| stage | scale | seconds | floor | floor s | x floor | target | |",
                  "|---|---|---:|---|---:|---:|---:|---|"]  # fmt: skip
        for j in judged:
            target = "-" if j["target"] is None else f"{j['target']:g}x"
            verdict = "in the batch's target" if j["met"] is None else _yes(j["met"])
            lines.append(f"| {j['stage']} | {j['scale']} | {_fmt(j['seconds'])} | {j['floor']} | "
                         f"{_fmt(j['floor_seconds'])} | {j['ratio']:.2f} | {target} | {verdict} |")  # fmt: skip
        measured = {j["scale"] for j in judged if j["stage"] == "intake (envelopes)"}
        for n in INTAKE_SCALES:
            if not any(int(m.split()[0]) == n for m in measured):
                failed = [r["status"] for r in rows if r["stage"] == "intake (envelopes)" and
                          r["scale"] == f"{n} companies"]  # fmt: skip
                status = f"**not met**: {failed[0]}" if failed else "not measured in this run"
                lines.append(f"| intake (envelopes) | {n} companies | - | - | - | - | 5x | {status} |")
    cli = cli_targets(rows)
    if cli:
        lines += ["", "- Start-up (`--help` from spawn to exit, median of the runs; floor `python -c pass` timed "
                  f"in turn with them), target < {CLI_SECONDS} s: " + "; ".join(
                      f"`{c['stage']}` {c['seconds']:.2f} s (best {c['best']:.2f} s; floor {c['floor_seconds']:.2f} s)"
                      f" {_yes(c['met'])}" for c in cli) + "."]  # fmt: skip
    if not any("10000" in r["scale"] for r in rows):
        lines.append("  This run did not include 10,000 companies (quick mode): the 10M-row target is not tested.")
    fits = slopes(rows)

    def above(unit: str) -> list[str]:
        return [f["stage"] for f in fits if f["unit"] == unit and not f["met"]]

    def verdict(failed: list[str]) -> str:
        return _yes(not failed) + (f" (above it: {', '.join(failed)})" if failed else "")

    lines += ["", f"- No stage grows faster than n log n in the number of rows (the target): "
              f"{verdict(above('rows'))}. In the number of cells, where the target does not apply (a table's "
              f"cells do not grow with the rows): {verdict(above('cells'))}; the exact model is a MIP, and `auto` "
              f"uses it only on blocks of up to {AUTO_OPTIMAL_MAX_CELLS:,} cells. Fitted log-log slopes (seconds "
              f"against size; n log n allows the slope in the last column plus {SLOPE_MARGIN}):", "",
              "| stage | size | from | to | slope | n log n |", "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    lines += [f"| {f['stage']} | {f['unit']} | {f['from']:,.0f} | {f['to']:,.0f} | {f['slope']:.2f} | "
              f"{f['nlogn']:.2f} |" for f in fits]  # fmt: skip
    st = series_target(rows)
    if st["measured"]:
        lines += [
            "",
            f"- Monthly releases audited as a series ({st['scale']}; each release protected together with every "
            f"earlier one, month-to-month differences included): {st['releases']} releases in {st['total']:.0f} s, "
            f"the last {st['last_seconds']:.1f} s, peak memory {st['peak_mb']:,.0f} MB. Growth per added month "
            f"(log-log slope against the month number): time {st['time_slope']:.2f}, memory "
            f"{st['memory_slope']:.2f}; target at most linear (1 + {SLOPE_MARGIN}): {_yes(st['met'])}.",
        ]
    lines.append("")
    if e2e.get("status") == "ok":
        monthly = e2e.get("monthly_seconds", e2e["wall_seconds"])
        met = monthly < 10 and e2e["released"] > 0
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in e2e["phases"].items())
        lines.append(
            f"- 60-company textile batch end to end (one period, {e2e['companies']} companies, {e2e['files']} "
            f"files): the secretariat's monthly run in a fresh interpreter, from spawn to exit, {monthly:.1f} s "
            f"({phases}), target 10 s: {_yes(met)}. Sealing on the companies' side, each on its own computer, "
            f"took {e2e.get('seal_seconds', float('nan')):.1f} s for all {e2e['files']} files in a row."
        )
        for reason in e2e.get("not_released", []):
            lines.append(f"  Not released: {reason}")
    else:
        lines.append(f"- 60-company textile batch end to end: {e2e.get('status', 'not run')}: **not met**.")
    return lines


def _merged_note(rows: list[dict]) -> list[str]:
    runs = sorted({r["run"] for r in rows})
    if len(runs) < 2:
        return []
    parts = {run: sorted({r["scale"] for r in rows if r["run"] == run}) for run in runs}
    listed = "; ".join(f"run {run}: {', '.join(scales)}" for run, scales in parts.items())
    return ["", f"This report merges runs (`--keep-from`): {listed}."]


def markdown(rows: list[dict], info: dict[str, str], command: str, stamp: str, e2e: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Run `{command}` ({rows[0]['mode'] if rows else '?'} mode) at {stamp}; results in "
        f"`bench/results/{stamp}.csv` (and `latest.csv`). Regenerate with `make bench` (full) or "
        "`.venv/bin/python -m bench --quick`.",
        *_merged_note(rows),
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory']}",
        f"- load average (1/5/15 min) when the report was written: {info['load']} (the machine is shared "
        "with other engineers: timings are upper bounds)",
        f"- Python {info['python']}; {info['libraries']}",
        "",
        "## How it is measured",
        "",
        "Each stage runs in a fresh child process (`python -m bench.stages`), killed after its time cap and "
        "then recorded as `timeout`. Setup (generating data, opening the store, building a problem) is not "
        "timed. Peak RSS is the largest resident set while the stage ran (process baseline included: Python, "
        "the libraries and the stage's input); growth is that peak minus the RSS just before the stage. "
        "Each floor is measured in the same child on the same data: seal/open against raw ChaCha20-Poly1305 "
        "in 64 KiB chunks; read + validate against `pyarrow.csv.read_csv` of the same CSV; load against a "
        "plain DuckDB `CREATE TABLE AS` of the same Arrow tables into a new file encrypted as the store is (a "
        "store must persist; the in-memory `CREATE TABLE` is recorded as `in_memory_seconds`); cell statistics "
        "against one per-contributor `GROUP BY` (inner cell x company: sum, count, fetched as Arrow) per "
        "committee table on the same store, the least any per-contributor rule needs (the earlier floor, the "
        "plain leaf-level `GROUP BY` without contributors, is recorded as `plain_group_by_seconds`); "
        "`protection` (the time the whole batch spends in `history.protect_with_history`: suppression, audit, "
        "release history) against one audit of the final pattern (`audit (release)`, the least a protected "
        "release needs: proving it); `ledger` (the time in recording the release, its cells and snapshot) "
        "against a plain `CREATE TABLE AS` of the same records (released cells, one record per cell, the own "
        "contributions kept) into a new encrypted file; `--help` against `python -c pass`. Suppression has a quality "
        "floor: `quality` = secondary cost / LP-relaxation lower bound (`suppression.lp_lower_bound`, run with the "
        "stage cap as its time limit: on large tables the cut loop stops early, the bound is weak and the ratio "
        "overstates the gap).",
        "",
        "Company scales: one textile period from `sample_data.generate.generate_covenant` (production "
        "locations are most rows). Seal/open and read + validate use all production locations of the scale as "
        "one CSV file (bulk throughput). `intake (envelopes)` (up to 1,000 companies in quick mode, 10,000 in "
        "full) is the per-file path: one "
        "sealed CSV per company and template, sealed untimed, taken in by `run_intake` into a new workspace "
        "with the companies registered; its floor is raw ChaCha20-Poly1305 decryption and `pyarrow.csv.read_csv` "
        "of every file. Load puts every template's rows, the companies and one accepted submission per company "
        "and template into an encrypted `Store`. `whole batch` is the monitoring committee's release as the "
        "monthly batch makes it (`batch.release_audience`: release controls, aggregation, primary rules, "
        "suppression, audit, outputs, and the release with its snapshot recorded in the ledger); `write outputs` and "
        "`audit (release)` repeat those two steps alone on the same release; `linked release (revision)` then "
        "releases a correction of the same period, which is protected and audited together with the first "
        "release (loaded from the ledger) and the period's current cells. Table sizes: "
        "`bench_suppression`'s tables (2-D and 3-D with hierarchies, threshold rule) and synthetic cell "
        "statistics for the primary rules; `protect` includes its own confirming audit.",
        "",
        *targets_section(rows, e2e),
        "",
        "## Scaling",
        "",
        "![cost against size, log-log](bench_scaling.svg)",
        "",
        "## Company scales",
        "",
        *stage_table(rows, "rows", "records"),
        "",
        "## Start-up",
        "",
        *stage_table(rows, "commands"),
        "",
        "## Monthly releases audited as a series",
        "",
        "`monthly release in a series` (bench/series.py): the committee's release of each month of a generated "
        "year, in turn, into one store (data generated and loaded untimed): release controls, protection for "
        "every reader class together with every earlier release held (differences between any two months, "
        "current cells of every month, taken from the ledger when unchanged), audit, outputs and ledger. Size "
        "is the month number: the k-th release holds k - 1 earlier ones.",
        "",
        *stage_table(rows, "months"),
        "",
        "## Table sizes",
        "",
        *stage_table(rows, "cells"),
        "",
    ]
    return "\n".join(lines)


HAND_WRITTEN = "\n## Per-issue benchmarks"  # BENCHMARKS.md from this heading on is written by hand and kept


def write_docs(rows: list[dict], info: dict[str, str], command: str, stamp: str, e2e: dict, docs: Path) -> None:
    """Write BENCHMARKS.md and bench_scaling.svg into `docs` (temporary names, then renamed); the hand-written
    section at the end of an existing BENCHMARKS.md (HAND_WRITTEN) is kept."""
    earlier = (docs / "BENCHMARKS.md").read_text(encoding="utf-8") if (docs / "BENCHMARKS.md").exists() else ""
    kept = earlier[earlier.index(HAND_WRITTEN) :] if HAND_WRITTEN in earlier else ""
    for name, text in (
        ("bench_scaling.svg", scaling_svg(rows)),
        ("BENCHMARKS.md", markdown(rows, info, command, stamp, e2e).rstrip("\n") + "\n" + kept),
    ):
        partial = docs / (name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(docs / name)
