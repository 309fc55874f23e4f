"""Published ranges: each hidden cell's range is exactly what a reader derives from the published files.

The reader here is written from scratch: it reads the Parquet file of a release, knows that a cross table's
inner cells add up to its margins and that weights are not negative, and asks HiGHS for the least and greatest
value of every hidden cell. Nothing from `aggregator.disclosure` is used.
"""

from __future__ import annotations

import math
from pathlib import Path

import highspy
import numpy as np
import pyarrow.parquet as pq
import pytest

from aggregator.release import write_release
from support.lab import JAN, Lab

CROSS_PROTOCOL = """
[covenant]
id = "textile"
name = { en = "T", nl = "T" }
version = "t1"
templates = ["materials"]

[disclosure]
min_contributors = 3
dominance = [{ n = 1, k = 60.0 }]
suppression = "optimal"

[age]
B = 0
C = 0

[[tables]]
id = "weight"
title = { en = "Weight", nl = "Gewicht" }
unit = { en = "kg", nl = "kg" }
template = "materials"
dimensions = [{ column = "material" }, { column = "certification" }]
measure = { kind = "sum", column = "weight_kg" }

[[audiences]]
id = "committee"
name = { en = "Committee", nl = "Commissie" }
tables = ["weight"]
frequency = "monthly"
"""

# (material, certification) -> weight per company; wool/gots has two contributors, polyester/grs one that
# dominates: both are primary, and their row and column partners are hidden with them.
SUBMISSIONS = {
    "A": {("cotton", "none"): 40, ("cotton", "gots"): 12, ("polyester", "none"): 30, ("wool", "gots"): 9},
    "B": {("cotton", "none"): 35, ("cotton", "gots"): 15, ("polyester", "none"): 28, ("wool", "none"): 25},
    "C": {("cotton", "none"): 30, ("cotton", "gots"): 11, ("polyester", "grs"): 70, ("wool", "none"): 30},
    "D": {("cotton", "none"): 33, ("polyester", "none"): 25, ("wool", "none"): 20, ("wool", "gots"): 4},
    "E": {("cotton", "gots"): 14, ("polyester", "grs"): 3, ("polyester", "none"): 21, ("wool", "none"): 22},
}


def published_cells(path: Path) -> dict[tuple[str, str], dict]:
    return {(r["material"], r["certification"]): r for r in pq.read_table(path).to_pylist()}


def reader_intervals(cells: dict[tuple[str, str], dict], with_ranges: bool = False) -> dict:
    """The tightest interval of each hidden cell from the published values, the margins and y >= 0 (and the
    published ranges as bounds, `with_ranges`)."""
    keys = sorted(cells)
    hidden = [k for k in keys if cells[k]["status"] == "suppressed"]
    column = {k: j for j, k in enumerate(hidden)}
    rows, rhs = [], []
    for axis in (0, 1):
        for total in {k for k in keys if k[axis] == "_T"}:
            # total = sum of the cells that share its other coordinate and are not totals on this axis
            members = [k for k in keys if k[1 - axis] == total[1 - axis] and k[axis] != "_T"]
            coefs = {total: 1.0} | {m: -1.0 for m in members}
            known = sum(c * cells[k]["value"] for k, c in coefs.items() if k not in column)
            rows.append({column[k]: c for k, c in coefs.items() if k in column})
            rhs.append(-known)
    lp = highspy.Highs()
    lp.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    for k in hidden:
        lower, upper = (cells[k]["lower"], cells[k]["upper"]) if with_ranges else (None, None)
        lp.addVar(max(0.0, lower or 0.0), inf if upper is None else upper)
    for row, b in zip(rows, rhs, strict=True):
        if row:
            lp.addRow(b, b, len(row), np.array(list(row), dtype=np.int32), np.array(list(row.values())))
    out = {}
    for k, j in column.items():
        ends = []
        for sense in (1.0, -1.0):
            cost = np.zeros(len(hidden))
            cost[j] = sense
            lp.changeColsCost(len(hidden), np.arange(len(hidden), dtype=np.int32), cost)
            lp.run()
            unbounded = lp.getModelStatus() == highspy.HighsModelStatus.kUnbounded
            ends.append(math.inf * -sense if unbounded else lp.getInfo().objective_function_value * sense)
        out[k] = (ends[0], ends[1])
    return out


@pytest.fixture
def release_files(tmp_path: Path) -> Path:
    lab = Lab(tmp_path / "lab", CROSS_PROTOCOL)
    lab.company(*SUBMISSIONS)
    for company, weights in SUBMISSIONS.items():
        lab.submit(company, JAN, weights)
    released = lab.release(JAN)
    files = write_release(released.release, tmp_path / "out")
    return files.by_name("parquet/weight.parquet").path


def test_every_hidden_cell_publishes_the_range_a_reader_derives_from_the_files_alone(release_files: Path):
    cells = published_cells(release_files)
    derived = reader_intervals(cells)
    assert len(derived) >= 4, "the scenario must hide cells"
    for key, (lo, hi) in derived.items():
        published = (cells[key]["lower"], cells[key]["upper"])
        expected = (math.floor(round(lo, 6)), None if math.isinf(hi) else math.ceil(round(hi, 6)))
        assert published == expected, key
    assert all(cells[k]["lower"] is None and cells[k]["upper"] is None for k in cells if k not in derived)


def test_the_published_ranges_add_nothing_a_reader_did_not_know(release_files: Path):
    """The reader's LP with the ranges added as bounds gives the same intervals: they were derivable already."""
    cells = published_cells(release_files)
    before, after = reader_intervals(cells), reader_intervals(cells, with_ranges=True)
    assert before.keys() == after.keys()
    for key in before:
        assert after[key] == pytest.approx(before[key], abs=1e-6), key
