"""`imvo-submit`: the companies' command line. Small on purpose: set up once, then check and seal each month.
Every command takes --json (one document, docs/json.md).

The checks need pandas and pandera (over a second to import), so each command imports what it uses when it runs:
`--help` and `--version` answer at once."""

from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from ..states import FileState
from .common import checked_period, passphrase, utc_now, version_option
from .output import EXIT_PROBLEMS, Output, reporting_for, shown

PASSPHRASE_ENV = "IMVO_PASSPHRASE"
reporting = reporting_for(__version__)
HOME_OPTION = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: _company().default_home(),
    show_default="$IMVO_SUBMIT_HOME or ~/.imvo-submit",
    help="Where your key and the secretariat's keys are kept.",
)


def _company():
    from .. import company

    return company


@click.group("imvo-submit", help="Prepare, check and seal your covenant monitoring data for the secretariat.")
@click.option("--now", envvar="IMVO_NOW", hidden=True, help="Fixed clock (ISO time) for reproducible runs.")
@version_option("imvo-submit", __version__)
@click.pass_context
def main(ctx: click.Context, now: str | None) -> None:
    ctx.obj = {"now": now}


@main.command(help="Set up this computer for your company with the secretariat's two public key files.")
@click.option("--company", "company_id", required=True, help="Your company id, as given by the secretariat.")
@click.option("--covenant", required=True, help="Covenant, e.g. textile or gold.")
@click.option("--secretariat-key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--receipt-key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rules",
    "rules_bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The rules bundle (.imvo-rules) the secretariat sent; without it the rules this tool shipped with apply.",
)
@click.option("--yes", is_flag=True, help="Do not ask to confirm the fingerprints.")
@HOME_OPTION
@reporting
def init(company_id, covenant, secretariat_key, receipt_key, rules_bundle, yes, home, out: Output) -> None:
    from ..envelope import keys

    fingerprints = {}
    loaded = _company().secretariat_keys(secretariat_key, receipt_key)  # refuses swapped or damaged files
    for label, key in zip(("encryption", "receipt"), loaded, strict=True):
        fingerprints[label] = keys.fingerprint(key)
        out.line(f"secretariat {label} key fingerprint: [bold]{fingerprints[label]}[/]")
    if not yes and not click.confirm("Do these match what the secretariat told you by phone?", err=True):
        raise click.Abort()
    company_home = _company().init_home(home, company_id, covenant, secretariat_key, receipt_key, rules_bundle)
    out.line(f"set up {shown(home)} for {shown(company_id)}; next: `imvo-submit keygen`")
    rules = _describe_rules(out, company_home.root)
    result = {"home": str(home), "company_id": company_id, "covenant": covenant, "rules": rules}
    out.finish(result | {f"{label}_fingerprint": f for label, f in fingerprints.items()})


@main.command(help="Create your company's signing key (passphrase from $IMVO_PASSPHRASE or a prompt).")
@HOME_OPTION
@reporting
def keygen(home: Path, out: Output) -> None:
    company_home = _company().open_home(home)
    fpr = _company().keygen(company_home, passphrase(PASSPHRASE_ENV, "New passphrase for your key", confirm=True))
    out.line(f"your public key: {shown(company_home.public_key_path)}")
    out.line(f"fingerprint: [bold]{fpr}[/]  send the .pub file to the secretariat and confirm this by phone")
    out.finish({"public_key": str(company_home.public_key_path), "fingerprint": fpr})


# What check, seal and template say, in both languages (the reports, notes and problems carry their own).
SAY = {
    "en": {
        "wrote": "wrote {target}: fill in one sheet per table, then run `imvo-submit check {name}`",
        "note": "note:",
        "ok": "{what}: [green]OK[/] ({template}, {rows} rows, rules {version})",
        "same_list": "the same list is in {xlsx} and {csv}",
        "sheet": "sheet {template} of {file}",
        "not_sealed": "[red]not sealed:[/] {what} does not meet the {covenant} rules; nothing was sealed",
        "not_sealed_because": "[red]not sealed:[/] {why}",
        "sealed": "sealed: {target}",
        "send": "send this one file to the secretariat's inbox; keep the receipt you get back",
        "send_several": "send these {n} files to the secretariat's inbox, one per table; keep the receipts you get "
        "back",
    },
    "nl": {
        "wrote": "{target} geschreven: vul per tabel één blad in en voer dan `imvo-submit check {name}` uit",
        "note": "let op:",
        "ok": "{what}: [green]in orde[/] ({template}, {rows} regels, controleregels {version})",
        "same_list": "dezelfde lijst staat in {xlsx} en {csv}",
        "sheet": "blad {template} van {file}",
        "not_sealed": "[red]niet verzegeld:[/] {what} voldoet niet aan de regels van {covenant}; er is niets verzegeld",
        "not_sealed_because": "[red]niet verzegeld:[/] {why}",
        "sealed": "verzegeld: {target}",
        "send": "stuur dit ene bestand naar de inbox van het secretariaat; bewaar het ontvangstbewijs dat u "
        "terugkrijgt",
        "send_several": "stuur deze {n} bestanden naar de inbox van het secretariaat, één per tabel; bewaar de "
        "ontvangstbewijzen die u terugkrijgt",
    },
}
LANGUAGE_OPTION = click.option(
    "--language", type=click.Choice(["en", "nl"]), default="en", show_default=True, help="en: English, nl: Nederlands."
)


@main.command(help="Write an Excel template to fill in, with drop-down lists and instructions.")
@click.option("--covenant", required=True)
@LANGUAGE_OPTION
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path))
@HOME_OPTION
@reporting
def template(covenant: str, language: str, out_path: Path | None, home: Path, out: Output) -> None:
    from ..validation import write_template

    target = out_path or Path(f"{covenant}_template.xlsx")
    with _rules_of(home):
        write_template(covenant, target, language=language)
    out.line(SAY[language]["wrote"].format(target=shown(target), name=shown(target.name)))
    out.finish({"template": str(target), "covenant": covenant, "language": language})


@main.command(help="Check FILE with exactly the secretariat's rules; writes an error report next to it.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--template", "template_name", help="Which table the file holds (detected when omitted).")
@click.option("--covenant", help="Covenant (default: the one of your home folder).")
@LANGUAGE_OPTION
@HOME_OPTION
@click.pass_context
@reporting
def check(ctx, file: Path, template_name, covenant, language, home, out: Output) -> None:
    from ..validation import check_covenant, rules_version

    with _rules_of(home):
        covenant = check_covenant(covenant) if covenant else _company().open_home(home).covenant
        results, version = _company().check_tables(file, covenant, template_name), rules_version()
    docs = [_show_check(out, file, result, language, version, several=len(results) > 1) for result in results]
    ok = all(result.ok for result in results)
    doc = docs[0] if len(docs) == 1 else {"file": str(file), "ok": ok, "tables": docs}
    out.finish(doc, 0 if ok else EXIT_PROBLEMS)


def _show_check(out: Output, file: Path, result, language: str, version: str, *, several: bool) -> dict:
    """The notes and the verdict of one table of FILE (with its report files when it fails); its JSON part."""
    _show_notes(out, result.warnings, language)
    doc = {"file": str(file), "ok": result.ok, "template": result.template, "warnings": _warnings(result.warnings)}
    doc["rules_version"] = version
    if result.ok:
        what = _what(file, result.template, language, several)
        rows = len(result.frame)
        out.line(SAY[language]["ok"].format(what=what, template=shown(result.template), rows=rows, version=version))
        return doc | {"rows": len(result.frame)}
    reports = _show_report(out, file, result.report, language, result.template if several else None)
    return doc | {"problems": result.report.to_dict()["problems"], "reports": reports}


def _show_notes(out: Output, warnings, language: str) -> None:
    for warning in warnings:
        out.line(f"[yellow]{SAY[language]['note']}[/] {shown(warning.message(language))}")


def _what(file: Path, template: str | None, language: str, several: bool) -> str:
    """The file, or one table sheet of it when a workbook holds several."""
    return (
        SAY[language]["sheet"].format(template=shown(template), file=shown(file.name)) if several else shown(file.name)
    )


def _rules_of(home: Path):
    """The rules in force for a command run with this home folder: the bundle installed there, else the shipped."""
    from ..validation import using_rules

    return using_rules(_company().installed_rules(home))


def _describe_rules(out: Output, home: Path) -> dict:
    from ..bundle import installed_version
    from ..validation import rules_version

    with _rules_of(home):
        installed = installed_version(home / "rules")
        version = rules_version()
    source = f"the secretariat's bundle of {installed['created']}" if installed else "shipped with imvo-submit"
    out.line(f"rules in force: {version} ({shown(source)})")
    return {"rules_version": version, "installed": installed is not None, "created": (installed or {}).get("created")}


@main.group(help="The secretariat's rules this computer checks with.")
def rules() -> None:
    pass


@rules.command("update", help="Install the rules bundle (.imvo-rules) the secretariat sent.")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@HOME_OPTION
@reporting
def rules_update(bundle: Path, home: Path, out: Output) -> None:
    company_home = _company().open_home(home)
    _company().update_rules(company_home, bundle)
    out.finish(_describe_rules(out, company_home.root))


@rules.command("show", help="Show which rules are in force: the installed bundle's version, or the shipped rules.")
@HOME_OPTION
@reporting
def rules_show(home: Path, out: Output) -> None:
    out.finish(_describe_rules(out, home))


def _warnings(warnings) -> list[dict]:
    return [{"code": w.code, "column": w.column, "count": w.count, "message": w.message_en} for w in warnings]


def _show_report(out: Output, file: Path, report, language: str, table: str | None = None) -> list[str]:
    """The report on the terminal and as FILE.errors.xlsx/.csv (FILE.TABLE.errors.* for one table of several)."""
    from ..validation import write_report_csv, write_report_xlsx

    out.plain(report.render_text(language))
    stem = file.stem if table is None else f"{file.stem}.{table}"
    xlsx = file.with_name(stem + ".errors.xlsx")
    csv = file.with_name(stem + ".errors.csv")
    write_report_xlsx(report, xlsx)
    write_report_csv(report, csv, language)
    out.plain(SAY[language]["same_list"].format(xlsx=xlsx.name, csv=csv.name))
    return [str(xlsx), str(csv)]


@main.command(help="Check FILE, then seal it for the secretariat (encrypted to it, signed by you).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--period", required=True, help="Reporting period, YYYY-MM.")
@click.option("--template", "template_name", help="Which table the file holds (detected when omitted).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for the sealed file.")
@LANGUAGE_OPTION
@HOME_OPTION
@click.pass_context
@reporting
def seal(ctx, file: Path, period: str, template_name, out_dir, language, home, out: Output) -> None:
    checked_period(period)
    with _rules_of(home):  # the rules in force: checked, then recorded in each sealed file
        _seal(ctx, file, period, template_name, out_dir, language, home, out)


def _seal(ctx, file: Path, period: str, template_name, out_dir, language, home, out: Output) -> None:
    from ..errors import ValidationFailed

    company_home = _company().open_home(home)
    covenant = company_home.covenant
    # checked before the passphrase is asked (a file that fails never prompts), and again as it is sealed
    results = _company().check_tables(file, covenant, template_name)
    several = len(results) > 1
    failed = [result for result in results if not result.ok]
    if failed:
        reports, problems = [], []
        for result in failed:
            what = _what(file, result.template, language, several)
            out.line(SAY[language]["not_sealed"].format(what=what, covenant=shown(covenant)))
            reports += _show_report(out, file, result.report, language, result.template if several else None)
            problems += result.report.to_dict()["problems"]
        out.finish({"sealed": None, "problems": problems, "reports": reports}, EXIT_PROBLEMS)
    for result in results:
        _show_notes(out, result.warnings, language)
    signing_key = company_home.signing_key(passphrase(PASSPHRASE_ENV, "Passphrase of your key"))
    recipient_key = company_home.secretariat_encryption_key()
    targets = []
    for result in results:
        try:
            targets.append(
                _company().seal_submission(
                    file,
                    out_dir or file.parent,
                    company_id=company_home.company_id,
                    covenant=covenant,
                    period=period,
                    template=result.template,
                    recipient_key=recipient_key,
                    signing_key=signing_key,
                    created=utc_now(ctx.obj["now"]),
                )
            )
        except ValidationFailed as exc:  # the file changed after the first check
            out.line(SAY[language]["not_sealed_because"].format(why=shown(exc.message)))
            reports = _show_report(out, file, exc.report, language, result.template if several else None)
            problems = exc.report.to_dict()["problems"] if exc.report is not None else []
            out.finish({"sealed": None, "problems": problems, "reports": reports}, EXIT_PROBLEMS)
    say = SAY[language]
    sent = say["send_several"].format(n=len(targets)) if several else say["send"]
    out.plain("\n".join([*(say["sealed"].format(target=target) for target in targets), sent]))
    out.finish({"sealed": str(targets[0]), "sealed_files": [str(t) for t in targets], "period": period})


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
CATEGORY_MEANING = {
    "valid": "the data met every rule",
    "valid_check_numbers": "accepted, but some numbers could be read two ways (1.234: a thousand or one?); check "
    "that the secretariat read them as you meant, and send a correction if not",
    "duplicate": "the same content was received before",
    "replaced": "replaced by a later correction",
    "unreadable": "the file could not be opened: damaged, changed on the way, empty or too large",
    "sender": "the sender was not recognised: an unregistered or revoked company, or a key that is not your "
    "current one",
    "address": "a covenant or template the secretariat does not take from your company",
    "period": "the reporting period was not the one expected, or lies in the future",
    "clock": "the file was sealed at a time in the future: correct your computer's clock and seal it again",
    "replay": "an older file than the one already accepted for the period",
    "content": "the data does not meet the rules: run `imvo-submit check` on it",
    "limits": "the file could not be checked within the secretariat's memory or time limits",
}


@main.command("verify-receipt", help="Check that a receipt really comes from the secretariat and show it.")
@click.argument("receipt", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@HOME_OPTION
@click.pass_context
@reporting
def verify_receipt(ctx, receipt: Path, home: Path, out: Output) -> None:
    from .. import envelope

    company_home = _company().open_home(home)
    data = envelope.verify_receipt(receipt.read_bytes(), company_home.secretariat_signing_key())
    out.line(f"{shown(receipt.name)}: [green]genuine[/], signed by the secretariat")
    for label, key in RECEIPT_LINES:
        out.line(f"  {label + ':':<14}{shown(data.get(key, '?'))}")
    state, category = str(data.get("state")), data.get("reason_category")
    colour = "red" if state == FileState.QUARANTINED else "green"
    out.line(f"  {'state:':<14}[bold {colour}]{shown(state)}[/]: {RECEIPT_MEANING.get(state, '')}")
    if category is not None:
        out.line(f"  {'why:':<14}{shown(category)}: {CATEGORY_MEANING.get(str(category), '')}")
    ours = data.get("company_id") == company_home.company_id
    if not ours:
        out.line(f"[yellow]note:[/] this receipt is for company {shown(data.get('company_id'))}, not yours")
    meaning = {"state_meaning": RECEIPT_MEANING.get(state), "category_meaning": CATEGORY_MEANING.get(str(category))}
    result = {"genuine": True, "receipt": data, "yours": ours} | meaning
    out.finish(result, EXIT_PROBLEMS if state == FileState.QUARANTINED else 0)
