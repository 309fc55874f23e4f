"""Validation speed next to plain reading of the same file.

Run: .venv/bin/python -m bench.bench_validation --rows 1000000

Writes a production_locations file (7 template columns + 3 extra columns = 10) as Parquet and CSV into a
temporary folder, then times: plain reading (pandas/pyarrow), read_table (detection + normalisation),
validate (type conversion + pandera checks). Target: validation adds at most 2x the plain read time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aggregator.validation import load_template, read_table, validate


def make_frame(rows: int, seed: int = 7) -> pd.DataFrame:
    """Valid production_locations rows plus three columns the template does not know."""
    rng = np.random.default_rng(seed)
    tpl = load_template("textile", "production_locations")
    types = tpl.column("facility_type").allowed
    bands = tpl.column("workers_band").allowed
    countries = np.array(["BD", "CN", "IN", "TR", "VN", "PK", "PT", "IT", "MA", "KH"])
    return pd.DataFrame(
        {
            "facility_id": [f"F{i:08d}" for i in range(rows)],
            "country": countries[rng.integers(0, len(countries), rows)],
            "facility_type": np.array(types)[rng.integers(0, len(types), rows)],
            "tier": rng.integers(1, 5, rows),
            "workers_band": np.array(bands)[rng.integers(0, len(bands), rows)],
            "order_volume_pieces": rng.integers(0, 1_000_000, rows),
            "order_value_eur": np.round(rng.uniform(0, 5_000_000, rows), 2),
            "notes": np.array(["", "audit 2026", "new supplier"])[rng.integers(0, 3, rows)],
            "contact_score": rng.uniform(0, 1, rows).round(3),
            "internal_code": rng.integers(0, 10_000, rows),
        }
    )


def timed(func: Callable[[], Any], repeat: int = 2) -> tuple[float, Any]:
    """Best wall-clock time of `repeat` runs (the machine is shared) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_file(path: Path, plain_read: Callable[[], Any]) -> dict[str, float]:
    tpl = load_template("textile", "production_locations")
    t_plain, _ = timed(plain_read)
    t_read, (raw, _warnings) = timed(lambda: read_table(path, tpl))
    t_validate, result = timed(lambda: validate(raw, tpl))
    if not result.ok:
        raise SystemExit(f"benchmark data should be valid:\n{result.report.render_text()}")
    return {"plain_read": t_plain, "read_table": t_read, "validate": t_validate}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args(argv)
    frame = make_frame(args.rows)
    warm_up = make_frame(100)
    validate(warm_up, load_template("textile", "production_locations"))  # first call imports pandera backends
    with tempfile.TemporaryDirectory() as tmp:
        parquet, csv = Path(tmp) / "pl.parquet", Path(tmp) / "pl.csv"
        frame.to_parquet(parquet, index=False)
        frame.to_csv(csv, index=False)
        results = {
            "parquet": bench_file(parquet, lambda: pd.read_parquet(parquet)),
            "csv": bench_file(csv, lambda: pd.read_csv(csv)),
        }
    print(f"{args.rows:,} rows x {frame.shape[1]} columns (textile/production_locations)")
    print(f"{'format':8} {'plain read':>11} {'read_table':>11} {'validate':>9} {'added/plain':>12}")
    for fmt, t in results.items():
        added = t["read_table"] + t["validate"] - t["plain_read"]
        ratio = added / t["plain_read"]
        print(
            f"{fmt:8} {t['plain_read']:10.2f}s {t['read_table']:10.2f}s {t['validate']:8.2f}s {ratio:11.2f}x"
        )


if __name__ == "__main__":
    main()
