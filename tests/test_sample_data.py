"""The committed sample data: reproducible, readable in every format companies use, exercising every rule."""

from __future__ import annotations

import importlib.util
import io
import sys
import tomllib
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import AggregatorError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
OUTPUTS = ("companies.csv", "broken.toml", "submissions", "submissions_broken", "resubmissions")


def _load_generator():
    spec = importlib.util.spec_from_file_location("sample_data_generate", SAMPLE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _files(root: Path) -> dict[str, bytes]:
    found = {}
    for name in OUTPUTS:
        path = root / name
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            if file.is_file():
                found[file.relative_to(root).as_posix()] = file.read_bytes()
    return found


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("fresh")
    gen.write_sample(out)
    return _files(out)


def read_submission(path: Path, template: str) -> pd.DataFrame:
    """Read a submission the way a tolerant reader must: xlsx sheet, Dutch-locale csv or plain csv."""
    if path.suffix == ".xlsx":
        return pd.read_excel(path, sheet_name=template, engine="calamine")
    raw = path.read_bytes()
    if b";" in raw.split(b"\n", 1)[0]:
        return pd.read_csv(io.BytesIO(raw), sep=";", decimal=",", encoding="cp1252", keep_default_na=False)
    return pd.read_csv(io.BytesIO(raw), keep_default_na=False)


@pytest.fixture(scope="module")
def companies() -> pd.DataFrame:
    return pd.read_csv(SAMPLE / "companies.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def locations() -> pd.DataFrame:
    """All committed textile production locations with company, group, waiver and period."""
    frames = []
    for path in sorted((SAMPLE / "submissions" / "textile").glob("*/*__production_locations.*")):
        frame = read_submission(path, "production_locations")
        frame["company_id"] = path.name.split("__")[0]
        frame["period"] = path.parent.name
        frames.append(frame)
    registry = pd.read_csv(SAMPLE / "companies.csv", keep_default_na=False)
    return pd.concat(frames, ignore_index=True).merge(registry, on="company_id", how="left", validate="m:1")


@pytest.fixture(scope="module")
def cells(locations) -> pd.DataFrame:
    """Per period, country and company: summed volume, group, waiver and share of the country's volume."""
    per_company = locations.groupby(["period", "country", "company_id"], as_index=False).agg(
        volume=("order_volume_pieces", "sum"), group_id=("group_id", "first"), waiver=("waiver", "first")
    )
    country_total = per_company.groupby(["period", "country"])["volume"].transform("sum")
    per_company["share"] = per_company["volume"] / country_total
    return per_company


def _counts(cells: pd.DataFrame) -> pd.DataFrame:
    return cells.groupby(["period", "country"]).agg(
        companies=("company_id", "nunique"), groups=("group_id", "nunique"), volume=("volume", "sum")
    )


# --- reproducibility -------------------------------------------------------------------------------------
def test_committed_sample_equals_a_fresh_generation(fresh):
    committed = _files(SAMPLE)
    assert sorted(committed) == sorted(fresh)
    differing = [name for name in fresh if committed[name] != fresh[name]]
    assert differing == [], "run `.venv/bin/python sample_data/generate.py` and commit the result"


def test_generating_twice_gives_identical_bytes(fresh, tmp_path):
    gen.write_sample(tmp_path)
    assert _files(tmp_path) == fresh
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging-")], "staging folder left behind"


def test_sample_stays_small():
    assert sum(len(b) for b in _files(SAMPLE).values()) < 4_000_000


# --- registry ----------------------------------------------------------------------------------------------
def test_companies_csv_has_every_covenant_and_groups(companies):
    assert list(companies.columns) == ["company_id", "name", "group_id", "covenant", "waiver"]
    assert companies["company_id"].is_unique and companies["name"].is_unique
    counts = companies["covenant"].value_counts()
    assert counts["textile"] >= 60 and counts["gold"] >= 15
    assert {"banking": 12, "insurance": 15, "food": 20, "forestry": 15}.items() <= counts.to_dict().items()
    assert set(companies["waiver"]) == {"yes", "no"}
    textile = companies[companies.covenant == "textile"]
    group_sizes = textile.groupby("group_id").size()
    assert ((group_sizes >= 2) & (group_sizes <= 3)).sum() >= 2
    assert companies["name"].str.contains(r"[À-ÿ]").any(), "an accented company name"


# --- file formats ------------------------------------------------------------------------------------------
def test_every_template_and_period_is_present_with_the_contract_columns():
    for covenant, templates in gen.TEMPLATES.items():
        periods = sorted(p.name for p in (SAMPLE / "submissions" / covenant).iterdir())
        assert periods == ["2025-01", "2025-02", "2025-03"]
        for template in templates:
            paths = sorted((SAMPLE / "submissions" / covenant).glob(f"*/*__{template}.*"))
            assert len(paths) >= 3 * 10  # banking has a dozen banks; textile and gold have 64 and 16 companies
            for path in paths[:: max(1, len(paths) // 12)]:
                assert tuple(read_submission(path, template).columns) == gen.COLUMNS[template], path


def test_dutch_locale_csv_is_windows_1252_with_semicolons_and_decimal_commas():
    dutch = [p for p in (SAMPLE / "submissions").rglob("*.csv") if b";" in p.read_bytes().split(b"\n", 1)[0]]
    assert dutch, "no Dutch-locale csv"
    accented = []
    for path in dutch:
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            accented.append(raw.decode("cp1252"))
    assert any("Confecções" in text for text in accented), "an accented facility name in Windows-1252"
    volumes = [p for p in dutch if p.name.endswith("production_locations.csv")]
    values = [line.split(b";")[-1] for p in volumes for line in p.read_bytes().splitlines()[1:]]
    assert any(b"," in value for value in values), "decimal commas"
    assert all(p.read_bytes().split(b"\n", 1)[0].endswith(b"\r") for p in dutch), "Excel writes CRLF"


def test_xlsx_submissions_have_the_template_as_sheet_name():
    xlsx = sorted((SAMPLE / "submissions").rglob("*.xlsx"))
    assert len(xlsx) >= 20
    for path in xlsx[:: max(1, len(xlsx) // 6)]:
        workbook = openpyxl.load_workbook(path, read_only=True)
        assert workbook.sheetnames == [path.stem.split("__")[1]]


# --- the data exercises every disclosure rule --------------------------------------------------------------
def test_threshold_cells_with_one_to_four_and_exactly_four_and_five_contributors(cells):
    counts = _counts(cells)
    for period, per_period in counts.groupby(level="period"):
        assert per_period["groups"].between(1, 4).any(), period
        assert (per_period["groups"] == 4).any(), period
        assert ((per_period["companies"] == 5) & (per_period["groups"] == 5)).any(), period
        # group counting matters: 5 companies but only 4 contributors, and 2 companies that are 1 contributor
        assert ((per_period["companies"] == 5) & (per_period["groups"] == 4)).any(), period
        assert ((per_period["companies"] == 2) & (per_period["groups"] == 1)).any(), period


def test_dominant_company_above_25_and_above_50_percent(cells):
    positive = cells[cells.volume > 0]
    for period, per_period in positive.groupby("period"):
        shares = per_period["share"]
        assert (shares > 0.5).any(), period
        assert ((shares > 0.25) & (shares <= 0.5)).any(), period
    # the largest company dominates a country in which there are enough contributors for threshold to pass
    counts = _counts(cells)
    dominant = cells[(cells.share > 0.5) & (cells.waiver == "no")]
    big = dominant.merge(counts.reset_index(), on=["period", "country"])
    assert (big["groups"] >= 5).any()


def test_waiver_company_alone_or_dominant_somewhere(cells):
    waived = cells[cells.waiver == "yes"]
    counts = _counts(cells).reset_index()
    alone = waived.merge(counts[counts.companies == 1], on=["period", "country"])
    assert not alone.empty
    assert (waived["share"] > 0.25).any()


def test_a_group_has_two_companies_in_one_country(cells):
    per_group = cells.groupby(["period", "country", "group_id"])["company_id"].nunique()
    assert (per_group >= 2).any()


def test_zero_cell_country_with_contributors_but_no_volume(cells):
    counts = _counts(cells)
    assert ((counts["volume"] == 0) & (counts["companies"] > 0)).any()


def test_month_to_month_the_data_moves_a_little(locations):
    sets = locations.groupby(["company_id", "period"])["facility_id"].agg(frozenset)
    periods = sorted(locations["period"].unique())
    present = locations.groupby("period")["company_id"].nunique()
    assert present.iloc[0] == 64 and (present.iloc[1:] < 64).all(), "a company submits late"
    changed, kept, total = 0, 0, 0
    for company in locations["company_id"].unique():
        if (company, periods[0]) in sets and (company, periods[1]) in sets:
            before, after = sets[(company, periods[0])], sets[(company, periods[1])]
            changed += before != after
            kept, total = kept + len(before & after), total + len(before)
    assert changed >= 3 and kept >= 0.95 * total
    volumes = locations.pivot_table(
        index=["company_id", "facility_id"], columns="period", values="order_volume_pieces", aggfunc="sum"
    ).dropna()
    moved = volumes[(volumes[periods[0]] > 0) & (volumes[periods[0]] != volumes[periods[1]])]
    assert len(moved) > 0.5 * (volumes[periods[0]] > 0).sum()


# --- broken submissions ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken() -> list[dict]:
    return tomllib.loads((SAMPLE / "broken.toml").read_text(encoding="utf-8"))["case"]


def test_broken_toml_lists_every_required_case_and_its_files_exist(broken, companies):
    ids = [case["id"] for case in broken]
    assert len(ids) == len(set(ids))
    assert {
        "missing_column", "unknown_country", "negative_volume", "prioritised_not_identified",
        "duplicate_country_theme", "resolved_exceeds_received", "wrong_period", "tampered",
        "unregistered_company", "exact_duplicate", "corrected_resubmission",
    } <= set(ids)  # fmt: skip
    for case in broken:
        assert {"file", "company", "template", "problem", "expected", "level"} <= set(case), case["id"]
        assert (SAMPLE / case["file"]).is_file(), case["file"]
        if "supersedes" in case:
            assert (SAMPLE / case["supersedes"]).is_file()
        if case["level"] == "validation":
            assert case["file"].startswith("submissions_broken/")
    unregistered = next(c for c in broken if c["id"] == "unregistered_company")
    assert unregistered["seal_as_company"] not in set(companies["company_id"])
    wrong = next(c for c in broken if c["id"] == "wrong_period")
    assert wrong["seal_period"] != wrong["period"] and f"/{wrong['period']}/" in wrong["file"]


def _broken_frame(broken, case_id):
    case = next(c for c in broken if c["id"] == case_id)
    return case, read_submission(SAMPLE / case["file"], case["template"])


def _at(frame: pd.DataFrame, sheet_row: int) -> pd.Series:
    return frame.iloc[sheet_row - 2]


def test_each_broken_file_has_exactly_the_described_defect(broken):
    case, frame = _broken_frame(broken, "missing_column")
    assert "order_volume_pieces" not in frame.columns and len(frame) > 0
    case, frame = _broken_frame(broken, "unknown_country")
    assert [_at(frame, r)["country"] for r in case["rows"]] == ["XX", "Chna"]
    case, frame = _broken_frame(broken, "negative_volume")
    assert (frame["order_volume_pieces"] < 0).sum() == 1
    assert _at(frame, case["rows"][0])["order_volume_pieces"] < 0
    case, frame = _broken_frame(broken, "prioritised_not_identified")
    bad = frame["risk_prioritised"].astype(str).str.lower().eq("true") & ~frame["risk_identified"].astype(
        str
    ).str.lower().eq("true")
    assert list(np.flatnonzero(bad) + 2) == case["rows"]
    case, frame = _broken_frame(broken, "duplicate_country_theme")
    duplicated = frame.duplicated(["country", "theme"], keep=False)
    assert list(np.flatnonzero(duplicated) + 2) == case["rows"]
    case, frame = _broken_frame(broken, "resolved_exceeds_received")
    over = frame["grievances_resolved"] > frame["grievances_received"]
    assert list(np.flatnonzero(over) + 2) == case["rows"]


def test_corrected_resubmission_differs_from_the_original_only_on_the_named_row(broken):
    case = next(c for c in broken if c["id"] == "corrected_resubmission")
    corrected = read_submission(SAMPLE / case["file"], case["template"])
    original = read_submission(SAMPLE / case["supersedes"], case["template"])
    differs = (corrected != original).any(axis=1)
    assert list(np.flatnonzero(differs) + 2) == case["rows"]
    row = case["rows"][0]
    assert _at(original, row)["order_volume_pieces"] == 10 * _at(corrected, row)["order_volume_pieces"]


def test_the_valid_submissions_pass_the_template_rules():
    """Spot-check that the clean files break none of the rules the broken ones break."""
    paths = sorted((SAMPLE / "submissions/textile/2025-01").glob("*risk*"))
    risk = pd.concat(read_submission(p, "risk_assessment") for p in paths)
    assert (risk["grievances_resolved"] <= risk["grievances_received"]).all()
    identified = risk["risk_identified"].astype(str).str.lower().eq("true")
    assert not (risk["risk_prioritised"].astype(str).str.lower().eq("true") & ~identified).any()


# --- the generator as a library ----------------------------------------------------------------------------
def _check_textile_invariants(data) -> None:
    tables = {name: table.to_pandas() for name, table in data.tables.items()}
    for name, frame in tables.items():
        assert tuple(frame.columns) == ("company_id", "period", *gen.COLUMNS[name])
    loc = tables["production_locations"]
    assert not loc.duplicated(["company_id", "period", "facility_id"]).any()
    assert (loc["order_volume_pieces"] >= 0).all() and (loc["order_value_eur"] >= 0).all()
    assert set(loc["tier"]) <= {1, 2, 3, 4}
    assert set(loc["workers_band"]) <= {"1-50", "51-250", "251-1000", "1001+"}
    risk = tables["risk_assessment"]
    assert not risk.duplicated(["company_id", "period", "country", "theme"]).any()
    assert (risk["grievances_resolved"] <= risk["grievances_received"]).all()
    assert not (risk["risk_prioritised"] & ~risk["risk_identified"]).any()
    assert (risk["severity"].isna() == ~risk["risk_identified"]).all()
    wage = tables["living_wage"]
    assert (wage["wage_paid_monthly_eur"] > 0).all() and (wage["living_wage_benchmark_eur"] > 0).all()
    assert not wage.duplicated(["company_id", "period", "country"]).any()
    assert not tables["materials"].duplicated(["company_id", "period", "material", "certification"]).any()


@settings(max_examples=15, deadline=None)
@given(
    n_companies=st.integers(1, 90),
    n_periods=st.integers(1, 4),
    rows_scale=st.floats(0.05, 0.6),
    seed=st.integers(0, 2**31),
)
def test_generated_textile_keeps_the_template_rules(n_companies, n_periods, rows_scale, seed):
    data = gen.generate_covenant(n_companies, n_periods, rows_scale, seed)
    assert data.companies.num_rows == n_companies and len(data.periods) == n_periods
    _check_textile_invariants(data)


@settings(max_examples=15, deadline=None)
@given(n_companies=st.integers(1, 60), n_periods=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_generated_gold_keeps_the_template_rules(n_companies, n_periods, seed):
    data = gen.generate_covenant(n_companies, n_periods, 1.0, seed, covenant="gold")
    refiners = data.tables["refiners"].to_pandas()
    assert refiners["smelter_id"].str.fullmatch(r"CID\d{6}").all()
    assert not refiners.duplicated(["company_id", "period", "smelter_id"]).any()
    assert refiners["smelter_id"].nunique() <= 40
    origin = data.tables["origin"].to_pandas()
    assert not origin.duplicated(["company_id", "period", "country", "source_type"]).any()
    # a company's origin split adds up to what went through its refiners
    totals = refiners.groupby(["company_id", "period"])["volume_g"].sum()
    split = origin.groupby(["company_id", "period"])["volume_g"].sum()
    assert np.allclose(totals, split.reindex(totals.index), rtol=1e-3, atol=1.0)


def test_same_arguments_same_tables_and_other_seed_other_tables():
    first = gen.generate_covenant(120, 2, 0.3, 5)
    again = gen.generate_covenant(120, 2, 0.3, 5)
    other = gen.generate_covenant(120, 2, 0.3, 6)
    for name, table in first.tables.items():
        assert table.equals(again.tables[name])
    assert not first.tables["production_locations"].equals(other.tables["production_locations"])


def test_rows_scale_sets_the_number_of_locations():
    data = gen.generate_covenant(2_000, 1, 0.5, 11)
    rows = data.tables["production_locations"].num_rows
    assert 0.8 * 35 * 2_000 < rows < 1.2 * 35 * 2_000


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_companies": 0}, "cannot generate 0 companies"),
        ({"rows_scale": 0.0}, "rows_scale 0.0"),
        ({"covenant": "metals"}, "unknown covenant 'metals'"),
    ],
)
def test_impossible_requests_raise_a_plain_error_with_a_hint(kwargs, fragment):
    with pytest.raises(AggregatorError) as raised:
        gen.generate_covenant(**kwargs)
    assert fragment in raised.value.message and raised.value.hint


def test_cli_scale_writes_parquet_per_template(tmp_path, capsys):
    code = gen.main(["--scale", str(tmp_path), "--companies", "80", "--periods", "2", "--rows-scale", "0.2"])
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "textile").iterdir())
    assert written == sorted(["companies.parquet", *(f"{t}.parquet" for t in gen.TEMPLATES["textile"])])
    table = pq.read_table(tmp_path / "textile" / "production_locations.parquet")
    assert table.column_names == ["company_id", "period", *gen.COLUMNS["production_locations"]]
    assert "wrote" in capsys.readouterr().out


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    assert gen.main(["--scale", str(tmp_path), "--companies", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot generate 0 companies") and "hint:" in err
