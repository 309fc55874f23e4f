"""What a release states about its hidden cells: every cell of a table has records, and the outputs tell an
empty combination ("-") from a hidden one ("x"), so a hidden count is at least 1 (issue 17, leak 1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aggregator import batch
from aggregator.aggregation.release import positive_floors
from aggregator.cellkey import CellKey, Coordinate, Quantity
from aggregator.disclosure.audit import audit
from aggregator.disclosure.model import ProtectionProblem, insider_floor
from aggregator.protocol import load_protocol
from support.lab import JAN, Lab, four_companies
from support.sample_store import sample_store

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-06-01T00:00:00Z"
COUNTS = ("count", "companies[group]", "companies[company]")


def at_least_one(problem: ProtectionProblem) -> ProtectionProblem:
    """The reader's own knowledge, written by the test: a table's count cell is at least 1 (helper cells of
    the engine's model are no table cells and keep their bounds)."""
    lower = problem.lower.copy()
    for i, key in enumerate(problem.keys):
        if key.quantity.measure in COUNTS and not key.is_helper:
            lower[i] = max(lower[i], 1.0)
    return replace(problem, lower=lower)


@pytest.fixture(scope="module")
def gold_releases(tmp_path_factory) -> list[batch.Released]:
    store = sample_store(tmp_path_factory.mktemp("gold") / "s.duckdb", ["gold"])
    protocol = load_protocol(ROOT / "protocols" / "gold.toml")
    with store:
        return [
            batch.release_audience(store, protocol, month, "monitoring_committee", now=NOW)
            for month in ("2025-01", "2025-02", "2025-03")
        ]


def test_hidden_refiner_counts_keep_their_protection_against_a_reader_who_knows_each_is_at_least_one(
    gold_releases,
):
    # Before the fix the committee's refiner tables of the sample lost upward protection in 14-22 hidden
    # primary cells a month: a total of 6 with three hidden parts bounds a part of 4 at 6 - 1 - 1 = 4.
    for released in gold_releases:
        p = released.protected
        checked = audit(at_least_one(p.problem), p.suppression.suppressed)
        assert checked.passed, [(p.problem.keys[c].describe(), who, reason) for c, who, *_, reason in checked.failures]


def test_the_engine_itself_bounds_every_hidden_count_at_one(gold_releases):
    problem = gold_releases[0].protected.problem
    tables = [i for i, k in enumerate(problem.keys) if not k.is_helper]
    counts = [i for i in tables if problem.keys[i].quantity.measure in COUNTS]
    sums = [i for i in tables if problem.keys[i].quantity.measure not in COUNTS]
    assert counts and sums
    # at least 1, and a region at least the number of its non-empty parts (what the relations imply)
    assert (problem.lower[counts] >= 1.0).all() and problem.lower[counts].min() == 1.0
    assert problem.lower[counts].max() > 1.0
    assert (problem.lower[sums] == 0.0).all()  # a contribution of 0 grams is allowed: no floor by default
    assert (problem.lower[[i for i, k in enumerate(problem.keys) if k.is_helper]] == 0.0).all()


def test_a_declared_minimum_positive_contribution_bounds_hidden_sums(tmp_path: Path):
    lab = Lab(tmp_path)
    text = (tmp_path / "protocol.toml").read_text()
    floor = text.replace("[disclosure]\n", "[disclosure]\nmin_positive_contribution = 25\n")
    (tmp_path / "floor.toml").write_text(floor)
    lab.protocol = load_protocol(tmp_path / "floor.toml")
    four_companies(lab)
    assert positive_floors(lab.protocol, "committee", ["weight"]) == {"weight": 25.0}
    p = lab.release(JAN).protected.problem
    cotton = p.keys.index(CellKey(Quantity("materials", "sum(weight_kg)"), [Coordinate("material", "cotton")]))
    assert p.lower[cotton] == 25.0
    # never above a cell's value (the protocol's floor may be wrong about a cell; the model must hold the truth)
    assert (p.lower <= p.values).all()


def test_the_example_of_the_issue_fails_with_the_bound_of_one_and_passes_without():
    # a published total of 6 with three hidden parts; the part of 4 needs upward protection 1
    keys = [CellKey(Quantity("t", "count"), [Coordinate("c", x)]) for x in ("a", "b", "c")]
    keys.append(CellKey(Quantity("t", "count")))
    problem = ProtectionProblem(
        keys=keys,
        values=np.array([4.0, 1.0, 1.0, 6.0]),
        relations=[(3, (0, 1, 2))],
        lower=np.zeros(4),
        upper=np.full(4, 9.0),
        upl=np.array([1.0, 1.0, 1.0, 0.0]),
        lpl=np.array([1.0, 0.0, 0.0, 0.0]),
        primary=np.array([True, True, True, False]),
        cost=np.ones(4),
        fixed=np.zeros(4, dtype=bool),
    )
    hidden = np.array([True, True, True, False])
    assert audit(problem, hidden).passed
    failed = audit(replace(problem, lower=np.ones(4)), hidden)
    assert [(c, reason) for c, _, _, _, reason in failed.failures][0] == (0, "upper protection not met")
    assert failed.hi[0] == pytest.approx(4.0)


def test_an_insider_knows_its_own_share_and_that_the_cell_is_not_empty_not_their_sum():
    lower, values = np.array([1.0, 1.0, -9.0]), np.array([4.0, 3.0, 2.0])
    own = np.array([3.0, 3.0, 1.0])
    # at least its own 3 (it may be alone); with negative data the others may take away down to the bound
    assert insider_floor(lower, own, values).tolist() == [3.0, 3.0, -8.0]
