"""`aggregator`: the secretariat's command line. Each command calls one library function; every command takes
--json (one document, docs/json.md) and prints plain lines when its output is not a terminal."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .common import Output, passphrase, registry, reporting, secretariat_workspace, shown, utc_now, version_option

PASSPHRASE_ENV = "AGGREGATOR_PASSPHRASE"


def _keys():
    from imvo_submit.envelope import keys

    return keys


@click.group("aggregator", help="Secretariat side of the IMVO aggregator: intake, monthly batch, releases.")
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("AGGREGATOR_WORKSPACE", "workspace"),
    show_default="$AGGREGATOR_WORKSPACE or ./workspace",
    help="The secretariat workspace folder.",
)
@click.option("--now", envvar="AGGREGATOR_NOW", hidden=True, help="Fixed clock (ISO time) for reproducible runs.")
@version_option("aggregator")
@click.pass_context
def main(ctx: click.Context, workspace: Path, now: str | None) -> None:
    ctx.obj = {"workspace": workspace, "now": utc_now(now)}


@main.command(help="Create a workspace with new secretariat keys (passphrase from $AGGREGATOR_PASSPHRASE or a prompt).")
@click.option("--protocol", "protocols", multiple=True, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--post-quantum", is_flag=True, help="Use the hybrid ML-KEM-768 + X25519 KEM for submissions.")
@click.pass_context
@reporting
def init(ctx: click.Context, protocols: tuple[Path, ...], post_quantum: bool, out: Output) -> None:
    from ..workspace import create_workspace

    secret = passphrase(PASSPHRASE_ENV, "New secretariat passphrase", confirm=True)
    kem = "mlkem768-x25519" if post_quantum else "x25519"
    ws = create_workspace(ctx.obj["workspace"], secret, list(protocols), kem=kem, now=ctx.obj["now"])
    enc = _keys().fingerprint(_keys().load_public_key(ws.keys_dir / "secretariat_encryption.pub"))
    sig = _keys().fingerprint(_keys().load_public_key(ws.keys_dir / "secretariat_signing.pub"))
    out.line(f"created workspace {shown(ws.root)}")
    out.line(f"encryption key fingerprint: [bold]{enc}[/]")
    out.line(f"receipt signing key fingerprint: [bold]{sig}[/]")
    out.line(f"send companies the two .pub files in {shown(ws.keys_dir)} and read them the fingerprints by phone")
    result = {"workspace": str(ws.root), "keys": str(ws.keys_dir), "kem": kem}
    out.finish(result | {"encryption_fingerprint": enc, "signing_fingerprint": sig})


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
@reporting
def companies_add(ctx, company_id, name, covenants, group_id, key_file, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    for covenant in covenants:
        ws.protocol(covenant)  # a covenant this workspace handles (a typo would quarantine every file)
    public_key = _keys().load_signing_public_key(key_file)
    with ws.session(ctx.obj["now"]) as store:
        fpr = registry(store).add(
            company_id,
            name,
            list(covenants),
            _keys().public_key_bytes(public_key),
            group_id=group_id,
            now=ctx.obj["now"],
        )
    out.line(f"registered {shown(company_id)} with key [bold]{fpr}[/]: confirm this fingerprint with the company")
    out.finish({"company_id": company_id, "fingerprint": fpr})


@companies.command("list", help="List registered companies, their group, status and key fingerprint.")
@click.pass_context
@reporting
def companies_list(ctx, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    with ws.open_store() as store:
        frame = registry(store).list()
    if frame.empty:
        out.line("no companies registered yet; add one with `aggregator companies add`")
    else:
        out.table(list(frame.columns), frame.itertuples(index=False))
    out.finish({"companies": frame.to_dict(orient="records")})


@companies.command("revoke", help="Revoke a company: its files are quarantined from now on.")
@click.argument("company_id")
@click.option("--reason", required=True)
@click.pass_context
@reporting
def companies_revoke(ctx, company_id: str, reason: str, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    with ws.session(ctx.obj["now"]) as store:
        registry(store).revoke(company_id, reason, now=ctx.obj["now"])
    out.line(f"revoked {shown(company_id)}: its files are quarantined from now on")
    out.finish({"company_id": company_id, "status": "revoked", "reason": reason})


@companies.command("rotate-key", help="Give a company a new signing key; files signed with the old one are refused.")
@click.argument("company_id")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@reporting
def companies_rotate_key(ctx, company_id: str, key_file: Path, out: Output) -> None:
    ws = secretariat_workspace(ctx)
    public_key = _keys().load_signing_public_key(key_file)
    with ws.session(ctx.obj["now"]) as store:
        fpr = registry(store).rotate_key(company_id, _keys().public_key_bytes(public_key), now=ctx.obj["now"])
    out.line(f"{shown(company_id)} now signs with key [bold]{fpr}[/]")
    out.finish({"company_id": company_id, "fingerprint": fpr})


# Registered last: each group is its own module.
from .log import log_group  # noqa: E402
from .monthly import batch, intake, status  # noqa: E402
from .overrides import overrides  # noqa: E402
from .protect import protect  # noqa: E402  (standalone mode: aggregator/standalone.py)
from .protocols import protocols  # noqa: E402
from .releases import audit_command, releases, waivers  # noqa: E402
from .rules import rules  # noqa: E402

for command in (
    intake,
    status,
    batch,
    log_group,
    releases,
    waivers,
    overrides,
    audit_command,
    protect,
    protocols,
    rules,
):
    main.add_command(command)
