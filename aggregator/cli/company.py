"""`imvo-submit`: the companies' command line. Small on purpose: set up once, then check and seal each month."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from .. import company as company_mod
from .. import envelope
from ..envelope import keys
from ..errors import ValidationFailed
from ..states import FileState
from ..validation import check_file, write_report_csv, write_report_xlsx, write_template
from .common import EXIT_PROBLEMS, checked_period, console, friendly_errors, passphrase, utc_now

PASSPHRASE_ENV = "IMVO_PASSPHRASE"
HOME_OPTION = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=company_mod.default_home,
    show_default="$IMVO_SUBMIT_HOME or ~/.imvo-submit",
    help="Where your key and the secretariat's keys are kept.",
)


@click.group(help="Prepare, check and seal your covenant monitoring data for the secretariat.")
def main() -> None:
    pass


@main.command(help="Set up this computer for your company with the secretariat's two public key files.")
@click.option("--company", "company_id", required=True, help="Your company id, as given by the secretariat.")
@click.option("--covenant", required=True, help="Covenant, e.g. textile or gold.")
@click.option("--secretariat-key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--receipt-key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask to confirm the fingerprints.")
@HOME_OPTION
@friendly_errors
def init(company_id, covenant, secretariat_key, receipt_key, yes, home) -> None:
    for label, path in (("encryption", secretariat_key), ("receipt", receipt_key)):
        console.print(f"secretariat {label} key fingerprint: [bold]{keys.fingerprint(keys.load_public_key(path))}[/]")
    if not yes and not click.confirm("Do these match what the secretariat told you by phone?"):
        raise click.Abort()
    company_mod.init_home(home, company_id, covenant, secretariat_key, receipt_key)
    console.print(f"set up {home} for {company_id}; next: `imvo-submit keygen`")


@main.command(help="Create your company's signing key (passphrase from $IMVO_PASSPHRASE or a prompt).")
@HOME_OPTION
@friendly_errors
def keygen(home: Path) -> None:
    company_home = company_mod.open_home(home)
    fpr = company_mod.keygen(company_home, passphrase(PASSPHRASE_ENV, "New passphrase for your key", confirm=True))
    console.print(f"your public key: {company_home.public_key_path}")
    console.print(f"fingerprint: [bold]{fpr}[/]  send the .pub file to the secretariat and confirm this by phone")


@main.command(help="Write an Excel template to fill in, with drop-down lists and instructions.")
@click.option("--covenant", required=True)
@click.option("--language", type=click.Choice(["en", "nl"]), default="en", show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def template(covenant: str, language: str, out_path: Path | None) -> None:
    target = out_path or Path(f"{covenant}_template.xlsx")
    write_template(covenant, target, language=language)
    console.print(f"wrote {target}: fill in one sheet per table, then run `imvo-submit check {target.name}`")


@main.command(help="Check FILE with exactly the secretariat's rules; writes an error report next to it.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--template", "template_name", help="Which table the file holds (detected when omitted).")
@click.option("--covenant", help="Covenant (default: the one of your home folder).")
@click.option("--language", type=click.Choice(["en", "nl"]), default="en", show_default=True)
@HOME_OPTION
@click.pass_context
@friendly_errors
def check(ctx, file: Path, template_name, covenant, language, home) -> None:
    covenant = covenant or company_mod.open_home(home).covenant
    result = check_file(file, covenant, template_name)
    for warning in result.warnings:
        console.print(f"[yellow]note:[/] {escape(str(warning))}")
    if result.ok:
        console.print(f"{escape(file.name)}: [green]OK[/] ({result.template}, {len(result.frame)} rows)")
        return
    _show_report(file, result.report, language)
    ctx.exit(EXIT_PROBLEMS)


def _show_report(file: Path, report, language: str) -> None:
    console.print(report.render_text(language), markup=False)
    xlsx = file.with_name(file.stem + ".errors.xlsx")
    csv = file.with_name(file.stem + ".errors.csv")
    write_report_xlsx(report, xlsx)
    write_report_csv(report, csv)
    console.print(f"the same list is in {xlsx.name} and {csv.name}", markup=False)


@main.command(help="Check FILE, then seal it for the secretariat (encrypted to it, signed by you).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--period", required=True, help="Reporting period, YYYY-MM.")
@click.option("--template", "template_name", help="Which table the file holds (detected when omitted).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for the sealed file.")
@HOME_OPTION
@click.pass_context
@friendly_errors
def seal(ctx, file: Path, period: str, template_name, out_dir, home) -> None:
    checked_period(period)
    company_home = company_mod.open_home(home)
    signing_key = company_home.signing_key(passphrase(PASSPHRASE_ENV, "Passphrase of your key"))
    try:
        target = company_mod.seal_submission(
            file,
            out_dir or file.parent,
            company_id=company_home.company_id,
            covenant=company_home.covenant,
            period=period,
            template=template_name,
            recipient_key=company_home.secretariat_encryption_key(),
            signing_key=signing_key,
            created=utc_now(),
        )
    except ValidationFailed as exc:
        console.print(f"[red]not sealed:[/] {escape(exc.message)}")
        _show_report(file, exc.report, "en")
        ctx.exit(EXIT_PROBLEMS)
    console.print(
        f"sealed: {target}\nsend this one file to the secretariat's inbox; keep the receipt you get back",
        markup=False,
    )


RECEIPT_MEANING = {
    "received": "the secretariat received the file; a decision follows",
    FileState.ACCEPTED: "your data was accepted and will count in the aggregates",
    FileState.DUPLICATE: "the secretariat already had this content; it is not counted twice and nothing needs doing",
    FileState.SUPERSEDED: "a later correction you sent replaced this file; only the correction counts",
    FileState.QUARANTINED: "this file was NOT accepted; contact the secretariat to hear why and send a corrected file",
}
RECEIPT_LINES = (
    ("file", "file_name"),
    ("company", "company_id"),
    ("covenant", "covenant"),
    ("template", "template"),
    ("period", "period"),
    ("sealed at", "created"),
    ("received at", "received_at"),
    ("sealed file", "file_sha256"),
    ("signed by you", "signer_fingerprint"),
    ("log anchor", "log_head"),
)


@main.command("verify-receipt", help="Check that a receipt really comes from the secretariat and show it.")
@click.argument("receipt", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@HOME_OPTION
@click.pass_context
@friendly_errors
def verify_receipt(ctx, receipt: Path, home: Path) -> None:
    company_home = company_mod.open_home(home)
    data = envelope.verify_receipt(receipt.read_bytes(), company_home.secretariat_signing_key())
    console.print(f"{escape(receipt.name)}: [green]genuine[/], signed by the secretariat")
    for label, key in RECEIPT_LINES:
        console.print(f"  {label + ':':<14}{escape(str(data.get(key, '?')))}")
    state = str(data.get("state"))
    colour = "red" if state == FileState.QUARANTINED else "green"
    console.print(f"  {'state:':<14}[bold {colour}]{escape(state)}[/]: {RECEIPT_MEANING.get(state, '')}")
    if data.get("company_id") != company_home.company_id:
        console.print(f"[yellow]note:[/] this receipt is for company {escape(str(data.get('company_id')))}, not yours")
    if state == FileState.QUARANTINED:
        ctx.exit(EXIT_PROBLEMS)
