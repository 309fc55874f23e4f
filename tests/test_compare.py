"""`aggregator protocols compare`: one period under several protocol variants, releasing and recording nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.batch import shows_nothing
from aggregator.cli.secretariat import main as aggregator
from aggregator.compare import compare_protocols, render_comparison, write_comparison
from aggregator.errors import ConfigError, ReleaseRefused
from support.lab import JAN, NOW, PASSPHRASE, PROTOCOL, Lab, four_companies, four_company_workspace

LOOSE = PROTOCOL.replace("min_contributors = 3", "min_contributors = 1").replace('version = "t1"', 'version = "t2"')


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = Lab(tmp_path / "lab")
    four_companies(lab)
    lab.submit("L", JAN, {"wool": 5})  # wool and the total get a fifth contributor
    return lab


def variants(tmp_path: Path, *texts: str) -> list[Path]:
    paths = []
    for n, text in enumerate(texts):
        path = tmp_path / f"variant{n}.toml"
        path.write_text(text)
        paths.append(path)
    return paths


def ledger_rows(lab: Lab) -> tuple[int, ...]:
    tables = ("releases", "released_cells", "ledger_cells", "action_log")
    return tuple(lab.store.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)


def test_each_variant_is_protected_and_nothing_is_recorded(lab: Lab, tmp_path: Path):
    before = ledger_rows(lab)
    strict = PROTOCOL.replace("min_contributors = 3", "min_contributors = 5")
    comparison = compare_protocols(lab.store, JAN, variants(tmp_path, strict, LOOSE))
    assert ledger_rows(lab) == before
    strict_cost, loose_cost = (v.audiences[0] for v in comparison.variants)
    assert [v.version for v in comparison.variants] == ["t1", "t2"]
    # cotton and polyester have four contributors: at least five hides both; at least one hides nothing
    assert strict_cost.hidden_by_rule == {"threshold": 2} and loose_cost.hidden_by_rule == {}
    assert (strict_cost.published, loose_cost.published) == (2, 4) and strict_cost.cells == loose_cost.cells == 4
    assert strict_cost.tables[0].published + strict_cost.tables[0].ranged + strict_cost.tables[0].hidden == 4


def test_the_page_and_json_are_written_and_self_contained(lab: Lab, tmp_path: Path):
    comparison = compare_protocols(lab.store, JAN, variants(tmp_path, PROTOCOL, LOOSE))
    html, data = write_comparison(comparison, tmp_path / "out")
    page = html.read_text(encoding="utf-8")
    assert "variant0.toml" in page and "variant1.toml" in page and "<script" not in page and "http" not in page
    loaded = json.loads(data.read_text(encoding="utf-8"))
    assert [v["name"] for v in loaded["variants"]] == ["variant0.toml", "variant1.toml"]
    assert loaded["period"] == JAN and loaded["covenant"] == "textile"
    assert render_comparison(comparison) == page  # deterministic


def test_variants_of_different_covenants_are_refused(lab: Lab, tmp_path: Path):
    gold = Path(__file__).resolve().parents[1] / "protocols" / "gold.toml"
    with pytest.raises(ConfigError, match="different covenants"):
        compare_protocols(lab.store, JAN, [*variants(tmp_path, PROTOCOL), gold])


def test_a_release_that_would_show_nothing_is_refused_and_nothing_recorded(tmp_path: Path):
    lab = Lab(tmp_path / "lab", PROTOCOL.replace("min_contributors = 3", "min_contributors = 5"))
    four_companies(lab)
    with pytest.raises(ReleaseRefused) as refused:
        lab.release(JAN)
    assert refused.value.message == (
        "the textile release of 2025-01 for 'committee' would show no figure: all 4 cells hidden, none with a "
        "range (hidden by each rule: threshold 4); nothing was written or recorded"
    )
    assert "aggregator protocols compare 2025-01" in refused.value.hint
    assert lab.store.con.execute("SELECT count(*) FROM releases").fetchone() == (0,)
    other = Lab(tmp_path / "other")
    four_companies(other)
    assert not shows_nothing(other.release(JAN).release.tables)


def test_the_batch_names_a_release_that_would_show_nothing_writes_nothing_and_exits_1(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AGGREGATOR_PASSPHRASE", PASSPHRASE)
    ws = four_company_workspace(tmp_path, PROTOCOL.replace("min_contributors = 3", "min_contributors = 5"))
    out = tmp_path / "out"
    result = CliRunner().invoke(aggregator, ["--workspace", str(ws.root), "--now", NOW, "batch", "textile", JAN,
                                             "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1
    assert "committee: not released: the textile release of 2025-01 for 'committee' would show no figure" in (
        " ".join(result.output.split())
    )
    assert "aggregator protocols compare 2025-01" in result.output
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
    with ws.open_store() as store:
        assert store.con.execute("SELECT count(*) FROM releases").fetchone() == (0,)
