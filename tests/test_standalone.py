"""Standalone protection (`aggregator protect`): microdata file + table definition -> protected table files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from aggregator.cli.secretariat import main
from aggregator.errors import ConfigError, ValidationFailed
from aggregator.standalone import protect_microdata
from support.cli import json_result

# Three contributors in north, four in south, one in east. With at least 3 contributors per cell, east is
# unsafe; hiding it alone would let anyone compute it as total - north - south, so the cheaper of north and
# south (north, 6 against 40) is hidden as well.
ROWS = [
    ("a", "north", 2),
    ("b", "north", 2),
    ("c", "north", 2),
    *[(c, "south", 10) for c in "abcd"],
    ("a", "east", 5),
]
TABLE = """
[standalone]
contributor = "company"

[disclosure]
min_contributors = 3
dominance = [{ n = 1, k = 100.0 }]

[[tables]]
id = "volume_by_region"
title = { en = "Volume by region", nl = "Volume per regio" }
dimensions = [{ column = "region" }]
measure = { kind = "sum", column = "volume" }
"""


def write_csv(path: Path, rows=ROWS, sep: str = ",", header=("company", "region", "volume")) -> Path:
    lines = [sep.join(header)] + [sep.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_table(path: Path, text: str = TABLE) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def statuses(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["region"], frame["status"], strict=True))


@pytest.fixture
def files(tmp_path):
    return write_csv(tmp_path / "data.csv"), write_table(tmp_path / "table.toml")


def test_known_statuses_values_and_a_passed_audit(files, tmp_path):
    data, table = files
    result = protect_microdata(data, table, tmp_path / "out")
    frame = result.tables["volume_by_region"]
    assert statuses(frame) == {"_T": "published", "east": "primary", "north": "secondary", "south": "published"}
    published = dict(zip(frame["region"], frame["value"], strict=True))
    assert published["_T"] == 51 and published["south"] == 40
    assert pd.isna(published["east"]) and pd.isna(published["north"])
    assert result.summary["audit"] == "passed" and result.summary["exact_disclosures"] == 0
    assert result.summary["tables"][0] | {"rolled_up": {}} == {
        "table": "volume_by_region",
        "cells": 4,
        "published": 2,
        "primary": 1,
        "secondary": 1,
        "rolled_up": {},
    }
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["audit.json", "volume_by_region.csv", "volume_by_region.parquet"]
    on_disk = pd.read_parquet(tmp_path / "out" / "volume_by_region.parquet")
    assert statuses(on_disk) == statuses(frame)
    assert json.loads((tmp_path / "out" / "audit.json").read_text())["audit"] == "passed"
    csv_lines = (tmp_path / "out" / "volume_by_region.csv").read_text(encoding="utf-8-sig").splitlines()
    assert csv_lines[0] == "region,region_label,region_depth,value,status"
    assert "east,east,1,,primary" in csv_lines
    again = protect_microdata(data, table, tmp_path / "again")
    for name in ("volume_by_region.csv", "audit.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "out" / name).read_bytes()
    assert again.summary == result.summary


def test_countries_failing_the_rules_are_merged_into_other_region_rows(tmp_path):
    rows = [*[(c, "CN", 10) for c in "abcd"], ("a", "JP", 5), ("b", "KR", 7), ("c", "TW", 4)]
    data = write_csv(tmp_path / "c.csv", rows, header=("company", "country", "volume"))
    table = TABLE.replace('[{ column = "region" }]', '[{ column = "country", hierarchy = "m49", rollup = true }]')
    table = table.replace('contributor = "company"', 'contributor = "company"\nlanguage = "nl"')
    result = protect_microdata(data, write_table(tmp_path / "t.toml", table), tmp_path / "out")
    frame = result.tables["volume_by_region"]
    labels = dict(zip(frame["country"], frame["country_label"], strict=True))
    assert labels["030~other"] == "Overig Oost-Azië" and labels["_T"] == "Totaal"
    assert {"JP", "KR", "TW"}.isdisjoint(labels)
    assert dict(zip(frame["country"], frame["value"], strict=True))["030~other"] == 16
    assert result.summary["tables"][0]["rolled_up"] == {"country": dict.fromkeys(["JP", "KR", "TW"], "030~other")}


def test_dutch_csv_and_parquet_give_the_same_table(files, tmp_path):
    data, table = files
    expected = protect_microdata(data, table, tmp_path / "a").tables["volume_by_region"]
    dutch_rows = [(c, r, f"{v},0") for c, r, v in ROWS]  # Dutch Excel: ';' separators, decimal commas
    dutch = write_csv(tmp_path / "nl.csv", dutch_rows, sep=";")
    parquet = tmp_path / "data.parquet"
    pd.DataFrame(ROWS, columns=["company", "region", "volume"]).to_parquet(parquet)
    for source in (dutch, parquet):
        got = protect_microdata(source, table, tmp_path / source.stem).tables["volume_by_region"]
        pd.testing.assert_frame_equal(got, expected)


def test_groups_count_once(tmp_path):
    # b and c in one group: north has two contributors, so it fails as well
    rows = [(c, g, r, v) for (c, r, v), g in zip(ROWS, ["a", "bc", "bc", "a", "bc", "bc", "d", "a"], strict=True)]
    data = write_csv(tmp_path / "g.csv", rows, header=("company", "group", "region", "volume"))
    frame = protect_microdata(data, write_table(tmp_path / "t.toml"), tmp_path / "out").tables["volume_by_region"]
    assert statuses(frame)["north"] == "primary"


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (ROWS, ("company", "region", "amount"), r"has no column 'volume', which the table definition uses"),
        ([*ROWS, ("b", "east", "lots")], None, r"row 10: volume 'lots' is not a number"),
        ([*ROWS, ("b", "east", -5)], None, r"row 10: volume -5 is out of range; it must be >= 0"),
        ([*ROWS, ("", "east", 5)], None, r"row 10: company is empty"),
    ],
)
def test_bad_contributions_are_refused_with_row_numbers_and_nothing_is_written(tmp_path, rows, header, message):
    data = write_csv(tmp_path / "bad.csv", rows, header=header or ("company", "region", "volume"))
    with pytest.raises(ValidationFailed, match=message) as caught:
        protect_microdata(data, write_table(tmp_path / "t.toml"), tmp_path / "out")
    assert str(tmp_path / "bad.csv") in caught.value.message
    assert not (tmp_path / "out").exists()


def test_negative_values_are_judged_on_absolute_values_when_the_definition_says_so(tmp_path):
    data = write_csv(tmp_path / "d.csv", [*ROWS, ("b", "south", -3)])
    table = write_table(tmp_path / "t.toml", TABLE.replace("[[tables]]", 'negative_values = "absolute"\n\n[[tables]]'))
    frame = protect_microdata(data, table, tmp_path / "out").tables["volume_by_region"]
    assert dict(zip(frame["region"], frame["value"], strict=True))["_T"] == 48


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('contributor = "company"', 'contributor = "company"\ncolour = "red"'),
            r"standalone\.colour: unknown setting",
        ),
        (("[standalone]", '[covenant]\nid = "x"\n\n[standalone]'), r"covenant: not used by `aggregator protect`"),
        (('id = "volume_by_region"', 'id = "volume_by_region"\ntemplate = "origin"'), r"tables\[0\]\.template"),
        (('kind = "sum"', 'kind = "mean"'), r"tables\[0\]\.measure\.kind: 'mean' is not one of"),
        (("min_contributors = 3", "min_contributors = true"), r"disclosure\.min_contributors: expected an integer"),
        (('column = "region" }', 'column = "region", rollup = true }'), r"rollup: a rollup needs a hierarchy"),
    ],
)
def test_table_definition_mistakes_name_the_file_and_key(files, tmp_path, change, message):
    data, _ = files
    table = write_table(tmp_path / "wrong.toml", TABLE.replace(*change))
    with pytest.raises(ConfigError, match=message) as caught:
        protect_microdata(data, table, tmp_path / "out")
    assert str(table) in caught.value.message


def test_cli_prints_a_summary_and_exits_0(files, tmp_path):
    data, table = files
    result = CliRunner().invoke(main, ["protect", str(data), "--table", str(table), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "volume_by_region: 4 cells, 2 published, 1 hidden by the rules, 1 hidden to protect them" in result.output
    assert "audit passed" in result.output
    as_json = CliRunner().invoke(
        main, ["protect", str(data), "--table", str(table), "--out", str(tmp_path / "j"), "--json"]
    )
    assert json_result(as_json)["primary"] == 1


def test_cli_user_errors_exit_2_with_error_and_hint(tmp_path):
    data = write_csv(tmp_path / "bad.csv", [*ROWS, ("b", "east", "lots")])
    table = write_table(tmp_path / "t.toml")
    result = CliRunner().invoke(main, ["protect", str(data), "--table", str(table), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "error:" in result.stderr and "volume 'lots' is not a number" in result.stderr
    assert "hint: correct the file" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
