"""Textile covenant: production locations, risk assessments, living wage and materials per company and month.

With 64 or more companies a fixed scenario (`TEXTILE_SCENARIO`) is laid over the random data so that every
disclosure rule has something to bite on; tests/test_sample_data.py checks each case on the committed files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .common import (
    TEMPLATES,
    CovenantData,
    choose_by_group,
    companies_table,
    draw_formats,
    late_mask,
    make_company_ids,
    month_labels,
    nullable,
    period_table,
    stable_uniform,
    take,
    top_k_mask,
    unique_names,
)

# --- textile reference data -------------------------------------------------------------------------------
FACILITY_TYPES = (
    "cut_make_trim",
    "fabric_mill",
    "dyeing_finishing",
    "spinning",
    "trims_accessories",
    "laundry",
)
WORKER_BANDS = ("1-50", "51-250", "251-1000", "1001+")
BAND_MIDPOINTS = np.array([25.0, 150.0, 600.0, 1800.0])
BAND_PIECES = np.array([2500.0, 9000.0, 28000.0, 75000.0])  # typical monthly order pieces per tier-1 facility
THEMES = (
    "discrimination_gender",
    "child_labour",
    "forced_labour",
    "freedom_of_association",
    "living_wage",
    "health_safety",
    "raw_materials",
    "water_chemicals_energy",
    "animal_welfare",
)
THEME_BASE_P = np.array([0.5, 0.25, 0.3, 0.55, 0.85, 0.6, 0.35, 0.45, 0.12])
SEVERITIES = ("low", "medium", "high")
ACTION_STATUSES = ("none", "planned", "in_progress", "completed")
BENCHMARK_SOURCES = ("anker", "wage_indicator", "asia_floor_wage", "other")
BENCHMARK_FACTOR = np.array([1.0, 0.95, 1.35, 1.05])  # Asia Floor Wage figures sit well above Anker's

# country: (weight in random sourcing, price EUR/piece, wage paid EUR/month, living-wage benchmark EUR/month,
#           risk class 0 low / 1 medium / 2 high, large factories). Weight 0: only the scenario sources there.
_TEXTILE_COUNTRY_TABLE: dict[str, tuple[float, float, float, float, int, bool]] = {
    "AL": (0.0, 9.5, 380, 620, 1, False),
    "BD": (0.13, 4.8, 115, 250, 2, True),
    "BG": (0.0, 10.0, 560, 820, 1, False),
    "CN": (0.20, 7.5, 560, 780, 2, True),
    "EG": (0.0, 6.5, 95, 230, 1, True),
    "ET": (0.008, 4.0, 45, 150, 2, True),
    "GE": (0.0, 8.0, 260, 520, 1, False),
    "ID": (0.03, 6.5, 230, 400, 2, True),
    "IN": (0.11, 6.0, 125, 260, 2, True),
    "IT": (0.045, 24.0, 1650, 1800, 0, False),
    "JO": (0.0, 7.0, 330, 520, 1, True),
    "KH": (0.03, 5.5, 215, 420, 2, True),
    "LK": (0.02, 6.0, 110, 260, 2, True),
    "MA": (0.025, 9.0, 310, 480, 1, False),
    "MK": (0.0, 9.0, 380, 640, 1, False),
    "MM": (0.0, 4.2, 95, 210, 2, True),
    "PK": (0.045, 5.0, 105, 240, 2, True),
    "PT": (0.06, 14.0, 980, 1150, 0, False),
    "RO": (0.03, 11.0, 620, 850, 1, False),
    "TN": (0.02, 9.0, 270, 430, 1, False),
    "TR": (0.12, 9.5, 540, 830, 1, False),
    "VN": (0.05, 7.0, 260, 420, 2, True),
}
TEXTILE_COUNTRIES = tuple(_TEXTILE_COUNTRY_TABLE)
_TC = np.array([v[:5] for v in _TEXTILE_COUNTRY_TABLE.values()], dtype=float)
COUNTRY_WEIGHT, COUNTRY_PRICE, COUNTRY_WAGE, COUNTRY_BENCHMARK = _TC[:, 0], _TC[:, 1], _TC[:, 2], _TC[:, 3]
COUNTRY_RISK_CLASS = _TC[:, 4].astype(int)
COUNTRY_LARGE = np.array([v[5] for v in _TEXTILE_COUNTRY_TABLE.values()])
_ASIA = np.isin(TEXTILE_COUNTRIES, ["BD", "CN", "ET", "ID", "IN", "KH", "LK", "MM", "PK", "VN"])


def _ci(code: str) -> int:
    return TEXTILE_COUNTRIES.index(code)


TIER_P = np.array([0.60, 0.27, 0.10, 0.03])
# P(facility type | tier), columns in FACILITY_TYPES order
TYPE_GIVEN_TIER = np.array(
    [
        [0.82, 0.05, 0.05, 0.00, 0.03, 0.05],
        [0.05, 0.35, 0.30, 0.00, 0.20, 0.10],
        [0.00, 0.30, 0.15, 0.55, 0.00, 0.00],
        [0.00, 0.10, 0.00, 0.90, 0.00, 0.00],
    ]
)
BAND_GIVEN_LARGE = np.array([[0.30, 0.45, 0.20, 0.05], [0.05, 0.30, 0.45, 0.20]])

# (material, certification, P(company uses it), share weight)
MATERIAL_COMBOS = (
    ("cotton", "none", 0.85, 3.0),
    ("cotton", "bci", 0.50, 2.0),
    ("cotton", "gots", 0.35, 1.0),
    ("cotton", "ocs", 0.25, 0.7),
    ("cotton", "fairtrade", 0.12, 0.3),
    ("polyester", "none", 0.80, 2.0),
    ("polyester", "grs", 0.45, 1.0),
    ("viscose", "none", 0.45, 0.6),
    ("viscose", "fsc", 0.20, 0.3),
    ("wool", "none", 0.25, 0.3),
    ("wool", "rws", 0.15, 0.2),
    ("nylon", "none", 0.30, 0.3),
    ("nylon", "grs", 0.12, 0.1),
    ("elastane", "none", 0.55, 0.1),
    ("linen", "none", 0.20, 0.15),
    ("other", "none", 0.30, 0.2),
)
KG_PER_PIECE = 0.3

_TEXTILE_STEMS = (
    "Amstel", "Bakker & Zn", "Blauwe Reiger", "Bos", "Brabantse", "Brouwer", "De Boer", "De Vries", "Dekker",
    "Delta", "Duinroos", "Eikenhout", "Hendriks", "Hollands Glorie", "Jansen", "Koopman", "Kuipers", "Linde",
    "Meijer", "Molenaar", "Mulder", "Noorderlicht", "Oranje", "Peeters", "Polder", "Rivièra", "Smit",
    "Stadhouder", "Tulp", "Veluwe", "Vermeulen", "Visser", "Waddenzee", "Zeeuwse", "Zuiderzee",
    "Coöperatie Wolweverij",
)  # fmt: skip
_TEXTILE_SUFFIXES = (
    "Apparel", "Basics", "Confectie", "Denim", "Fashion", "Jeans", "Kids", "Kledinggroep", "Lingerie", "Mode",
    "Outdoor", "Retail", "Schoenen & Mode", "Sportswear", "Textiel", "Workwear",
)  # fmt: skip


# --- the textile scenario: which company does what, by 0-based company index ------------------------------
@dataclass(frozen=True)
class _Scenario:
    names: dict[int, str]
    groups: dict[int, str]
    waivers: tuple[int, ...]
    formats: dict[int, str]
    # (company, country, facilities, zero volume): extra tier-1 facilities, so rare countries appear
    facilities: tuple[tuple[int, str, int, bool], ...]
    # (company, country, target share of that country's order volume in every period)
    dominance: tuple[tuple[int, str, float], ...]
    # (company, country, facility names): a Dutch-locale company names its facilities (accents in cp1252)
    named_facilities: tuple[tuple[int, str, tuple[str, ...]], ...]

    @property
    def companies(self) -> frozenset[int]:
        used = {c for c, *_ in self.facilities} | {c for c, *_ in self.dominance} | set(self.groups)
        return frozenset(used | set(self.waivers) | {c for c, *_ in self.named_facilities})


def _spread(companies: Sequence[int], country: str, per_company: int = 2, zero: bool = False):
    return tuple((c, country, per_company, zero) for c in companies)


TEXTILE_SCENARIO = _Scenario(
    names={
        0: "Hollandse Warenhuis Compagnie",
        1: "Nijl & Delta Textiel",
        6: "Maison Lefèvre Benelux",
        9: "Van der Berg Mode",
        10: "Van der Berg Kids",
        11: "Van der Berg Outlet",
        19: "Kroonenberg Fashion",
        20: "Kroonenberg Workwear",
    },
    groups={9: "TG1", 10: "TG1", 11: "TG1", 19: "TG2", 20: "TG2"},
    waivers=(1, 14, 39),
    formats={2: "xlsx", 6: "csv_nl"},
    facilities=(
        (0, "KH", 3, False),
        (0, "PK", 3, False),
        (1, "ET", 2, False),
        *_spread([1], "EG"),  # 1 company, and it has a waiver
        *_spread([9, 10], "MK"),  # 2 companies of one group: 1 contributor
        *_spread([32, 33, 34], "GE"),  # 3 contributors
        *_spread([35, 36, 37, 38], "BG"),  # exactly 4
        *_spread([19, 20, 29, 30, 31], "JO"),  # 5 companies but 4 groups
        *_spread([40, 41, 42, 43, 44], "AL"),  # exactly 5
        *_spread([49, 50, 51, 52, 53, 54], "MM", zero=True),  # responsible exit: listed, no orders
        (6, "PT", 3, False),
    ),
    dominance=((0, "KH", 0.58), (0, "PK", 0.32), (1, "ET", 0.55)),
    named_facilities=((6, "PT", ("Confecções Guimarães", "Têxteis Barcelos", "Malhas Famalicão")),),
)


@dataclass
class _Facilities:
    """The universe of facilities over all periods; a facility is active in [birth, death)."""

    company: np.ndarray
    country: np.ndarray
    tier: np.ndarray
    ftype: np.ndarray
    band: np.ndarray
    base_volume: np.ndarray
    price_factor: np.ndarray
    birth: np.ndarray
    death: np.ndarray
    name_code: np.ndarray  # -1, or index into the scenario's facility names

    def insert_after_company(self, extra: _Facilities) -> _Facilities:
        """Add facilities after each company's own, keeping rows grouped by company (no full re-sort)."""
        at = np.searchsorted(self.company, extra.company, side="right")
        return _Facilities(**{k: np.insert(v, at, vars(extra)[k]) for k, v in vars(self).items()})


def _textile_companies(rng: np.random.Generator, n: int, scenario: _Scenario | None) -> tuple[pa.Table, np.ndarray]:
    """Registry rows and relative company sizes (mean 1, heavy tail; the scenario's retailer largest)."""
    ids = make_company_ids("T", n)
    names = unique_names(rng, _TEXTILE_STEMS, _TEXTILE_SUFFIXES, n)
    groups = list(ids)
    waived = rng.random(n) < 0.02
    size = rng.lognormal(0.0, 1.0, n)
    formats = draw_formats(rng, n, scenario.formats if scenario else {})
    if scenario:
        waived[:] = False
        waived[list(scenario.waivers)] = True
        for index, name in scenario.names.items():
            names[index] = name
        for index, group in scenario.groups.items():
            groups[index] = group
        size[0] = size.max() * 1.5
    size = size / size.mean()
    return companies_table(ids, names, groups, "textile", waived, formats), size


def _facility_block(
    rng: np.random.Generator, company: np.ndarray, country: np.ndarray, tier: np.ndarray, n_periods: int
) -> _Facilities:
    """Facility attributes for given company/country/tier; birth 0 and never dying unless changed after."""
    n = len(company)
    ftype = choose_by_group(rng.random(n), tier - 1, TYPE_GIVEN_TIER)
    band = choose_by_group(rng.random(n), COUNTRY_LARGE[country].astype(np.int64), BAND_GIVEN_LARGE)
    pieces = BAND_PIECES[band] * rng.lognormal(0.0, 0.7, n)
    # orders go to tier 1; deeper tiers are disclosed for due diligence but carry no direct orders
    base_volume = np.where(tier == 1, pieces, 0.0)
    return _Facilities(
        # small integer types: at 10M facilities every byte per row is 10 MB
        company=company.astype(np.int32),
        country=country.astype(np.int16),
        tier=tier.astype(np.int8),
        ftype=ftype.astype(np.int8),
        band=band.astype(np.int8),
        base_volume=base_volume,
        price_factor=rng.lognormal(0.0, 0.25, n),
        birth=np.zeros(n, dtype=np.int16),
        death=np.full(n, n_periods, dtype=np.int16),
        name_code=np.full(n, -1, dtype=np.int16),
    )


def _random_facilities(rng: np.random.Generator, size: np.ndarray, n_periods: int, rows_scale: float) -> _Facilities:
    n = len(size)
    n_base = np.maximum(1, np.round(70.0 * rows_scale * size)).astype(np.int64)
    n_new = rng.binomial(n_base, 0.02) if n_periods > 1 else np.zeros(n, dtype=np.int64)
    per_company = n_base + n_new
    # companies concentrate on a handful of countries, more for larger companies
    k = np.clip(np.round(1.5 + 1.8 * np.log1p(n_base / 8.0)), 1, 15).astype(np.int64)
    taste = COUNTRY_WEIGHT[None, :] * rng.lognormal(0.0, 0.8, (n, len(TEXTILE_COUNTRIES)))
    chosen = top_k_mask(rng, taste, np.minimum(k, per_company))
    company = np.repeat(np.arange(n), per_company)
    country = choose_by_group(rng.random(len(company)), company, np.where(chosen, taste, 0.0))
    tier = 1 + choose_by_group(rng.random(len(company)), np.zeros(len(company), dtype=np.int64), TIER_P[None, :])
    block = _facility_block(rng, company, country, tier, n_periods)
    starts = np.cumsum(per_company) - per_company
    local = np.arange(len(company)) - starts[company]
    is_new = local >= n_base[company]
    if n_periods > 1:
        block.birth = np.where(is_new, rng.integers(1, n_periods, len(company)), 0).astype(np.int16)
        dies = ~is_new & (rng.random(len(company)) < 0.02)
        block.death = np.where(dies, rng.integers(1, n_periods, len(company)), n_periods).astype(np.int16)
    return block


def _scenario_facilities(rng: np.random.Generator, scenario: _Scenario, n_periods: int) -> _Facilities:
    rows = [(c, _ci(country), zero) for c, country, count, zero in scenario.facilities for _ in range(count)]
    company = np.array([r[0] for r in rows])
    block = _facility_block(rng, company, np.array([r[1] for r in rows]), np.ones(len(rows), int), n_periods)
    block.ftype[:] = FACILITY_TYPES.index("cut_make_trim")
    block.base_volume = np.where([r[2] for r in rows], 0.0, BAND_PIECES[block.band] * rng.lognormal(0, 0.5, len(rows)))
    for company_index, country, names in scenario.named_facilities:
        slots = np.flatnonzero((block.company == company_index) & (block.country == _ci(country)))
        block.name_code[slots[: len(names)]] = np.arange(min(len(names), len(slots)))
    return block


def _textile_universe(
    rng: np.random.Generator, size: np.ndarray, n_periods: int, rows_scale: float, scenario: _Scenario | None
) -> _Facilities:
    block = _random_facilities(rng, size, n_periods, rows_scale)
    if scenario:
        block = block.insert_after_company(_scenario_facilities(rng, scenario, n_periods))
    return block


def _facility_ids(universe: _Facilities, company_ids: pa.Array, names: Sequence[str]) -> pa.Array:
    """`<company>-F00001` per facility; scenario facilities with a name keep it (accents included)."""
    counts = np.bincount(universe.company, minlength=len(company_ids))
    local = np.arange(len(universe.company)) - (np.cumsum(counts) - counts)[universe.company] + 1
    numbered = pc.binary_join_element_wise(
        company_ids.take(pa.array(universe.company)),
        pc.utf8_lpad(pa.array(local).cast(pa.string()), 5, "0"),
        "-F",
    )
    if not names:
        return numbered
    named = take(names, np.maximum(universe.name_code, 0))
    return pc.if_else(pa.array(universe.name_code >= 0), named, numbered)


def _dominate(volume: np.ndarray, active: np.ndarray, company: np.ndarray, country: np.ndarray, targets) -> np.ndarray:
    """Scale one company's volume in a country so it holds exactly the target share of that country."""
    volume = volume.copy()
    for dominant, code, share in targets:
        in_country = active & (country == _ci(code))
        own = in_country & (company == dominant)
        others = volume[in_country & ~own].sum()
        mine = volume[own].sum()
        if mine > 0 and others > 0:
            volume[own] = np.round(volume[own] * (share / (1.0 - share) * others / mine))
    return volume


def _pair_table(
    active: np.ndarray, universe: _Facilities, n_countries: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Company-country pairs with active facilities: (company, country, facility count, workers estimate)."""
    code = universe.company[active].astype(np.int64) * n_countries + universe.country[active]
    pairs, inverse = np.unique(code, return_inverse=True)
    counts = np.bincount(inverse)
    workers = np.bincount(inverse, weights=BAND_MIDPOINTS[universe.band[active]])
    return pairs // n_countries, pairs % n_countries, counts, workers


def _risk_rows(rng, seed, company, country, counts) -> dict[str, pa.Array]:
    n_pairs, n_themes = len(company), len(THEMES)
    c = np.repeat(company, n_themes)
    k = np.repeat(country, n_themes)
    count = np.repeat(counts, n_themes)
    t = np.tile(np.arange(n_themes), n_pairs)
    risk_class = COUNTRY_RISK_CLASS[k]
    p = THEME_BASE_P[t] * np.array([0.35, 0.7, 1.0])[risk_class]
    p = p + 0.35 * ((t == THEMES.index("forced_labour")) & np.isin(k, [_ci("CN"), _ci("JO")]))
    p = p + 0.15 * ((t == THEMES.index("child_labour")) & np.isin(k, [_ci(x) for x in ("BD", "IN", "PK", "ET", "MM")]))
    identified = stable_uniform(seed, 11, c, k, t) < np.minimum(p, 0.95)
    prioritised = identified & (stable_uniform(seed, 12, c, k, t) < 0.55)
    severity_p = np.array([[0.6, 0.35, 0.05], [0.35, 0.45, 0.2], [0.2, 0.45, 0.35]])
    severity = choose_by_group(stable_uniform(seed, 13, c, k, t), risk_class, severity_p)
    status_p = np.array([[1.0, 0.0, 0.0, 0.0], [0.6, 0.4, 0.0, 0.0], [0.0, 0.3, 0.5, 0.2]])
    status = choose_by_group(stable_uniform(seed, 14, c, k, t), identified + prioritised.astype(int), status_p)
    affected = np.where(identified, np.maximum(1, np.round(count * (0.2 + 0.7 * stable_uniform(seed, 15, c, k, t)))), 0)
    received = rng.poisson(0.03 * count * np.where(identified, 3.0, 1.0))
    resolved = rng.binomial(received, 0.65)
    planned = np.where(prioritised, 1 + np.floor(4 * stable_uniform(seed, 16, c, k, t)), 0).astype(np.int64)
    return {
        "_company": c,
        "country": take(TEXTILE_COUNTRIES, k),
        "theme": take(THEMES, t),
        "risk_identified": pa.array(identified),
        "risk_prioritised": pa.array(prioritised),
        # optional: left empty where no risk was identified
        "severity": pc.if_else(pa.array(identified), take(SEVERITIES, severity), pa.scalar(None, pa.string())),
        "action_status": take(ACTION_STATUSES, status),
        "locations_affected": pa.array(affected.astype(np.int64)),
        "grievances_received": pa.array(received.astype(np.int64)),
        "grievances_resolved": pa.array(resolved.astype(np.int64)),
        # optional and forward-looking: only companies that prioritised a risk fill it in
        "planned_actions_next_year": nullable(planned, ~prioritised),
    }


def _living_wage_rows(seed, company, country, workers) -> dict[str, pa.Array]:
    region = _ASIA[country].astype(np.int64)
    source_p = np.array([[0.35, 0.5, 0.0, 0.15], [0.4, 0.25, 0.35, 0.0]])
    source = choose_by_group(stable_uniform(seed, 21, company, country), region, source_p)
    coverage = 0.4 + 0.6 * stable_uniform(seed, 22, company, country)
    wage = COUNTRY_WAGE[country] * (0.88 + 0.3 * stable_uniform(seed, 23, company, country))
    benchmark = (
        COUNTRY_BENCHMARK[country]
        * BENCHMARK_FACTOR[source]
        * (0.97 + 0.06 * stable_uniform(seed, 24, company, country))
    )
    return {
        "_company": company,
        "country": take(TEXTILE_COUNTRIES, country),
        "workers_covered": pa.array(np.round(workers * coverage).astype(np.int64)),
        "wage_paid_monthly_eur": pa.array(np.round(wage, 2)),
        "living_wage_benchmark_eur": pa.array(np.round(benchmark, 2)),
        "benchmark_source": take(BENCHMARK_SOURCES, source),
    }


def _material_rows(rng, seed, present: np.ndarray, pieces: np.ndarray) -> dict[str, pa.Array]:
    n_combos = len(MATERIAL_COMBOS)
    use_p = np.array([m[2] for m in MATERIAL_COMBOS])
    share_w = np.array([m[3] for m in MATERIAL_COMBOS])
    companies = np.flatnonzero(present)
    uses = stable_uniform(seed, 31, companies[:, None], np.arange(n_combos)[None, :]) < use_p
    uses[~uses.any(axis=1), 0] = True  # everyone buys some conventional cotton
    share = np.where(uses, share_w * (0.5 + stable_uniform(seed, 32, companies[:, None], np.arange(n_combos))), 0.0)
    share = share / share.sum(axis=1, keepdims=True)
    row, combo = np.nonzero(uses)
    weight = pieces[companies[row]] * KG_PER_PIECE * share[row, combo] * rng.lognormal(0.0, 0.05, len(row))
    return {
        "_company": companies[row],
        "material": take([m[0] for m in MATERIAL_COMBOS], combo),
        "certification": take([m[1] for m in MATERIAL_COMBOS], combo),
        "weight_kg": pa.array(np.round(weight, 1)),
    }


def _textile_period(rng, seed, p, universe, late, scenario, company_ids, facility_ids, period) -> dict[str, pa.Table]:
    n_companies = late.shape[0]
    active = (universe.birth <= p) & (universe.death > p) & ~late[universe.company, p]
    volume = np.round(universe.base_volume * rng.lognormal(0.0, 0.15, len(universe.company)))
    if scenario:
        volume = _dominate(volume, active, universe.company, universe.country, scenario.dominance)
    value = np.round(volume * COUNTRY_PRICE[universe.country] * universe.price_factor, 2)
    idx = np.flatnonzero(active)
    locations = {
        "_company": universe.company[idx],
        "facility_id": facility_ids.take(pa.array(idx)),
        "country": take(TEXTILE_COUNTRIES, universe.country[idx]),
        "facility_type": take(FACILITY_TYPES, universe.ftype[idx]),
        "tier": pa.array(universe.tier[idx].astype(np.int64)),
        "workers_band": take(WORKER_BANDS, universe.band[idx]),
        "order_volume_pieces": pa.array(volume[idx].astype(np.int64)),
        "order_value_eur": pa.array(value[idx]),
    }
    company, country, counts, workers = _pair_table(active, universe, len(TEXTILE_COUNTRIES))
    pieces = np.bincount(universe.company[idx], weights=volume[idx], minlength=n_companies)
    present = ~late[:, p]
    parts = {
        "production_locations": locations,
        "risk_assessment": _risk_rows(rng, seed, company, country, counts),
        "living_wage": _living_wage_rows(seed, company, country, workers),
        "materials": _material_rows(rng, seed, present, pieces),
    }
    return {name: period_table(cols, name, company_ids, period) for name, cols in parts.items()}


def generate_textile(n: int, n_periods: int, rows_scale: float, seed: int) -> CovenantData:
    rng = np.random.default_rng(seed)
    scenario = TEXTILE_SCENARIO if n >= 64 else None
    companies, size = _textile_companies(rng, n, scenario)
    universe = _textile_universe(rng, size, n_periods, rows_scale, scenario)
    late = late_mask(rng, n, n_periods, scenario.companies if scenario else frozenset())
    company_ids = companies.column("company_id").combine_chunks()
    names = [name for *_, group in (scenario.named_facilities if scenario else ()) for name in group]
    facility_ids = _facility_ids(universe, company_ids, names)
    periods = month_labels(n_periods)
    per_period = [
        _textile_period(rng, seed, p, universe, late, scenario, company_ids, facility_ids, period)
        for p, period in enumerate(periods)
    ]
    tables = {t: pa.concat_tables([pp[t] for pp in per_period]) for t in TEMPLATES["textile"]}
    return CovenantData("textile", periods, companies, tables)
