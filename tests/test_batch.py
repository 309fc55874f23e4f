"""The batch's release controls (data age, frequency, revisions) and a revision written next to the original."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator import batch, history
from aggregator.errors import ReleaseRefused
from aggregator.release.model import ReleasedCell, ReleasedTable
from aggregator.workspace import open_workspace
from support.lab import JAN, PROTOCOL, Lab, four_companies, four_company_workspace

AGED = PROTOCOL.replace("[age]\nB = 0\nC = 0", "[age]\nB = 3\nC = 12")
QUARTERLY = PROTOCOL.replace('frequency = "monthly"', 'frequency = "quarterly"')


def test_an_early_release_is_blocked_naming_the_table_and_the_date(tmp_path: Path):
    lab = Lab(tmp_path, AGED)
    four_companies(lab)
    with pytest.raises(ReleaseRefused) as refused:
        batch.release_audience(lab.store, lab.protocol, JAN, "committee", now="2025-04-30T23:59:59Z")
    assert refused.value.message == (
        "table 'weight' holds data of 2025-01 that is too recent to release; it may go out from 2025-05-01"
    )
    assert refused.value.hint
    # the first day it is allowed (class B: three whole months after January)
    done = batch.release_audience(lab.store, lab.protocol, JAN, "committee", now="2025-05-01T00:00:00Z")
    assert done.release_id == "textile-2025-01-committee-r1"


def test_a_second_release_in_the_same_window_needs_revision(tmp_path: Path):
    lab = Lab(tmp_path)
    four_companies(lab)
    lab.release(JAN)
    with pytest.raises(
        ReleaseRefused,
        match=r"already received release textile-2025-01-committee-r1 in the same "
        r"monthly window \(2025-01\)",
    ) as refused:
        lab.release(JAN)
    assert "--revision" in refused.value.hint
    assert lab.release(JAN, revision=True).release_id == "textile-2025-01-committee-r2"


def test_a_revision_needs_an_earlier_release_of_that_period(tmp_path: Path):
    lab = Lab(tmp_path)
    four_companies(lab)
    with pytest.raises(ReleaseRefused, match="there is no earlier release of 2025-01 for 'committee' to revise"):
        lab.release(JAN, revision=True)


def test_a_quarterly_audience_gets_one_release_per_quarter(tmp_path: Path):
    lab = Lab(tmp_path, QUARTERLY)
    four_companies(lab, JAN)
    four_companies_feb = {"cotton": 30, "polyester": 30, "wool": 30}
    for c in "ABCD":
        lab.submit(c, "2025-02", four_companies_feb)
        lab.submit(c, "2025-04", four_companies_feb)
    lab.release(JAN)
    with pytest.raises(ReleaseRefused, match=r"quarterly window \(2025-Q1\)"):
        lab.release("2025-02")
    assert lab.release("2025-04").release_id == "textile-2025-04-committee-r1"


def test_run_batch_writes_a_revision_next_to_the_superseded_files(tmp_path: Path):
    ws = four_company_workspace(tmp_path)
    out = tmp_path / "out"
    first = batch.run_batch(ws, "textile", JAN, out_dir=out, now="2026-01-01T00:00:00Z")
    assert [o.released for o in first.outcomes] == [True]
    with ws.open_store() as store:
        Lab.on_store(ws.protocol("textile"), store).submit("L", JAN, {"cotton": 50})
    again = batch.run_batch(ws, "textile", JAN, out_dir=out, now="2026-01-02T00:00:00Z")
    assert not again.outcomes[0].released and "--revision" in again.outcomes[0].reason
    revised = batch.run_batch(ws, "textile", JAN, out_dir=out, now="2026-01-02T00:00:00Z", revision=True)
    outcome = revised.outcomes[0]
    assert outcome.released and outcome.summary["audited_with"] == ["textile-2025-01-committee-r1"]
    assert outcome.summary["cells_suppressed"] == 2  # cotton and the total: they changed by L's 50 alone
    target = out / "textile" / JAN / "committee"
    assert (target.parent / "committee.superseded-1" / "manifest.json").exists()
    assert json.loads((target / "manifest.json").read_text())["is_revision"] is True


def test_the_secretariat_audit_report_is_stored_sealed_and_opens_with_the_passphrase(tmp_path: Path, monkeypatch):
    from click.testing import CliRunner

    from aggregator.cli.secretariat import main
    from aggregator.errors import AggregatorError

    ws = four_company_workspace(tmp_path)
    batch.run_batch(ws, "textile", JAN, out_dir=tmp_path / "out", now="2026-01-01T00:00:00Z")
    secret = ws.secretariat_dir / "textile" / JAN / "committee"
    sealed = sorted(p.name for p in secret.iterdir())
    assert sealed == ["audit.html.sealed", "audit.xlsx.sealed"]
    assert b"<html" not in (secret / "audit.html.sealed").read_bytes()  # nothing readable at rest
    monkeypatch.setenv("AGGREGATOR_PASSPHRASE", "correct horse battery")
    opened = CliRunner().invoke(
        main,
        [
            "--workspace",
            str(tmp_path / "ws"),
            "releases",
            "report",
            "textile-2025-01-committee-r1",
            "--out",
            str(tmp_path / "report"),
        ],
    )
    assert opened.exit_code == 0, opened.output
    assert b"<html" in (tmp_path / "report" / "audit.html").read_bytes()
    wrong = open_workspace(tmp_path / "ws", "not the passphrase at all")
    wrong.store_salt = ws.store_salt
    with pytest.raises(AggregatorError, match="wrong passphrase, or the file was changed"):
        wrong.open_private_file(secret / "audit.html.sealed")


def _table(kind: str, cells: list[ReleasedCell]) -> ReleasedTable:
    return ReleasedTable("t", "T", "kg", ("country",), ("Country",), kind, cells)


def test_value_coverage_weighs_the_finest_cells_by_their_true_value():
    """The secretariat's information-loss figure: the share of value shown as a figure and as a range, counted
    over the finest cells only (a total would count its parts twice)."""
    cells = [
        ReleasedCell(("W",), ("World",), (0,), 100.0),
        ReleasedCell(("NL",), ("NL",), (1,), 60.0),
        ReleasedCell(("BE",), ("BE",), (1,), None, "primary", range_lo=0, range_hi=40, true_value=30.0),
        ReleasedCell(("DE",), ("DE",), (1,), None, "secondary", true_value=10.0),  # hidden without a range
    ]
    assert batch.value_coverage(_table("sum", cells)) == {"published": 0.6, "as_range": 0.3}
    assert batch.value_coverage(_table("companies", cells)) is None  # company counts do not add up
    empty = [ReleasedCell(("W",), ("World",), (0,), 0.0), ReleasedCell(("NL",), ("NL",), (1,), 0.0)]
    assert batch.value_coverage(_table("count", empty)) is None


def test_the_batch_reports_value_coverage_to_the_secretariat_only(tmp_path: Path):
    ws = four_company_workspace(tmp_path)
    report = batch.run_batch(ws, "textile", JAN, out_dir=tmp_path / "out", now="2026-01-01T00:00:00Z")
    (outcome,) = report.outcomes
    shares = outcome.internal["value_coverage"]
    assert shares and all(0 <= s["published"] + s["as_range"] <= 1 for s in shares.values())
    assert report.summary()["audiences"][0]["value_coverage"] == shares  # in `aggregator batch --json`
    committee = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert b"value_coverage" not in committee and b"as_range" not in committee


def test_the_secretariat_report_lists_each_insiders_interval_on_request(tmp_path: Path, monkeypatch):
    # L alone reports silk: silk is hidden (one contributor) with a partner, and the contributors of the
    # partner (none of them in silk) are insiders judged on silk. `releases report --insiders` computes every
    # insider's interval again from the ledger and writes it next to the audit report.
    from click.testing import CliRunner
    from openpyxl import load_workbook

    from aggregator.cli.secretariat import main
    from aggregator.release.audit import INSIDER_COLUMNS

    ws = four_company_workspace(tmp_path)
    with ws.open_store() as store:
        Lab.on_store(ws.protocol("textile"), store).submit("L", JAN, {"silk": 40})
    batch.run_batch(ws, "textile", JAN, out_dir=tmp_path / "out", now="2026-01-01T00:00:00Z")
    monkeypatch.setenv("AGGREGATOR_PASSPHRASE", "correct horse battery")
    release_id = "textile-2025-01-committee-r1"
    args = ["--workspace", str(tmp_path / "ws"), "releases", "report", release_id, "--out", str(tmp_path / "r")]
    opened = CliRunner().invoke(main, [*args, "--insiders"])
    assert opened.exit_code == 0, opened.output
    with ws.open_store() as store:
        expected = history.insider_rows(store, release_id)
    assert expected and f"{len(expected)} insider intervals" in opened.output
    sheet = load_workbook(tmp_path / "r" / "insiders.xlsx").active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == INSIDER_COLUMNS["en"]
    assert [r[:3] + r[8:] for r in rows] == [[x.table_id, x.cell_key, x.insider, "yes"] for x in expected]
    numbers = [[x.true_value, x.lo, x.hi, x.upl, x.lpl] for x in expected]
    assert [r[3:8] for r in rows] == [pytest.approx(n, rel=1e-12) for n in numbers]
    for _table, _cell, insider, truth, lo, hi, *_ in rows:
        assert lo - 1e-9 <= truth <= hi + 1e-9 and insider != "L"
    first = (tmp_path / "r" / "insiders.xlsx").read_bytes()
    assert CliRunner().invoke(main, [*args, "--insiders"]).exit_code == 0
    assert (tmp_path / "r" / "insiders.xlsx").read_bytes() == first  # the same bytes every time
