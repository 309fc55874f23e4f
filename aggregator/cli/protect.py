"""`aggregator protect`: standalone protection of a microdata file, without workspace, store or envelopes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import Output, reporting, shown

if TYPE_CHECKING:
    from ..standalone import StandaloneResult


@click.command(
    help="Protect the tables of TABLE.toml over a CSV or Parquet file of CONTRIBUTIONS (one row per record: "
    "contributor, optional group, dimension and value columns) and write every cell with its status to --out."
)
@click.argument("contributions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--table",
    "table_toml",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Table definition: [disclosure], [hierarchies.*] and [[tables]] as in a protocol (docs/suppression.md).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for <table>.csv, <table>.parquet and audit.json (created when missing).",
)
@reporting
def protect(contributions: Path, table_toml: Path, out_dir: Path, out: Output) -> None:
    from ..standalone import protect_microdata

    result = protect_microdata(contributions, table_toml, out_dir)
    _print_summary(out, result)
    out.finish(result.summary)


def _print_summary(out: Output, result: StandaloneResult) -> None:
    for table in result.summary["tables"]:
        out.line(
            f"{shown(table['table'])}: {table['cells']} cells, {table['published']} published, "
            f"{table['primary']} hidden by the rules, {table['secondary']} hidden to protect them"
        )
        for column, merged in sorted(table["rolled_up"].items()):
            out.line(f"  {shown(column)}: {len(merged)} code(s) merged into 'other' rows")
    summary = result.summary
    out.line(
        f"audit {summary['audit']} (outsider and {summary['insiders_checked']} insiders); "
        f"files in {shown(result.out_dir)}"
    )
