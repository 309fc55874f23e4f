"""`make bench` = `.venv/bin/python -m bench`: the whole benchmark suite; `--quick` for small scales only.

Writes bench/results/<timestamp>.csv, bench/results/latest.csv, docs/BENCHMARKS.md and docs/bench_scaling.svg.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.report import machine, write_docs
from bench.run_all import FULL, QUICK, e2e_textile, kept_rows, run_plan, tidy, write_csv

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scales only (a few minutes)")
    parser.add_argument("--cap", type=float, help="time limit per stage in seconds (quick 60, full 180)")
    parser.add_argument(
        "--intake-max",
        type=int,
        metavar="COMPANIES",
        help="time the intake of sealed files up to this many companies (quick 1,000, full 10,000)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=("companies", "cli", "series", "primary", "tables", "e2e"),
        help="run only these parts",
    )
    parser.add_argument(
        "--keep-from",
        type=Path,
        metavar="CSV",
        help="with --only: keep this earlier results file's rows for the parts not run again",
    )
    return parser


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.cap:
        plan = dataclasses.replace(plan, cap=args.cap)
    if args.intake_max is not None:
        plan = dataclasses.replace(plan, intake_max=args.intake_max)
    only = set(args.only or [])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    _say(f"benchmark ({plan.mode} mode, cap {plan.cap:.0f} s per stage) started {stamp}")
    rows = run_plan(plan, _say, only - {"e2e"} or None) if only != {"e2e"} else []
    e2e = e2e_textile() if not only or "e2e" in only else {"status": "not run"}
    _say(f"60-company textile end to end: {e2e}")
    table = tidy(rows, stamp, plan.mode)
    if args.keep_from:
        rerun = only - {"e2e"} if only else {"companies", "cli", "series", "primary", "tables"}  # --only e2e keeps all
        table = kept_rows(args.keep_from, rerun) + table
    written = write_csv(table, stamp)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    write_docs(table, machine(), command, stamp, e2e, DOCS)
    _say(f"wrote {written[0]}, {written[1]}, {DOCS / 'BENCHMARKS.md'} and {DOCS / 'bench_scaling.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
