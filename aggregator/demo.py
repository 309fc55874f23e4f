"""`make demo`: the whole monthly cycle on the bundled sample data, as the companies and the secretariat do it.

1. A fresh secretariat workspace in work/demo/workspace (keys, registry, encrypted store).
2. Every sample company gets a signing key and is registered (with its group); waivers are recorded.
3. Each company seals its files for each period (checked first, as `imvo-submit seal` does); the broken
   samples are sealed without the check, as a careless sender would, plus envelope-level attacks: a file
   sealed for the wrong period, a tampered file, an unregistered sender, a duplicate and a late correction.
4. Intake per period, then the batch per covenant and period; committee files go to out/.

Nothing is precomputed: deleting out/ and work/ and rerunning gives byte-identical files in out/.
"""

from __future__ import annotations

import csv
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from imvo_submit.company import seal_submission, sealed_name
from imvo_submit.envelope import keys
from imvo_submit.states import FileState
from imvo_submit.validation import check_files

from . import batch as batch_mod
from .errors import AggregatorError
from .intake import IntakeReport, run_intake
from .registry import Registry
from .workspace import create_workspace

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"
DEMO_DIR = Path("work") / "demo"
OUT_DIR = Path("out")
# Demo only: a passphrase everyone can read (keys are derived at the production cost all the same).
DEMO_PASSPHRASE = "demo passphrase - not a secret"
RELEASE_DAY = "2026-04-15T09:00:00Z"
COVENANTS = ("textile", "gold", "banking", "insurance", "food", "forestry")
PROTOCOLS = {covenant: ROOT / "protocols" / f"{covenant}.toml" for covenant in COVENANTS}


@dataclass
class DemoCompany:
    company_id: str
    name: str
    group_id: str
    covenant: str
    waiver: bool
    signing_key: object = field(repr=False)


def sealed_at(period: str, day: int = 10, hour: int = 9) -> str:
    """Companies seal in the month after the period; a fixed clock keeps the demo reproducible."""
    year, month = map(int, period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:00:00Z"


def load_companies() -> list[DemoCompany]:
    with open(SAMPLES / "companies.csv", encoding="utf-8", newline="") as handle:
        return [
            DemoCompany(
                r["company_id"],
                r["name"],
                r["group_id"],
                r["covenant"],
                r["waiver"] == "yes",
                keys.generate_signing_key(),
            )
            for r in csv.DictReader(handle)
        ]


def register_companies(workspace, companies: list[DemoCompany]) -> None:
    with workspace.session("2025-01-02T09:00:00Z") as store:
        registry = Registry(store)
        for c in companies:
            registry.add(
                c.company_id,
                c.name,
                [c.covenant],
                keys.public_key_bytes(c.signing_key.public_key()),
                group_id=c.group_id,
                now="2025-01-02T09:00:00Z",
            )
            if c.waiver:
                registry.grant_waiver(c.company_id, c.covenant, "*", now="2025-01-02T09:00:00Z")


def seal_period(workspace, companies: dict[str, DemoCompany], covenant: str, period: str, inbox: Path) -> int:
    """Each company checks its files with the covenant's rules (as `imvo-submit seal` does), then seals them.

    The demo checks a period's files of one template in one call: check_files gives each file the result it
    gets alone, and its per-call overhead is paid once instead of per file."""
    recipient = recipient_key(workspace)
    sources = sorted((SAMPLES / "submissions" / covenant / period).iterdir())
    by_template: dict[str, list[Path]] = {}
    for source in sources:
        by_template.setdefault(source.stem.split("__")[1], []).append(source)
    for template, members in by_template.items():
        for source, result in zip(members, check_files(members, covenant, template), strict=True):
            if not result.ok:
                raise AggregatorError(f"sample_data: {source.name} does not meet the {covenant} rules")
    for source in sources:
        company = companies[source.name.split("__")[0]]
        seal_submission(
            source,
            inbox,
            company_id=company.company_id,
            covenant=covenant,
            period=period,
            template=source.stem.split("__")[1],
            recipient_key=recipient,
            signing_key=company.signing_key,
            created=sealed_at(period),
            check=False,
        )
    return len(sources)


def seal_broken(workspace, companies: dict[str, DemoCompany], inboxes: dict[tuple[str, str], Path]) -> list[dict]:
    """Seal the broken samples (without the local check) and play the envelope-level cases of broken.toml.

    Returns the late cases (corrections) that arrive in a second intake after the first one.
    """
    recipient = recipient_key(workspace)
    late = []
    for case in tomllib.loads((SAMPLES / "broken.toml").read_text(encoding="utf-8"))["case"]:
        inbox = inboxes[(case["covenant"], case["period"])]
        if case["level"] == "validation":
            _seal(case, companies[case["company"]], recipient, inbox, check=False, prefix="broken_")
        elif case["id"] == "wrong_period":
            _seal(
                case,
                companies[case["company"]],
                recipient,
                inbox,
                period=case["seal_period"],
                prefix="replay_",
            )
        elif case["id"] == "tampered":
            target = _seal(case, companies[case["company"]], recipient, inbox, prefix="tampered_")
            data = bytearray(target.read_bytes())
            data[-1] ^= 0x01
            target.write_bytes(bytes(data))
        elif case["id"] == "unregistered_company":
            stranger = DemoCompany(
                case["seal_as_company"], "?", "?", case["covenant"], False, keys.generate_signing_key()
            )
            _seal(case, stranger, recipient, inbox, prefix="stranger_")
        elif case["id"] == "exact_duplicate":
            original = inbox / sealed_name(case["company"], case["covenant"], case["template"], case["period"])
            shutil.copyfile(original, inbox / ("again_" + original.name))
        elif case["id"] == "corrected_resubmission":
            late.append(case)
        else:
            raise AggregatorError(f"sample_data/broken.toml: case '{case['id']}' is not known to the demo")
    return late


def _seal(
    case: dict,
    company: DemoCompany,
    recipient,
    inbox: Path,
    *,
    check: bool = True,
    period=None,
    prefix="",
    created: str | None = None,
) -> Path:
    staging = inbox.parent / ".staging"
    staging.mkdir(exist_ok=True)
    target = seal_submission(
        SAMPLES / case["file"],
        staging,
        company_id=company.company_id,
        covenant=case["covenant"],
        period=period or case["period"],
        template=case["template"],
        recipient_key=recipient,
        signing_key=company.signing_key,
        created=created or sealed_at(case["period"], hour=11),
        check=check,
    )
    return target.rename(inbox / (prefix + target.name))


def recipient_key(workspace):
    return keys.load_public_key(workspace.keys_dir / "secretariat_encryption.pub")


def periods_of(covenant: str) -> list[str]:
    return sorted(p.name for p in (SAMPLES / "submissions" / covenant).iterdir() if p.is_dir())


def run_demo(console: Console) -> int:
    started = time.perf_counter()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    workspace = create_workspace(
        DEMO_DIR / "workspace",
        DEMO_PASSPHRASE,
        list(PROTOCOLS.values()),
        now="2025-01-02T09:00:00Z",
    )
    companies = load_companies()
    register_companies(workspace, companies)
    by_id = {c.company_id: c for c in companies}
    console.print(f"workspace {workspace.root}: {len(companies)} companies registered")

    inboxes = {}
    for covenant in PROTOCOLS:
        for period in periods_of(covenant):
            inbox = DEMO_DIR / "inbox" / covenant / period
            inbox.mkdir(parents=True, exist_ok=True)
            inboxes[(covenant, period)] = inbox
            n = seal_period(workspace, by_id, covenant, period, inbox)
            console.print(f"sealed {n} {covenant} submissions for {period}")
    late = seal_broken(workspace, by_id, inboxes)

    intake_reports = {}
    for (covenant, period), inbox in inboxes.items():
        intake_reports[(covenant, period)] = run_intake(
            workspace, inbox, now=sealed_at(period, day=28), expected_period=period
        )
    for case in late:  # corrections arrive later, before the batch: they supersede the original
        inbox = inboxes[(case["covenant"], case["period"])]
        _seal(
            case,
            by_id[case["company"]],
            recipient_key(workspace),
            inbox,
            prefix="corrected_",
            created=sealed_at(case["period"], day=27),
        )
        later = run_intake(workspace, inbox, now=sealed_at(case["period"], day=28), expected_period=case["period"])
        intake_reports[(case["covenant"], case["period"])].outcomes.extend(later.outcomes)
    _print_intake(console, intake_reports)

    reports = []
    for covenant in PROTOCOLS:
        periods = periods_of(covenant)
        for period in periods:
            # The committee gets every month; the public annual report only the last period (yearly window).
            audiences = None if period == periods[-1] else ["monitoring_committee"]
            report = batch_mod.run_batch(
                workspace, covenant, period, out_dir=OUT_DIR, now=RELEASE_DAY, audiences=audiences
            )
            batch_mod.print_report(report, console)
            reports.append(report)
    _print_releases(console, reports)
    console.print(f"\ncommittee files are in [bold]{OUT_DIR}/[/] (open the report.html of each folder);")
    console.print(
        f"the secretariat's audit reports are sealed in [bold]{workspace.secretariat_dir}/[/]; open one with "
        f"AGGREGATOR_PASSPHRASE='{DEMO_PASSPHRASE}' aggregator -w {workspace.root} releases report RELEASE --out DIR"
    )
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return 0


def _print_intake(console: Console, reports: dict[tuple[str, str], IntakeReport]) -> None:
    table = Table("covenant", "period", "accepted", "duplicate", "superseded", "quarantined", title="Intake")
    problems = Table("covenant", "period", "file", "state", "reason", title="Files not accepted")
    for (covenant, period), report in reports.items():
        superseded = sum("replaces" in o.reason for o in report.outcomes)
        table.add_row(
            covenant,
            period,
            str(report.count(FileState.ACCEPTED)),
            str(report.count(FileState.DUPLICATE)),
            str(superseded),
            str(report.count(FileState.QUARANTINED)),
        )
        for o in report.outcomes:
            if o.state in (FileState.QUARANTINED, FileState.DUPLICATE):
                problems.add_row(covenant, period, o.file, o.state, o.reason)
    console.print(table)
    console.print(problems)


def _print_releases(console: Console, reports: list[batch_mod.BatchReport]) -> None:
    """One line per release of every covenant: what the readers see and whether the audit passed."""
    table = Table("covenant", "period", "audience", "cells", "published", "as a range", "hidden", "audit",
                  title="Releases")  # fmt: skip
    for report in reports:
        for o in report.outcomes:
            if not o.released:
                table.add_row(report.covenant, report.period, o.audience_id, "-", "-", "-", "-", "not released")
                continue
            shown = o.internal["coverage"]
            counts = (shown["cells"], shown["published"], shown["ranged"], shown["hidden"])
            table.add_row(report.covenant, report.period, o.audience_id, *map(str, counts), o.summary["audit"])
    console.print(table)


def main() -> None:
    console = Console(highlight=False, width=140)
    try:
        sys.exit(run_demo(console))
    except AggregatorError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
