"""`aggregator protocols`: what a protocol choice costs, before anyone adopts it."""

from __future__ import annotations

from pathlib import Path

import click

from .common import checked_period, secretariat_workspace
from .output import Output, reporting, shown


@click.group(
    help="Confidentiality protocols: start from a sample, compare variants on stored data before adopting one."
)
def protocols() -> None:
    pass


@protocols.command(
    "samples",
    help="Copy the sample protocols this copy ships (one per covenant) into FOLDER, to adapt and pass to "
    "`aggregator init --protocol`. Existing files are left as they are.",
)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@reporting
def protocols_samples(folder: Path, out: Output) -> None:
    from ..protocol import SAMPLE_PROTOCOLS

    folder.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    for sample in sorted(SAMPLE_PROTOCOLS.glob("*.toml")):
        target = folder / sample.name
        if target.exists():
            kept.append(str(target))
            continue
        target.write_bytes(sample.read_bytes())
        written.append(str(target))
    for path in written:
        out.line(f"wrote {shown(path)}")
    for path in kept:
        out.line(f"[yellow]kept[/] {shown(path)} (it exists; delete it to get the sample again)")
    out.finish({"written": written, "kept": kept})


@protocols.command(
    "compare",
    help="Protect PERIOD's stored data under each --protocol variant and write one HTML page and JSON side by "
    "side (cells published, as a range, hidden; rules that bite; audit). Releases and records nothing.",
)
@click.argument("period")
@click.option(
    "--protocol",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A protocol file; give two or more.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("comparisons"))
@click.pass_context
@reporting
def protocols_compare(ctx, period: str, paths: tuple[Path, ...], out_dir: Path, out: Output) -> None:
    from ..compare import compare_protocols, write_comparison

    checked_period(period)
    ws = secretariat_workspace(ctx)
    with ws.session(ctx.obj["now"]) as store:
        comparison = compare_protocols(store, period, list(paths))
    html, data = write_comparison(comparison, out_dir)
    for variant in comparison.variants:
        summary = "; ".join(
            f"{a.audience_id} " + ("refused" if a.refused else f"{a.published} of {a.cells} cells published")
            for a in variant.audiences
        )
        out.line(f"{shown(variant.name)}: {summary}")
    out.line(f"written: {shown(str(html))} and {shown(str(data))}")
    out.finish(comparison.as_json() | {"html": str(html), "json": str(data)}, 0)
