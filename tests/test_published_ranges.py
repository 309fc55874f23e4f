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
from support.lab import JAN, PROTOCOL, Lab

CROSS_PROTOCOL = PROTOCOL.replace(
    'dimensions = [{ column = "material" }]', 'dimensions = [{ column = "material" }, { column = "certification" }]'
)

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
    """The tightest interval of each hidden cell from what the file says: a printed weight lies within half a
    kilogram of its true value, a cross table's inner cells add up to its margins, and weights are not
    negative (with `with_ranges`, the published ranges are added as bounds)."""
    keys = sorted(cells)
    column = {k: j for j, k in enumerate(keys)}
    lp = highspy.Highs()
    lp.setOptionValue("output_flag", False)
    for k in keys:
        value, lower, upper = cells[k]["value"], cells[k]["lower"], cells[k]["upper"]
        if value is not None:
            lp.addVar(max(0.0, value - 0.5), value + 0.5)
        elif with_ranges:
            lp.addVar(lower, highspy.kHighsInf if upper is None else upper)
        else:
            lp.addVar(0.0, highspy.kHighsInf)
    for axis in (0, 1):
        for total in sorted(k for k in keys if k[axis] == "_T"):
            members = [k for k in keys if k[1 - axis] == total[1 - axis] and k[axis] != "_T"]
            index = np.array([column[total]] + [column[m] for m in members], dtype=np.int32)
            lp.addRow(0.0, 0.0, len(index), index, np.array([1.0] + [-1.0] * len(members)))
    out = {}
    for k in (k for k in keys if cells[k]["status"] == "suppressed"):
        ends = []
        for sense in (1.0, -1.0):
            cost = np.zeros(len(keys))
            cost[column[k]] = sense
            lp.changeColsCost(len(keys), np.arange(len(keys), dtype=np.int32), cost)
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
