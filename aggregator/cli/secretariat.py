"""`aggregator`: the secretariat's command line. Each command calls one library function."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from .. import batch as batch_mod
from .. import intake as intake_mod
from .. import log as log_mod
from .. import status as status_mod
from ..envelope import keys
from ..registry import Registry
from ..states import FileState
from ..workspace import create_workspace
from .common import (
    EXIT_PROBLEMS,
    checked_period,
    console,
    friendly_errors,
    passphrase,
    progress_bar,
    secretariat_workspace,
    utc_now,
)

PASSPHRASE_ENV = "AGGREGATOR_PASSPHRASE"


def _workspace(ctx: click.Context):
    return secretariat_workspace(ctx)


@click.group(help="Secretariat side of the IMVO aggregator: intake, monthly batch, releases.")
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("AGGREGATOR_WORKSPACE", "workspace"),
    show_default="$AGGREGATOR_WORKSPACE or ./workspace",
    help="The secretariat workspace folder.",
)
@click.option("--now", envvar="AGGREGATOR_NOW", hidden=True, help="Fixed clock (ISO time) for reproducible runs.")
@click.pass_context
def main(ctx: click.Context, workspace: Path, now: str | None) -> None:
    ctx.obj = {"workspace": workspace, "now": utc_now(now)}


@main.command(help="Create a workspace with new secretariat keys (passphrase from $AGGREGATOR_PASSPHRASE or a prompt).")
@click.option("--protocol", "protocols", multiple=True, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--post-quantum", is_flag=True, help="Use the hybrid ML-KEM-768 + X25519 KEM for submissions.")
@click.pass_context
@friendly_errors
def init(ctx: click.Context, protocols: tuple[Path, ...], post_quantum: bool) -> None:
    secret = passphrase(PASSPHRASE_ENV, "New secretariat passphrase", confirm=True)
    kem = "mlkem768-x25519" if post_quantum else "x25519"
    ws = create_workspace(ctx.obj["workspace"], secret, list(protocols), kem=kem, now=ctx.obj["now"])
    enc = keys.load_public_key(ws.keys_dir / "secretariat_encryption.pub")
    sig = keys.load_public_key(ws.keys_dir / "secretariat_signing.pub")
    console.print(f"created workspace {ws.root}")
    console.print(f"encryption key fingerprint: [bold]{keys.fingerprint(enc)}[/]")
    console.print(f"receipt signing key fingerprint: [bold]{keys.fingerprint(sig)}[/]")
    console.print(f"send companies the two .pub files in {ws.keys_dir} and read them the fingerprints by phone")


@main.group(help="The company registry.")
def companies() -> None:
    pass


@companies.command(
    "add", help="Register a company and its signing public key (the .pub file from `imvo-submit keygen`)."
)
@click.argument("company_id")
@click.option("--name", required=True)
@click.option("--covenant", "covenants", multiple=True, required=True)
@click.option("--group", "group_id", help="Group (holding) id when companies share an owner; they count once.")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@friendly_errors
def companies_add(ctx, company_id, name, covenants, group_id, key_file) -> None:
    ws = _workspace(ctx)
    public_key = keys.load_signing_public_key(key_file)
    with ws.session(ctx.obj["now"]) as store:
        fpr = Registry(store).add(
            company_id,
            name,
            list(covenants),
            keys.public_key_bytes(public_key),
            group_id=group_id,
            now=ctx.obj["now"],
        )
    console.print(f"registered {company_id} with key [bold]{fpr}[/]: confirm this fingerprint with the company")


@companies.command("list", help="List registered companies, their group, status and key fingerprint.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def companies_list(ctx, as_json: bool) -> None:
    ws = _workspace(ctx)
    with ws.open_store() as store:
        frame = Registry(store).list()
    if as_json:
        click.echo(frame.to_json(orient="records"))
        return
    if frame.empty:
        console.print("no companies registered yet; add one with `aggregator companies add`")
        return
    table = Table(*frame.columns)
    for row in frame.itertuples(index=False):
        table.add_row(*(escape(str(v)) for v in row))
    console.print(table)


@companies.command("revoke", help="Revoke a company: its files are quarantined from now on.")
@click.argument("company_id")
@click.option("--reason", required=True)
@click.pass_context
@friendly_errors
def companies_revoke(ctx, company_id: str, reason: str) -> None:
    ws = _workspace(ctx)
    with ws.session(ctx.obj["now"]) as store:
        Registry(store).revoke(company_id, reason, now=ctx.obj["now"])
    console.print(f"revoked {company_id}: its files are quarantined from now on")


@companies.command("rotate-key", help="Give a company a new signing key; files signed with the old one are refused.")
@click.argument("company_id")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@friendly_errors
def companies_rotate_key(ctx, company_id: str, key_file: Path) -> None:
    ws = _workspace(ctx)
    public_key = keys.load_signing_public_key(key_file)
    with ws.session(ctx.obj["now"]) as store:
        fpr = Registry(store).rotate_key(company_id, keys.public_key_bytes(public_key), now=ctx.obj["now"])
    console.print(f"{company_id} now signs with key [bold]{fpr}[/]")


@main.command(
    help="Verify, decrypt and validate every sealed file in INBOX; each ends accepted, duplicate or quarantined."
)
@click.argument("inbox", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--period", help="Only files sealed for this period (YYYY-MM) are accepted; others are quarantined.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def intake(ctx, inbox: Path, period: str | None, as_json: bool) -> None:
    checked_period(period)
    ws = _workspace(ctx)
    with progress_bar("intake", enabled=not as_json) as progress:
        report = intake_mod.run_intake(ws, inbox, now=ctx.obj["now"], expected_period=period, progress=progress)
    if as_json:
        click.echo(json.dumps([o.__dict__ for o in report.outcomes], ensure_ascii=False, indent=1))
    else:
        _print_intake(report, ws.outbox_dir)
    if report.count(FileState.QUARANTINED):
        ctx.exit(EXIT_PROBLEMS)


def _print_intake(report: intake_mod.IntakeReport, outbox: Path) -> None:
    if not report.outcomes:
        console.print("the inbox is empty: nothing to do")
        return
    table = Table("file", "company", "template", "period", "state", "reason")
    for o in report.outcomes:
        cells = (o.file, o.company_id or "?", o.template or "?", o.period or "?", o.state, o.reason)
        table.add_row(*(escape(c) for c in cells))
    console.print(table)
    counts = ", ".join(
        f"{report.count(s)} {s}"
        for s in (FileState.ACCEPTED, FileState.DUPLICATE, FileState.QUARANTINED, FileState.ALREADY_RECEIVED)
        if report.count(s)
    )
    receipts = sum(o.receipt is not None for o in report.outcomes)
    console.print(f"{counts}; {receipts} receipts written to {escape(str(outbox))}")
    if report.count(FileState.QUARANTINED):
        console.print("quarantined files are kept in received/quarantined/; `aggregator status PERIOD` lists them")


@main.command(help="Aggregate, protect, audit and release the tables of COVENANT for PERIOD (YYYY-MM).")
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
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def batch(ctx, covenant, period, audiences, out_dir, revision, as_json) -> None:
    checked_period(period)
    ws = _workspace(ctx)
    with progress_bar("batch", enabled=not as_json) as progress:
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
    if as_json:
        click.echo(json.dumps(report.summary(), indent=1))
    else:
        batch_mod.print_report(report, console)


@main.command(help="Who submitted for PERIOD, who is missing, what was quarantined and why.")
@click.argument("period")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def status(ctx, period: str, as_json: bool) -> None:
    checked_period(period)
    ws = _workspace(ctx)
    with ws.open_store() as store:
        frame = status_mod.period_status(store, ws, period)
    if as_json:
        click.echo(frame.to_json(orient="records", force_ascii=False))
        return
    status_mod.print_status(frame, console)


@main.group("log", help="The tamper-evident action log: every registration, intake decision, batch and release.")
def log_group() -> None:
    pass


@log_group.command(
    "verify", help="Check the log's hash chain and its checkpoint; prints the head to keep as an anchor."
)
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    help="A head kept outside the workspace: a release manifest.json, a receipt, or COUNT:HASH printed earlier; "
    "the log must still contain it.",
)
@click.pass_context
@friendly_errors
def log_verify(ctx, anchors: tuple[str, ...]) -> None:
    ws = _workspace(ctx)
    current, problems = log_mod.verify_workspace_log(ws, [log_mod.read_anchor(a) for a in anchors])
    for problem in problems:
        console.print(f"[bold red]problem:[/] {problem}")
    if problems:
        console.print(f"the action log is NOT intact ({len(problems)} problems)")
        ctx.exit(EXIT_PROBLEMS)
    console.print(f"the action log is intact: {current.count} entries; head {current}")


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
@friendly_errors
def log_reset_checkpoint(ctx, anchors: tuple[str, ...]) -> None:
    ws = _workspace(ctx)
    with ws.locked(), ws.open_store() as store:
        current = log_mod.reset_checkpoint(ws, store, [log_mod.read_anchor(a) for a in anchors], ctx.obj["now"])
    console.print(f"new checkpoint at {current}; the reset is recorded in the log")


@log_group.command("show", help="List log entries, oldest first.")
@click.option("--last", type=click.IntRange(min=1), help="Only the newest N entries.")
@click.option("--action", help="Only this action, or a prefix such as 'company'.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly_errors
def log_show(ctx, last: int | None, action: str | None, as_json: bool) -> None:
    ws = _workspace(ctx)
    with ws.open_store() as store:
        found = log_mod.entries(store, last=last, action=action)
    if as_json:
        click.echo(json.dumps([e.__dict__ for e in found], ensure_ascii=False, indent=1))
        return
    table = Table("seq", "time", "actor", "action", "details", "hash")
    for e in found:
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
        table.add_row(str(e.seq), e.time, e.actor, e.action, details, e.hash[:12])
    console.print(table)


from .protect import protect  # noqa: E402  (standalone mode: aggregator/standalone.py)
from .releases import audit_command, releases, waivers  # noqa: E402  (registered last: releases.py is its own module)

main.add_command(releases)
main.add_command(waivers)
main.add_command(audit_command)
main.add_command(protect)
