"""`aggregator releases` and `aggregator waivers`: the release ledger and the companies' publication consents."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import pandas as pd
from rich.table import Table

from .. import history
from ..errors import AggregatorError
from ..fileio import atomic_write
from ..registry import Registry
from .common import console, friendly_errors, secretariat_workspace

PASSPHRASE_ENV = "AGGREGATOR_PASSPHRASE"


def _workspace(ctx: click.Context):
    return secretariat_workspace(ctx)


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-safe rows: NaN (a suppressed value) becomes null."""
    rows = frame.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]


def _print_frame(frame: pd.DataFrame, title: str | None = None) -> None:
    table = Table(*frame.columns, title=title)
    for row in frame.itertuples(index=False):
        table.add_row(*("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in row))
    console.print(table)


@click.group(help="The release ledger: every release and every cell it published or suppressed, kept forever.")
def releases() -> None:
    pass


@releases.command("list", help="List every release, oldest first, with its number of cells and suppressed cells.")
@click.option("--covenant", help="Only releases of this covenant.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def releases_list(ctx, covenant: str | None, as_json: bool) -> None:
    ws = _workspace(ctx)
    with ws.open_store() as store:
        frame = history.list_releases(store, covenant)
    if as_json:
        click.echo(json.dumps(_records(frame), ensure_ascii=False, indent=1, default=str))
        return
    _print_frame(frame)


@releases.command("show", help="Show one release as recorded: every cell's published value, or 'suppressed'.")
@click.argument("release_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def releases_show(ctx, release_id: str, as_json: bool) -> None:
    ws = _workspace(ctx)
    with ws.open_store() as store:
        detail = history.show_release(store, release_id)
    if as_json:
        payload = {"release": detail.release, "cells": _records(detail.cells)}
        click.echo(json.dumps(payload, ensure_ascii=False, indent=1, default=str))
        return
    r = detail.release
    kind = "revision" if r["is_revision"] else "release"
    console.print(f"[bold]{r['release_id']}[/]: {kind} of {r['period']} for {r['audience']}, {r['released_at']}")
    _print_frame(detail.cells)


@releases.command(
    "report", help="Decrypt a release's secretariat audit report (every cell's status and interval) to --out."
)
@click.argument("release_id")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
@friendly_errors
def releases_report(ctx, release_id: str, out_dir: Path) -> None:
    ws = _workspace(ctx)
    with ws.open_store() as store:
        r = history.show_release(store, release_id).release
    folder = ws.secretariat_dir / r["covenant"] / r["period"] / r["audience"]
    sealed = sorted(folder.glob("*.sealed"))
    if not sealed:
        raise AggregatorError(f"release {release_id} has no audit report in {folder}")
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in sealed:
        target = out_dir / path.name.removesuffix(".sealed")
        atomic_write(target, lambda handle, p=path: handle.write(ws.open_private_file(p)))
        console.print(f"wrote {target}")
    console.print("[yellow]these files hold the true values of hidden cells: never send them to a committee[/]")


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
@friendly_errors
def waivers_add(ctx, company_id: str, covenant: str, scope: str) -> None:
    ws = _workspace(ctx)
    _check_scope(ws, covenant, scope)
    with ws.session(ctx.obj["now"]) as store:
        Registry(store).grant_waiver(company_id, covenant, scope, now=ctx.obj["now"])
    console.print(f"recorded the waiver of {company_id} for {covenant} ({scope}); it applies from the next release")


@waivers.command("revoke", help="Withdraw COMPANY's waiver for future releases; earlier releases stay as they were.")
@click.argument("company_id")
@click.option("--covenant", required=True)
@click.option("--scope", default="*", show_default=True)
@click.pass_context
@friendly_errors
def waivers_revoke(ctx, company_id: str, covenant: str, scope: str) -> None:
    ws = _workspace(ctx)
    with ws.session(ctx.obj["now"]) as store:
        if not Registry(store).has_active_waiver(company_id, covenant, scope):
            raise AggregatorError(
                f"{company_id} has no active waiver for {covenant} ({scope})",
                hint="list the waivers with `aggregator waivers list`",
            )
        Registry(store).revoke_waiver(company_id, covenant, scope, now=ctx.obj["now"])
    console.print(f"revoked the waiver of {company_id} for {covenant} ({scope}) for future releases")


@waivers.command("list", help="List every waiver ever recorded, with when it was granted and revoked.")
@click.option("--covenant", help="Only waivers of this covenant.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def waivers_list(ctx, covenant: str | None, as_json: bool) -> None:
    ws = _workspace(ctx)
    with ws.open_store() as store:
        frame = Registry(store).waivers(covenant)
    if as_json:
        click.echo(json.dumps(_records(frame), ensure_ascii=False, indent=1))
        return
    _print_frame(frame)


@click.command(
    "audit",
    help="Audit a recorded release again: on its own, and for every reader class that holds it.",
)
@click.argument("release_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def audit_command(ctx, release_id: str, as_json: bool) -> None:
    ws = _workspace(ctx)
    with ws.session(ctx.obj["now"]) as store:
        covenant = history.show_release(store, release_id).release["covenant"]
        result = history.audit_release(store, ws.protocol(covenant), release_id, ctx.obj["now"])
    rows = [("on its own", result.alone)]
    rows += [(f"for the readers of '{c}' with all they hold", r) for c, r in result.classes.items()]
    if as_json:

        def verdict(r) -> dict:
            return {"passed": r.passed, "failures": len(r.failures), "lp_solves": r.lp_solves}

        payload = {"release": release_id, "cells": result.cells, "suppressed": result.hidden}
        payload |= {"alone": verdict(result.alone), "readers": {c: verdict(r) for c, r in result.classes.items()}}
        click.echo(json.dumps(payload, indent=1))
    else:
        console.print(f"[bold]{release_id}[/]: {result.cells} cells, {result.hidden} suppressed")
        for name, r in rows:
            verdict = "passed" if r.passed else f"FAILED on {len(r.failures)} cell(s)"
            console.print(f"  audit {name}: {verdict} ({r.insiders_checked} insiders, {r.lp_solves} LPs)")
    if not all(r.passed for _, r in rows):
        ctx.exit(1)
