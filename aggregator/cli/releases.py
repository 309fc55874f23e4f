"""`aggregator releases` and `aggregator waivers`: the release ledger and the companies' publication consents."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import AggregatorError
from .common import EXIT_PROBLEMS, Output, registry, reporting, secretariat_workspace, shown

if TYPE_CHECKING:
    import pandas as pd


def _history():
    from .. import history

    return history


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-safe rows (NaN, a suppressed value, becomes null when printed)."""
    return frame.to_dict(orient="records")


def _print_frame(out: Output, frame: pd.DataFrame, title: str | None = None) -> None:
    out.table(list(frame.columns), frame.itertuples(index=False), title=title)


@click.group(help="The release ledger: every release and every cell it published or suppressed, kept forever.")
def releases() -> None:
    pass


@releases.command("list", help="List every release, oldest first, with its number of cells and suppressed cells.")
@click.option("--covenant", help="Only releases of this covenant.")
@click.pass_context
@reporting
def releases_list(ctx, covenant: str | None, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    if covenant:
        ws.protocol(covenant)  # a misspelt covenant must not read as "none recorded"
    with ws.open_store() as store:
        frame = _history().list_releases(store, covenant)
    _print_frame(out, frame)
    out.finish({"releases": _records(frame)})


@releases.command("show", help="Show one release as recorded: every cell's published value, or 'suppressed'.")
@click.argument("release_id")
@click.pass_context
@reporting
def releases_show(ctx, release_id: str, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    with ws.open_store() as store:
        detail = _history().show_release(store, release_id)
    r = detail.release
    kind = "revision" if r["is_revision"] else "release"
    out.line(
        f"[bold]{shown(r['release_id'])}[/]: {kind} of {r['period']} for {shown(r['audience'])}, {r['released_at']}"
    )
    _print_frame(out, detail.cells)
    out.finish({"release": detail.release, "cells": _records(detail.cells)})


@releases.command(
    "report", help="Decrypt a release's secretariat audit report (every cell's status and interval) to --out."
)
@click.argument("release_id")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--insiders",
    is_flag=True,
    help="Also write insiders.xlsx: every insider's own interval for every hidden cell it is judged on, "
    "computed again from the ledger (two LPs per insider and cell: seconds to minutes).",
)
@click.pass_context
@reporting
def releases_report(ctx, release_id: str, out_dir: Path, insiders: bool, out: Output) -> None:
    from imvo_submit.fileio import atomic_write

    ws = secretariat_workspace(ctx)
    with ws.open_store() as store:
        r = _history().show_release(store, release_id).release
        lines = _history().insider_rows(store, release_id) if insiders else None
    folder = ws.secretariat_dir / r["covenant"] / r["period"] / r["audience"]
    sealed = sorted(folder.glob("*.sealed"))
    if not sealed:
        raise AggregatorError(f"release {release_id} has no audit report in {folder}")
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for path in sealed:
        target = out_dir / path.name.removesuffix(".sealed")
        atomic_write(target, lambda handle, p=path: handle.write(ws.open_private_file(p)))
        out.line(f"wrote {shown(target)}")
        written.append(str(target))
    if lines is not None:
        written.append(str(_write_insiders(out_dir, lines, r)))
        out.line(f"wrote {shown(Path(written[-1]))}: {len(lines)} insider intervals")
    out.line("[yellow]these files hold the true values of hidden cells: never send them to a committee[/]")
    out.finish({"release": release_id, "files": written})


def _write_insiders(out_dir: Path, lines: list, release: dict) -> Path:
    from datetime import datetime

    from imvo_submit.fileio import atomic_write

    from ..release.audit import INSIDERS_XLSX, insider_workbook

    language = release["manifest"].get("language", "en")
    data = insider_workbook(lines, language, datetime.fromisoformat(release["released_at"]))
    target = out_dir / INSIDERS_XLSX
    atomic_write(target, lambda handle: handle.write(data))
    return target


@click.group(help="Companies' consent to publish their own figures (recorded with scope and date, revocable).")
def waivers() -> None:
    pass


def _check_scope(ws, covenant: str, scope: str) -> None:
    tables = [t.id for t in ws.protocol(covenant).tables]
    if scope != "*" and scope not in tables:
        raise AggregatorError(
            f"'{scope}' is not a table of covenant {covenant}", hint=f"use '*' or one of: {', '.join(tables)}"
        )


@waivers.command("add", help="Record COMPANY's consent to publish its own figures in SCOPE (a table id or '*').")
@click.argument("company_id")
@click.option("--covenant", required=True)
@click.option("--scope", default="*", show_default=True, help="A table id, or '*' for every table.")
@click.pass_context
@reporting
def waivers_add(ctx, company_id: str, covenant: str, scope: str, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    _check_scope(ws, covenant, scope)
    with ws.session(ctx.obj["now"]) as store:
        registry(store).grant_waiver(company_id, covenant, scope, now=ctx.obj["now"])
    out.line(
        f"recorded the waiver of {shown(company_id)} for {shown(covenant)} ({shown(scope)}); "
        "it applies from the next release"
    )
    out.finish({"company_id": company_id, "covenant": covenant, "scope": scope, "granted": True})


@waivers.command("revoke", help="Withdraw COMPANY's waiver for future releases; earlier releases stay as they were.")
@click.argument("company_id")
@click.option("--covenant", required=True)
@click.option("--scope", default="*", show_default=True)
@click.pass_context
@reporting
def waivers_revoke(ctx, company_id: str, covenant: str, scope: str, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    ws.protocol(covenant)
    with ws.session(ctx.obj["now"]) as store:
        if not registry(store).has_active_waiver(company_id, covenant, scope):
            raise AggregatorError(
                f"{company_id} has no active waiver for {covenant} ({scope})",
                hint="list the waivers with `aggregator waivers list`",
            )
        registry(store).revoke_waiver(company_id, covenant, scope, now=ctx.obj["now"])
    out.line(f"revoked the waiver of {shown(company_id)} for {shown(covenant)} ({shown(scope)}) for future releases")
    out.finish({"company_id": company_id, "covenant": covenant, "scope": scope, "granted": False})


@waivers.command("list", help="List every waiver ever recorded, with when it was granted and revoked.")
@click.option("--covenant", help="Only waivers of this covenant.")
@click.pass_context
@reporting
def waivers_list(ctx, covenant: str | None, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    if covenant:
        ws.protocol(covenant)  # a misspelt covenant must not read as "none recorded"
    with ws.open_store() as store:
        frame = registry(store).waivers(covenant)
    _print_frame(out, frame)
    out.finish({"waivers": _records(frame)})


@click.command(
    "audit",
    help="Audit a recorded release again: on its own, and for every reader class that holds it.",
)
@click.argument("release_id")
@click.pass_context
@reporting
def audit_command(ctx, release_id: str, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    with ws.session(ctx.obj["now"]) as store:
        covenant = _history().show_release(store, release_id).release["covenant"]
        result = _history().audit_release(store, ws.protocol(covenant), release_id, ctx.obj["now"])
    rows = [("on its own", result.alone)]
    rows += [(f"for the readers of '{c}' with all they hold", r) for c, r in result.classes.items()]
    out.line(f"[bold]{shown(release_id)}[/]: {result.cells} cells, {result.hidden} suppressed")
    for name, r in rows:
        verdict = "passed" if r.passed else f"FAILED on {len(r.failures)} cell(s)"
        out.line(f"  audit {name}: {verdict} ({r.insiders_checked} insiders, {r.lp_solves} LPs)")

    def summary(r) -> dict:
        return {"passed": r.passed, "failures": len(r.failures), "lp_solves": r.lp_solves}

    payload = {"release": release_id, "cells": result.cells, "suppressed": result.hidden}
    payload |= {"alone": summary(result.alone), "readers": {c: summary(r) for c, r in result.classes.items()}}
    out.finish(payload, 0 if all(r.passed for _, r in rows) else EXIT_PROBLEMS)
