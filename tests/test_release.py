"""Release writers: structure, safety (no formulas, no internal data), determinism, atomicity."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import AggregatorError, ReleaseRefused
from aggregator.release import (
    InvalidRelease,
    Release,
    ReleasedCell,
    ReleasedTable,
    write_audit_report,
    write_release,
)
from aggregator.release import writer as writer_module
from aggregator.release.flat import csv_bytes
from aggregator.release.texts import format_number, neutralise, period_label

EVIL = "=cmd|' /C calc'!A0"
COMPANY_IDS = ("C0042", "G-HOLD-7")
HIDDEN_VALUE = 30765.4321  # true value of a hidden cell: must appear in no committee file
INTERNAL_WORDS = ("primary", "secondary", "primair", "secundair")
SHA = "ab" * 32


def cell(codes, labels, depths, value, status="published", **internal):
    return ReleasedCell(tuple(codes), tuple(labels), tuple(depths), value, status, **internal)


def companies_table(lang: str) -> ReleasedTable:
    """1-D hierarchy world -> region -> country; one primary and one secondary country."""
    world, europe, asia = ("World", "Europe", "Asia") if lang == "en" else ("Wereld", "Europa", "Azië")
    cells = [
        cell(["W"], [world], [0], 42),
        cell(["EU"], [europe], [1], 20),
        cell(["NL"], ["Netherlands"], [2], 12),
        cell(["BE"], ["Belgium"], [2], None, "primary", range_lo=0, range_hi=8, true_value=3, lo=0, hi=9, upl=1, lpl=1,
             reasons=("threshold", f"largest contributor {COMPANY_IDS[0]}")),
        cell(["ZZ"], [EVIL], [2], None, "secondary", range_lo=0, range_hi=8, true_value=5, lo=0, hi=9, upl=0, lpl=0,
             reasons=(f"pairs with BE; group {COMPANY_IDS[1]}",)),
        cell(["AS"], [asia], [1], 22),
        cell(["BD"], ["Bangladesh"], [2], 10),
        cell(["CN"], ["China"], [2], 12),
    ]  # fmt: skip
    return ReleasedTable(
        "companies_by_country", "Companies by country" if lang == "en" else "Bedrijven per land",
        "companies" if lang == "en" else "bedrijven", ("country",), ("Country" if lang == "en" else "Land",),
        "companies", cells, footnote="Counted at group level.",
    )  # fmt: skip


def risks_table() -> ReleasedTable:
    """2-D table themes x regions with totals along both dimensions; one hidden cell with a telltale value."""
    themes = [("T", "All themes", 0), ("child_labour", "Child labour", 1), ("living_wage", "@SUM(A1)", 1)]
    regions = [("W", "World", 0), ("EU", "Europe", 1), ("AS", "Asia", 1)]
    values = {
        ("T", "W"): 200000.5, ("T", "EU"): 100000.25, ("T", "AS"): 100000.25,
        ("child_labour", "W"): 120000.0, ("child_labour", "EU"): 60000.0, ("child_labour", "AS"): 60000.0,
        ("living_wage", "W"): 80000.5, ("living_wage", "EU"): None, ("living_wage", "AS"): None,
    }  # fmt: skip
    cells = []
    for tcode, tlabel, tdepth in themes:
        for rcode, rlabel, rdepth in regions:
            value = values[(tcode, rcode)]
            status = "published" if value is not None else ("primary" if rcode == "EU" else "secondary")
            hidden = HIDDEN_VALUE if rcode == "EU" else 80000.5 - HIDDEN_VALUE
            extra = {} if value is not None else {"true_value": hidden, "lo": 0.0, "hi": 80000.5, "upl": 5000.0}
            cells.append(cell([tcode, rcode], [tlabel, rlabel], [tdepth, rdepth], value, status, **extra))
    return ReleasedTable(
        "risk_volume", "Order volume at risk by theme and region", "EUR", ("theme", "region"),
        ("Theme", "Region"), "sum", cells, decimals=2,
    )  # fmt: skip


def ratio_table() -> ReleasedTable:
    cells = [
        cell(["W"], ["World"], [0], 12.54),
        cell(["EU"], ["Europe"], [1], 8.25),
        cell(["AS"], ["Asia"], [1], None, "secondary", true_value=17.0, reasons=("denominator hidden",)),
    ]
    return ReleasedTable("wage_gap", "Living-wage gap by region", "%", ("region",), ("Region",), "ratio", cells, "", 1)


def make_release(lang: str = "en", **changes) -> Release:
    fields = dict(
        covenant_id="textile", covenant_name="Textile covenant", period="2026-10", audience_id="committee",
        audience_name="Monitoring committee", language=lang, protocol_version="1.2", protocol_sha256=SHA,
        code_version="0.1.0", created="2026-11-15", log_head="12:" + "ab" * 32,
        tables=[companies_table(lang), risks_table(), ratio_table()],
        audit_summary={"cells_suppressed": 6, "lp_solves": 14, "passed": True},
    )  # fmt: skip
    fields.update(changes)
    return Release(**fields)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    """One committee release per language, written once for the read-only tests."""
    out = {}
    for lang in ("en", "nl"):
        root = tmp_path_factory.mktemp(f"release-{lang}")
        out[lang] = write_release(make_release(lang), root)
    return out


def xlsx_of(files) -> Path:
    return next(f.path for f in files.files if f.name.endswith(".xlsx"))


# ---------------------------------------------------------------- xlsx


def test_xlsx_has_contents_then_one_sheet_per_table(written):
    book = openpyxl.load_workbook(xlsx_of(written["en"]))
    assert book.sheetnames[0] == "Contents"
    assert len(book.sheetnames) == 4
    assert all(len(name) <= 31 for name in book.sheetnames)
    assert len({n.lower() for n in book.sheetnames}) == 4
    titles = [book[name]["A1"].value for name in book.sheetnames[1:]]
    assert titles == [
        "Companies by country",
        "Order volume at risk by theme and region",
        "Living-wage gap by region",
    ]
    assert book[book.sheetnames[1]]["A2"].value == "Period: October 2026"
    assert book.properties.created.replace(tzinfo=None) == datetime(2026, 11, 15)


def _rows(sheet) -> dict[str, list]:
    return {row[0].value: row for row in sheet.iter_rows() if row[0].value is not None}


def test_xlsx_suppressed_cells_show_symbol_and_totals_are_bold(written):
    book = openpyxl.load_workbook(xlsx_of(written["en"]))
    rows = _rows(book[book.sheetnames[1]])
    assert rows["Belgium"][1].value == "x 0\u20138"  # the symbol and the range any reader can derive
    assert rows["Netherlands"][1].value == 12 and rows["Netherlands"][1].data_type == "n"
    assert rows["World"][0].font.b and rows["World"][1].font.b
    assert rows["Europe"][0].font.b  # subtotal
    assert not rows["Netherlands"][0].font.b
    assert rows["Netherlands"][0].alignment.indent == 2
    assert rows["Netherlands"][1].number_format == "#,##0"
    assert rows["Netherlands"][1].alignment.horizontal == "right"
    cross = _rows(book[book.sheetnames[2]])
    assert [c.value for c in cross["'@SUM(A1)"][1:4]] == [80000.5, "x", "x"]
    assert cross["Child labour"][1].font.b and not cross["Child labour"][2].font.b
    assert cross["Child labour"][2].number_format == "#,##0.00"


def test_xlsx_has_no_formulas_and_evil_label_is_plain_text(written):
    path = xlsx_of(written["en"])
    book = openpyxl.load_workbook(path)
    all_cells = [c for sheet in book for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in all_cells if c.data_type == "f"]
    evil = [c for c in all_cells if isinstance(c.value, str) and "cmd|" in c.value]
    assert [(c.value, c.data_type) for c in evil] == [("'" + EVIL, "s")]
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/")]
    assert not any("<f>" in xml or "<f " in xml for xml in sheets)


def test_xlsx_legend_footnote_and_dutch_texts(written):
    book = openpyxl.load_workbook(xlsx_of(written["nl"]))
    assert book.sheetnames[0] == "Inhoud"
    sheet = book[book.sheetnames[1]]
    assert sheet["A1"].value == "Bedrijven per land"
    assert sheet["A2"].value == "Periode: oktober 2026"
    texts = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert any(t.startswith("x = geheim") for t in texts)
    assert "Counted at group level." in texts
    en_texts = [c.value for row in openpyxl.load_workbook(xlsx_of(written["en"]))["Contents"].iter_rows() for c in row]
    assert any(isinstance(t, str) and "suppressed (x)" in t for t in en_texts)


# ---------------------------------------------------------------- csv / parquet


def _csv_rows(files, table_id: str, delimiter: str) -> tuple[bytes, list[list[str]]]:
    data = files.by_name(f"csv/{table_id}.csv").path.read_bytes()
    return data, list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter))


def test_csv_has_bom_symbol_and_neutralised_labels(written):
    data, rows = _csv_rows(written["en"], "companies_by_country", ",")
    assert data.startswith(b"\xef\xbb\xbf")
    assert rows[0] == [
        "Country (code)",
        "Country",
        "Country (level)",
        "Value (companies)",
        "lower bound if suppressed",
        "upper bound if suppressed",
    ]
    by_code = {r[0]: r for r in rows[1:]}
    assert by_code["BE"][3:] == ["x", "0", "8"] and by_code["NL"][3:] == ["12", "", ""]
    assert by_code["ZZ"][1] == "'" + EVIL
    _, risk = _csv_rows(written["en"], "risk_volume", ",")
    assert risk[1][-3] == "200000.50"  # no thousands separator: Excel must read it as a number


def test_dutch_csv_uses_semicolon_and_decimal_comma(written):
    _, rows = _csv_rows(written["nl"], "risk_volume", ";")
    assert rows[0][0] == "Theme (code)"
    assert rows[1][-3] == "200000,50"
    assert [r[-3] for r in rows if r[0] == "living_wage"] == ["80000,50", "x", "x"]


def test_parquet_has_nulls_and_public_status_only(written):
    table = pq.read_table(written["en"].by_name("parquet/risk_volume.parquet").path)
    assert table.column_names == [
        "theme", "theme_label", "theme_depth", "region", "region_label", "region_depth", "value", "status",
        "lower", "upper",
    ]  # fmt: skip
    rows = table.to_pylist()
    assert [(r["theme"], r["region"]) for r in rows][:3] == [("T", "W"), ("T", "EU"), ("T", "AS")]
    hidden = [r for r in rows if r["status"] == "suppressed"]
    assert len(hidden) == 2 and all(r["value"] is None for r in hidden)
    assert all(r["lower"] is None and r["upper"] is None for r in rows)  # no range given, none invented
    companies = pq.read_table(written["en"].by_name("parquet/companies_by_country.parquet").path).to_pylist()
    assert {r["country"]: (r["lower"], r["upper"]) for r in companies if r["status"] == "suppressed"} == {
        "BE": (0.0, 8.0),
        "ZZ": (0.0, 8.0),
    }
    assert set(table.column("status").to_pylist()) == {"published", "suppressed"}
    metadata = table.schema.metadata
    assert b"pandas" not in metadata and metadata[b"table_id"] == b"risk_volume"


# ---------------------------------------------------------------- determinism and manifest


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_two_writes_are_byte_identical(tmp_path, lang):
    first = write_release(make_release(lang), tmp_path / "a")
    second = write_release(make_release(lang), tmp_path / "b")
    tree_a, tree_b = _tree(first.directory), _tree(second.directory)
    assert sorted(tree_a) == sorted(tree_b)
    assert {".xlsx", ".html", ".csv", ".parquet", ".json"} == {Path(n).suffix for n in tree_a}
    differing = [name for name in tree_a if tree_a[name] != tree_b[name]]
    assert differing == []


def test_manifest_lists_every_file_with_its_hash(written):
    files = written["en"]
    manifest_path = files.by_name("manifest.json").path
    text = manifest_path.read_text(encoding="utf-8")
    manifest = json.loads(text)
    assert text == json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    on_disk = _tree(files.directory)
    listed = {f["name"]: f["sha256"] for f in manifest["files"]}
    assert set(listed) == set(on_disk) - {"manifest.json"}
    for name, digest in listed.items():
        assert hashlib.sha256(on_disk[name]).hexdigest() == digest
    assert files.manifest_sha256 == hashlib.sha256(on_disk["manifest.json"]).hexdigest()
    assert manifest["protocol"] == {"version": "1.2", "sha256": SHA}
    assert manifest["log_head"] == "12:" + "ab" * 32  # the action log's head: the committee keeps an anchor
    assert "submission_hashes" not in manifest  # hashes of submissions were a guessing oracle
    assert manifest["audit_summary"]["cells_suppressed"] == 6
    assert (manifest["covenant"]["id"], manifest["period"], manifest["audience"]["id"]) == (
        "textile", "2026-10", "committee",
    )  # fmt: skip
    assert files.directory.parts[-3:] == ("textile", "2026-10", "committee")


# ---------------------------------------------------------------- nothing internal leaves


def _committee_texts(folder: Path) -> dict[str, str]:
    """Every committee file as text: xlsx unzipped, parquet decoded (its pages are compressed)."""
    texts = {}
    for path in folder.rglob("*"):
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    texts[f"{path.name}:{name}"] = archive.read(name).decode("utf-8")
        elif path.suffix == ".parquet":
            table = pq.read_table(path)
            texts[path.name] = repr(table.to_pylist()) + repr(table.schema.metadata)
        elif path.is_file():
            texts[path.name] = path.read_bytes().decode("utf-8")
    return texts


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_no_internal_status_company_ids_or_hidden_values_in_committee_files(written, lang):
    texts = _committee_texts(written[lang].directory)
    assert len(texts) > 10
    forbidden = [*INTERNAL_WORDS, *COMPANY_IDS, "30765", "threshold", "denominator hidden"]
    leaks = [(name, word) for name, text in texts.items() for word in forbidden if word.lower() in text.lower()]
    assert leaks == []


# ---------------------------------------------------------------- html


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.svg_titles = 0
        self._in_svg = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.ids += [v for k, v in attrs if k == "id"]
        self._in_svg += tag == "svg"
        self.svg_titles += tag == "title" and self._in_svg > 0

    def handle_endtag(self, tag):
        self._in_svg -= tag == "svg"


def test_html_has_every_table_a_chart_each_and_no_external_assets(written):
    html = written["en"].by_name("textile_2026-10_committee.html").path.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(html)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="en">' in html
    assert len(parser.ids) == len(set(parser.ids)), "duplicate ids"
    assert parser.tags.count("table") == 4 and parser.tags.count("caption") == 4  # 3 tables and what they show
    assert parser.tags.count("svg") == 3 and parser.svg_titles >= 3
    for title in (
        "Companies by country",
        "Order volume at risk by theme and region",
        "Living-wage gap by region",
    ):
        assert title in html
    assert "<script" not in html and "<link" not in html
    assert re.findall(r"https?://[^\"' ]+", html) == ["http://www.w3.org/2000/svg"] * 3
    assert "&#39;=cmd" in html or "=cmd|&#39;" in html  # escaped, shown as text


def test_html_shows_suppressed_cells_as_symbol_never_zero(written):
    html = written["en"].by_name("textile_2026-10_committee.html").path.read_text(encoding="utf-8")
    assert html.count('class="num sup') == 5  # BE, ZZ, two risk cells, Asia ratio
    assert html.count('<span class="range">0–8</span>') == 2  # BE and ZZ carry their published range
    coverage = html[html.index('id="coverage"') : html.index("</section>", html.index('id="coverage"'))]
    # companies by country: 8 cells, 6 published, BE and ZZ as a range; the risk table's 2 hidden have none
    assert '<td class="num">8</td><td class="num">6</td><td class="num">2</td><td class="num">0</td>' in coverage
    assert '<span class="published" style="width: 75.0%"></span><span class="ranged" style="width: 25.0%">' in coverage
    ratio_svg = html[html.index('id="chart-table-3"') : html.index("</svg>", html.index('id="chart-table-3"'))]
    assert 'class="suppressed"' in ratio_svg and "Asia: x" in ratio_svg
    assert "Asia: 0" not in ratio_svg
    assert "Total: 12.5" in ratio_svg  # reference line at the published total, rounded to 1 decimal
    heat = html[html.index('id="chart-table-2"') : html.index("</svg>", html.index('id="chart-table-2"'))]
    assert heat.count('class="suppressed"') == 3  # two hidden cells + the legend swatch
    nl = written["nl"].by_name("textile_2026-10_committee.html").path.read_text(encoding="utf-8")
    assert '<html lang="nl">' in nl and "oktober 2026" in nl and "200.000,50" in nl


def test_three_dimensional_table_is_written_long_without_chart(tmp_path):
    cells = [
        cell(["T", "W", "all"], ["Total", "World", "All"], [0, 0, 0], 9.0),
        cell(["T", "W", "gots"], ["Total", "World", "GOTS"], [0, 0, 1], None, "primary"),
        cell(["T", "EU", "all"], ["Total", "Europe", "All"], [0, 1, 0], 4.0),
    ]
    table = ReleasedTable("cube", "Cube", "kg", ("material", "region", "cert"), ("M", "R", "C"), "sum", cells)
    files = write_release(make_release(tables=[table]), tmp_path)
    sheet = openpyxl.load_workbook(xlsx_of(files))["1 Cube"]
    header = [c.value for c in sheet[6]]
    assert header[:4] == ["M", "R", "C", "Value (kg)"] and not any(header[4:])
    assert [c.value for c in sheet[8]][:4] == ["Total", "World", "GOTS", "x"]
    assert sheet["C8"].alignment.indent == 1
    html = files.by_name("textile_2026-10_committee.html").path.read_text(encoding="utf-8")
    assert "<svg" not in html and html.count('class="num sup') == 1


# ---------------------------------------------------------------- atomicity and refusals


def test_a_failing_writer_leaves_no_target_directory(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer_module, "write_parquet", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        write_release(make_release(), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # the staging folder and the parents it created are gone


def test_failure_keeps_other_releases_and_leaves_no_partial_folder(tmp_path, monkeypatch):
    write_release(make_release(audience_id="public"), tmp_path)
    monkeypatch.setattr(writer_module, "render_report", lambda release: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_release(make_release(), tmp_path)
    period_dir = tmp_path / "textile" / "2026-10"
    assert sorted(p.name for p in period_dir.iterdir()) == ["public"]


def test_existing_release_is_refused_unless_revision(tmp_path):
    first = write_release(make_release(), tmp_path)
    with pytest.raises(InvalidRelease, match="already exists") as info:
        write_release(make_release(), tmp_path)
    assert info.value.hint and "revision" in info.value.hint
    revised = write_release(make_release(is_revision=True), tmp_path)
    assert revised.directory == first.directory
    assert (first.directory.parent / "committee.superseded-1" / "manifest.json").is_file()
    assert json.loads(revised.by_name("manifest.json").path.read_text())["is_revision"] is True
    assert "Revised release" in revised.by_name("textile_2026-10_committee.html").path.read_text()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"covenant_id": "../etc"}, "covenant id"),
        ({"period": "2026-13"}, "YYYY-MM"),
        ({"language": "de"}, "language"),
        ({"created": "yesterday"}, "ISO date"),
        ({"protocol_sha256": "not-a-hash"}, "256-bit hex digest"),
        ({"log_head": "12:xyz"}, "is not a log head"),
        ({"audit_summary": {"primary_cells": 3}}, "primary"),
        ({"audit_summary": {"by_rule": ["secondary"]}}, "secondary"),
        ({"tables": []}, "no tables"),
    ],
)
def test_malformed_release_is_refused(changes, message):
    with pytest.raises(InvalidRelease, match=message) as info:
        make_release(**changes)
    assert isinstance(info.value, ReleaseRefused) and isinstance(info.value, AggregatorError)


def test_a_suppressed_cell_carrying_a_value_is_refused():
    with pytest.raises(InvalidRelease, match="suppressed but carries a value") as info:
        ReleasedTable("t", "T", "u", ("d",), ("D",), "count", [cell(["BE"], ["Belgium"], [1], 3.0, "primary")])
    assert "true_value" in info.value.hint


def test_malformed_tables_are_refused(tmp_path):
    good = cell(["A"], ["A"], [0], 1.0)
    with pytest.raises(InvalidRelease, match="twice"):
        ReleasedTable("t", "T", "u", ("d",), ("D",), "count", [good, good])
    with pytest.raises(InvalidRelease, match="kind"):
        ReleasedTable("t", "T", "u", ("d",), ("D",), "median", [good])
    with pytest.raises(InvalidRelease, match="clash"):
        release = make_release(tables=[ReleasedTable("t", "T", "u", ("value",), ("V",), "count", [good])])
        write_release(release, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unserialisable_audit_summary_is_refused(tmp_path):
    with pytest.raises(InvalidRelease, match="audit summary"):
        write_release(make_release(audit_summary={"when": object()}), tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- audit report


def test_audit_report_shows_internal_status_and_refuses_committee_folder(tmp_path, written):
    files = write_audit_report(make_release(), tmp_path / "secretariat")
    assert [f.name for f in files.files] == ["audit.html", "audit.xlsx"]
    html = (tmp_path / "secretariat" / "audit.html").read_text(encoding="utf-8")
    assert "primary" in html and "secondary" in html and COMPANY_IDS[0] in html
    book = openpyxl.load_workbook(tmp_path / "secretariat" / "audit.xlsx")
    rows = list(book["cells"].iter_rows(values_only=True))
    be = next(r for r in rows if r[0] == "companies_by_country" and r[1] == "BE")
    assert be[4:14] == ("primary", None, 3, 0, 8, 0, 9, 1, 1, "yes")  # published range 0-8, audit 0-9
    hidden_eu = next(r for r in rows if r[0] == "risk_volume" and r[1] == "living_wage / EU")
    assert hidden_eu[6] == pytest.approx(HIDDEN_VALUE) and hidden_eu[13] == "yes"
    summary = list(book["summary"].iter_rows(values_only=True))
    total = next(r for r in summary if r[0] == "*")
    assert total[1:5] == (20, 15, 2, 3)
    assert hashlib.sha256((tmp_path / "secretariat" / "audit.xlsx").read_bytes()).hexdigest() == files.files[1].sha256
    with pytest.raises(InvalidRelease, match="committee release folder"):
        write_audit_report(make_release(), written["en"].directory / "audit")


def test_audit_flags_unmet_protection(tmp_path):
    release = make_release()
    be = release.tables[0].cells[3]
    be.hi = 3.5  # needs hi >= 3 + upl(1) = 4
    write_audit_report(release, tmp_path)
    rows = list(openpyxl.load_workbook(tmp_path / "audit.xlsx")["cells"].iter_rows(values_only=True))
    assert next(r for r in rows if r[1] == "BE")[13] == "NO"
    assert 'class="fail"' in (tmp_path / "audit.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------- texts and properties


def test_texts_and_number_formats():
    assert period_label("2026-03", "nl") == "maart 2026" and period_label("2026-03", "en") == "March 2026"
    assert format_number(1234567.891, 2, "en") == "1,234,567.89"
    assert format_number(1234567.891, 2, "nl") == "1.234.567,89"
    assert format_number(-0.0001, 1, "en") == "0.0"
    assert [neutralise(s) for s in ("=1+1", "+3", "-2", "@x", "\tx", "\rx", "ok", "")] == [
        "'=1+1", "'+3", "'-2", "'@x", "'\tx", "'\rx", "ok", "",
    ]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(label=st.text(min_size=0, max_size=30), lang=st.sampled_from(["en", "nl"]))
def test_any_label_round_trips_through_csv_neutralised(label, lang):
    table = ReleasedTable(
        "t", "T", "u", ("d",), ("D",), "count",
        [cell(["c"], [label], [0], 1.0), cell(["h"], ["h"], [1], None, "primary")],
    )  # fmt: skip
    release = make_release(lang, tables=[table])
    text = csv_bytes(release, table).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="," if lang == "en" else ";"))
    assert rows[1] == ["c", neutralise(label), "0", "1", "", ""]
    assert rows[2][-3:] == ["x", "", ""]
    assert not any(field.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for field in row)


# ---------------------------------------------------------------- what a reader sees


def gappy_table(lang: str = "en") -> ReleasedTable:
    """2-D table in which one combination (Wool x GOTS) was reported by nobody: no cell at all."""
    cells = [
        cell(["T", "T"], ["Total", "Total"], [0, 0], 900.0),
        cell(["T", "gots"], ["Total", "GOTS"], [0, 1], 400.0),
        cell(["T", "none"], ["Total", "No certificate"], [0, 1], 500.0),
        cell(["cotton", "T"], ["Cotton", "Total"], [1, 0], 700.0),
        cell(["cotton", "gots"], ["Cotton", "GOTS"], [1, 1], 400.0),
        cell(["cotton", "none"], ["Cotton", "No certificate"], [1, 1], 300.0),
        cell(["wool", "T"], ["Wool", "Total"], [1, 0], 200.0),
        cell(["wool", "none"], ["Wool", "No certificate"], [1, 1], 200.0),
    ]
    return ReleasedTable("materials", "Material weight", "kg", ("material", "cert"), ("Material", "Certification"),
                         "sum", cells)  # fmt: skip


def test_missing_combination_shows_a_dash_explained_in_the_legend(tmp_path):
    files = write_release(make_release(tables=[gappy_table()]), tmp_path)
    sheet = openpyxl.load_workbook(xlsx_of(files))["1 Material weight"]
    rows = _rows(sheet)
    assert [c.value for c in rows["Wool"][1:4]] == [200, "\u2013", 200]
    texts = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert "\u2013 = no data: no company reported this combination" in texts
    html = files.by_name("textile_2026-10_committee.html").path.read_text(encoding="utf-8")
    assert html.count('class="num none') == 1 and html.count("no company reported this combination") == 3
    heat = html[html.index('id="chart-table-1"') :]
    assert heat.count('class="no-data"') == 2  # the missing cell and its legend key


def test_no_dash_legend_when_every_combination_exists(written):
    html = written["en"].by_name("textile_2026-10_committee.html").path.read_text(encoding="utf-8")
    assert "no company reported" not in html and 'class="no-data"' not in html


def test_value_heading_carries_the_unit_without_nested_brackets():
    from aggregator.release.layout import value_header

    release = make_release("nl")
    table = ReleasedTable("r", "R", "verhouding (gewogen naar werknemers)", ("d",), ("D",), "ratio",
                          [cell(["a"], ["a"], [0], 1.0)])  # fmt: skip
    assert value_header(release, table) == "Waarde: verhouding (gewogen naar werknemers)"
    assert value_header(release, release.tables[0]) == "Waarde (bedrijven)"
    assert (
        csv_bytes(release, table)
        .decode("utf-8-sig")
        .splitlines()[0]
        .endswith(";Waarde: verhouding (gewogen naar werknemers);ondergrens indien geheim;bovengrens indien geheim")
    )


def test_sheet_names_are_cut_at_a_word_boundary():
    from aggregator.release.xlsx import sheet_names

    long = ReleasedTable("t", "Refiners used by refiner region and certification", "u", ("d",), ("D",), "count",
                         [cell(["a"], ["a"], [0], 1.0)])  # fmt: skip
    one_word = ReleasedTable("u", "Supercalifragilisticexpialidocious-and-more", "u", ("d",), ("D",), "count",
                             [cell(["a"], ["a"], [0], 1.0)])  # fmt: skip
    assert sheet_names([long, one_word]) == ["1 Refiners used by refiner", "2 Supercalifragilisticexpialido"]


def test_xlsx_notes_wrap_beside_the_table_and_pages_are_labelled(written):
    book = openpyxl.load_workbook(xlsx_of(written["nl"]))
    sheet = book[book.sheetnames[1]]
    method = next(c for row in sheet.iter_rows() for c in row if str(c.value).startswith("Cellen die"))
    merged = next(r for r in sheet.merged_cells.ranges if method.coordinate in r)
    assert merged.min_col == 1 and merged.max_col >= 3
    assert method.alignment.wrap_text
    assert sheet.row_dimensions[method.row].height >= 30  # two lines or more: nothing hidden
    assert "Bedrijven per land" in sheet.oddHeader.right.text and "oktober 2026" in sheet.oddHeader.right.text
    assert sheet.oddFooter.right.text == "Pagina &P van &N"
    assert book["Inhoud"]["B7"].value == "Titel"
    assert _rows(sheet)["Land"][1].value == "Waarde (bedrijven)"
    assert _rows(sheet)["Netherlands"][0].alignment.horizontal == "left"  # else the indent is ignored


def test_dutch_audit_report_has_dutch_headings(tmp_path):
    write_audit_report(make_release("nl"), tmp_path)
    html = (tmp_path / "audit.html").read_text(encoding="utf-8")
    assert ">Samenvatting<" in html and "Geheimhouding per tabel" in html and "alle tabellen" in html
    assert "geheime cellen</th><td>6<" in html and "geslaagd</th><td>ja<" in html
    assert ">Summary<" not in html and "audit summary" not in html and ">cost<" not in html
    assert '<tr class="primary">' in html and '<td class="status">primair</td>' in html
    assert ">80.000,5<" in html and ">33,3<" in html  # Dutch notation; the share to one decimal
    book = openpyxl.load_workbook(tmp_path / "audit.xlsx")
    assert book.sheetnames == ["samenvatting", "cellen"]
    labels = [r[0] for r in book["samenvatting"].iter_rows(values_only=True) if r and r[0]]
    assert labels[:6] == ["Convenant", "Periode", "Ontvanger", "Vertrouwelijkheidsprotocol", "Softwareversie",
                          "Aangemaakt"]  # fmt: skip
    assert "geheime cellen" in labels and "LP-berekeningen" in labels


def _chart(html: str, number: int) -> str:
    start = html.index(f'id="chart-table-{number}"')
    return html[start : html.index("</svg>", start)]


def test_heat_map_legend_matches_what_is_drawn():
    from aggregator.release.charts import HeatLegend, Point, heat_map

    legend = HeatLegend("suppressed", "no data", "\u2013")
    hidden = heat_map("c", "T", "d", ["A", "B"], ["x", "y"], [[Point("a", None), Point("b", None)],
                      [Point("c", None), Point("d", None, present=False)]], 0, "en", "x", legend)  # fmt: skip
    assert "<rect" in hidden and "#eff3ff" not in hidden.lower()  # no colour scale without any value
    assert ">no data<" in hidden and ">suppressed<" in hidden
    single = heat_map("c", "T", "d", ["A"], ["x", "y"], [[Point("a", 22.0), Point("b", None)]], 0, "en", "x", legend)
    assert single.count(">22<") == 2 and "no data" not in single  # the cell and one legend swatch
    wide = heat_map("c", "T", "d", ["A"], ["Artisanal small scale"], [[Point("a", 26398867.0)]], 0, "en", "x",
                    legend)  # fmt: skip
    assert "rotate(-40)" in wide and 'width="84.0"' in wide  # '26,398,867': 10 characters * 7 + 14 > 78
    assert "rotate(-40)" not in single


def test_ratio_reference_line_is_drawn_below_the_bars(written):
    html = written["en"].by_name("textile_2026-10_committee.html").path.read_text(encoding="utf-8")
    ratio = _chart(html, 3)
    assert ratio.index('class="reference"') < ratio.index('class="bar"')
    assert 'paint-order="stroke"' in ratio  # value labels stay readable where they cross the line


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"value": 12.0, "status": "published", "range_lo": 0.0}, "published but carries a range"),
        ({"range_lo": 9.0, "range_hi": 8.0}, "lower end exceeds its upper end"),
        ({"range_lo": float("nan")}, "not a finite number"),
    ],
)
def test_a_published_range_must_belong_to_a_hidden_cell_and_be_an_interval(changes, message):
    fields = {"value": None, "status": "primary", "range_lo": 0.0, "range_hi": 8.0, **changes}
    bad = cell(["BE"], ["Belgium"], [2], fields.pop("value"), fields.pop("status"), **fields)
    with pytest.raises(InvalidRelease, match=message):
        bad.check("BE", 1)
