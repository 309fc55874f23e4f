"""Rollup: countries that fail the primary rules are merged into 'other <region>' rows, not hidden."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from aggregator.aggregation import build_problem, build_table_cells, key_index, with_insiders
from aggregator.disclosure.audit import audit
from aggregator.disclosure.rules import evaluate_primary
from aggregator.disclosure.suppression import protect
from aggregator.errors import ConfigError
from aggregator.protocol import load_protocol
from aggregator.store import RowSource, row_source

PERIOD = "2026-06"

PROTOCOL = """
[covenant]
id = "gold"
name = { en = "Gold", nl = "Goud" }
version = "t"
language = "LANGUAGE"
templates = ["origin"]

[disclosure]
min_contributors = 3
dominance = [{ n = 1, k = 100.0 }]

[[tables]]
id = "origin"
title = { en = "Origin", nl = "Herkomst" }
unit = { en = "g", nl = "g" }
template = "origin"
dimensions = DIMENSIONS
measure = { kind = "sum", column = "volume_g" }

[[audiences]]
id = "committee"
name = { en = "Committee", nl = "Commissie" }
tables = ["origin"]
frequency = "monthly"
"""
ROLLUP = '[{ column = "country", hierarchy = "m49", rollup = true }, { column = "source_type" }]'
PLAIN = '[{ column = "country", hierarchy = "m49" }, { column = "source_type" }]'

# (company, country, source_type, volume): CN has four contributors; JP, KR and TW (Eastern Asia) one each,
# three different ones together; GH (Sub-Saharan Africa) three; NG one, alone in its 'other' row too.
ROWS = [
    *[(c, "CN", "recycled", 10.0) for c in "abcd"],
    ("a", "JP", "recycled", 5.0),
    ("b", "KR", "recycled", 7.0),
    ("c", "TW", "recycled", 4.0),
    *[(c, "GH", "artisanal_small_scale", 3.0) for c in "abc"],
    ("d", "NG", "artisanal_small_scale", 2.0),
]


def protocol(tmp_path: Path, dimensions: str = ROLLUP, language: str = "en"):
    path = tmp_path / f"gold_{language}_{len(dimensions)}.toml"
    path.write_text(PROTOCOL.replace("DIMENSIONS", dimensions).replace("LANGUAGE", language), encoding="utf-8")
    return load_protocol(path)


def store(rows=ROWS) -> RowSource:
    con = duckdb.connect()
    con.execute("CREATE TABLE companies (company_id VARCHAR, group_id VARCHAR)")
    con.executemany("INSERT INTO companies VALUES (?, ?)", [(c, c) for c in "abcd"])
    con.execute("CREATE TABLE submissions (submission_id VARCHAR, state VARCHAR)")
    con.executemany("INSERT INTO submissions VALUES (?, 'accepted')", [(f"s{c}",) for c in "abcd"])
    con.execute(
        "CREATE TABLE rows_gold_origin (submission_id VARCHAR, company_id VARCHAR, period VARCHAR, "
        "source_row INTEGER, country VARCHAR, source_type VARCHAR, volume_g DOUBLE)"
    )
    con.executemany(
        "INSERT INTO rows_gold_origin VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(f"s{c}", c, PERIOD, i, country, kind, v) for i, (c, country, kind, v) in enumerate(rows)],
    )
    return row_source(con, "gold")


def cells(con, proto):
    (comp,) = build_table_cells(con, proto, "origin", PERIOD, proto.rule_params("origin", "committee"))
    return comp


def margin(comp, country: str) -> int:
    frame = comp.frame
    (rows,) = np.flatnonzero((frame["country"] == country) & (frame["source_type"] == "_T"))
    return int(rows)


def test_failing_countries_become_other_region_rows_and_totals_stay(tmp_path):
    rolled = cells(store(), protocol(tmp_path))
    plain = cells(store(), protocol(tmp_path, PLAIN))
    countries = set(rolled.frame["country"])
    assert {"JP", "KR", "TW", "NG"}.isdisjoint(countries)
    assert {"CN", "GH", "030~other", "202~other"} <= countries
    assert rolled.stats.total[margin(rolled, "030~other")] == 16.0
    assert rolled.stats.n[margin(rolled, "030~other")] == 3
    # only codes changed: every total and region is the same as without the rollup
    for code in ("_T", "142", "030", "002", "202"):
        assert rolled.stats.total[margin(rolled, code)] == plain.stats.total[margin(plain, code)]
    assert rolled.rollup == {"country": {"JP": "030~other", "KR": "030~other", "NG": "202~other", "TW": "030~other"}}


def test_a_country_failing_only_in_an_inner_cell_is_kept(tmp_path):
    rows = [*ROWS, ("a", "CN", "bank_vault", 1.0)]  # CN x bank_vault has one contributor; CN itself is safe
    rolled = cells(store(rows), protocol(tmp_path))
    assert "CN" in set(rolled.frame["country"])
    unsafe = evaluate_primary(rolled.stats, protocol(tmp_path).rule_params("origin", "committee")).unsafe
    inner = np.flatnonzero((rolled.frame["country"] == "CN") & (rolled.frame["source_type"] == "bank_vault"))
    assert unsafe[inner].all()


def test_other_rows_are_labelled_from_their_region_in_both_languages(tmp_path):
    assert protocol(tmp_path).hierarchy("m49").labels["030~other"].en == "Other Eastern Asia"
    assert protocol(tmp_path, language="nl").hierarchy("m49").labels["030~other"].nl == "Overig Oost-Azië"
    assert protocol(tmp_path).hierarchy("m49").path("030~other") == ("142", "030", "030~other")


def test_the_rolled_up_table_is_protected_and_passes_the_audit(tmp_path):
    con, proto = store(), protocol(tmp_path)
    comp = cells(con, proto)
    primary = evaluate_primary(comp.stats, proto.rule_params("origin", "committee"))
    problem = build_problem([comp], [primary], cost="value", apriori_upper_factor=1.5)
    problem = with_insiders(con, problem, [comp], [primary])
    index = key_index(problem.keys)
    # d is the only contributor of Other Sub-Saharan Africa: its own share is read through the same recoding
    other_africa = comp.keys[margin(comp, "202~other")]
    assert problem.insiders.values_at("d", [index[other_africa]])[0] == 2.0
    result = protect(problem, "optimal")
    assert result.suppressed[index[other_africa]]
    other_asia = index[comp.keys[margin(comp, "030~other")]]
    assert not problem.primary[other_asia] and not result.suppressed[other_asia]
    assert audit(problem, result.suppressed).passed


def test_rollup_without_a_hierarchy_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"tables\[0\]\.dimensions\[1\]\.rollup: a rollup needs a hierarchy"):
        protocol(tmp_path, '[{ column = "country", hierarchy = "m49" }, { column = "source_type", rollup = true }]')
    with pytest.raises(ConfigError, match=r"rollup: expected true or false"):
        protocol(tmp_path, '[{ column = "country", hierarchy = "m49", rollup = "yes" }]')


LEVEL = '[{ column = "country", hierarchy = "m49", level = "auto" }, { column = "source_type" }]'


def test_level_auto_publishes_down_to_the_finest_level_where_every_margin_passes(tmp_path):
    """JP, KR, TW and NG have one contributor each; Eastern Asia and Sub-Saharan Africa four: the table stops at
    the sub-regions, and every figure it keeps is the one the full table has."""
    con = store()
    coarse = cells(con, protocol(tmp_path, LEVEL))
    plain = cells(store(), protocol(tmp_path, PLAIN))
    assert set(coarse.frame["country"]) == {"_T", "142", "030", "002", "202"}
    assert int(coarse.frame["country_depth"].max()) == 2
    for code in ("_T", "142", "030", "002", "202"):
        assert coarse.stats.total[margin(coarse, code)] == plain.stats.total[margin(plain, code)]
        assert coarse.stats.n[margin(coarse, code)] == plain.stats.n[margin(plain, code)]
    assert coarse.rollup["country"]["CN"] == "030" and coarse.rollup["country"]["NG"] == "202"
    proto = protocol(tmp_path, LEVEL)
    primary = evaluate_primary(coarse.stats, proto.rule_params("origin", "committee"))
    problem = build_problem([coarse], [primary], cost="value", apriori_upper_factor=1.5)
    problem = with_insiders(con, problem, [coarse], [primary])
    assert audit(problem, protect(problem, "optimal").suppressed).passed


def test_level_auto_keeps_the_leaves_when_they_pass(tmp_path):
    rows = [(c, country, "recycled", 5.0) for country in ("CN", "JP") for c in "abc"]
    kept = cells(store(rows), protocol(tmp_path, LEVEL))
    assert {"CN", "JP"} <= set(kept.frame["country"]) and kept.rollup == {}


def test_level_auto_needs_a_hierarchy_and_no_rollup(tmp_path):
    for dims in (
        '[{ column = "country", level = "auto" }]',
        LEVEL.replace('level = "auto"', 'level = "auto", rollup = true'),
    ):
        with pytest.raises(ConfigError, match="level"):
            protocol(tmp_path, dims)
