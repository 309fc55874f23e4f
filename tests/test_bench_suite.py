"""Tests of the benchmark suite's own logic: `.venv/bin/pytest bench/test_bench_suite.py` (a few seconds).

The stages themselves are exercised by `python -m bench --quick`; these tests cover what decides the
reported figures: the memory measurement, the slope fit and its n log n limit, the batch target, the
timeout path of the child runner, the floor SQL and the written documents.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import run_all
from bench.measure import measure
from bench.report import batch_target, fit_slope, floor_targets, markdown, nlogn_slope, scaling_svg, slopes
from bench.stages import per_contributor_sql, plain_group_by_sql, synthetic_stats


def test_measure_sees_memory_allocated_during_the_work():
    done = measure(lambda: np.ones(64 * 1024 * 1024 // 8).sum())  # 64 MiB, touched
    assert done.result == 64 * 1024 * 1024 // 8
    assert done.growth_mb >= 50
    assert done.peak_rss_mb >= done.growth_mb


def test_measure_times_the_work_and_reraises_its_error():
    assert measure(lambda: time.sleep(0.05)).seconds >= 0.05
    with pytest.raises(ZeroDivisionError):
        measure(lambda: 1 / 0)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.2, 3.0), st.floats(1e-4, 10.0))
def test_fit_slope_recovers_a_power_law(power, scale):
    points = [(n, scale * n**power) for n in (100, 1_000, 10_000, 100_000)]
    assert fit_slope(points) == pytest.approx(power, abs=1e-9)


def test_fit_slope_needs_two_sizes():
    assert fit_slope([(100, 1.0), (100, 2.0)]) is None


def test_nlogn_slope_is_just_above_linear_and_matches_n_log_n():
    limit = nlogn_slope(1e5, 1e7)
    assert 1.0 < limit < 1.1
    assert limit == pytest.approx(math.log(1e7 * math.log(1e7) / (1e5 * math.log(1e5))) / math.log(100))


def _row(scale, stage, size, seconds, floor=None, peak=100.0, unit="rows", status="ok"):
    return {"run": "r", "mode": "full", "scale": scale, "stage": stage, "size": size, "size_unit": unit,
            "seconds": seconds, "peak_rss_mb": peak, "growth_mb": 1.0, "floor": None, "floor_seconds": floor,
            "ratio": None, "floor_value": None, "quality_ratio": None, "status": status, "details": "{}"}  # fmt: skip


def test_slopes_flag_a_quadratic_stage_and_pass_a_linear_one():
    rows = [_row(f"{n} companies", "linear", n, n * 1e-5) for n in (100, 1_000, 10_000)]
    rows += [_row(f"{n} companies", "quadratic", n, n * n * 1e-9) for n in (100, 1_000, 10_000)]
    verdict = {f["stage"]: f["met"] for f in slopes(rows)}
    assert verdict == {"linear": True, "quadratic": False}


def _batch_rows(batch_seconds: float, peak: float = 1000.0) -> list[dict]:
    scale = "10000 companies"
    cells = _row(scale, "cell statistics", 2e7, 3.0, floor=0.5)
    cells["details"] = '{"plain_group_by_seconds": 0.25}'
    return [
        _row(scale, "open", 1e7, 1.0, floor=0.5, peak=peak),
        _row(scale, "read + validate", 1e7, 5.0, floor=1.0),
        _row(scale, "load into store", 2e7, 4.0, floor=1.0),
        cells,
        _row(scale, "whole batch", 2e7, batch_seconds),
        _row(scale, "protection", 2e3, 0.5, floor=0.25, unit="cells"),
        _row(scale, "ledger", 1e7, 0.3, floor=0.25, unit="records"),
        _row("100 companies", "whole batch", 2e5, 0.1),
    ]


def test_batch_target_sums_the_intake_and_batch_against_twice_the_floors():
    target = batch_target(_batch_rows(batch_seconds=1.0))  # 11 s against floors 3.5 s
    assert target["scale"] == "10000 companies"
    assert target["seconds"] == pytest.approx(11.0)
    # open, read, load, per-contributor GROUP BY, one audit of the final pattern, plain ledger write
    assert target["floors"] == pytest.approx(0.5 + 1.0 + 1.0 + 0.5 + 0.25 + 0.25)
    assert target["old_floors"] == pytest.approx(0.5 + 1.0 + 1.0 + 0.25)  # plain GROUP BY, no protection/ledger
    assert not target["time_met"]
    assert target["memory_met"]
    assert not batch_target(_batch_rows(1.0, peak=9 * 1024.0))["memory_met"]
    assert batch_target(_batch_rows(batch_seconds=-3.0))["time_met"]  # 7 s <= 2 x 3.5 s


def test_batch_target_is_not_measured_when_a_stage_failed():
    rows = _batch_rows(1.0)
    rows[4]["status"] = "timeout (> 300 s)"
    target = batch_target(rows)
    assert not target["measured"]
    assert target["missing"] == ["whole batch"]


def test_floor_targets_judge_cells_and_intake_and_report_protection():
    rows = _batch_rows(1.0)
    for r in rows:
        if r["floor_seconds"]:
            r["ratio"] = r["seconds"] / r["floor_seconds"]
    rows.append({**_row("1000 companies", "intake (envelopes)", 1e6, 9.0, floor=2.0), "ratio": 4.5})
    rows.append({**_row("100 companies", "intake (envelopes)", 1e5, 9.0, floor=1.0), "ratio": 9.0})
    judged = {(j["stage"], j["scale"]): j for j in floor_targets(rows)}
    assert judged["cell statistics", "10000 companies"]["met"] is False  # 6x against 1.5x
    assert judged["intake (envelopes)", "1000 companies"]["met"] is True  # 4.5x against 5x
    assert ("intake (envelopes)", "100 companies") not in judged  # the target holds at 1,000 and 10,000
    assert judged["protection", "10000 companies"]["met"] is None  # reported; judged in the batch's sum
    assert judged["protection", "10000 companies"]["ratio"] == pytest.approx(2.0)


def test_slopes_skip_a_stage_whose_size_hardly_changes():
    rows = [_row(f"{n} companies", "audit (release)", 2225 + n // 1000, 0.5 + n * 1e-5, unit="cells")
            for n in (100, 1_000, 10_000)]  # fmt: skip
    assert slopes(rows) == []


def _fake_child(monkeypatch, tmp_path, code: str) -> None:
    """Make run_job start `python <script>` instead of `python -m bench.stages <job>`."""
    script = tmp_path / "child.py"
    script.write_text(code)
    original = run_all.subprocess.run
    monkeypatch.setattr(run_all.subprocess, "run", lambda cmd, **kw: original([cmd[0], str(script)], **kw))


def test_a_child_past_its_cap_is_killed_and_recorded_as_timeout(monkeypatch, tmp_path):
    _fake_child(monkeypatch, tmp_path, "import time\ntime.sleep(30)\n")
    started = time.perf_counter()
    rows = run_all.run_job({"kind": "x"}, ["seal", "open"], timeout=0.5)
    assert time.perf_counter() - started < 10
    assert rows == [{"stage": "seal", "status": "timeout (> 0 s)"}, {"stage": "open", "status": "timeout (> 0 s)"}]


def test_a_failing_child_is_recorded_with_its_last_error_line(monkeypatch, tmp_path):
    _fake_child(monkeypatch, tmp_path, "import sys\nsys.exit('boom: no store')\n")
    rows = run_all.run_job({"kind": "x"}, ["cell statistics"], timeout=30)
    assert rows == [{"stage": "cell statistics", "status": "error: boom: no store"}]


def test_the_child_result_line_is_parsed(monkeypatch, tmp_path):
    _fake_child(
        monkeypatch, tmp_path, 'print(\'noise\')\nprint(\'BENCH-RESULT [{"stage": "seal", "seconds": 1.5}]\')\n'
    )
    assert run_all.run_job({"kind": "x"}, ["seal"], timeout=30) == [{"stage": "seal", "seconds": 1.5}]


def test_the_floor_sql_groups_the_leaves_and_applies_filters():
    from aggregator.protocol import load_protocol

    protocol = load_protocol(run_all.ROOT / "protocols" / "textile.toml")
    specs = {s.id: s for s in protocol.tables_for("monitoring_committee")}
    risks = plain_group_by_sql(specs["risks_by_theme_region"])
    assert "GROUP BY ALL" in risks and "risk_identified = True" in risks
    assert risks.startswith("SELECT theme, country,")
    ratio = plain_group_by_sql(specs["living_wage_ratio_by_region"])
    assert "sum(wage_paid_monthly_eur * workers_covered)" in ratio


def test_the_cell_statistics_floor_groups_by_contributor_as_well():
    from aggregator.protocol import load_protocol

    protocol = load_protocol(run_all.ROOT / "protocols" / "textile.toml")
    for spec in protocol.tables_for("monitoring_committee"):
        plain, per = plain_group_by_sql(spec), per_contributor_sql(spec)
        assert per == plain.replace("SELECT ", "SELECT company_id, ", 1)


def test_synthetic_stats_are_consistent():
    stats = synthetic_stats(1_000)
    assert (stats.top[:, 0] >= stats.top[:, 1]).all()
    assert (stats.total >= stats.top.sum(axis=1) - 1e-9).all()
    assert ((stats.n == 0) <= (stats.total == 0)).all()


def test_quality_is_cost_over_the_lp_bound_of_the_same_table():
    rows = [
        {"stage": "lp lower bound", "scale": "t1", "bound": 50.0},
        {"stage": "suppression fast", "scale": "t1", "cost": 60.0},
        {"stage": "suppression fast", "scale": "t2", "cost": 60.0},
    ]
    run_all.add_quality(rows)
    assert rows[1]["quality_ratio"] == pytest.approx(1.2)
    assert "quality_ratio" not in rows[2]


def test_csv_and_documents_are_written(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "RESULTS_DIR", tmp_path)
    rows = run_all.tidy([{**r, "extra": 1} for r in _batch_rows(1.0)], "20261126T000000Z", "full")
    stamped, latest = run_all.write_csv(rows, "20261126T000000Z")
    with open(latest, newline="") as fh:
        read = list(csv.DictReader(fh))
    assert stamped.read_text() == latest.read_text()
    assert [r["stage"] for r in read][:2] == ["open", "read + validate"]
    assert read[0]["floor"] == "raw ChaCha20-Poly1305 decrypt"
    info = {"cpu": "x", "cores": "2", "memory": "1 GiB", "load": "1.0", "python": "3.11", "libraries": "y"}
    e2e = {"status": "ok", "wall_seconds": 12.5, "companies": 64, "files": 256, "released": 1, "phases": {"batch": 2.0}}
    text = markdown(read, info, "python -m bench", "20261126T000000Z", e2e)
    assert "target 10 s: **not met**" in text
    assert "target 2x: **not met**" in text
    # the target counts the secretariat's monthly run, not the companies' sealing before it
    monthly = markdown(read, info, "python -m bench", "20261126T000000Z", e2e | {"monthly_seconds": 8.0})
    assert "from spawn to exit, 8.0 s" in monthly and "target 10 s: **met**" in monthly
    svg = scaling_svg(read)
    assert svg.startswith("<svg") and "polyline" in svg
    assert not list(Path(tmp_path).glob("*.partial"))


def test_an_end_to_end_run_that_released_nothing_is_reported_not_an_error(monkeypatch, tmp_path):
    result = '{"companies": 64, "files": 256, "released": 0, "phases": {}, "not_released": ["c: refused"]}'
    _fake_child(monkeypatch, tmp_path, f"import sys\nprint('BENCH-RESULT {result}')\nsys.exit(1)\n")
    e2e = run_all.e2e_textile(timeout=30)
    assert e2e["status"] == "ok" and e2e["released"] == 0
    info = {"cpu": "x", "cores": "2", "memory": "1 GiB", "load": "1.0", "python": "3.11", "libraries": "y"}
    text = markdown([], info, "python -m bench", "s", {**e2e, "wall_seconds": 3.0})
    assert "target 10 s: **not met**" in text and "Not released: c: refused" in text


def test_a_pipe_in_a_status_does_not_split_the_table_row():
    from bench.report import stage_table

    row = _row("100 companies", "whole batch", 10, 1.0, status="failed: cell a|b")
    assert stage_table([row], "rows")[-1].endswith("failed: cell a\\|b |")


def test_kept_rows_are_those_of_the_parts_not_run_again(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "RESULTS_DIR", tmp_path)
    rows = _batch_rows(1.0) + [
        _row("t1", "audit", 99, 0.1, unit="cells"),
        _row("99 cells", "primary rules", 99, 0.1, unit="cells"),
    ]
    _, latest = run_all.write_csv(run_all.tidy(rows, "old", "full"), "old")
    kept = run_all.kept_rows(latest, {"companies"})
    assert [r["stage"] for r in kept] == ["audit", "primary rules"]
    info = {"cpu": "x", "cores": "2", "memory": "1 GiB", "load": "1.0", "python": "3.11", "libraries": "y"}
    merged = kept + run_all.tidy(_batch_rows(1.0), "new", "full")
    assert "merges runs" in markdown(merged, info, "python -m bench", "new", {"status": "not run"})


def test_the_intake_stage_takes_in_every_company_file_and_measures_its_floor(tmp_path):
    from bench.stages import prepare_scale, stage_intake

    data, work = tmp_path / "data", tmp_path / "work"
    work.mkdir()
    (prepared,) = prepare_scale({"data": str(data), "companies": 6, "rows_scale": 0.5, "seed": 3})
    (result,) = stage_intake({"data": str(data), "work": str(work)})
    assert result["stage"] == "intake (envelopes)" and result["status"] == "ok"
    assert result["size"] == prepared["rows_total"]  # every row of every company, through the real intake
    assert result["files"] >= 6 * 2 and 0 < result["floor_seconds"] < result["seconds"]


def test_the_revision_stage_releases_again_with_the_first_release_as_its_history(tmp_path):
    from bench.stages import BATCH_PARTS, prepare_scale, stage_batch, stage_load, stage_revision

    data, work = tmp_path / "data", tmp_path / "work"
    work.mkdir()
    (prepared,) = prepare_scale({"data": str(data), "companies": 12, "rows_scale": 0.5, "seed": 3})
    job = {"data": str(data), "work": str(work), **prepared}
    assert stage_load(job)[0]["status"] == "ok"
    batch = stage_batch(job)
    assert [(r["stage"], r["size_unit"]) for r in batch] == list(BATCH_PARTS)
    assert all(r["status"] == "ok" for r in batch)
    whole, protection, ledger = batch[:3]
    # the parts are timed inside the whole batch; their floors are measured after it on the same release
    assert 0 < protection["seconds"] + ledger["seconds"] < whole["seconds"]
    assert protection["floor_seconds"] > 0 and ledger["floor_seconds"] > 0 and ledger["size"] > 0
    (revised,) = stage_revision(job)
    assert revised["stage"] == "linked release (revision)" and revised["status"] == "ok"
    assert revised["earlier_releases"] == 1 and revised["size"] == prepared["rows_total"]


def test_regenerating_the_report_keeps_its_hand_written_section(tmp_path):
    from bench.report import write_docs

    rows = run_all.tidy(_batch_rows(1.0), "20261126T000000Z", "full")
    info = {"cpu": "x", "cores": "2", "memory": "1 GiB", "load": "1.0", "python": "3.11", "libraries": "y"}
    e2e = {"status": "not run"}
    (tmp_path / "BENCHMARKS.md").write_text("# old figures\n\n## Per-issue benchmarks (by hand)\n\n- kept\n")
    write_docs(rows, info, "python -m bench", "20261126T000000Z", e2e, tmp_path)
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "# old figures" not in text and text.startswith("# Benchmarks")
    assert text.endswith("\n## Per-issue benchmarks (by hand)\n\n- kept\n")
    write_docs(rows, info, "python -m bench", "20261126T000000Z", e2e, tmp_path)
    assert (tmp_path / "BENCHMARKS.md").read_text() == text


def test_the_series_target_is_linear_growth_per_month_in_time_and_memory():
    from bench.report import series_target

    linear = [_row("1000 companies, 12 months", "monthly release in a series", k, 10.0 * k, peak=500.0 + 50 * k,
                   unit="months") for k in range(1, 13)]  # fmt: skip
    target = series_target(linear)
    assert target["measured"] and target["met"] and target["releases"] == 12
    assert target["time_slope"] == pytest.approx(1.0, abs=1e-9) and target["memory_slope"] < 1.0
    quadratic = [{**r, "seconds": float(r["size"]) ** 2} for r in linear]
    assert not series_target(quadratic)["met"]
    assert {f["stage"]: f["met"] for f in slopes(quadratic)} == {"monthly release in a series": False}
    assert run_all.part_of(linear[0]) == "series"
    info = {"cpu": "x", "cores": "2", "memory": "1 GiB", "load": "1.0", "python": "3.11", "libraries": "y"}
    text = markdown(linear, info, "x", "s", {"status": "not run"})
    assert "## Monthly releases audited as a series" in text and "target at most linear (1 + 0.05): **met**" in text


def test_the_start_up_stage_times_both_commands_against_python_doing_nothing():
    from bench.stages import stage_cli

    rows = stage_cli({"times": 1})
    assert [r["stage"] for r in rows] == ["imvo-submit --help", "aggregator --help"]
    assert all(r["status"] == "ok" and r["floor_seconds"] > 0 and r["size_unit"] == "commands" for r in rows)
    assert run_all.part_of(rows[0]) == "cli"
