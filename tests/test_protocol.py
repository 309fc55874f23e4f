"""The protocol format: the sample protocols load, settings merge as documented, every mistake names its key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aggregator.disclosure.model import RuleParams
from aggregator.errors import ConfigError
from aggregator.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[1]
TEXTILE = ROOT / "protocols" / "textile.toml"
GOLD = ROOT / "protocols" / "gold.toml"

MINIMAL = """
[covenant]
id = "textile"
name = { en = "Textile", nl = "Textiel" }
version = "1"
templates = ["materials", "risk_assessment"]

[[tables]]
id = "materials"
title = { en = "Materials", nl = "Materialen" }
unit = { en = "kg", nl = "kg" }
template = "materials"
dimensions = [{ column = "material" }]
measure = { kind = "sum", column = "weight_kg" }

[[audiences]]
id = "committee"
name = { en = "Committee", nl = "Commissie" }
tables = ["materials"]
frequency = "monthly"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_protocol(path)
    return caught.value.message.replace(str(path), "p.toml")


# ------------------------------------------------------------------------------------------ sample files


def test_textile_protocol_loads_with_every_table_and_audience():
    protocol = load_protocol(TEXTILE)
    assert protocol.covenant.id == "textile" and protocol.covenant.language == "nl"
    assert len(protocol.tables) == 7
    assert [t.id for t in protocol.tables_for("public")] == [
        "companies_per_country",
        "risks_by_theme_region",
        "living_wage_ratio_by_region",
        "materials_by_certification",
    ]
    assert len(protocol.tables_for("monitoring_committee")) == 7
    assert protocol.sha256 == hashlib.sha256(TEXTILE.read_bytes()).hexdigest()
    assert protocol.hierarchy("theme_group").path("child_labour") == ("human_rights", "child_labour")
    assert protocol.hierarchy("m49").path("BD") == ("142", "034", "BD")


def test_table_sensitivity_decides_data_age():
    protocol = load_protocol(TEXTILE)
    assert protocol.table("companies_per_country").sensitivity == "A"
    assert protocol.table("locations_by_region_type").sensitivity == "B"  # counting locations: B
    assert protocol.table("living_wage_ratio_by_region").sensitivity == "C"  # wages: C
    assert protocol.data_age_months("companies_per_country") == 0
    assert protocol.data_age_months("order_volume_by_region") == 3
    assert protocol.data_age_months("living_wage_ratio_by_region") == 12


def test_ratio_is_published_through_numerator_and_denominator():
    measure = load_protocol(TEXTILE).table("living_wage_ratio_by_region").measure
    (num_name, num), (den_name, den) = measure.components()
    assert (num_name, num.column, num.weight) == ("numerator", "wage_paid_monthly_eur", "workers_covered")
    assert (den_name, den.column, den.weight) == (
        "denominator",
        "living_wage_benchmark_eur",
        "workers_covered",
    )


def test_rule_params_defaults_then_table_then_stricter_audience():
    protocol = load_protocol(TEXTILE)
    committee = protocol.rule_params("living_wage_ratio_by_region", "monitoring_committee")
    assert committee == RuleParams(5, 10.0, ((1, 25.0),), (15.0, 1), None, None, "refuse")
    public = protocol.rule_params("living_wage_ratio_by_region", "public")
    assert public.min_contributors == 10  # the audience tightens
    assert public.dominance == ((1, 25.0), (2, 50.0))  # the audience adds a rule, keeps the default
    assert public.p_percent == (15.0, 1)  # the table's wider p% stays
    assert public.top_k == 2


def test_audience_cannot_loosen_a_table(tmp_path):
    text = MINIMAL.replace(
        'frequency = "monthly"',
        'frequency = "monthly"\ndisclosure = { min_contributors = 3, max_share = 0.5, count_unit = "company" }',
    )
    settings = load_protocol(write(tmp_path, text)).settings("materials", "committee")
    assert settings.min_contributors == 5
    assert settings.dominance == ((1, 25.0),)
    assert settings.count_unit == "group"


def test_max_share_alias_adds_a_one_contributor_dominance_rule(tmp_path):
    text = MINIMAL.replace(
        "[[tables]]", "[disclosure]\nmax_share = 0.33\ndominance = [{ n = 2, k = 60 }]\n\n[[tables]]", 1
    )
    params = load_protocol(write(tmp_path, text)).rule_params("materials", "committee")
    assert params.dominance == ((1, 33.0), (2, 60.0))


def test_gold_protocol_is_stricter_for_the_public():
    protocol = load_protocol(GOLD)
    public = protocol.rule_params("origin_by_region_source", "public")
    assert public.min_contributors == 8
    assert public.dominance == ((1, 20.0), (2, 60.0))
    assert public.pq == (10.0, 50.0, 1)
    assert protocol.data_age_months("origin_by_region_source") == 6
    with pytest.raises(ConfigError, match="does not receive table 'refiners_by_region_certification'"):
        protocol.rule_params("refiners_by_region_certification", "public")


# ----------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'column = "weight_kg"',
            'column = "weight"',
            "p.toml: tables[0].measure.column: 'weight' is not a column of template materials",
        ),
        (
            'unit = { en = "kg", nl = "kg" }',
            'unit = { en = "kg", nl = "kg" }\ncolour = "red"',
            "p.toml: tables[0].colour: unknown setting",
        ),
        (
            "[[tables]]",
            '[disclosure]\nmin_contributors = "5"\n[[tables]]',
            "p.toml: disclosure.min_contributors: expected an integer, got a string",
        ),
        (
            "[[tables]]",
            "[disclosure]\nmin_contributors = true\n[[tables]]",
            "p.toml: disclosure.min_contributors: expected an integer, got true/false",
        ),
        (
            'template = "materials"\n',
            'template = "living_wage"\n',
            "p.toml: tables[0].template: 'living_wage' is not a template of covenant textile",
        ),
        (
            '[{ column = "material" }]',
            '[{ column = "material", hierarchy = "fibres" }]',
            "p.toml: tables[0].dimensions[0].hierarchy: no hierarchy 'fibres'",
        ),
        (
            'tables = ["materials"]',
            'tables = ["materials", "nope"]',
            "p.toml: audiences[0].tables[1]: no table 'nope' in this protocol",
        ),
        (
            'frequency = "monthly"',
            'frequency = "weekly"',
            "p.toml: audiences[0].frequency: 'weekly' is not one of monthly, quarterly, yearly",
        ),
        (
            "[[tables]]",
            "[age]\nX = 24\n[[tables]]",
            "p.toml: age.X: class X data is never released, so it has no age",
        ),
        (
            "[[tables]]",
            "[disclosure]\ndominance = [{ n = 1, k = 125 }]\n[[tables]]",
            "p.toml: disclosure.dominance[0].k: must be between 0 and 100, got 125",
        ),
        (
            '"materials", "risk_assessment"',
            '"materials", "forecasts"',
            "p.toml: covenant.templates[1]: there is no template 'forecasts' for covenant 'textile'",
        ),
    ],
)
def test_config_errors_name_the_file_and_the_key(tmp_path, old, new, message):
    assert old in MINIMAL
    got = error_of(tmp_path, MINIMAL.replace(old, new, 1))
    assert got.startswith(message), got


CLASS_X_TABLE = """
[[tables]]
id = "planned"
title = { en = "Planned", nl = "Gepland" }
unit = { en = "actions", nl = "acties" }
template = "risk_assessment"
dimensions = [{ column = "theme" }]
"""


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('measure = { kind = "sum", column = "planned_actions_next_year" }', "tables[1].measure.column"),
        (
            'measure = { kind = "sum", column = "locations_affected", weight = "planned_actions_next_year" }',
            "tables[1].measure.weight",
        ),
        (
            'measure = { kind = "count" }\nfilters = [{ column = "planned_actions_next_year", equals = 1 }]',
            "tables[1].filters[0].column",
        ),
    ],
)
def test_class_x_columns_can_never_be_used(tmp_path, extra, key):
    text = MINIMAL.replace("[[audiences]]", CLASS_X_TABLE + extra + "\n\n[[audiences]]")
    assert error_of(tmp_path, text) == (
        f"p.toml: {key}: column planned_actions_next_year is class X (forward-looking) and can never be released"
    )


def test_filter_value_must_fit_the_column(tmp_path):
    text = MINIMAL.replace(
        "[[audiences]]",
        CLASS_X_TABLE + 'measure = { kind = "count" }\n'
        'filters = [{ column = "risk_identified", equals = "yes" }]\n\n[[audiences]]',
    )
    assert error_of(tmp_path, text) == (
        "p.toml: tables[1].filters[0].equals: a string does not fit column risk_identified (boolean)"
    )


def test_hierarchy_must_cover_every_code_and_have_no_cycle(tmp_path):
    text = MINIMAL.replace('[{ column = "material" }]', '[{ column = "material", hierarchy = "fibre" }]')
    partial = text + '\n[hierarchies.fibre.parent]\ncotton = "natural"\n'
    assert "code 'polyester' of column material is not in hierarchy fibre" in error_of(tmp_path, partial)
    cycle = text + '\n[hierarchies.fibre.parent]\ncotton = "natural"\nnatural = "cotton"\n'
    assert (
        error_of(tmp_path, cycle) == "p.toml: hierarchies.fibre.parent.cotton: 'cotton' is its own ancestor (a cycle)"
    )


def test_syntax_errors_and_missing_files_are_config_errors(tmp_path):
    assert "not a valid TOML file" in error_of(tmp_path, "[covenant\n")
    with pytest.raises(ConfigError, match="cannot read the protocol"):
        load_protocol(tmp_path / "absent.toml")


def test_unknown_table_or_audience_in_a_lookup_gives_a_hint():
    protocol = load_protocol(TEXTILE)
    with pytest.raises(ConfigError) as caught:
        protocol.tables_for("press")
    assert caught.value.hint == "audiences: monitoring_committee, public"


def test_every_m49_region_has_a_dutch_name():
    from aggregator.protocol import m49_hierarchy

    hierarchy = m49_hierarchy()
    regions = set(hierarchy.parent.values())
    assert regions and all(hierarchy.labels[code].nl != hierarchy.labels[code].en for code in regions - {"999"})
