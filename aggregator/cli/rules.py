"""`aggregator rules`: the submission rules as a signed bundle for the companies (imvo_submit.bundle)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import Output, reporting, secretariat_workspace, shown


@click.group("rules", help="The submission rules companies check with.")
def rules() -> None:
    pass


@rules.command(
    "export",
    help="Write the rules as a bundle signed with the secretariat's key; companies install it with "
    "`imvo-submit rules update FILE` (or `imvo-submit init --rules FILE`).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle file (default: rules-<version>.imvo-rules in the current folder).",
)
@click.pass_context
@reporting
def rules_export(ctx: click.Context, out_path: Path | None, out: Output) -> None:
    from imvo_submit.bundle import export_bundle, read_bundle
    from imvo_submit.fileio import atomic_write

    workspace = secretariat_workspace(ctx)
    data = export_bundle(workspace.signing_key, ctx.obj["now"])
    bundle = read_bundle(data, workspace.signing_key.public_key())  # what a company will get, read as it will
    target = out_path or Path(f"rules-{bundle.rules_version}.imvo-rules")
    atomic_write(target, lambda handle: handle.write(data), mode=0o644)
    out.line(f"wrote {shown(target)}: rules {bundle.rules_version} for {shown(', '.join(bundle.covenants))}")
    out.line("send it to the companies; they run `imvo-submit rules update` with it")
    out.finish({"bundle": str(target), "rules_version": bundle.rules_version, "covenants": bundle.covenants})
