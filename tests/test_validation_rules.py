"""Rules files: the committed templates, and every kind of mistake in a rules file."""

from __future__ import annotations

from pathlib import Path

import pandera.pandas as pa
import pytest

from aggregator.errors import ConfigError
from imvo_submit.validation import load_template, reference, templates_for
from imvo_submit.validation.rules import IDENTIFIER, covenant_info
from imvo_submit.validation.schema import build_schema

ARCHITECTURE = {
    ("textile", "production_locations"): {
        "facility_id": ("string", "B"),
        "country": ("country", "A"),
        "facility_type": ("enum", "A"),
        "tier": ("integer", "A"),
        "workers_band": ("enum", "B"),
        "order_volume_pieces": ("integer", "B"),
        "order_value_eur": ("number", "C"),
    },
    ("textile", "risk_assessment"): {
        "country": ("country", "A"),
        "theme": ("enum", "A"),
        "risk_identified": ("boolean", "A"),
        "risk_prioritised": ("boolean", "A"),
        "severity": ("enum", "A"),
        "action_status": ("enum", "A"),
        "locations_affected": ("integer", "B"),
        "grievances_received": ("integer", "B"),
        "grievances_resolved": ("integer", "B"),
        "planned_actions_next_year": ("integer", "X"),
    },
    ("textile", "living_wage"): {
        "country": ("country", "A"),
        "workers_covered": ("integer", "B"),
        "wage_paid_monthly_eur": ("number", "C"),
        "living_wage_benchmark_eur": ("number", "C"),
        "benchmark_source": ("enum", "A"),
    },
    ("textile", "materials"): {
        "material": ("enum", "A"),
        "certification": ("enum", "A"),
        "weight_kg": ("number", "B"),
    },
    ("gold", "refiners"): {
        "smelter_id": ("string", "B"),
        "refiner_country": ("country", "A"),
        "certification": ("enum", "A"),
        "volume_g": ("number", "B"),
    },
    ("gold", "origin"): {
        "country": ("country", "A"),
        "source_type": ("enum", "A"),
        "volume_g": ("number", "B"),
    },
}


def test_templates_for_lists_exactly_the_architecture_templates():
    assert templates_for("textile") == ["living_wage", "materials", "production_locations", "risk_assessment"]
    assert templates_for("gold") == ["origin", "refiners"]
    assert templates_for("metals") == []


@pytest.mark.parametrize(("covenant", "name"), sorted(ARCHITECTURE))
def test_committed_templates_match_the_architecture(covenant, name):
    tpl = load_template(covenant, name)
    assert (tpl.covenant, tpl.name) == (covenant, name)
    assert {c.name: (c.type, c.sensitivity) for c in tpl.columns} == ARCHITECTURE[(covenant, name)]
    for col in tpl.columns:
        assert IDENTIFIER.match(col.name)
        assert col.description_en and col.description_nl
    assert isinstance(build_schema(tpl), pa.DataFrameSchema)


def test_template_details_that_others_rely_on():
    risk = load_template("textile", "risk_assessment")
    assert risk.unique == [["country", "theme"]]
    assert {c.name for c in risk.columns if not c.required} == {"severity", "planned_actions_next_year"}
    assert [(c.kind, c.left, c.right) for c in risk.checks] == [
        ("implies", "risk_prioritised", "risk_identified"),
        ("not_greater", "grievances_resolved", "grievances_received"),
    ]
    assert len(risk.column("theme").allowed) == 9
    wage = load_template("textile", "living_wage").column("wage_paid_monthly_eur")
    assert (wage.range.min, wage.range.min_inclusive, wage.unit) == (0, False, "EUR per month")
    assert load_template("gold", "refiners").column("smelter_id").pattern == r"^CID\d{6}$"
    assert load_template("textile", "production_locations").unique == [["facility_id"]]


def test_covenant_names_in_both_languages():
    assert covenant_info("textile")["name_nl"] == "Convenant Duurzame Kleding en Textiel"
    assert covenant_info("gold")["name_en"] == "Responsible Gold Agreement"


def test_unknown_template_names_the_known_ones():
    with pytest.raises(ConfigError) as err:
        load_template("textile", "wages")
    assert "there is no template 'wages' for covenant 'textile'" in err.value.message
    assert "living_wage" in err.value.hint


GOOD = """
[template]
unique = [["code"]]

[[columns]]
name = "code"
type = "string"
required = true
sensitivity = "B"

[[columns]]
name = "amount"
type = "number"
required = true
sensitivity = "B"
unit = "EUR"
range = { min = 0, max = 1000000 }

[[columns]]
name = "done"
type = "boolean"
required = false
sensitivity = "A"

[[columns]]
name = "started"
type = "boolean"
required = false
sensitivity = "A"

[[checks]]
kind = "implies"
left = "done"
right = "started"
"""


def write_rules(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "rules" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.toml").write_text(text, encoding="utf-8")
    return tmp_path / "rules"


def test_a_good_custom_rules_file_loads(tmp_path):
    tpl = load_template("demo", "table", write_rules(tmp_path, GOOD))
    assert tpl.column_names == ["code", "amount", "done", "started"]
    assert tpl.checks[0].name == "done_implies_started"


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        (
            'sensitivity = "B"\n\n[[columns]]\nname = "amount"',
            'sensitivity = "B"\ncolour = "red"\n\n[[columns]]\nname = "amount"',
            "columns[0].colour",
            "is not a known key",
        ),
        (
            'name = "done"\ntype = "boolean"\nrequired = false',
            'name = "done"\ntype = "boolean"\nrequired = "no"',
            "columns[2].required",
            "must be of type bool",
        ),
        ('type = "number"', 'type = "decimal"', "columns[1].type", "is 'decimal', not a known type"),
        ('kind = "implies"', 'kind = "sometimes"', "checks[0].kind", "not a registered check"),
        ('left = "done"', 'left = "finished"', "checks[0].left", "names the unknown column 'finished'"),
        ('right = "started"', 'right = "amount"', "checks[0].right", "has type 'number'"),
        (
            'unique = [["code"]]',
            'unique = [["code", "colour"]]',
            "template.unique[0]",
            "unknown column 'colour'",
        ),
        ('name = "code"', 'name = "Code Nr"', "columns[0].name", "not a valid SQL identifier"),
        ("range = { min = 0, max = 1000000 }", "range = { min = 5, max = 1 }", "columns[1].range", "min 5 above"),
        (
            "range = { min = 0, max = 1000000 }",
            "range = { minimum = 0 }",
            "columns[1].range.minimum",
            "is not a known key",
        ),
        ("range = { min = 0, max = 1000000 }", "range = { min = 0 }", "columns[1].range", "must give both min and max"),
        (
            "range = { min = 0, max = 1000000 }",
            "range = { min = 0, max = 1e+300 }",
            "columns[1].range",
            "allows values beyond 1e+15",
        ),
        ('unit = "EUR"\n', "", "columns[1].unit", "must name its unit"),
        (
            "range = { min = 0, max = 1000000 }",
            'range = { min = "0" }',
            "columns[1].range.min",
            "must be of type int or float",
        ),
        (
            'sensitivity = "B"\n\n[[columns]]\nname = "amount"',
            'sensitivity = "B"\npattern = "[a-"\n\n[[columns]]\nname = "amount"',
            "columns[0].pattern",
            "not a valid regular expression",
        ),
        (
            'name = "done"\ntype = "boolean"\nrequired = false\nsensitivity = "A"',
            'name = "done"\ntype = "boolean"\nrequired = false\nsensitivity = "Z"',
            "columns[2].sensitivity",
            "use one of A, B, C, X",
        ),
        ("[template]", "[template]\nowner = 'me'", "template.owner", "is not a known key"),
    ],
)
def test_rules_file_mistakes_name_the_file_and_the_key(tmp_path, old, new, key, problem):
    assert old in GOOD
    rules = write_rules(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_template("demo", "table", rules)
    message = err.value.message
    assert str(rules / "demo" / "table.toml") in message
    assert f"key '{key}'" in message
    assert problem in message


def test_duplicate_column_and_broken_toml(tmp_path):
    dup = GOOD + '\n[[columns]]\nname = "code"\ntype = "string"\nrequired = true\nsensitivity = "B"\n'
    with pytest.raises(ConfigError, match="key 'columns' names 'code' twice"):
        load_template("demo", "table", write_rules(tmp_path, dup))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_template("demo", "table", write_rules(tmp_path, "[[columns]\nname="))


def test_m49_covers_every_country_with_codes_as_text():
    table = reference.m49()
    assert list(table.columns) == ["alpha2", "name", "subregion_code", "subregion", "region_code", "region"]
    assert set(table["alpha2"]) == set(reference.country_codes())
    assert len(table) == 249 and table["alpha2"].is_unique
    assert (table["subregion_code"].str.len() == 3).all() and (table["region_code"].str.len() == 3).all()
    rows = table.set_index("alpha2")
    assert tuple(rows.loc["NL", ["subregion_code", "subregion", "region_code", "region"]]) == (
        "155",
        "Western Europe",
        "150",
        "Europe",
    )
    assert tuple(rows.loc["BD", ["subregion", "region"]]) == ("Southern Asia", "Asia")
    assert tuple(rows.loc["ET", ["subregion_code", "region_code"]]) == ("202", "002")
    assert tuple(rows.loc["PE", ["subregion_code", "region_code"]]) == ("419", "019")
    assert rows.loc["AQ", "region"] == "No M49 region"
    # each sub-region belongs to exactly one region: the roll-up is a tree
    assert (table.groupby("subregion_code")["region_code"].nunique() == 1).all()


def test_country_codes_and_names():
    assert "NL" in reference.country_codes() and "XX" not in reference.country_codes()
    assert reference.normalise_country("CHINA") == "CN"
    assert reference.normalise_country("Duitsland") == "DE"
    assert reference.normalise_country("deu") == "DE"
    assert reference.normalise_country("Narnia") is None
    assert reference.country_name("DE", "nl") == "Duitsland"
