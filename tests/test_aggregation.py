"""Aggregation: cell statistics in DuckDB against hand-computed answers and a pure-pandas recomputation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from unittest.mock import patch

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.aggregation import (
    AggregationError,
    build_problem,
    build_release_cells,
    build_table_cells,
    key_index,
    release_contributions,
    with_insiders,
)
from aggregator.aggregation import contributions as contributions_module
from aggregator.aggregation.contributions import component_contributions, last_of_repeated_pairs
from aggregator.aggregation.query import ContributionRows, registered
from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import PrimaryResult, RuleParams
from aggregator.protocol import TOTAL_CODE, load_protocol
from aggregator.store import RowSource, row_source
from support.contributions import by_key

ROOT = Path(__file__).resolve().parents[1]
TEXTILE = load_protocol(ROOT / "protocols" / "textile.toml")
PERIOD = "2026-06"
TOP2 = RuleParams(dominance=((2, 50.0),))

LOCATION_COLUMNS = {"country": "VARCHAR", "facility_type": "VARCHAR", "order_volume_pieces": "BIGINT"}
RISK_COLUMNS = {"country": "VARCHAR", "theme": "VARCHAR", "risk_identified": "BOOLEAN"}

# company -> group: c1 and c2 belong to one group; every other company is its own group
COMPANIES = [("c1", "g1"), ("c2", "g1"), ("c3", "g3"), ("c4", "g4"), ("c5", "g5")]

# (submission, company, period, country, facility_type, order_volume_pieces)
LOCATIONS = [
    ("s1", "c1", PERIOD, "NL", "laundry", 10),
    ("s1", "c1", PERIOD, "BD", "laundry", 20),
    ("s2", "c2", PERIOD, "BD", "spinning", 5),
    ("s3", "c3", PERIOD, "IN", "laundry", 7),
    ("s4", "c4", PERIOD, "NL", "spinning", 1),
    ("s5", "c4", PERIOD, "NL", "spinning", 100),  # quarantined submission: left out
    ("s6", "c3", "2026-05", "IN", "laundry", 1000),  # another period: left out
]
STATES = {"s1": "accepted", "s2": "accepted", "s3": "accepted", "s4": "accepted", "s5": "quarantined"}
STATES |= {"s6": "accepted", "s7": "accepted"}


def make_store(locations=LOCATIONS, risks=(), companies=COMPANIES, states=None) -> RowSource:
    """The store's tables in an in-memory DuckDB, read through the store's views."""
    con = duckdb.connect()
    con.execute("CREATE TABLE companies (company_id VARCHAR, group_id VARCHAR)")
    con.executemany("INSERT INTO companies VALUES (?, ?)", list(companies))
    con.execute("CREATE TABLE submissions (submission_id VARCHAR, state VARCHAR)")
    con.executemany("INSERT INTO submissions VALUES (?, ?)", list((states or STATES).items()))
    _rows_table(con, "rows_textile_production_locations", LOCATION_COLUMNS, locations)
    _rows_table(con, "rows_textile_risk_assessment", RISK_COLUMNS, risks)
    return row_source(con, "textile")


def _rows_table(con, name: str, columns: dict[str, str], rows) -> None:
    extra = ", ".join(f"{c} {t}" for c, t in columns.items())
    con.execute(
        f"CREATE TABLE {name} (submission_id VARCHAR, company_id VARCHAR, period VARCHAR, source_row INTEGER, {extra})"
    )
    marks = ", ".join("?" * (len(columns) + 4))
    if rows:
        con.executemany(f"INSERT INTO {name} VALUES ({marks})", [(*r[:3], i, *r[3:]) for i, r in enumerate(rows)])


def by_codes(component, *codes: str) -> int:
    """Row index of the cell with these codes (one per dimension)."""
    columns = [c for c in component.frame.columns if not c.endswith("_depth") and c not in ("value", "n_all")]
    mask = np.logical_and.reduce([component.frame[c] == code for c, code in zip(columns, codes, strict=True)])
    (rows,) = np.flatnonzero(mask)
    return int(rows)


def stats_at(component, *codes: str) -> tuple:
    i = by_codes(component, *codes)
    s = component.stats
    return (s.total[i], int(s.n[i]), int(s.n_all[i]), tuple(s.top[i]), s.waived[i])


# ------------------------------------------------------------------------------------------- known answers


def test_values_and_contributors_at_inner_cells_and_every_margin():
    (volume,) = build_table_cells(make_store(), TEXTILE, "order_volume_by_region", PERIOD, TOP2)
    assert volume.component == "value"
    assert list(volume.frame["country"]) == [TOTAL_CODE, "142", "034", "BD", "IN", "150", "155", "NL"]
    assert list(volume.frame["country_depth"]) == [0, 1, 2, 3, 3, 1, 2, 3]
    # c1 and c2 are one group: their 20 + 5 in BD is one contribution of 25
    assert stats_at(volume, "BD") == (25.0, 1, 1, (25.0, 0.0), 0.0)
    assert stats_at(volume, "IN") == (7.0, 1, 1, (7.0, 0.0), 0.0)
    assert stats_at(volume, "NL") == (11.0, 2, 2, (10.0, 1.0), 0.0)
    assert stats_at(volume, "034") == (32.0, 2, 2, (25.0, 7.0), 0.0)
    assert stats_at(volume, "142") == (32.0, 2, 2, (25.0, 7.0), 0.0)
    assert stats_at(volume, "150") == (11.0, 2, 2, (10.0, 1.0), 0.0)
    # the world total: g1's 10 in NL and 25 in Asia are one contribution of 35, not two of 25 and 10
    assert stats_at(volume, TOTAL_CODE) == (43.0, 3, 3, (35.0, 7.0), 0.0)
    assert volume.largest[by_codes(volume, TOTAL_CODE)] == "g1"
    assert list(volume.frame["value"]) == list(volume.stats.total)


def test_counting_companies_instead_of_groups():
    (volume,) = build_table_cells(make_store(), TEXTILE, "order_volume_by_region", PERIOD, TOP2, count_unit="company")
    assert stats_at(volume, "BD") == (25.0, 2, 2, (20.0, 5.0), 0.0)
    assert stats_at(volume, TOTAL_CODE) == (43.0, 4, 4, (30.0, 7.0), 0.0)
    assert volume.largest[by_codes(volume, TOTAL_CODE)] == "c1"


def test_waived_contributors_leave_n_and_top_but_stay_in_the_value():
    (volume,) = build_table_cells(
        make_store(), TEXTILE, "order_volume_by_region", PERIOD, TOP2, waived=frozenset({"c3"})
    )
    assert stats_at(volume, "IN") == (7.0, 0, 1, (0.0, 0.0), 7.0)
    assert volume.largest[by_codes(volume, "IN")] is None
    assert stats_at(volume, TOTAL_CODE) == (43.0, 2, 3, (35.0, 1.0), 7.0)


def test_a_group_is_waived_only_when_all_its_companies_waived():
    store = make_store()
    (one,) = build_table_cells(store, TEXTILE, "order_volume_by_region", PERIOD, TOP2, waived=frozenset({"c1"}))
    assert stats_at(one, "BD") == (25.0, 1, 1, (25.0, 0.0), 0.0)
    (both,) = build_table_cells(store, TEXTILE, "order_volume_by_region", PERIOD, TOP2, waived=frozenset({"c1", "c2"}))
    assert stats_at(both, "BD") == (25.0, 0, 1, (0.0, 0.0), 25.0)


def test_two_dimensions_count_rows_and_keep_every_margin():
    (locations,) = build_table_cells(make_store(), TEXTILE, "locations_by_region_type", PERIOD, TOP2)
    assert stats_at(locations, "BD", "laundry") == (1.0, 1, 1, (1.0, 0.0), 0.0)
    assert stats_at(locations, "BD", TOTAL_CODE) == (2.0, 1, 1, (2.0, 0.0), 0.0)
    assert stats_at(locations, TOTAL_CODE, "spinning") == (2.0, 2, 2, (1.0, 1.0), 0.0)
    assert stats_at(locations, "142", "laundry") == (2.0, 2, 2, (1.0, 1.0), 0.0)
    assert stats_at(locations, TOTAL_CODE, TOTAL_CODE) == (5.0, 3, 3, (3.0, 1.0), 0.0)
    assert len(locations) == 8 * 3 - 1  # 8 country nodes x (total + 2 types), less the absent IN x spinning
    assert_relations_hold(locations)


def test_canonical_keys_leave_totals_out_and_sort_dimensions_by_name():
    (locations,) = build_table_cells(make_store(), TEXTILE, "locations_by_region_type", PERIOD, TOP2)
    codes = zip(locations.frame["country"], locations.frame["facility_type"], strict=True)
    keys = dict(zip(codes, map(str, locations.keys), strict=True))
    assert keys[(TOTAL_CODE, TOTAL_CODE)] == "production_locations|count|-|"
    assert keys[("BD", "laundry")] == "production_locations|count|-|country=BD|facility_type=laundry"
    assert keys[("142", TOTAL_CODE)] == "production_locations|count|-|country=m49:142"
    assert len(set(locations.keys)) == len(locations.keys)


def assert_relations_hold(component) -> None:
    values = component.stats.total
    assert component.relations, "a table with margins has relations"
    for total, parts in component.relations:
        assert values[total] == pytest.approx(values[list(parts)].sum())


def test_relations_cover_every_level_of_every_dimension():
    (locations,) = build_table_cells(make_store(), TEXTILE, "locations_by_region_type", PERIOD, TOP2)
    keys = [str(k) for k in locations.keys]
    named = {(keys[t], tuple(keys[p] for p in parts)) for t, parts in locations.relations}
    prefix = "production_locations|count|-|"
    assert (prefix, (prefix + "country=m49:142", prefix + "country=m49:150")) in named
    assert (prefix, (prefix + "facility_type=laundry", prefix + "facility_type=spinning")) in named
    assert (
        prefix + "country=m49:034|facility_type=laundry",
        (prefix + "country=BD|facility_type=laundry", prefix + "country=IN|facility_type=laundry"),
    ) in named
    assert (
        prefix + "country=BD",
        (prefix + "country=BD|facility_type=laundry", prefix + "country=BD|facility_type=spinning"),
    ) in named


# ------------------------------------------------------------------------------- linked tables, filters

LINKED = """
[covenant]
id = "textile"
name = { en = "Textile", nl = "Textiel" }
version = "1"
templates = ["production_locations"]

[[tables]]
id = "by_region"
title = { en = "Volume", nl = "Volume" }
unit = { en = "pieces", nl = "stuks" }
template = "production_locations"
dimensions = [{ column = "country", hierarchy = "m49" }]
measure = { kind = "sum", column = "order_volume_pieces" }

[[tables]]
id = "by_type_and_region"
title = { en = "Volume", nl = "Volume" }
unit = { en = "pieces", nl = "stuks" }
template = "production_locations"
dimensions = [{ column = "facility_type" }, { column = "country", hierarchy = "m49" }]
measure = { kind = "sum", column = "order_volume_pieces" }

[[audiences]]
id = "committee"
name = { en = "Committee", nl = "Commissie" }
tables = ["by_region", "by_type_and_region"]
frequency = "monthly"
"""


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    path = tmp_path_factory.mktemp("protocol") / "linked.toml"
    path.write_text(LINKED)
    return load_protocol(path)


def test_linked_tables_share_the_keys_of_common_cells(linked):
    small, big = build_release_cells(make_store(), linked, "committee", PERIOD)
    assert (small.table_id, big.table_id) == ("by_region", "by_type_and_region")
    shared = set(small.keys) & set(big.keys)
    assert shared == set(small.keys)  # every cell of the small table is a margin of the big one
    problem = build_problem(
        [small, big], [no_primaries(small), no_primaries(big)], cost="value", apriori_upper_factor=1.5
    )
    index = key_index(problem.keys)
    assert problem.size == len(set(small.keys) | set(big.keys))
    for key in shared:
        assert problem.values[index[key]] == big.stats.total[big.keys.index(key)]


def test_filters_and_distinct_company_counts(tmp_path):
    risks = [
        ("s1", "c1", PERIOD, "BD", "child_labour", True),
        ("s1", "c1", PERIOD, "IN", "child_labour", True),  # same company, second country
        ("s2", "c2", PERIOD, "BD", "forced_labour", True),  # same group as c1
        ("s3", "c3", PERIOD, "BD", "child_labour", False),  # filtered out
        ("s4", "c4", PERIOD, "NL", "living_wage", True),
    ]
    (risk,) = build_table_cells(make_store(risks=risks), TEXTILE, "risks_by_theme_region", PERIOD, TOP2)
    assert stats_at(risk, "child_labour", "BD") == (1.0, 1, 1, (1.0, 0.0), 0.0)
    assert stats_at(risk, "child_labour", "034") == (1.0, 1, 1, (1.0, 0.0), 0.0)  # g1 counts once
    assert stats_at(risk, "human_rights", "BD") == (1.0, 1, 1, (1.0, 0.0), 0.0)
    assert stats_at(risk, TOTAL_CODE, TOTAL_CODE) == (2.0, 2, 2, (1.0, 1.0), 0.0)
    assert str(risk.keys[0]) == "risk_assessment|companies[group]|risk_identified=true|"
    # distinct counts are not additive: relations go through helper cells instead
    assert not risk.additive and not risk.relations and risk.aux


def test_distinct_count_helper_cells_make_exact_relations():
    (companies,) = build_table_cells(make_store(), TEXTILE, "companies_per_country", PERIOD, TOP2)
    problem = build_problem([companies], [no_primaries(companies)], cost="unity", apriori_upper_factor=1.5)
    helpers = [k for k in problem.keys if k.is_helper]
    assert helpers and problem.primary[[problem.keys.index(k) for k in helpers]].all()
    for total, parts in problem.relations:
        assert problem.values[total] == pytest.approx(problem.values[list(parts)].sum())
    assert (problem.values >= problem.lower).all() and (problem.values <= problem.upper).all()


def test_unknown_code_in_a_hierarchy_is_refused():
    rows = [("s1", "c1", PERIOD, "XX", "laundry", 1)]
    with pytest.raises(AggregationError, match="code 'XX' of column country is not in hierarchy m49"):
        build_table_cells(make_store(locations=rows), TEXTILE, "order_volume_by_region", PERIOD, TOP2)


def test_a_ragged_hierarchy_gives_each_node_once_and_empty_codes_their_own_cell():
    rows = [("s1", "c1", PERIOD, "AQ", "laundry", 4), ("s3", "c3", PERIOD, "NL", None, 6)]
    (locations,) = build_table_cells(make_store(locations=rows), TEXTILE, "locations_by_region_type", PERIOD, TOP2)
    frame = locations.frame
    totals = frame[frame["facility_type"] == TOTAL_CODE]
    assert list(zip(totals["country"], totals["country_depth"], strict=True)) == [
        (TOTAL_CODE, 0),
        ("150", 1),
        ("155", 2),
        ("NL", 3),
        ("999", 1),
        ("AQ", 2),
    ]
    assert stats_at(locations, "NL", "_U") == (1.0, 1, 1, (1.0, 0.0), 0.0)
    assert_relations_hold(locations)


def test_wrong_count_unit_is_a_plain_error():
    with pytest.raises(AggregationError, match="unknown count unit 'holding'"):
        build_table_cells(make_store(), TEXTILE, "order_volume_by_region", PERIOD, TOP2, count_unit="holding")


def test_ratio_tables_give_a_numerator_and_a_denominator(tmp_path):
    con = make_store()
    cols = {
        "country": "VARCHAR",
        "workers_covered": "BIGINT",
        "wage_paid_monthly_eur": "DOUBLE",
        "living_wage_benchmark_eur": "DOUBLE",
    }
    _rows_table(
        con.con,
        "rows_textile_living_wage",
        cols,
        [
            ("s1", "c1", PERIOD, "BD", 100, 120.0, 200.0),
            ("s3", "c3", PERIOD, "BD", 50, 150.0, 210.0),
        ],
    )
    con = row_source(con.con, "textile")  # the new table's view
    numerator, denominator = build_table_cells(con, TEXTILE, "living_wage_ratio_by_region", PERIOD, TOP2)
    assert (numerator.component, denominator.component) == ("numerator", "denominator")
    assert stats_at(numerator, "BD")[0] == 100 * 120.0 + 50 * 150.0
    assert stats_at(denominator, "BD")[0] == 100 * 200.0 + 50 * 210.0
    assert str(numerator.keys[0]) == "living_wage|sum(wage_paid_monthly_eur*workers_covered)|-|"


# ------------------------------------------------------------------------------------- problem, insiders


def no_primaries(component) -> PrimaryResult:
    size = len(component)
    return PrimaryResult(np.zeros(size, bool), np.zeros(size), np.zeros(size), [()] * size)


def test_problem_takes_the_strictest_primary_and_the_costs_of_the_protocol():
    con = make_store()
    (volume,) = build_table_cells(con, TEXTILE, "order_volume_by_region", PERIOD, TOP2)
    primary = no_primaries(volume)
    bd = by_codes(volume, "BD")
    primary.unsafe[bd], primary.upl[bd], primary.lpl[bd] = True, 2.5, 2.5
    problem = build_problem([volume], [primary], cost="value", apriori_upper_factor=1.5)
    problem = with_insiders(con, problem, [volume], [primary])
    index = key_index(problem.keys)
    i, total = index[volume.keys[bd]], index[volume.keys[by_codes(volume, TOTAL_CODE)]]
    assert problem.insiders.contributors == ["g1"]  # the largest contributor of the one primary cell
    assert problem.insiders.values_at("g1", [i, total]).tolist() == [25.0, 35.0]
    assert problem.primary[i] and problem.upl[i] == 2.5 and problem.primary.sum() == 1
    assert problem.cost[i] == 26.0  # value + 1
    assert (problem.upper == 1.5 * 43.0).all() and (problem.lower == 0).all()
    assert problem.keys == sorted(problem.keys)
    unity = build_problem([volume], [primary], cost="unity", apriori_upper_factor=1.5)
    assert unity.cost[i] == 1  # a country: a leaf
    assert unity.cost[total] == 4  # the world total sits three levels (region, sub-region, country) higher
    contributors = build_problem([volume], [primary], cost="contributors", apriori_upper_factor=1.5)
    assert contributors.cost[total] == 3 * 4


# ------------------------------------------------------------------------------- property: DuckDB == pandas

COUNTRIES = ["NL", "DE", "BD", "IN", "CN", "AQ"]  # AQ: a ragged branch of M49 (999 -> AQ)
TYPES = ["laundry", "spinning", "fabric_mill"]
M49 = TEXTILE.hierarchy("m49")

row_strategy = st.tuples(
    st.sampled_from(["c1", "c2", "c3", "c4", "c5"]),
    st.sampled_from(COUNTRIES),
    st.sampled_from(TYPES),
    st.integers(min_value=-3, max_value=50),
)


def pandas_stats(rows: pd.DataFrame, cell: tuple[str, str], waived: set[str], k: int) -> tuple:
    """Recompute one cell's statistics directly from the rows: the reference implementation."""
    country, ftype = cell
    in_country = rows["country"].map(lambda c: country == TOTAL_CODE or country in M49.path(c))
    in_type = rows["facility_type"].map(lambda t: ftype in (TOTAL_CODE, t))
    sums = rows[in_country & in_type].groupby("group")["v"].sum()
    mine = sums[[g not in waived for g in sums.index]]
    top = sorted(mine.abs(), reverse=True)[:k]
    top += [0.0] * (k - len(top))
    return (
        float(sums.sum()),
        len(mine),
        len(sums),
        *top,
        float(sums[[g in waived for g in sums.index]].sum()),
        bool((sums < 0).any()),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row_strategy, min_size=1, max_size=30), waive=st.sets(st.sampled_from(["c3", "c5"])))
def test_duckdb_statistics_equal_a_pandas_recomputation(linked, rows, waive):
    locations = [(f"s{c}", c, PERIOD, country, t, v) for c, country, t, v in rows]
    con = make_store(locations=locations, states={f"s{c}": "accepted" for c, _ in COMPANIES})
    params = RuleParams(dominance=((3, 90.0),), negative_values="absolute")
    (cells,) = build_table_cells(con, TEXTILE, "locations_by_region_type", PERIOD, params, waived=frozenset(waive))
    (volume,) = build_table_cells(con, linked, "by_type_and_region", PERIOD, params, waived=frozenset(waive))
    frame = pd.DataFrame(locations, columns=["s", "company", "p", "country", "facility_type", "v"])
    frame["group"] = frame["company"].map(dict(COMPANIES))
    waived_groups = {g for g in frame["group"] if all(c in waive for c, gg in COMPANIES if gg == g)}
    expected_cells = {
        (c, t)
        for country, ftype in zip(frame["country"], frame["facility_type"], strict=True)
        for c in (TOTAL_CODE, *M49.path(country))
        for t in (TOTAL_CODE, ftype)
    }
    cells_of_volume = list(zip(volume.frame["country"], volume.frame["facility_type"], strict=True))
    assert set(cells_of_volume) == expected_cells
    s = volume.stats
    for i, cell in enumerate(cells_of_volume):
        got = (
            s.total[i],
            int(s.n[i]),
            int(s.n_all[i]),
            *s.top[i],
            s.waived[i],
            bool(s.has_negative[i]),
        )
        expected = pandas_stats(frame, cell, waived_groups, 3)
        np.testing.assert_allclose(np.array(got, float), np.array(expected, float), err_msg=str(cell))
    for total, parts in volume.relations:
        assert s.total[total] == pytest.approx(s.total[list(parts)].sum())
    # the row-count table over the same rows: counts per cell add up as well
    assert cells.stats.total[0] == len(frame)
    for total, parts in cells.relations:
        assert cells.stats.total[total] == cells.stats.total[list(parts)].sum()


def test_a_hidden_only_child_of_a_published_region_is_disclosed_in_company_counts():
    # NL is the only country of Western Europe here: the region's company count equals NL's, so hiding NL
    # alone protects nothing. The gap helper cells (region = part + gap, gap >= 0) let the audit see it.
    (companies,) = build_table_cells(make_store(), TEXTILE, "companies_per_country", PERIOD, TOP2)
    primary = no_primaries(companies)
    nl = by_codes(companies, "NL")
    primary.unsafe[nl], primary.upl[nl], primary.lpl[nl] = True, 1.0, 1.0
    problem = build_problem([companies], [primary], cost="unity", apriori_upper_factor=1.5)
    index = key_index(problem.keys)
    hidden = problem.primary.copy()  # NL plus the helper cells; every real cell but NL published
    result = audit(problem, hidden, insiders=False)
    i = index[companies.keys[nl]]
    assert result.lo[i] == pytest.approx(problem.values[i]) and result.hi[i] == pytest.approx(problem.values[i])
    assert not result.passed


# ----------------------------------------------------------------- exact sums: micro-units or decimals
# Values are summed exactly to 6 decimals so that releases are byte-identical from run to run. Small
# enough data is summed as integer micro-units in doubles (exact below 2**53), larger data as DECIMAL(38, 6);
# both must give the very same floats.

FRACTIONAL = {**LOCATION_COLUMNS, "order_volume_pieces": "DOUBLE"}

value_strategy = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda k: (k + 0.5) / 1e6),  # half a micro-unit
    st.integers(min_value=-(10**4), max_value=10**4).map(lambda k: k / 10),
)


def fractional_store(rows) -> RowSource:
    source = make_store(states={f"s{c}": "accepted" for c, _ in COMPANIES})
    source.con.execute("DROP TABLE rows_textile_production_locations")
    locations = [(f"s{c}", c, PERIOD, country, ftype, v) for c, country, ftype, v in rows]
    _rows_table(source.con, "rows_textile_production_locations", FRACTIONAL, locations)
    return source


def in_micro_units(query, con) -> bool:
    """Whether the query sums its rows as integer micro-units in doubles (else as decimals)."""
    with query.inner_cells(con) as inner:
        return inner.micro


def build_both_ways(con, protocol, table_id: str, params: RuleParams, waived=frozenset()):
    """The cells (and every contributor's own contributions) through micro-units and through decimals."""
    fast = build_table_cells(con, protocol, table_id, PERIOD, params, waived=waived)
    with patch("aggregator.aggregation.query.EXACT_DOUBLE_BOUND", 0.0):
        exact = build_table_cells(con, protocol, table_id, PERIOD, params, waived=waived)
        exact_own = by_key(con, exact)
    return fast, by_key(con, fast), exact, exact_own


def assert_identical(fast, exact) -> None:
    for a, b in zip(fast, exact, strict=True):
        assert a.keys == b.keys and a.relations == b.relations and a.largest == b.largest
        pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
        for name in ("total", "n", "top", "waived", "n_all", "has_negative"):
            x, y = getattr(a.stats, name), getattr(b.stats, name)
            assert x.dtype == y.dtype and np.array_equal(x, y), name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2", "c3", "c4", "c5"]),
            st.sampled_from(COUNTRIES),
            st.sampled_from(TYPES),
            value_strategy,
        ),
        min_size=1,
        max_size=25,
    ),
    waive=st.sets(st.sampled_from(["c3", "c5"])),
    absolute=st.booleans(),
)
def test_micro_unit_sums_equal_decimal_sums_exactly(linked, rows, waive, absolute):
    con = fractional_store(rows)
    params = RuleParams(dominance=((2, 90.0),), negative_values="absolute" if absolute else "refuse")
    fast, fast_own, exact, exact_own = build_both_ways(con, linked, "by_type_and_region", params, frozenset(waive))
    assert in_micro_units(fast[0].query, con.con)
    assert_identical(fast, exact)
    assert fast_own == exact_own


def test_micro_units_round_half_away_from_zero_like_the_decimal_cast():
    rng = np.random.default_rng(5)
    values = np.concatenate(
        [
            (rng.integers(-(10**12), 10**12, 20_000) + 0.5) / 1e6,  # exactly between two micro-units, or nearly
            rng.lognormal(2.0, 5.0, 20_000) * rng.choice([-1.0, 1.0], 20_000),
            np.arange(-2000, 2000) * 0.0000005,
        ]
    )
    values = values[np.abs(values) < 4e9]
    con = duckdb.connect()
    con.register("vals", pd.DataFrame({"x": values}))
    differing = con.execute(
        "SELECT count(*) FROM vals WHERE round(x * 1000000) <> CAST(CAST(x AS DECIMAL(38, 6)) * 1000000 AS HUGEINT)"
    ).fetchone()[0]
    assert differing == 0


def test_large_values_are_summed_as_decimals_and_stay_exact(linked):
    # 5e9 units are 5e15 micro-units: beyond what doubles add up exactly, so the decimal path is taken
    rows = [("c3", "IN", "laundry", 3_000_000_000.000001), ("c4", "IN", "laundry", 2_000_000_000.000002)]
    rows += [("c5", "NL", "laundry", 0.1), ("c5", "NL", "laundry", 0.2)]
    con = fractional_store(rows)
    (volume,) = build_table_cells(con, linked, "by_region", PERIOD, TOP2)
    assert not in_micro_units(volume.query, con.con)
    assert stats_at(volume, "IN")[0] == float(Decimal("5000000000.000003"))
    assert stats_at(volume, "NL")[0] == 0.3  # the decimal 0.3, not 0.1 + 0.2 in doubles
    assert stats_at(volume, TOTAL_CODE)[0] == float(Decimal("5000000000.300003"))
    # the same rows below the bound take micro-units and give the same answers
    small = fractional_store([(c, country, t, v / 1000) for c, country, t, v in rows])
    (volume,) = build_table_cells(small, linked, "by_region", PERIOD, TOP2)
    assert in_micro_units(volume.query, small.con)
    assert stats_at(volume, "NL")[0] == float(Decimal("0.0003"))


def test_rows_added_over_the_stored_ones_that_are_too_large_for_micro_units_are_summed_as_decimals(linked):
    # The size of the sums is guessed from the stored rows of the month. Rows the relation adds over them (a
    # company's figures carried forward from an earlier month) can still make them too large for micro-units:
    # then the sums are computed again as decimals.
    source = fractional_store([("c3", "IN", "laundry", 0.1), ("c5", "NL", "laundry", 0.2)])
    stored = "rows_textile_production_locations"
    source.con.execute(
        f"CREATE TEMP VIEW with_carried AS SELECT * FROM {source.rows['production_locations']} UNION ALL "
        f"SELECT * REPLACE ('c4' AS company_id, 5000000000.000003 AS order_volume_pieces) FROM {stored} "
        "WHERE company_id = 'c3'"
    )
    carried = RowSource(
        source.con, {"production_locations": "with_carried"}, source.companies, {"production_locations": stored}
    )
    (volume,) = build_table_cells(carried, linked, "by_region", PERIOD, TOP2)
    assert volume.query.stored == stored and not in_micro_units(volume.query, source.con)
    assert stats_at(volume, "IN")[0] == float(Decimal("5000000000.100003"))
    (plain,) = build_table_cells(source, linked, "by_region", PERIOD, TOP2)
    assert in_micro_units(plain.query, source.con) and stats_at(plain, "IN")[0] == 0.1


def test_insiders_see_exactly_their_share_of_everyones_contributions():
    # the insiders' rows are picked before the rows are summed; their own contributions must not change
    con = make_store()
    (volume,) = build_table_cells(con, TEXTILE, "order_volume_by_region", PERIOD, TOP2)
    primary = no_primaries(volume)
    primary.unsafe[by_codes(volume, "IN")] = True  # its largest (and only) contributor: g3
    own = build_problem([volume], [primary], cost="value", apriori_upper_factor=1.5)
    own = with_insiders(con, own, [volume], [primary])
    index = key_index(own.keys)
    everyone = release_contributions(con, [volume], index)
    assert own.insiders.contributors == ["g3"]
    assert own.insiders.as_dict()["g3"] == everyone.as_dict()["g3"]
    assert own.insiders.values_at("g3", [index[volume.keys[by_codes(volume, "IN")]]])[0] == 7.0
    assert everyone.contributors == ["g1", "g3", "g4"]  # g5 has no accepted rows


def test_equal_largest_contributions_name_the_later_contributor_and_skip_waived_ones():
    locations = [("s3", "c3", PERIOD, "NL", "laundry", 5), ("s4", "c4", PERIOD, "NL", "laundry", 5)]
    locations += [("s1", "c1", PERIOD, "NL", "spinning", -9)]
    con = make_store(locations=locations)
    params = RuleParams(dominance=((2, 90.0),), negative_values="absolute")
    (volume,) = build_table_cells(con, TEXTILE, "order_volume_by_region", PERIOD, params)
    nl = by_codes(volume, "NL")
    assert volume.largest[nl] == "g1" and tuple(volume.stats.top[nl]) == (9.0, 5.0)  # |-9| is the largest
    (volume,) = build_table_cells(make_store(locations=locations[:2]), TEXTILE, "order_volume_by_region", PERIOD, TOP2)
    assert volume.largest[nl] == "g4" and tuple(volume.stats.top[nl]) == (5.0, 5.0)  # a tie: the later name
    (volume,) = build_table_cells(
        make_store(locations=locations[:2]), TEXTILE, "order_volume_by_region", PERIOD, TOP2, waived=frozenset({"c4"})
    )
    assert volume.largest[nl] == "g3" and tuple(volume.stats.top[nl]) == (5.0, 0.0)


# ------------------------------------------------- every contributor's own contributions, as columns
# At 10,000 companies these are ~11 million (contributor, cell) records, computed with numpy instead of one
# Python step per record. The reference below is the per-record computation, written from the definitions.


def reference_contributions(source, comp) -> dict[str, dict[str, float]]:
    """One Python step per record: the contributor sums at every cell, then the helper cells by definition."""
    query, dims, con = comp.query, comp.dimensions, source.con
    with query.inner_cells(con) as inner, registered(con, dims) as names:
        rows = query.contributions(con, inner, dims, names)
    position = {codes: i for i, codes in enumerate(zip(*(comp.frame[d.column] for d in dims), strict=True))}
    own: dict[str, dict[str, float]] = {}
    for r, contributor in enumerate(rows.contributor.tolist()):
        codes = tuple(d.codes[int(rows.nodes[i][r])] for i, d in enumerate(dims))
        own.setdefault(rows.names[contributor], {})[comp.keys[position[codes]]] = float(rows.value[r])
    for mine in own.values():
        real = dict(mine)
        for aux in comp.aux:
            pairs = sum(real.get(comp.keys[p], 0.0) for p in aux.parts)
            total = real.get(comp.keys[aux.total], 0.0)
            if pairs:
                mine[aux.sum_key], mine[aux.overlap_key] = pairs, pairs - total
            if total:
                for part, gap in zip(aux.parts, aux.gap_keys, strict=True):
                    mine[gap] = total - real.get(comp.keys[part], 0.0)
    return own


risk_row = st.tuples(
    st.sampled_from(["c1", "c2", "c3", "c4", "c5"]),
    st.sampled_from(COUNTRIES),
    st.sampled_from(["child_labour", "forced_labour", "living_wage", "water_chemicals_energy"]),
    st.booleans(),
)


@pytest.mark.parametrize("dense", [True, False], ids=["dense lookup", "binary search"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    locations=st.lists(row_strategy, min_size=1, max_size=25),
    risks=st.lists(risk_row, min_size=1, max_size=25),
)
def test_every_contribution_equals_the_per_record_reference(dense, locations, risks):
    location_rows = [(f"s{c}", c, PERIOD, country, t, v) for c, country, t, v in locations]
    risk_rows = [(f"s{c}", c, PERIOD, country, theme, flag) for c, country, theme, flag in risks]
    con = make_store(location_rows, risk_rows, states={f"s{c}": "accepted" for c, _ in COMPANIES})
    limit = contributions_module.DENSE_LOOKUP_LIMIT if dense else 0
    with patch.object(contributions_module, "DENSE_LOOKUP_LIMIT", limit):
        for table_id in ("risks_by_theme_region", "companies_per_country", "order_volume_by_region"):
            for comp in build_table_cells(con, TEXTILE, table_id, PERIOD, TOP2):
                own = by_key(con, [comp])
                assert own == reference_contributions(con, comp), table_id
                assert list(own) == sorted(own)
                if comp.additive:  # the contributors' own sums add up to every cell's value
                    for i, key in enumerate(comp.keys):
                        assert sum(mine.get(key, 0.0) for mine in own.values()) == pytest.approx(comp.stats.total[i])


def test_contributions_by_cell_index_match_the_keyed_ones(linked):
    risks = [("s1", "c1", PERIOD, "BD", "child_labour", True), ("s4", "c4", PERIOD, "NL", "living_wage", True)]
    con = make_store(risks=risks)
    components = build_release_cells(con, linked, "committee", PERIOD)
    components += build_table_cells(con, TEXTILE, "risks_by_theme_region", PERIOD, TOP2)
    primaries = [no_primaries(c) for c in components]
    problem = build_problem(components, primaries, cost="value", apriori_upper_factor=1.5)
    index = key_index(problem.keys)
    by_cell = release_contributions(con, components, index)
    keyed = by_key(con, components)
    expected = {who: dict(sorted((index[k], v) for k, v in own.items())) for who, own in sorted(keyed.items())}
    assert by_cell.as_dict() == expected
    assert by_cell.contributors == ["g1", "g3", "g4"] and "g3" in by_cell and "g5" not in by_cell
    cells, values = by_cell.of_contributor("g3")
    assert dict(zip(cells.tolist(), values.tolist(), strict=True)) == expected["g3"] and list(cells) == sorted(cells)
    assert by_cell.values_at("g5", cells).tolist() == [0.0] * len(cells)


def test_of_a_pair_given_by_two_components_the_later_one_counts():
    # cell 5 is in both components: contributor 0 has it in both (the second value counts), contributor 1
    # only in the first (kept); cell 7 is in the first component only
    who = np.array([0, 1, 0, 0, 2])
    cell = np.array([5, 5, 7, 5, 5])
    value = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    cells_of_part = [np.array([5, 7]), np.array([5])]
    kept = last_of_repeated_pairs(who, cell, value, cells_of_part)
    assert sorted(zip(*(a.tolist() for a in kept), strict=True)) == [(0, 5, 4.0), (0, 7, 3.0), (1, 5, 2.0), (2, 5, 5.0)]


def test_contribution_rows_name_their_contributors_in_sorted_order_and_filter_by_name():
    # contributors come as integer ids (numbered over every company, so some have no record in a table, and
    # the numbering need not follow the names' order); names are attached only when records are coded
    rows = ContributionRows(
        nodes=[np.array([0, 1, 1, 2])],
        contributor=np.array([3, 1, 3, 3]),
        value=np.array([1.0, 2.0, 3.0, 4.0]),
        names=np.array([None, "g9", None, "g10"], dtype=object),
    )
    names, who = rows.coded()
    assert names.tolist() == ["g10", "g9"] and who.tolist() == [0, 1, 0, 0]
    mine = rows.of(["g9", "g7"])
    assert mine.contributor.tolist() == [1] and mine.value.tolist() == [2.0] and mine.nodes[0].tolist() == [1]
    assert mine.coded()[0].tolist() == ["g9"]
    assert len(rows.of([]).value) == 0


@pytest.mark.parametrize("table_id", ["order_volume_by_region", "companies_per_country"])
def test_contributions_fetched_with_the_statistics_equal_a_separate_pass(table_id: str) -> None:
    # The batch fetches every contributor's records in the same pass as the statistics; the insiders'
    # records are then a filter of them. Both must equal what a separate pass over the rows gives.
    con = make_store()
    (alone,) = build_table_cells(con, TEXTILE, table_id, PERIOD, TOP2)
    (together,) = build_table_cells(con, TEXTILE, table_id, PERIOD, TOP2, contributions=True)
    assert alone.contribution_rows is None and together.contribution_rows is not None
    for only in (None, ["g1"], ["g2", "g3"]):
        (keys, separate), (fetched_keys, fetched) = (component_contributions(con, c, only) for c in (alone, together))
        assert keys == fetched_keys and list(separate.names) == list(fetched.names)
        records = [
            sorted(zip(r.who.tolist(), r.cell.tolist(), r.value.tolist(), strict=True)) for r in (separate, fetched)
        ]
        assert records[0] == records[1] and records[0], only  # in any order: SQL gives no order either
    assert len(component_contributions(con, together, ["g2"])[1]) < len(component_contributions(con, together)[1])
