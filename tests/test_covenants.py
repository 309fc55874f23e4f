"""Banking, insurance, food products and forestry (issue 24): their rules, templates, samples and protocols.

Each new covenant is data only (rules/<covenant>/, protocols/<covenant>.toml, sample_data/synth/sectors.py); these
tests hold that data to what textile and gold promise: units and ranges on every number, code lists from a
documented source, an Excel template a company fills, checks and seals with `imvo-submit`, broken samples
that are refused with a plain reason, and protocols that load and protect the sample.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from aggregator.cli.secretariat import main as aggregator
from aggregator.compare import compare_protocols
from aggregator.protocol import code_label, dimension_label, load_protocol
from aggregator.workspace import create_workspace
from imvo_submit import company as company_mod
from imvo_submit.cli.main import main as imvo_submit
from imvo_submit.validation import check_file, load_template, rules_version, templates_for, write_template
from imvo_submit.validation.rules import covenant_info
from support.sample_store import sample_store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sample_data.generate import generate_covenant  # noqa: E402
from sample_data.synth.common import COLUMNS, TEMPLATES  # noqa: E402
from sample_data.synth.sectors import SAMPLE_SIZES, SPECS  # noqa: E402

NEW = ("banking", "insurance", "food", "forestry")
ALL = ("textile", "gold", *NEW)
NACE_SECTIONS = tuple("ABCDEFGHIJKLMNOPQRSTU")  # NACE Rev. 2 has 21 sections, A to U
# The food covenant's risk commodities and their Harmonized System headings (rules/food/sourcing.toml).
HS_HEADINGS = {
    "cocoa": "1801",
    "coffee": "0901",
    "tea": "0902",
    "palm_oil": "1511",
    "soy": "1201",
    "cane_sugar": "1701",
    "hazelnuts": "0802",
    "spices": "0904-0910",
}
ARCHITECTURE = {
    ("banking", "exposure"): {
        "sector": ("enum", "A"),
        "country": ("country", "A"),
        "asset_class": ("enum", "A"),
        "exposure_eur_million": ("number", "B"),
    },
    ("banking", "engagement"): {"theme": ("enum", "A"), "outcome": ("enum", "A"), "cases": ("integer", "B")},
    ("banking", "grievances"): {
        "theme": ("enum", "A"),
        "grievances_received": ("integer", "B"),
        "grievances_resolved": ("integer", "B"),
    },
    ("insurance", "investments"): {
        "sector": ("enum", "A"),
        "country": ("country", "A"),
        "investment_eur_million": ("number", "B"),
    },
    ("insurance", "exclusions"): {
        "criterion": ("enum", "A"),
        "applied": ("boolean", "A"),
        "companies_excluded": ("integer", "B"),
    },
    ("insurance", "investee_engagement"): {
        "theme": ("enum", "A"),
        "outcome": ("enum", "A"),
        "investee_companies": ("integer", "B"),
    },
    ("food", "sourcing"): {
        "commodity": ("enum", "A"),
        "country": ("country", "A"),
        "certification": ("enum", "A"),
        "volume_t": ("number", "B"),
    },
    ("food", "commodity_risks"): {
        "commodity": ("enum", "A"),
        "theme": ("enum", "A"),
        "risk_identified": ("boolean", "A"),
        "risk_prioritised": ("boolean", "A"),
    },
    ("forestry", "timber"): {
        "species_group": ("enum", "A"),
        "country": ("country", "A"),
        "certification": ("enum", "A"),
        "due_diligence_outcome": ("enum", "A"),
        "volume_m3": ("number", "B"),
    },
}
UNITS = {
    "exposure_eur_million": "EUR million",
    "investment_eur_million": "EUR million",
    "volume_t": "t",
    "volume_m3": "m3",
    "cases": "cases",
}
# One valid row per template, in template column order: what a company types into the Excel template.
FILLED = {
    ("banking", "exposure"): ["B", "BR", "project_finance", 125.5],
    ("banking", "engagement"): ["land_rights", "escalated", 3],
    ("banking", "grievances"): ["forced_labour", 4, 2],
    ("insurance", "investments"): ["C", "US", 310.25],
    ("insurance", "exclusions"): ["thermal_coal", True, 120],
    ("insurance", "investee_engagement"): ["child_labour", "improved", 2],
    ("food", "sourcing"): ["cocoa", "CI", "rainforest_alliance", 1520.5],
    ("food", "commodity_risks"): ["palm_oil", "deforestation", True, True],
    ("forestry", "timber"): ["tropical_hardwood", "GA", "fsc", "negligible_risk", 845.2],
}


# ---------------------------------------------------------------- rules


def test_each_covenant_has_exactly_its_templates_and_names():
    assert {covenant: tuple(templates_for(covenant)) for covenant in NEW} == {
        covenant: tuple(sorted(TEMPLATES[covenant])) for covenant in NEW
    }
    assert {(c, t) for c in NEW for t in templates_for(c)} == set(ARCHITECTURE)
    for covenant in NEW:
        info = covenant_info(covenant)
        assert info["name_en"] != covenant and info["name_nl"] != covenant


@pytest.mark.parametrize(("covenant", "name"), sorted(ARCHITECTURE))
def test_templates_match_the_architecture_and_the_generator(covenant, name):
    tpl = load_template(covenant, name)
    assert {c.name: (c.type, c.sensitivity) for c in tpl.columns} == ARCHITECTURE[(covenant, name)]
    assert tuple(tpl.column_names) == COLUMNS[name]
    assert tpl.unique, "every template names the key that makes a row unique"
    for col in tpl.columns:
        assert col.description_en and col.description_nl
        if col.type in ("integer", "number"):  # rules format: unit and range on every number
            assert col.unit and col.range is not None and col.range.min == 0 and col.range.max > 0, col.name
        if col.name in UNITS:
            assert col.unit == UNITS[col.name]


def test_sectors_are_the_nace_sections_with_labels():
    for covenant, name in (("banking", "exposure"), ("insurance", "investments")):
        assert load_template(covenant, name).column("sector").allowed == NACE_SECTIONS
    protocol = load_protocol(ROOT / "protocols" / "banking.toml")
    (sector,) = protocol.table("banks_per_sector").dimensions
    for code in NACE_SECTIONS:
        assert code_label(protocol, sector, code, "en").startswith(f"{code} ")
        assert code_label(protocol, sector, code, "nl").startswith(f"{code} ")
    assert code_label(protocol, sector, "B", "en") == "B Mining and quarrying"


def test_commodities_are_hs_headings_with_labels():
    sourcing = load_template("food", "sourcing")
    assert sourcing.column("commodity").allowed == tuple(HS_HEADINGS)
    assert load_template("food", "commodity_risks").column("commodity").allowed == tuple(HS_HEADINGS)
    protocol = load_protocol(ROOT / "protocols" / "food.toml")
    commodity = protocol.table("sourcing_by_certification").dimensions[0]
    for code, heading in HS_HEADINGS.items():
        assert f"(HS {heading})" in code_label(protocol, commodity, code, "en")
        assert f"(GS {heading})" in code_label(protocol, commodity, code, "nl")


def test_forestry_certifications_are_fsc_pefc_none():
    timber = load_template("forestry", "timber")
    assert timber.column("certification").allowed == ("fsc", "pefc", "none")
    assert timber.unique == [["species_group", "country", "certification", "due_diligence_outcome"]]


def test_grievance_and_risk_checks():
    grievances = load_template("banking", "grievances")
    assert [(c.kind, c.left, c.right) for c in grievances.checks] == [
        ("not_greater", "grievances_resolved", "grievances_received")
    ]
    risks = load_template("food", "commodity_risks")
    assert [(c.kind, c.left, c.right) for c in risks.checks] == [("implies", "risk_prioritised", "risk_identified")]


# ---------------------------------------------------------------- protocols


@pytest.mark.parametrize("covenant", ALL)
def test_every_protocol_loads_with_two_audiences_and_labels(covenant):
    protocol = load_protocol(ROOT / "protocols" / f"{covenant}.toml")
    assert protocol.covenant.id == covenant
    assert [a.id for a in protocol.audiences] == ["monitoring_committee", "public"]
    assert protocol.non_response == "carry_forward"
    for table in protocol.tables:
        template = load_template(covenant, table.template)
        for dim in table.dimensions:
            assert dimension_label(dim.column, "nl") != dimension_label(dim.column, "en"), dim.column
            if dim.hierarchy is None:
                for code in template.column(dim.column).allowed:
                    for language in ("en", "nl"):
                        label = code_label(protocol, dim, code, language)
                        assert label and "_" not in label, (covenant, dim.column, code)


def test_food_relations_are_derived_from_the_implies_check():
    protocol = load_protocol(ROOT / "protocols" / "food.toml")
    pairs = {(r.smaller, r.larger) for r in protocol.relations}
    assert ("risks_prioritised", "risks_identified") in pairs
    banking = load_protocol(ROOT / "protocols" / "banking.toml")
    assert ("grievances_resolved_by_theme", "grievances_received_by_theme") in {
        (r.smaller, r.larger) for r in banking.relations
    }


# ---------------------------------------------------------------- templates through imvo-submit


def _run(args: list[str], env: dict[str, str] | None = None, tool=imvo_submit):
    result = CliRunner(env={"COLUMNS": "200", **(env or {})}).invoke(tool, args, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("covenant", NEW)
def test_template_filled_checked_and_sealed_with_imvo_submit(tmp_path: Path, covenant: str):
    secretariat = "secretariat passphrase for tests"
    workspace = create_workspace(tmp_path / "ws", secretariat, [ROOT / "protocols" / f"{covenant}.toml"])
    company = f"{SPECS[covenant].prefix}001"
    home = tmp_path / "home"
    keys = workspace.keys_dir
    result = _run(["init", "--company", company, "--covenant", covenant, "--yes", "--home", str(home),
                   "--secretariat-key", str(keys / "secretariat_encryption.pub"),
                   "--receipt-key", str(keys / "secretariat_signing.pub")])  # fmt: skip
    assert result.exit_code == 0, result.output
    company_mod.keygen(company_mod.open_home(home), "company passphrase for tests")
    env = {"IMVO_SUBMIT_HOME": str(home), "IMVO_PASSPHRASE": "company passphrase for tests",
           "IMVO_NOW": "2025-02-21T09:00:00Z"}  # fmt: skip
    template = tmp_path / f"{covenant}_template.xlsx"
    result = _run(["template", "--covenant", covenant, "--out", str(template)], env=env)
    assert result.exit_code == 0, result.output
    assert set(templates_for(covenant)) <= set(openpyxl.load_workbook(template).sheetnames)

    inbox = tmp_path / "inbox"
    for (cov, name), row in FILLED.items():
        if cov != covenant:
            continue
        book = openpyxl.load_workbook(template)
        book[name].append(row)
        filled = tmp_path / f"{company}__{name}.xlsx"
        book.save(filled)
        result = _run(["check", str(filled)], env=env)
        assert result.exit_code == 0, result.output
        assert result.output == f"{filled.name}: OK ({name}, 1 rows, rules {rules_version()})\n"
        result = _run(["seal", str(filled), "--period", "2025-01", "--out", str(inbox)], env=env)
        assert result.exit_code == 0, result.output
        assert (inbox / f"{company}_{covenant}_{name}_2025-01.imvo").read_bytes().startswith(b"IMVOSEAL")

    # the secretariat takes every sealed file in: the rules it applies are exactly those the company checked
    sec_env = {"AGGREGATOR_WORKSPACE": str(workspace.root), "AGGREGATOR_PASSPHRASE": secretariat,
               "AGGREGATOR_NOW": "2025-02-28T09:00:00Z"}  # fmt: skip
    add = _run(["companies", "add", company, "--name", "Test", "--covenant", covenant,
                "--key", str(home / "company_signing.pub")], env=sec_env, tool=aggregator)  # fmt: skip
    assert add.exit_code == 0, add.output
    intake = _run(["intake", str(inbox)], env=sec_env, tool=aggregator)
    assert intake.exit_code == 0, intake.output
    assert len(list((workspace.root / "received" / "accepted").rglob("*.imvo"))) == len(templates_for(covenant))


@pytest.mark.parametrize(
    ("covenant", "name", "column", "bad", "fragment"),
    [
        ("banking", "exposure", "sector", "B05", "sector 'B05' is not allowed; use one of: A, B, C"),
        ("banking", "exposure", "exposure_eur_million", -5, "out of range"),
        ("insurance", "investments", "investment_eur_million", "12 mln", "is not a number"),
        ("food", "sourcing", "commodity", "cacao", "commodity 'cacao' is not allowed"),
        ("food", "sourcing", "country", "XX", "not an ISO 3166 country code"),
        ("forestry", "timber", "certification", "FSC Mix 70%", "use one of: fsc, pefc, none"),
        ("forestry", "timber", "volume_m3", -1, "out of range"),
    ],
)
def test_a_wrong_value_is_refused_with_a_plain_reason(tmp_path, covenant, name, column, bad, fragment):
    template = write_template(covenant, tmp_path / "t.xlsx")
    book = openpyxl.load_workbook(template)
    row = list(FILLED[(covenant, name)])
    row[load_template(covenant, name).column_names.index(column)] = bad
    book[name].append(row)
    book.save(tmp_path / "filled.xlsx")
    result = check_file(tmp_path / "filled.xlsx", covenant)
    assert not result.ok
    text = result.report.render_text()
    assert "row 2" in text and column in text and fragment in text, text


def test_cross_column_checks_refuse_the_row(tmp_path):
    rows = {
        ("banking", "grievances"): ["child_labour", 2, 3],
        ("food", "commodity_risks"): ["soy", "deforestation", False, True],
    }
    for (covenant, name), row in rows.items():
        book = openpyxl.load_workbook(write_template(covenant, tmp_path / f"{covenant}.xlsx"))
        book[name].append(row)
        book.save(tmp_path / f"{covenant}_filled.xlsx")
        result = check_file(tmp_path / f"{covenant}_filled.xlsx", covenant)
        assert not result.ok and "row 2" in result.report.render_text()


# ---------------------------------------------------------------- sample data


@pytest.fixture(scope="module")
def broken() -> list[dict]:
    cases = tomllib.loads((SAMPLE / "broken.toml").read_text(encoding="utf-8"))["case"]
    return [case for case in cases if case["covenant"] in NEW]


def test_each_new_covenant_has_a_broken_file_that_is_refused_naming_the_row(broken):
    assert {case["covenant"] for case in broken} == set(NEW)
    for case in broken:
        assert case["level"] == "validation" and case["file"].startswith(f"submissions_broken/{case['covenant']}/")
        result = check_file(SAMPLE / case["file"], case["covenant"], case["template"])
        assert not result.ok, case["id"]
        rows = sorted({int(row) for row in result.report.problems["row"].dropna()})
        assert rows == case["rows"], (case["id"], result.report.render_text())


def test_every_committed_file_of_the_new_covenants_passes_its_rules():
    for covenant in NEW:
        files = sorted((SAMPLE / "submissions" / covenant).rglob("*__*.*"))
        assert len(files) >= 3 * SAMPLE_SIZES[covenant] * len(TEMPLATES[covenant]) * 0.8
        for path in files:
            result = check_file(path, covenant)  # the template is detected as the secretariat would
            assert result.ok and result.template == path.stem.split("__")[1], (path, result.report.render_text())


def test_banking_has_few_banks_and_one_dominates():
    data = generate_covenant(SAMPLE_SIZES["banking"], 3, covenant="banking")
    exposure = data.tables["exposure"].to_pandas()
    groups = data.companies.to_pandas().set_index("company_id")["group_id"]
    exposure["group"] = exposure["company_id"].map(groups)
    march = exposure[exposure.period == "2025-03"]
    assert 10 <= groups.nunique() <= 15, "a dozen or so banks (groups count once)"
    by_bank = march.groupby("group")["exposure_eur_million"].sum()
    assert by_bank.max() / by_bank.sum() > 0.25, "the largest bank alone fails the (1,25) rule at the total"
    cells = march.groupby(["sector", "country", "group"])["exposure_eur_million"].sum().reset_index()
    per_cell = cells.groupby(["sector", "country"])["exposure_eur_million"]
    share = per_cell.max() / per_cell.sum()
    contributors = cells.groupby(["sector", "country"])["group"].nunique()
    assert (contributors < 5).mean() > 0.8, "almost every sector x country cell has fewer than five banks"
    assert (share > 0.5).mean() > 0.5, "one bank holds more than half of most cells"


@pytest.mark.parametrize("covenant", NEW)
def test_generator_keeps_the_rules_at_other_sizes(covenant):
    for n, periods in ((1, 1), (5, 2), (40, 3)):
        data = generate_covenant(n, periods, covenant=covenant, seed=7)
        assert data.companies.num_rows == n and len(data.periods) == periods
        for name, table in data.tables.items():
            frame = table.to_pandas()
            assert tuple(frame.columns) == ("company_id", "period", *COLUMNS[name])
            key = ["company_id", "period", *load_template(covenant, name).unique[0]]
            assert not frame.duplicated(key).any(), name
            numbers = [c.name for c in load_template(covenant, name).columns if c.type in ("integer", "number")]
            assert (frame[numbers] >= 0).all().all()
        if "grievances" in data.tables:
            g = data.tables["grievances"].to_pandas()
            assert (g.grievances_resolved <= g.grievances_received).all()
        if "commodity_risks" in data.tables:
            r = data.tables["commodity_risks"].to_pandas()
            assert not (r.risk_prioritised & ~r.risk_identified).any()


# ---------------------------------------------------------------- what suppression leaves the banking committee


@pytest.fixture(scope="module")
def banking_store(tmp_path_factory):
    return sample_store(tmp_path_factory.mktemp("banking") / "s.duckdb", ["banking"])


def test_banking_under_the_default_rules_publishes_no_exposure_and_a_p_percent_variant_does(banking_store):
    """docs/protocols.md, "Six covenants": the largest bank holds about 40% of all high-risk exposure, so the
    (1,25) dominance rule fails even at the grand total and no suppression pattern can publish an exposure;
    the p%-rule alone (a rival learns no bank's figure to within 10%) publishes most of it, as ranges."""
    default = ROOT / "protocols" / "banking.toml"
    p_only = ROOT / "protocols" / "variants" / "banking_p_percent.toml"
    assert load_protocol(p_only).rule_params("exposure_by_asset_class", "monitoring_committee").dominance == ()
    comparison = compare_protocols(banking_store, "2025-03", [default, p_only])
    strict, loose = ({t.table_id: t for t in v.audiences[0].tables} for v in comparison.variants)
    for table in ("exposure_by_sector_region", "exposure_by_asset_class"):
        assert strict[table].published + strict[table].ranged <= 1, table
        assert loose[table].hidden == 0 and loose[table].published > 0, table


def test_the_demo_runs_every_covenant_that_has_rules_a_protocol_and_a_sample():
    from aggregator import demo

    with_rules = {p.name for p in (ROOT / "rules").iterdir() if p.is_dir() and p.name != "reference"}
    assert set(demo.PROTOCOLS) == with_rules == set(ALL)
    for covenant, path in demo.PROTOCOLS.items():
        assert path.is_file() and load_protocol(path).covenant.id == covenant
        assert demo.periods_of(covenant) == ["2025-01", "2025-02", "2025-03"]
