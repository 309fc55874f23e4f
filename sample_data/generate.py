"""Seeded, deterministic generator of covenant monitoring data: the committed demo sample and benchmark sizes.

    python sample_data/generate.py                        # rewrite the committed sample next to this file
    python sample_data/generate.py --scale DIR --companies 10000 --rows-scale 14   # benchmark Parquet

Importable: `generate_covenant(...)` returns a `CovenantData` (one pyarrow table per template, every row
prefixed with company_id and period); `write_parquet`, `write_submissions` and `write_sample` write it.
Everything is vectorised (numpy, pyarrow compute). The parts live in `sample_data/synth/`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.errors import AggregatorError  # noqa: E402
from sample_data.synth.broken import (  # noqa: E402
    CompanyPicker,
    broken_cases,
    broken_toml,
    correction_case,
    envelope_cases,
    sector_broken_cases,
)
from sample_data.synth.common import (  # noqa: E402
    COLUMNS,
    FILE_FORMATS,
    SEED,
    TEMPLATES,
    CovenantData,
    SampleDataError,
)
from sample_data.synth.files import (  # noqa: E402
    submission_frame,
    submission_path,
    write_companies_csv,
    write_parquet,
    write_submission_file,
    write_submissions,
)
from sample_data.synth.gold import generate_gold  # noqa: E402
from sample_data.synth.sectors import GENERATORS, SAMPLE_SIZES  # noqa: E402
from sample_data.synth.textile import generate_textile  # noqa: E402

__all__ = [
    "COLUMNS",
    "FILE_FORMATS",
    "SEED",
    "TEMPLATES",
    "CovenantData",
    "SampleDataError",
    "generate_covenant",
    "submission_frame",
    "submission_path",
    "write_parquet",
    "write_sample",
    "write_submission_file",
    "write_submissions",
]

SAMPLE_DIR = Path(__file__).resolve().parent


def generate_covenant(
    n_companies: int = 64,
    n_periods: int = 3,
    rows_scale: float = 1.0,
    seed: int = SEED,
    covenant: str = "textile",
) -> CovenantData:
    """Generate one covenant's data for `n_periods` months from 2025-01, as arrow tables (see `CovenantData`).

    textile: about 70 * rows_scale production locations per company per period (so 10,000 companies with
    rows_scale 14 give ~10M location rows per period), 9 risk rows per company-country, one living-wage row
    per company-country, a handful of material rows per company. gold: 2-24 refiner rows and a few origin
    rows per company; rows_scale does not apply (the refiner pool is fixed at 40). banking, insurance, food and
    forestry (sample_data/synth/sectors.py): a few dozen to a hundred rows per company per month; rows_scale
    does not apply. Same arguments, same output.
    """
    if covenant not in TEMPLATES:
        raise SampleDataError(f"unknown covenant '{covenant}'", hint=f"use one of: {', '.join(TEMPLATES)}")
    if n_companies < 1 or n_periods < 1 or not rows_scale > 0:
        raise SampleDataError(
            f"cannot generate {n_companies} companies x {n_periods} periods at rows_scale {rows_scale}",
            hint="companies and periods must be at least 1 and rows_scale above 0",
        )
    if covenant == "gold":
        return generate_gold(n_companies, n_periods, seed)
    if covenant in GENERATORS:
        return GENERATORS[covenant](n_companies, n_periods, seed)
    return generate_textile(n_companies, n_periods, rows_scale, seed)


def write_sample(out_dir: Path = SAMPLE_DIR, seed: int = SEED) -> list[Path]:
    """Write the committed demo sample (companies.csv, submissions, broken cases, resubmissions, broken.toml).

    Everything is built in a hidden staging folder inside `out_dir` and moved into place at the end, so a
    failed run leaves the previous sample untouched. Returns the written files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    textile = generate_covenant(64, 3, 1.0, seed, "textile")
    gold = generate_covenant(16, 3, 1.0, seed, "gold")
    others = [generate_covenant(n, 3, 1.0, seed, covenant) for covenant, n in SAMPLE_SIZES.items()]
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as tmp:
        stage = Path(tmp)
        write_companies_csv([textile, gold, *others], stage / "companies.csv")
        picker = CompanyPicker([textile, gold, *others])
        correction = correction_case(textile, picker)
        typo = {(correction.template, correction.company, correction.period): correction.original}
        write_submissions(textile, stage / "submissions", replace=typo)
        write_submissions(gold, stage / "submissions")
        for data in others:
            write_submissions(data, stage / "submissions")
        correction.write(stage)
        cases = broken_cases(textile, gold, picker) + sector_broken_cases(others, picker)
        for case in cases:
            case.write(stage)
        envelope = envelope_cases(textile, picker, correction)
        (stage / "broken.toml").write_text(broken_toml(cases + envelope), encoding="utf-8")
        for name in _OUTPUTS:
            _move_into_place(stage / name, out_dir / name)
    return sorted(p for name in _OUTPUTS for p in ([out_dir / name] + list((out_dir / name).rglob("*"))) if p.is_file())


_OUTPUTS = ("companies.csv", "broken.toml", "submissions", "submissions_broken", "resubmissions")


def _move_into_place(source: Path, target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    source.replace(target)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write the committed demo sample, or Parquet for benchmarks.")
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="folder for the demo sample (default: here)")
    parser.add_argument("--scale", type=Path, metavar="DIR", help="write benchmark Parquet to DIR instead")
    parser.add_argument("--covenant", choices=sorted(TEMPLATES), default="textile", help="with --scale")
    parser.add_argument("--companies", type=int, default=10_000, help="with --scale (default 10000)")
    parser.add_argument("--periods", type=int, default=1, help="with --scale (default 1)")
    parser.add_argument("--rows-scale", type=float, default=14.0, help="with --scale; 14 gives ~10M rows/period")
    parser.add_argument("--seed", type=int, default=SEED)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.scale is not None:
            data = generate_covenant(args.companies, args.periods, args.rows_scale, args.seed, args.covenant)
            written = write_parquet(data, args.scale)
            print(f"wrote {data.rows():,} rows for {args.companies:,} {args.covenant} companies to {written[0].parent}")
        else:
            written = write_sample(args.out, args.seed)
            print(f"wrote {len(written)} files to {args.out}")
    except AggregatorError as error:
        print(f"error: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
