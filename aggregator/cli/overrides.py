"""`aggregator overrides`: the secretariat's manual verdicts on single cells, each with a reason, logged."""

from __future__ import annotations

import click

from .common import Output, registry, reporting, secretariat_workspace, shown


@click.group(help="Manual verdicts on single cells (unsafe: suppress; safe: publish), with a reason, logged.")
def overrides() -> None:
    pass


@overrides.command(
    "add",
    help="Mark CELL of a table unsafe (suppressed) or safe (published), from the next batch on.\n\n"
    "An unsafe cell is protected like one that fails a rule; a safe one is published unless it must hide "
    "another. Copy the table id and the cell key from `aggregator releases show RELEASE`.",
)
@click.argument("covenant")
@click.argument("cell")
@click.option("--table", "table_id", required=True, help="The table id the cell belongs to.")
@click.option("--unsafe/--safe", "unsafe", required=True, help="Suppress the cell, or publish it.")
@click.option("--reason", required=True, help="Why; kept in the action log.")
@click.pass_context
@reporting
def overrides_add(ctx, covenant: str, cell: str, table_id: str, unsafe: bool, reason: str, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    protocol = ws.protocol(covenant)
    with ws.session(ctx.obj["now"]) as store:
        key = registry(store).set_override(protocol, table_id, cell, unsafe=unsafe, reason=reason, now=ctx.obj["now"])
    verdict = "unsafe" if unsafe else "safe"
    out.line(f"cell {shown(key)} of {shown(table_id)} is {verdict} from the next batch on; the reason is logged")
    out.finish({"covenant": covenant, "table": table_id, "cell": str(key), "action": verdict, "reason": reason})


@overrides.command("revoke", help="End the override in force for CELL from the next batch on (with a reason).")
@click.argument("covenant")
@click.argument("cell")
@click.option("--reason", required=True, help="Why; kept in the action log.")
@click.pass_context
@reporting
def overrides_revoke(ctx, covenant: str, cell: str, reason: str, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    ws.protocol(covenant)
    with ws.session(ctx.obj["now"]) as store:
        key = registry(store).revoke_override(covenant, cell, reason=reason, now=ctx.obj["now"])
    out.line(f"the override of cell {shown(key)} ends with the next batch; earlier releases stay as they were")
    out.finish({"covenant": covenant, "cell": str(key), "action": "revoked", "reason": reason})


@overrides.command("list", help="List every override ever recorded, oldest first, and which are in force.")
@click.option("--covenant", help="Only overrides of this covenant.")
@click.pass_context
@reporting
def overrides_list(ctx, covenant: str | None, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    if covenant:
        ws.protocol(covenant)  # a misspelt covenant must not read as "no overrides recorded"
    with ws.open_store() as store:
        frame = registry(store).override_history(covenant)
    if frame.empty:
        out.line("no overrides recorded; add one with `aggregator overrides add`")
    else:
        out.table(list(frame.columns), frame.itertuples(index=False))
    out.finish({"overrides": frame.to_dict(orient="records")})
