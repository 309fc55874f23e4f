"""The monthly commands: `aggregator intake` (and re-deciding quarantined files), `status` and `batch`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from imvo_submit.states import FileState

from ..errors import AggregatorError
from .common import (
    EXIT_PROBLEMS,
    Output,
    checked_period,
    console,
    progress_bar,
    reporting,
    secretariat_workspace,
    shown,
)

if TYPE_CHECKING:
    from ..intake import IntakeReport

COUNTED = (FileState.ACCEPTED, FileState.DUPLICATE, FileState.QUARANTINED, FileState.ALREADY_RECEIVED)


@click.command(
    help="Verify, decrypt and validate every sealed file in INBOX; each ends accepted, duplicate or quarantined.\n\n"
    "With --redecide FILE or --redecide-period PERIOD (and no INBOX): decide quarantined files again, after an "
    "operator's mistake such as a wrong --period."
)
@click.argument("inbox", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--period", help="Only files sealed for this period (YYYY-MM) are accepted; others are quarantined.")
@click.option(
    "--redecide",
    "redecide_files",
    multiple=True,
    metavar="FILE",
    help="Decide this quarantined file again (its name, its name in received/quarantined/ or its submission id).",
)
@click.option("--redecide-period", metavar="PERIOD", help="Decide every quarantined file sealed for PERIOD again.")
@click.pass_context
@reporting
def intake(ctx, inbox: Path | None, period, redecide_files, redecide_period, out: Output) -> None:
    checked_period(period)
    checked_period(redecide_period)
    again = bool(redecide_files or redecide_period)
    if again == (inbox is not None):
        raise AggregatorError(
            "give an INBOX to take in, or quarantined files to decide again, not both"
            if again
            else "give the INBOX folder to take in",
            hint="`aggregator intake INBOX [--period P]`, or `aggregator intake --redecide FILE` / "
            "`--redecide-period P` for quarantined files",
        )
    from .. import intake as intake_mod

    ws = secretariat_workspace(ctx)
    now = ctx.obj["now"]
    with progress_bar("intake", enabled=not out.json) as progress:
        if again:
            report = intake_mod.redecide(
                ws, now=now, names=redecide_files, period=redecide_period, expected_period=period, progress=progress
            )
        else:
            report = intake_mod.run_intake(ws, inbox, now=now, expected_period=period, progress=progress)
    _print_intake(out, report, ws.outbox_dir, again)
    result = {
        "files": [dataclasses.asdict(o) for o in report.outcomes],
        "skipped": [dataclasses.asdict(s) for s in report.skipped],
        "counts": {state: report.count(state) for state in COUNTED},
        "receipts": sum(o.receipt is not None for o in report.outcomes),
    }
    out.finish(result, EXIT_PROBLEMS if report.has_problems else 0)


def _print_intake(out: Output, report: IntakeReport, outbox: Path, again: bool) -> None:
    if not report.outcomes and not report.skipped:
        out.line("no quarantined file to decide again" if again else "the inbox is empty: nothing to do")
        return
    if report.outcomes:
        out.table(
            ("file", "company", "template", "period", "state", "reason"),
            [
                (o.file, o.company_id or "?", o.template or "?", o.period or "?", o.state, o.reason)
                for o in report.outcomes
            ],
        )
    for o in report.outcomes:
        for warning in o.warnings:
            out.line(f"[yellow]note:[/] {shown(o.file)}: {shown(warning)}")
    for s in report.skipped:
        out.line(f"[yellow]skipped:[/] {shown(s.name)}: {shown(s.reason)}")
    counts = ", ".join(f"{report.count(s)} {s}" for s in COUNTED if report.count(s)) or "no file decided"
    receipts = sum(o.receipt is not None for o in report.outcomes)
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    out.line(f"{counts}{skipped}; {receipts} receipts written to {shown(outbox)}")
    if report.count(FileState.QUARANTINED):
        out.line(
            "quarantined files are kept in received/quarantined/; `aggregator status PERIOD` lists them, "
            "`aggregator intake --redecide FILE` decides one again"
        )


@click.command(help="Who submitted for PERIOD, who is missing, what was quarantined and why.")
@click.argument("period")
@click.pass_context
@reporting
def status(ctx, period: str, out: Output) -> None:
    from .. import status as status_mod

    checked_period(period)
    ws = secretariat_workspace(ctx)
    with ws.open_store() as store:
        frame = status_mod.period_status(store, ws, period)
    _print_status(out, frame)
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    out.finish({"period": period, "rows": rows})


def _print_status(out: Output, frame) -> None:
    """A summary line per covenant, then every row a clerk should read (missing, quarantined, numbers to check)."""
    from .. import status as status_mod

    if frame.empty:
        out.line("nothing received and no registered company expected for this period")
        return
    for covenant, part in frame.groupby("covenant", dropna=False, sort=True):
        counts = part.state.value_counts()
        summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in status_mod.SUMMARY_STATES)
        title = covenant if isinstance(covenant, str) else "unreadable files"
        out.line(f"[bold]{shown(title)}[/]: {summary}")
        listed = part[status_mod.needs_a_look(part)]
        if len(listed):
            rows = [
                (r.company_id or "?", r.template or "?", r.state, r.reason, r.file, "; ".join(r.warnings))
                for r in listed.astype(object).where(listed.notna(), None).itertuples()
            ]
            out.table(("company", "template", "state", "reason", "file", "notes"), rows)


@click.command(help="Aggregate, protect, audit and release the tables of COVENANT for PERIOD (YYYY-MM).")
@click.argument("covenant")
@click.argument("period")
@click.option("--audience", "audiences", multiple=True, help="Only these audiences (default: all of the protocol).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
)
@click.option("--revision", is_flag=True, help="Declare this a revision of an earlier release of the same period.")
@click.pass_context
@reporting
def batch(ctx, covenant, period, audiences, out_dir, revision, out: Output) -> None:
    from .. import batch as batch_mod

    checked_period(period)
    ws = secretariat_workspace(ctx)
    with progress_bar("batch", enabled=not out.json) as progress:
        report = batch_mod.run_batch(
            ws,
            covenant,
            period,
            audiences=list(audiences) or None,
            out_dir=out_dir,
            now=ctx.obj["now"],
            revision=revision,
            progress=progress,
        )
    if not out.json:
        batch_mod.print_report(report, console)
    released = any(o.released for o in report.outcomes)
    if not released:
        out.line("[yellow]nothing was released, and nothing was recorded[/]")
    # an audience that was not released (refused, or nothing it would show) is a problem to look at
    problems = any(not o.released for o in report.outcomes)
    out.finish(report.summary(), EXIT_PROBLEMS if problems else 0)
