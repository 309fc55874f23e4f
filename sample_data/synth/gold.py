"""Gold covenant: refiners used and origin of the gold, per company and month."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .common import (
    CovenantData,
    companies_table,
    draw_formats,
    late_mask,
    make_company_ids,
    month_labels,
    period_table,
    take,
    top_k_mask,
)

# --- gold reference data ----------------------------------------------------------------------------------
GOLD_TYPES = ("jeweller", "electronics", "bank")
# refiner pool: (country, certification); ids are drawn once from the seed
_REFINER_POOL = (
    [("CH", "lbma")] * 5
    + [("CH", "rjc")]
    + [("IT", "lbma")] * 2
    + [("IT", "rjc"), ("IT", "none")]
    + [("DE", "lbma")] * 2
    + [("DE", "rmap")]
    + [("AE", "lbma"), ("AE", "none"), ("AE", "none"), ("AE", "rmap")]
    + [("IN", "lbma"), ("IN", "rmap"), ("IN", "none"), ("IN", "none")]
    + [("HK", "lbma"), ("HK", "rmap"), ("HK", "none")]
    + [("US", "lbma")] * 2
    + [("US", "rmap")]
    + [("ZA", "lbma")] * 2
    + [("JP", "lbma")] * 3
    + [("JP", "rmap")]
    + [("CA", "lbma")] * 2
    + [("GB", "lbma"), ("GB", "rjc")]
    + [("TR", "lbma"), ("TR", "none")]
    + [("AU", "lbma")]
)
# refiner choice weight per certification (lbma, rjc, rmap, none) and company type
_REFINER_CERTS = ("lbma", "rjc", "rmap", "none")
_REFINER_WEIGHT = np.array([[3.0, 2.0, 1.0, 0.5], [2.0, 1.0, 3.0, 0.5], [3.0, 1.0, 0.0, 0.0]])
_REFINERS_PER_TYPE = ((2, 5), (10, 24), (3, 7))
_GOLD_MONTHLY_G = ((15_000.0, 0.9), (4_000.0, 0.8), (600_000.0, 0.7))  # (median, sigma) per company type
# (country, source_type, P(use) for jeweller / electronics / bank, share weight)
ORIGIN_COMBOS = tuple(
    sorted(
        [
            ("AU", "large_scale_mined", (0.10, 0.35, 0.50), 1.0),
            ("BF", "large_scale_mined", (0.05, 0.10, 0.10), 0.5),
            ("CA", "large_scale_mined", (0.15, 0.35, 0.45), 1.0),
            ("CH", "bank_vault", (0.05, 0.00, 0.90), 3.0),
            ("CH", "recycled", (0.80, 0.50, 0.30), 1.5),
            ("CO", "artisanal_small_scale", (0.15, 0.05, 0.02), 0.2),
            ("DE", "recycled", (0.40, 0.40, 0.10), 1.0),
            ("GB", "bank_vault", (0.02, 0.00, 0.80), 3.0),
            ("GH", "artisanal_small_scale", (0.10, 0.05, 0.00), 0.2),
            ("GH", "large_scale_mined", (0.20, 0.40, 0.40), 1.0),
            ("IT", "recycled", (0.50, 0.20, 0.05), 1.0),
            ("ML", "large_scale_mined", (0.05, 0.15, 0.10), 0.5),
            ("NL", "recycled", (0.60, 0.30, 0.10), 1.0),
            ("PE", "artisanal_small_scale", (0.15, 0.05, 0.02), 0.2),
            ("PE", "large_scale_mined", (0.20, 0.40, 0.40), 1.0),
            ("TZ", "large_scale_mined", (0.05, 0.10, 0.10), 0.5),
            ("UG", "artisanal_small_scale", (0.05, 0.02, 0.00), 0.1),
            ("US", "bank_vault", (0.00, 0.00, 0.40), 2.0),
            ("US", "large_scale_mined", (0.10, 0.30, 0.30), 1.0),
            ("ZA", "large_scale_mined", (0.10, 0.30, 0.50), 1.0),
        ]
    )
)

_GOLD_STEMS = (
    "Amstel", "De Kroon", "Delfland", "Eemland", "Gelre", "Hanze", "Kennemer", "Lage Landen", "Maasland",
    "Noordzee", "Oranje", "Rijnland", "Schoonhoven", "Twente", "Van Rijn", "Zilverstad",
)  # fmt: skip
_GOLD_PATTERNS = (
    ("Juwelier {}", "Goudsmederij {}", "{} Sieraden"),
    ("{} Electronics", "{} Components", "{} Devices"),
    ("{} Bank", "{} Bankiers", "{} Vermogensbeheer"),
)


GOLD_GROUPS = {2: "GG1", 3: "GG1"}
GOLD_WAIVERS = (13,)
_GOLD_FORMATS = {1: "csv_nl", 8: "xlsx"}


def _gold_companies(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray]:
    ids = make_company_ids("G", n)
    kind = np.searchsorted(np.array([0.45, 0.75]), np.arange(n) / n, side="right")
    stems = rng.permutation(len(_GOLD_STEMS))
    names = []
    for i in range(n):
        pattern = _GOLD_PATTERNS[kind[i]][i % 3]
        stem = _GOLD_STEMS[stems[i % len(_GOLD_STEMS)]]
        names.append(pattern.format(stem) + ("" if i < len(_GOLD_STEMS) else f" {i // len(_GOLD_STEMS) + 1}"))
    groups = [GOLD_GROUPS.get(i, ids[i]) if n >= 16 else ids[i] for i in range(n)]
    waived = np.isin(np.arange(n), GOLD_WAIVERS) if n >= 16 else np.zeros(n, dtype=bool)
    formats = draw_formats(rng, n, _GOLD_FORMATS)
    return companies_table(ids, names, groups, "gold", waived, formats), kind


def _refiner_pool(rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    numbers = np.sort(rng.choice(np.arange(1, 3600), size=len(_REFINER_POOL), replace=False))
    countries = np.array([c for c, _ in _REFINER_POOL])
    certs = np.array([_REFINER_CERTS.index(cert) for _, cert in _REFINER_POOL])
    order = np.argsort(numbers, kind="stable")
    return [f"CID{x:06d}" for x in numbers[order]], countries[order], certs[order]


def generate_gold(n: int, n_periods: int, seed: int) -> CovenantData:
    rng = np.random.default_rng(seed + 1)
    companies, kind = _gold_companies(rng, n)
    smelters, ref_country, ref_cert = _refiner_pool(rng)
    lo, hi = np.array(_REFINERS_PER_TYPE).T
    k = rng.integers(lo[kind], hi[kind] + 1)
    uses = top_k_mask(rng, _REFINER_WEIGHT[kind][:, ref_cert], k)
    row_company, row_refiner = np.nonzero(uses)
    median, sigma = np.array(_GOLD_MONTHLY_G).T
    total = median[kind] * rng.lognormal(0.0, sigma[kind])
    split = rng.lognormal(0.0, 1.0, len(row_company))
    base = total[row_company] * split / np.bincount(row_company, weights=split, minlength=n)[row_company]
    origin_p = np.array([combo[2] for combo in ORIGIN_COMBOS]).T  # (type, combo)
    origin_use = rng.random((n, len(ORIGIN_COMBOS))) < origin_p[kind]
    origin_use[np.arange(n), origin_p[kind].argmax(axis=1)] |= ~origin_use.any(axis=1)
    origin_w = np.where(
        origin_use, np.array([c[3] for c in ORIGIN_COMBOS]) * rng.lognormal(0, 0.5, origin_use.shape), 0
    )
    origin_w = origin_w / origin_w.sum(axis=1, keepdims=True)
    late = late_mask(rng, n, n_periods, frozenset(GOLD_GROUPS) | frozenset(GOLD_WAIVERS))
    company_ids = companies.column("company_id").combine_chunks()
    periods = month_labels(n_periods)
    refiners, origins = [], []
    for p, period in enumerate(periods):
        volume = np.round(base * rng.lognormal(0.0, 0.12, len(base)), 1)
        keep = ~late[row_company, p]
        refiners.append(
            period_table(
                {
                    "_company": row_company[keep],
                    "smelter_id": take(smelters, row_refiner[keep]),
                    "refiner_country": pa.array(ref_country[row_refiner[keep]]),
                    "certification": take(_REFINER_CERTS, ref_cert[row_refiner[keep]]),
                    "volume_g": pa.array(volume[keep]),
                },
                "refiners",
                company_ids,
                period,
            )
        )
        # a company's origin split adds up to what went through its refiners that month
        company_total = np.bincount(row_company, weights=volume, minlength=n)
        o_company, o_combo = np.nonzero(origin_use & ~late[:, p : p + 1])
        origins.append(
            period_table(
                {
                    "_company": o_company,
                    "country": take([c[0] for c in ORIGIN_COMBOS], o_combo),
                    "source_type": take([c[1] for c in ORIGIN_COMBOS], o_combo),
                    "volume_g": pa.array(np.round(company_total[o_company] * origin_w[o_company, o_combo], 1)),
                },
                "origin",
                company_ids,
                period,
            )
        )
    tables = {"refiners": pa.concat_tables(refiners), "origin": pa.concat_tables(origins)}
    return CovenantData("gold", periods, companies, tables)
