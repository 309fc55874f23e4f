"""Shared pieces of the sample generator: the data contract, the result type and vectorised random helpers.

Values that must stay stable from month to month (a company's risk findings in a country, its wage level
there) come from a counter-based hash of their keys (`stable_uniform`) rather than from the sequential
generator, so a company-country pair keeps its answers whatever else changed that month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from aggregator.errors import AggregatorError

SEED = 20250101
FIRST_PERIOD = "2025-01"

TEMPLATES: dict[str, tuple[str, ...]] = {
    "textile": ("production_locations", "risk_assessment", "living_wage", "materials"),
    "gold": ("refiners", "origin"),
    "banking": ("exposure", "engagement", "grievances"),
    "insurance": ("investments", "exclusions", "investee_engagement"),
    "food": ("sourcing", "commodity_risks"),
    "forestry": ("timber",),
}
COLUMNS: dict[str, tuple[str, ...]] = {
    "production_locations": (
        "facility_id",
        "country",
        "facility_type",
        "tier",
        "workers_band",
        "order_volume_pieces",
        "order_value_eur",
    ),
    "risk_assessment": (
        "country",
        "theme",
        "risk_identified",
        "risk_prioritised",
        "severity",
        "action_status",
        "locations_affected",
        "grievances_received",
        "grievances_resolved",
        "planned_actions_next_year",
    ),
    "living_wage": (
        "country",
        "workers_covered",
        "wage_paid_monthly_eur",
        "living_wage_benchmark_eur",
        "benchmark_source",
    ),
    "materials": ("material", "certification", "weight_kg"),
    "refiners": ("smelter_id", "refiner_country", "certification", "volume_g"),
    "origin": ("country", "source_type", "volume_g"),
    "exposure": ("sector", "country", "asset_class", "exposure_eur_million"),
    "engagement": ("theme", "outcome", "cases"),
    "grievances": ("theme", "grievances_received", "grievances_resolved"),
    "investments": ("sector", "country", "investment_eur_million"),
    "exclusions": ("criterion", "applied", "companies_excluded"),
    "investee_engagement": ("theme", "outcome", "investee_companies"),
    "sourcing": ("commodity", "country", "certification", "volume_t"),
    "commodity_risks": ("commodity", "theme", "risk_identified", "risk_prioritised"),
    "timber": ("species_group", "country", "certification", "due_diligence_outcome", "volume_m3"),
}
FILE_FORMATS = ("csv", "csv_nl", "xlsx")  # csv_nl: `;`, decimal comma, Windows-1252, CRLF (Dutch Excel)


@dataclass
class CovenantData:
    """One covenant's generated monitoring data: the truth that a correct pipeline stores.

    `companies` has company_id, name, group_id, covenant, waiver ("yes"/"no") and file_format; `tables` maps
    each template to rows of every on-time submission: company_id, period, then the template's columns.
    """

    covenant: str
    periods: list[str]
    companies: pa.Table
    tables: dict[str, pa.Table] = field(default_factory=dict)

    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


class SampleDataError(AggregatorError):
    """The generator was asked for something it cannot make."""


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a good 64-bit hash, elementwise (uint64 arithmetic wraps by design)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def stable_uniform(seed: int, salt: int, *keys: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) that depends only on (seed, salt, keys): a pair gets the same draw every month."""
    arrays = np.broadcast_arrays(*[np.asarray(k, dtype=np.int64) for k in keys])
    h = np.full(arrays[0].shape, (seed * 1_000_003 + salt) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    for key in arrays:
        h = mix64(h ^ (key.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def choose_by_group(u: np.ndarray, group: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Category index per row, drawn from the probability row `probs[group]` using the uniforms `u`.

    One searchsorted over all groups' cumulative bounds laid end to end (group g occupies [g, g+1)).
    """
    n_groups, n_cats = probs.shape
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    ends = (np.arange(n_groups)[:, None] + cum).ravel()
    pos = np.searchsorted(ends, group + u, side="right")
    return np.clip(pos - group * n_cats, 0, n_cats - 1)


def top_k_mask(rng: np.random.Generator, weights: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per row, choose k[row] columns without replacement, proportional to weights (Gumbel top-k)."""
    with np.errstate(divide="ignore"):
        keys = np.log(weights) + rng.gumbel(size=weights.shape)
    order = np.argsort(-keys, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(weights.shape[1]), weights.shape), axis=1)
    return (rank < k[:, None]) & np.isfinite(keys)


def month_labels(n_periods: int, first: str = FIRST_PERIOD) -> list[str]:
    year, month = (int(part) for part in first.split("-"))
    months = [year * 12 + month - 1 + i for i in range(n_periods)]
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months]


def make_company_ids(prefix: str, n: int) -> list[str]:
    width = max(3, len(str(n)))
    return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]


def unique_names(rng: np.random.Generator, stems: Sequence[str], suffixes: Sequence[str], n: int) -> list[str]:
    combos = [f"{s} {x}" for s in stems for x in suffixes]
    order = rng.permutation(len(combos))
    # beyond the distinct combinations, number them: names must stay unique at benchmark sizes
    return [combos[order[i % len(combos)]] + ("" if i < len(combos) else f" {i // len(combos) + 1}") for i in range(n)]


def late_mask(rng: np.random.Generator, n: int, n_periods: int, protected: frozenset[int]) -> np.ndarray:
    """(company, period) -> missing this period. The first period is complete; later ones miss ~2%."""
    late = np.zeros((n, n_periods), dtype=bool)
    eligible = np.array([i for i in range(n) if i not in protected])
    n_late = min(len(eligible), max(1, round(0.02 * n)))
    for p in range(1, n_periods):
        late[rng.choice(eligible, size=n_late, replace=False), p] = True
    return late


def companies_table(
    ids: list[str],
    names: list[str],
    groups: list[str],
    covenant: str,
    waived: np.ndarray,
    formats: np.ndarray,
) -> pa.Table:
    return pa.table(
        {
            "company_id": ids,
            "name": names,
            "group_id": groups,
            "covenant": [covenant] * len(ids),
            "waiver": np.where(waived, "yes", "no").tolist(),
            "file_format": [FILE_FORMATS[f] for f in formats],
        }
    )


def draw_formats(rng: np.random.Generator, n: int, forced: dict[int, str]) -> np.ndarray:
    formats = rng.choice(len(FILE_FORMATS), size=n, p=[0.70, 0.15, 0.15])
    for index, name in forced.items():
        if index < n:
            formats[index] = FILE_FORMATS.index(name)
    return formats


def take(values: Sequence[str], index: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string()).take(pa.array(index))


def nullable(values: np.ndarray, null: np.ndarray) -> pa.Array:
    return pa.array(values, mask=null)


def period_table(columns: dict[str, pa.Array], template: str, company_ids: pa.Array, period: str) -> pa.Table:
    company = columns.pop("_company")
    n = len(company)
    data = {"company_id": company_ids.take(pa.array(company)), "period": pa.array([period] * n, pa.string())}
    data.update({name: columns[name] for name in COLUMNS[template]})
    return pa.table(data)
