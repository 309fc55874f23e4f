"""A period's totals stay exact: a file that would lift one beyond what doubles add up exactly is quarantined."""

from __future__ import annotations

from pathlib import Path

from aggregator.exact_totals import PERIOD_TOTAL_LIMIT, operands
from aggregator.protocol import load_protocol
from support.intake_world import World, build_world

ROOT = Path(__file__).resolve().parent.parent
HEADER = "facility_id,country,facility_type,tier,workers_band,order_volume_pieces,order_value_eur\n"


def locations(tmp_path: Path, name: str, rows: int, pieces: int) -> Path:
    """`rows` facilities of `pieces` each: every value within its range (at most 1e10 pieces)."""
    path = tmp_path / name
    body = "".join(f"F{name[0]}{i:07d},BD,cut_make_trim,1,1-50,{pieces},1.5\n" for i in range(rows))
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_the_quantities_a_protocol_adds_up_are_its_tables_columns_and_weighted_columns():
    textile = load_protocol(ROOT / "protocols" / "textile.toml")
    assert [o.signature for o in operands(textile, "production_locations")] == ["sum(order_volume_pieces)"]
    assert [o.signature for o in operands(textile, "living_wage")] == [
        "sum(living_wage_benchmark_eur*workers_covered)",
        "sum(wage_paid_monthly_eur*workers_covered)",
        "sum(workers_covered)",
    ]


def test_a_file_that_would_make_a_period_total_inexact_is_quarantined(tmp_path: Path):
    world: World = build_world(tmp_path)
    # 20,000 facilities of 1e10 pieces each: every value allowed, the total (2e14) still exact
    world.seal(locations(tmp_path, "a.csv", 20_000, 10**10), company="T001", name="a.imvo")
    # another 10,000 would make 3e14 > 2**48 (2.8e14): refused, as is any file after it that adds to the total
    world.seal(locations(tmp_path, "b.csv", 10_000, 10**10), company="T002", name="b.imvo")
    world.seal(locations(tmp_path, "c.csv", 10, 1000), company="T003", name="c.imvo")
    outcomes = {o.file: o for o in world.intake().outcomes}
    assert outcomes["a.imvo"].state == "accepted"
    assert outcomes["b.imvo"].state == "quarantined"
    assert outcomes["b.imvo"].reason == (
        "with this file the total of order_volume_pieces for 2025-01 would be 3e+14, beyond 2.815e+14, the largest "
        "total the secretariat can add up exactly; the values are far larger than real ones (check the unit, "
        "e.g. grams instead of kilograms)"
    )
    assert outcomes["c.imvo"].state == "accepted"  # 1e4 pieces more still fit
    # a later intake starts from the stored total
    world.seal(
        locations(tmp_path, "d.csv", 9_000, 10**10), company="T002", name="d.imvo", created="2025-02-11T09:00:00Z"
    )
    (later,) = world.intake().outcomes
    assert later.state == "quarantined" and "would be 2.9e+14" in later.reason
    assert 2e14 + 1e4 < PERIOD_TOTAL_LIMIT < 2.9e14
