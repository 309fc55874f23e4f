"""`aggregator protect`: standalone protection of a microdata file, without workspace, store or envelopes."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape

from ..standalone import StandaloneResult, protect_microdata
from .common import console, friendly_errors


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
@click.option("--json", "as_json", is_flag=True, help="Print the audit summary as JSON.")
@friendly_errors
def protect(contributions: Path, table_toml: Path, out_dir: Path, as_json: bool) -> None:
    result = protect_microdata(contributions, table_toml, out_dir)
    if as_json:
        click.echo(json.dumps(result.summary, indent=1, sort_keys=True))
        return
    _print_summary(result)


def _print_summary(result: StandaloneResult) -> None:
    for table in result.summary["tables"]:
        console.print(
            f"{escape(table['table'])}: {table['cells']} cells, {table['published']} published, "
            f"{table['primary']} hidden by the rules, {table['secondary']} hidden to protect them"
        )
        for column, merged in sorted(table["rolled_up"].items()):
            console.print(f"  {escape(column)}: {len(merged)} code(s) merged into 'other' rows")
    summary = result.summary
    console.print(
        f"audit {summary['audit']} (outsider and {summary['insiders_checked']} insiders); "
        f"files in {escape(str(result.out_dir))}"
    )
