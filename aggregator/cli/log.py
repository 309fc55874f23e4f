"""`aggregator log`: verify, show and (after a lost checkpoint) reset the tamper-evident action log."""

from __future__ import annotations

import json

import click

from .common import EXIT_PROBLEMS, Output, reporting, secretariat_workspace, shown


def _log():
    from .. import log

    return log


@click.group("log", help="The tamper-evident action log: every registration, intake decision, batch and release.")
def log_group() -> None:
    pass


@log_group.command(
    "verify",
    help="Check the store, the log's hash chain and its checkpoint; prints the head to keep as an anchor.",
)
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    help="A head kept outside the workspace: a release manifest.json, a receipt, or COUNT:HASH printed earlier; "
    "the log must still contain it.",
)
@click.pass_context
@reporting
def log_verify(ctx, anchors: tuple[str, ...], out: Output) -> None:
    ws = secretariat_workspace(ctx)
    current, problems = _log().verify_workspace_log(ws, [_log().read_anchor(a) for a in anchors])
    for problem in problems:
        out.line(f"[bold red]problem:[/] {shown(problem)}")
    if problems:
        out.line(f"the action log is NOT intact ({len(problems)} problems)")
    else:
        out.line(f"the action log is intact: {current.count} entries; head {current}")
    result = {"intact": not problems, "entries": current.count, "head": str(current), "problems": problems}
    out.finish(result, EXIT_PROBLEMS if problems else 0)


@log_group.command(
    "reset-checkpoint",
    help="Write a new checkpoint after log_head.json was lost, only when the log is intact and contains ANCHOR.",
)
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    required=True,
    help="The newest head you kept: a release manifest.json, a receipt, or COUNT:HASH.",
)
@click.pass_context
@reporting
def log_reset_checkpoint(ctx, anchors: tuple[str, ...], out: Output) -> None:
    ws = secretariat_workspace(ctx)
    with ws.locked(), ws.open_store() as store:
        current = _log().reset_checkpoint(ws, store, [_log().read_anchor(a) for a in anchors], ctx.obj["now"])
    out.line(f"new checkpoint at {current}; the reset is recorded in the log")
    out.finish({"head": str(current)})


@log_group.command("show", help="List log entries, oldest first.")
@click.option("--last", type=click.IntRange(min=1), help="Only the newest N entries.")
@click.option("--action", help="Only this action, or a prefix such as 'company'.")
@click.pass_context
@reporting
def log_show(ctx, last: int | None, action: str | None, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    with ws.open_store() as store:
        found = _log().entries(store, last=last, action=action)
    rows = [
        (e.seq, e.time, e.actor, e.action, json.dumps(e.details, ensure_ascii=False, sort_keys=True), e.hash[:12])
        for e in found
    ]
    out.table(("seq", "time", "actor", "action", "details", "hash"), rows)
    out.finish({"entries": [e.__dict__ for e in found]})
