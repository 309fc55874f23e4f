"""Tables are linked by logic, not only by sums (issue 17, leak 2): a published count of companies per country
tells the reader that the country's hidden count of locations is at least that many. Relations are declared
in the protocol or derived from the templates' checks, and enter the attacker's model as larger = smaller +
slack with a hidden slack >= 0."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from aggregator import batch
from aggregator.cellkey import CellKey, Coordinate, HelperRole, Quantity
from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import ProtectionProblem
from aggregator.errors import ConfigError
from aggregator.protocol import load_protocol
from aggregator.store import Store
from support.sample_store import submit_rows

ROOT = Path(__file__).resolve().parents[1]
PAIR = ("companies_per_country", "locations_per_country")
NOW = "2026-06-01T00:00:00Z"
JAN = "2025-01"

HEAD = """
[covenant]
id = "textile"
name = { en = "T", nl = "T" }
version = "t1"
templates = ["production_locations", "risk_assessment"]

[disclosure]
min_contributors = 3
dominance = [{ n = 1, k = 25.0 }]
suppression = "optimal"

[age]
B = 0
C = 0
"""

TABLES = """
[[tables]]
id = "companies_per_country"
title = { en = "C", nl = "C" }
unit = { en = "companies", nl = "bedrijven" }
template = "production_locations"
dimensions = [{ column = "country" }]
measure = { kind = "companies" }

[[tables]]
id = "locations_per_country"
title = { en = "L", nl = "L" }
unit = { en = "locations", nl = "locaties" }
template = "production_locations"
dimensions = [{ column = "country" }]
measure = { kind = "count" }
"""

RISKS = """
[[tables]]
id = "identified"
title = { en = "I", nl = "I" }
unit = { en = "companies", nl = "bedrijven" }
template = "risk_assessment"
dimensions = [{ column = "theme" }]
measure = { kind = "companies" }
filters = [{ column = "risk_identified", equals = true }]

[[tables]]
id = "prioritised"
title = { en = "P", nl = "P" }
unit = { en = "companies", nl = "bedrijven" }
template = "risk_assessment"
dimensions = [{ column = "theme" }]
measure = { kind = "companies" }
filters = [{ column = "risk_prioritised", equals = true }]

[[tables]]
id = "received"
title = { en = "R", nl = "R" }
unit = { en = "grievances", nl = "klachten" }
template = "risk_assessment"
dimensions = [{ column = "theme" }]
measure = { kind = "sum", column = "grievances_received" }

[[tables]]
id = "resolved"
title = { en = "S", nl = "S" }
unit = { en = "grievances", nl = "klachten" }
template = "risk_assessment"
dimensions = [{ column = "theme" }]
measure = { kind = "sum", column = "grievances_resolved" }

[[tables]]
id = "ratio"
title = { en = "Q", nl = "Q" }
unit = { en = "%", nl = "%" }
template = "risk_assessment"
dimensions = [{ column = "theme" }]

[tables.measure]
kind = "ratio"
numerator = { column = "grievances_resolved" }
denominator = { column = "grievances_received" }
"""


def protocol_of(tmp_path: Path, tables: str, relations: str = ""):
    """A protocol with these tables, all released to one committee, and these [[relations]]."""
    ids = ", ".join(f'"{m}"' for m in re.findall(r'^id = "([a-z_]+)"', tables, re.MULTILINE))
    audience = '[[audiences]]\nid = "committee"\nname = { en = "C", nl = "C" }\nfrequency = "monthly"\n'
    path = tmp_path / "protocol.toml"
    path.write_text(HEAD + tables + "\n" + audience + f"tables = [{ids}]\n" + relations)
    return load_protocol(path)


def relation(rid: str, smaller: str, larger: str) -> str:
    return f'\n[[relations]]\nid = "{rid}"\nsmaller = "{smaller}"\nlarger = "{larger}"\n'


# -------------------------------------------------------------------------------------- the protocol


def test_relations_are_derived_from_the_checks_the_filters_and_what_a_count_of_companies_is(tmp_path: Path):
    protocol = protocol_of(tmp_path, TABLES + RISKS)
    derived = {(r.smaller, r.larger): r.reason for r in protocol.relations}
    assert derived == {
        ("companies_per_country", "locations_per_country"): "a company counted in a cell has at least one row there",
        ("prioritised", "identified"): "its rows are rows of the larger table",  # risk_prioritised -> identified
        ("resolved", "received"): "check grievances_resolved <= grievances_received",
    }
    assert load_protocol(ROOT / "protocols" / "textile.toml").relations[0].larger == "locations_by_region_type"


def test_a_declared_relation_is_kept_and_not_derived_again(tmp_path: Path):
    relations = protocol_of(tmp_path, TABLES, relation("firms_in_sites", *PAIR)).relations
    assert [(r.id, r.reason) for r in relations] == [("firms_in_sites", "declared")]


@pytest.mark.parametrize(
    ("relation", "message"),
    [
        ('id = "x"\nsmaller = "nope"\nlarger = "received"', "relations[0].smaller: no table 'nope' in this protocol"),
        ('id = "x"\nsmaller = "resolved"\nlarger = "ratio"', "relations[0].larger: table ratio is a ratio"),
        ('id = "x"\nsmaller = "resolved"\nlarger = "resolved"', "relations[0].larger: a table cannot be compared"),
        ('id = "X"\nsmaller = "resolved"\nlarger = "received"', "relations[0].id: 'X' is not a valid id"),
        ('id = "x"\nsmaller = "resolved"', "relations[0].larger: missing"),
        ('id = "x"\nsmaller = "resolved"\nlarger = "received"\nstrict = true', "relations[0].strict: unknown setting"),
    ],
)
def test_a_wrong_relation_is_refused_naming_the_file_and_the_key(tmp_path: Path, relation: str, message: str):
    with pytest.raises(ConfigError) as refused:
        protocol_of(tmp_path, RISKS, "\n[[relations]]\n" + relation + "\n")
    assert refused.value.message.startswith(f"{tmp_path / 'protocol.toml'}: {message}")


def test_a_relation_between_dimensions_of_different_hierarchies_is_refused(tmp_path: Path):
    text = TABLES.replace(
        'dimensions = [{ column = "country" }]\nmeasure = { kind = "count" }',
        'dimensions = [{ column = "country", hierarchy = "m49" }]\nmeasure = { kind = "count" }',
    )
    with pytest.raises(ConfigError, match="relations\\[0\\].larger: dimension country has another hierarchy"):
        protocol_of(tmp_path, text, relation("x", *PAIR))


# ------------------------------------------------------------------------------------------- the leak


def locations(store: Store, rows: list[tuple[str, str, int]]) -> None:
    """(company, country, number of locations) rows for January."""
    table = {"company_id": [], "period": [], "facility_id": [], "country": [], "facility_type": []}
    for company, country, count in rows:
        for n in range(count):
            table["company_id"].append(company)
            table["period"].append(JAN)
            table["facility_id"].append(f"{company}-{country}-{n}")
            table["country"].append(country)
            table["facility_type"].append("laundry")
    size = len(table["company_id"])
    extra = {"tier": [1] * size, "workers_band": ["1-50"] * size, "order_volume_pieces": [10] * size}
    extra["order_value_eur"] = [1.0] * size
    submit_rows(store, "textile", "production_locations", pa.table(table | extra), tag="t")


@pytest.fixture
def nine_companies(tmp_path: Path) -> tuple[Store, object]:
    """Country AL: nine companies, one of them with 30 of its 38 locations (dominance: the count is primary);
    BD and CN: many companies with three locations each, so the totals are safe."""
    store = Store(tmp_path / "s.duckdb", None)
    ids = [f"c{n:02d}" for n in range(1, 51)]
    for c in ids:
        store.con.execute("INSERT INTO companies VALUES (?, ?, ?, ['textile'], 'active', NULL, 'x')", [c, c, c])
    rows = [("c01", "AL", 30)] + [(c, "AL", 1) for c in ids[1:9]]
    rows += [(c, "BD", 3) for c in ids[9:30]] + [(c, "CN", 3) for c in ids[30:50]]
    locations(store, rows)
    return store, protocol_of(tmp_path, TABLES)


def with_relation(problem: ProtectionProblem, smaller: CellKey, larger: CellKey) -> tuple[ProtectionProblem, int]:
    """The test's own knowledge added to a problem: larger = smaller + a hidden slack >= 0."""
    i, j = problem.keys.index(smaller), problem.keys.index(larger)
    slack = float(problem.values[j] - problem.values[i])
    grow = {"values": slack, "lower": 0.0, "upper": float(problem.upper[j]), "upl": 0.0, "lpl": 0.0}
    fields = {name: np.append(getattr(problem, name), value) for name, value in grow.items()}
    fields |= {"primary": np.append(problem.primary, True), "cost": np.append(problem.cost, 0.0)}
    fields |= {"fixed": np.append(problem.fixed, False)}
    key = larger.helper_cell("test_relation", 0, HelperRole.SLACK)
    extended = replace(problem, keys=[*problem.keys, key], relations=[*problem.relations, (j, (i, problem.size))])
    return replace(extended, **fields), problem.size


def test_a_published_count_of_companies_does_not_narrow_the_hidden_count_of_their_locations(nine_companies):
    store, protocol = nine_companies
    released = batch.release_audience(store, protocol, JAN, "committee", now=NOW).protected
    problem, hidden = released.problem, released.suppression.suppressed
    al = [Coordinate("country", "AL")]
    firms = CellKey(Quantity("production_locations", "companies[group]"), al)
    sites = CellKey(Quantity("production_locations", "count"), al)
    assert problem.primary[problem.keys.index(sites)]  # 30 of 38 locations belong to one company
    known, slack = with_relation(problem, firms, sites)
    hidden = np.append(hidden, True)
    checked = audit(known, hidden)
    # before the fix: 9 companies published, so the hidden 38 locations were known to be at least 9
    assert checked.passed, [(known.keys[c].describe(), who, lo, hi) for c, who, lo, hi, _ in checked.failures]
    assert hidden[problem.keys.index(firms)]


def test_the_engine_models_the_relation_with_a_slack_cell_and_each_company_knows_its_share(nine_companies):
    store, protocol = nine_companies
    problem = batch.release_audience(store, protocol, JAN, "committee", now=NOW).protected.problem
    slacks = [i for i, k in enumerate(problem.keys) if k.helper is not None and k.helper.role is HelperRole.SLACK]
    assert len(slacks) == 4  # AL, BD, CN and the total
    sites = problem.keys.index(CellKey(Quantity("production_locations", "count"), [Coordinate("country", "AL")]))
    slack = next(i for i in slacks if problem.keys[i].coordinates == problem.keys[sites].coordinates)
    assert problem.values[slack] == 38 - 9 and problem.primary[slack] and problem.upl[slack] == 0
    firms = problem.keys.index(
        CellKey(Quantity("production_locations", "companies[group]"), [Coordinate("country", "AL")])
    )
    assert (sites, tuple(sorted((firms, slack)))) in problem.relations
    # c01's share of the slack: 30 locations minus its 1 company
    assert problem.insiders.values_at("c01", np.array([slack]))[0] == 29.0


def test_a_relation_that_the_data_contradict_is_reported_naming_it(nine_companies, tmp_path: Path):
    store, _ = nine_companies
    protocol = protocol_of(tmp_path, TABLES, relation("wrong_way", *reversed(PAIR)))
    with pytest.raises(Exception, match="relation wrong_way says"):
        batch.release_audience(store, protocol, JAN, "committee", now=NOW)


def test_a_slack_cell_key_reads_back_from_its_text():
    larger = CellKey(Quantity("production_locations", "count"), [Coordinate("country", "AL")])
    slack = larger.helper_cell("firms_within_sites", 0, HelperRole.SLACK)
    assert str(slack) == "production_locations|count|-|country=AL|~firms_within_sites:0:slack"
    assert CellKey.parse(str(slack)) == slack and slack.is_helper and not slack.is_gap
