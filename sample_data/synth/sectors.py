"""Banking, insurance, food products and forestry: four small covenants built from one pattern.

Each company draws, once, the combinations it reports on (sector x country x asset class, commodity x origin x
certification, ...) and a base amount for each; every month multiplies the amounts by a little noise, and one
company per later month sends nothing (late). Company sizes are skewed on purpose: banking has a dozen banks,
three of which hold most of every exposure (the hard case for dominance and p% rules); the others have a long
tail. The data are small (the demo runs all six covenants) and stable from month to month.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
)

# NACE Rev. 2 sections (rules/banking/exposure.toml): where banks and insurers carry human-rights risk
HR_THEMES = ("child_labour", "forced_labour", "freedom_of_association", "health_safety", "land_rights",
             "discrimination_gender")  # fmt: skip
OUTCOMES = ("ongoing", "improved", "escalated", "relationship_ended")
OUTCOME_WEIGHT = np.array([0.55, 0.25, 0.12, 0.08])


@dataclass(frozen=True)
class CompanySpec:
    """The registry side of one covenant: ids, names, groups, waivers, file formats and relative sizes."""

    covenant: str
    prefix: str
    names: Sequence[str]
    groups: dict[int, str] = field(default_factory=dict)
    waivers: tuple[int, ...] = ()
    formats: dict[int, str] = field(default_factory=dict)
    size: Callable[[np.random.Generator, int], np.ndarray] | None = None


def _companies(rng: np.random.Generator, spec: CompanySpec, n: int) -> tuple[pa.Table, np.ndarray]:
    ids = make_company_ids(spec.prefix, n)
    names = [spec.names[i % len(spec.names)] + ("" if i < len(spec.names) else f" {i // len(spec.names) + 1}")
             for i in range(n)]  # fmt: skip
    full = n >= len(spec.names)  # groups and waivers only in the sample's own size
    groups = [spec.groups.get(i, ids[i]) if full else ids[i] for i in range(n)]
    waived = np.isin(np.arange(n), spec.waivers) if full else np.zeros(n, dtype=bool)
    formats = draw_formats(rng, n, spec.formats)
    size = spec.size(rng, n) if spec.size else rng.lognormal(0.0, 1.0, n)
    return companies_table(ids, names, groups, spec.covenant, waived, formats), size


def _pick(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices, proportional to weights (at most the number of positive weights)."""
    k = int(min(k, np.count_nonzero(weights)))
    return np.sort(rng.choice(len(weights), size=k, replace=False, p=weights / weights.sum()))


@dataclass
class _Rows:
    """Base rows of one template: company index, dimension codes, and base amounts (one array per column)."""

    company: list[int] = field(default_factory=list)
    codes: dict[str, list] = field(default_factory=dict)
    amounts: dict[str, list] = field(default_factory=dict)

    def add(self, company: int, codes: dict[str, object], amounts: dict[str, float]) -> None:
        self.company.append(company)
        for name, value in codes.items():
            self.codes.setdefault(name, []).append(value)
        for name, value in amounts.items():
            self.amounts.setdefault(name, []).append(value)


def _month(
    rng: np.random.Generator,
    rows: _Rows,
    template: str,
    company_ids: pa.Array,
    period: str,
    present: np.ndarray,
    decimals: dict[str, int] | None = None,
    integers: Sequence[str] = (),
    noise: float = 0.06,
    derive: Callable[[dict[str, np.ndarray]], None] | None = None,
) -> pa.Table:
    """One month of a template: the base amounts times noise, for the companies that report this month."""
    company = np.array(rows.company, dtype=np.int64)
    values: dict[str, np.ndarray] = {}
    for name, base in rows.amounts.items():
        moved = np.asarray(base, dtype=np.float64) * rng.lognormal(0.0, noise, len(company))
        if name in integers:
            values[name] = np.round(moved).astype(np.int64)
        else:
            values[name] = np.round(moved, (decimals or {}).get(name, 0))
    if derive:
        derive(values)
    keep = present[company]
    columns: dict[str, pa.Array] = {"_company": company[keep]}
    for name, codes in rows.codes.items():
        columns[name] = pa.array(np.asarray(codes, dtype=object)[keep].tolist())
    for name, array in values.items():
        columns[name] = pa.array(array[keep])
    return period_table(columns, template, company_ids, period)


def _build(
    spec: CompanySpec,
    n: int,
    n_periods: int,
    seed: int,
    salt: int,
    base_rows: Callable[[np.random.Generator, np.ndarray], dict[str, _Rows]],
    monthly: dict[str, dict],
) -> CovenantData:
    rng = np.random.default_rng(seed + salt)
    companies, size = _companies(rng, spec, n)
    rows = base_rows(rng, size)
    protected = frozenset(spec.groups) | frozenset(spec.waivers) | frozenset(range(min(3, n)))
    late = late_mask(rng, n, n_periods, protected)
    company_ids = companies.column("company_id").combine_chunks()
    periods = month_labels(n_periods)
    tables = {}
    for template, base in rows.items():
        parts = [
            _month(rng, base, template, company_ids, period, ~late[:, p], **monthly.get(template, {}))
            for p, period in enumerate(periods)
        ]
        tables[template] = pa.concat_tables(parts)
    return CovenantData(spec.covenant, periods, companies, tables)


# --- banking ------------------------------------------------------------------------------------------------
_BANK_NAMES = (
    "Amstelkade Bank", "Hanzebank", "Lage Landen Krediet", "Zuidas Kapitaal", "Coöperatieve Polderbank",
    "Westland Bankiers", "Noorderbank", "Van Rijn & Co Bankiers", "Groene Spaarbank",
    "Groene Delta Bank", "Maasland Bank", "Maasland Zakelijk",
)  # fmt: skip
BANKING = CompanySpec(
    "banking", "B", _BANK_NAMES,
    groups={10: "BG1", 11: "BG1"},  # a bank and its corporate-finance subsidiary: one contributor
    waivers=(9,),
    formats={1: "csv_nl", 2: "xlsx", 7: "xlsx"},
    # three large banks hold most of every exposure: 40, 16, 9.6, 6.4, ... bn EUR (a power law)
    size=lambda rng, n: 40.0 * (np.arange(n) + 1.0) ** -1.3 * rng.lognormal(0.0, 0.1, n),
)  # fmt: skip
_BANK_SECTORS = ("A", "B", "C", "D", "F", "H")  # agriculture, mining, manufacturing, energy, construction, transport
_BANK_SECTOR_W = np.array([1.0, 1.2, 0.8, 1.5, 0.5, 0.6])
_BANK_COUNTRIES = ("BR", "CN", "ID", "IN", "US", "DE", "NG", "CO", "ZA", "MY", "TR", "VN")
_BANK_COUNTRY_W = np.array([1.2, 1.0, 1.0, 0.9, 1.4, 1.1, 0.4, 0.4, 0.5, 0.5, 0.4, 0.3])
_ASSET_CLASSES = ("corporate_loans", "project_finance", "trade_finance", "equity_holdings")
_ASSET_W = np.array([1.0, 0.5, 0.4, 0.2])


def _banking_rows(rng: np.random.Generator, size: np.ndarray) -> dict[str, _Rows]:
    exposure, engagement, grievances = _Rows(), _Rows(), _Rows()
    combos = [(s, c, a) for s in range(len(_BANK_SECTORS)) for c in range(len(_BANK_COUNTRIES))
              for a in range(len(_ASSET_CLASSES))]  # fmt: skip
    weights = np.array([_BANK_SECTOR_W[s] * _BANK_COUNTRY_W[c] * _ASSET_W[a] for s, c, a in combos])
    relative = size / size.max()
    for i, s in enumerate(size):
        chosen = _pick(rng, weights, 6 + round(50 * relative[i]))
        split = rng.lognormal(0.0, 1.0, len(chosen))
        for index, share in zip(chosen, split / split.sum(), strict=True):
            sector, country, asset = combos[index]
            codes = {"sector": _BANK_SECTORS[sector], "country": _BANK_COUNTRIES[country],
                     "asset_class": _ASSET_CLASSES[asset]}  # fmt: skip
            exposure.add(i, codes, {"exposure_eur_million": s * 1e3 * share})
        for t, theme in enumerate(HR_THEMES):
            if rng.random() < 0.35 + 0.6 * relative[i]:
                cases = rng.poisson(1.0 + 25.0 * relative[i] * OUTCOME_WEIGHT)
                for outcome, count in zip(OUTCOMES, cases, strict=True):
                    engagement.add(i, {"theme": theme, "outcome": outcome}, {"cases": float(count)})
            if rng.random() < 0.3 + 0.6 * relative[i]:
                received = 1.0 + rng.poisson(2.0 + 20.0 * relative[i] * (1.5 if t < 2 else 1.0))
                resolved = received * rng.uniform(0.3, 0.9)
                grievances.add(i, {"theme": theme}, {"grievances_received": received, "grievances_resolved": resolved})
    return {"exposure": exposure, "engagement": engagement, "grievances": grievances}


def _resolved_within_received(values: dict[str, np.ndarray]) -> None:
    values["grievances_resolved"] = np.minimum(values["grievances_resolved"], values["grievances_received"])


def generate_banking(n: int, n_periods: int, seed: int) -> CovenantData:
    return _build(BANKING, n, n_periods, seed, 11, _banking_rows, {
        "exposure": {"decimals": {"exposure_eur_million": 1}},
        "engagement": {"integers": ("cases",), "noise": 0.0},
        "grievances": {"integers": ("grievances_received", "grievances_resolved"),
                       "noise": 0.0, "derive": _resolved_within_received},
    })  # fmt: skip


# --- insurance ----------------------------------------------------------------------------------------------
_INSURER_NAMES = (
    "Hollandse Brand & Leven", "Hollandse Levensverzekering", "Noordster Verzekeringen",
    "Polder Schade", "Zeeuwse Onderlinge", "Vereniging Onderlinge Brabant", "Gelre Pensioen & Leven",
    "Rijnmond Assurantiën", "Stadhouder Verzekeringen", "Veluwse Onderlinge", "Waddenzee Leven",
    "Kennemer Verzekeringen", "Oranje Leven", "Twentse Verzekeraars", "Zuiderzee Herverzekering",
)  # fmt: skip
INSURANCE = CompanySpec(
    "insurance", "I", _INSURER_NAMES,
    groups={12: "IG1", 13: "IG1"},
    waivers=(),
    formats={1: "csv_nl", 3: "xlsx", 5: "csv"},
    size=lambda rng, n: np.sort(rng.lognormal(0.0, 1.1, n))[::-1],
)  # fmt: skip
_INS_SECTORS = ("A", "B", "C", "D", "G", "H", "J", "K", "L")
_INS_SECTOR_W = np.array([0.2, 0.5, 1.5, 0.8, 0.8, 0.5, 1.2, 1.5, 0.7])
_INS_COUNTRIES = ("US", "DE", "FR", "GB", "NL", "JP", "CH", "CN", "IN", "BR", "CA", "AU")
_INS_COUNTRY_W = np.array([3.0, 1.5, 1.4, 1.3, 1.2, 1.0, 0.8, 0.7, 0.4, 0.3, 0.5, 0.4])
_CRITERIA = ("controversial_weapons", "thermal_coal", "tar_sands", "tobacco", "ungc_violations",
             "human_rights_violations")  # fmt: skip
_CRITERION_P = np.array([1.0, 0.8, 0.55, 0.65, 0.75, 0.5])
_CRITERION_COMPANIES = np.array([40.0, 120.0, 15.0, 25.0, 30.0, 20.0])


def _insurance_rows(rng: np.random.Generator, size: np.ndarray) -> dict[str, _Rows]:
    investments, exclusions, engagement = _Rows(), _Rows(), _Rows()
    combos = [(s, c) for s in range(len(_INS_SECTORS)) for c in range(len(_INS_COUNTRIES))]
    weights = np.array([_INS_SECTOR_W[s] * _INS_COUNTRY_W[c] for s, c in combos])
    relative = size / size.max()
    for i, s in enumerate(size):
        chosen = _pick(rng, weights, 15 + round(50 * relative[i]))
        split = rng.lognormal(0.0, 0.8, len(chosen)) * weights[chosen]
        for index, share in zip(chosen, split / split.sum(), strict=True):
            sector, country = combos[index]
            investments.add(i, {"sector": _INS_SECTORS[sector], "country": _INS_COUNTRIES[country]},
                            {"investment_eur_million": s * 4e3 * share})  # fmt: skip
        applied = rng.random(len(_CRITERIA)) < _CRITERION_P
        for c, criterion in enumerate(_CRITERIA):
            excluded = rng.poisson(_CRITERION_COMPANIES[c] * (0.5 + relative[i])) if applied[c] else 0
            exclusions.add(i, {"criterion": criterion, "applied": bool(applied[c])},
                           {"companies_excluded": float(excluded)})  # fmt: skip
        for theme in HR_THEMES:
            if rng.random() < 0.4 + 0.5 * relative[i]:
                counts = rng.poisson(0.5 + 12.0 * relative[i] * OUTCOME_WEIGHT)
                for outcome, count in zip(OUTCOMES, counts, strict=True):
                    engagement.add(i, {"theme": theme, "outcome": outcome}, {"investee_companies": float(count)})
    return {"investments": investments, "exclusions": exclusions, "investee_engagement": engagement}


def generate_insurance(n: int, n_periods: int, seed: int) -> CovenantData:
    return _build(INSURANCE, n, n_periods, seed, 12, _insurance_rows, {
        "investments": {"decimals": {"investment_eur_million": 1}, "noise": 0.03},
        "exclusions": {"integers": ("companies_excluded",), "noise": 0.0},
        "investee_engagement": {"integers": ("investee_companies",), "noise": 0.0},
    })  # fmt: skip


# --- food products ------------------------------------------------------------------------------------------
_FOOD_NAMES = (
    "Zaanse Cacao", "Hollandse Koffiebranderij", "Van der Thee", "Specerijenhuis De Peperbus",
    "Noordzee Voeding", "Brabantse Zuivel & Zoet", "Delfts Blauw Food", "Friese Koekfabriek",
    "Limburgse Vlaai Compagnie", "Oranje Snacks", "Polder Oils", "Rijnland Soja", "Suikerraffinaderij Noord",
    "Twentse Notenbar", "Utrechtse Bakkerij", "Veluwe Ontbijt", "Westland Sauzen", "Zeeuwse Mosselen & Co",
    "Amsterdamse Chocolade", "Groningse Koek",
)  # fmt: skip
FOOD = CompanySpec(
    "food", "F", _FOOD_NAMES,
    groups={18: "FG1", 19: "FG1"},
    waivers=(0,),
    formats={1: "csv_nl", 2: "xlsx", 4: "csv", 5: "csv"},
    size=lambda rng, n: rng.lognormal(0.0, 0.6, n),
)  # fmt: skip
# commodity: (countries of origin, certifications used, tonnes per month for a company of size 1)
FOOD_COMMODITIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], float]] = {
    "cocoa": (("CI", "GH", "EC", "NG", "CM"), ("rainforest_alliance", "fairtrade", "organic", "none"), 900.0),
    "coffee": (("BR", "VN", "CO", "ET", "HN"), ("rainforest_alliance", "fairtrade", "organic", "none"), 400.0),
    "tea": (("IN", "KE", "LK", "CN"), ("rainforest_alliance", "fairtrade", "none"), 60.0),
    "palm_oil": (("ID", "MY", "CO", "PG"), ("rspo", "none"), 1500.0),
    "soy": (("BR", "US", "AR", "PY"), ("rtrs", "organic", "none"), 2500.0),
    "cane_sugar": (("BR", "IN", "TH"), ("fairtrade", "none"), 1200.0),
    "hazelnuts": (("TR", "IT", "GE"), ("rainforest_alliance", "none"), 150.0),
    "spices": (("IN", "VN", "ID", "MG"), ("fairtrade", "organic", "none"), 25.0),
}
FOOD_THEMES = ("child_labour", "forced_labour", "living_income", "land_rights", "deforestation", "health_safety")
# P(risk identified) per commodity (rows as FOOD_COMMODITIES) and theme (columns as FOOD_THEMES)
_FOOD_RISK_P = np.array([
    [0.95, 0.6, 0.9, 0.4, 0.8, 0.5],   # cocoa
    [0.5, 0.4, 0.8, 0.4, 0.6, 0.5],    # coffee
    [0.4, 0.4, 0.8, 0.5, 0.3, 0.5],    # tea
    [0.5, 0.7, 0.5, 0.9, 0.95, 0.5],   # palm oil
    [0.2, 0.3, 0.3, 0.8, 0.9, 0.4],    # soy
    [0.4, 0.5, 0.6, 0.5, 0.3, 0.7],    # cane sugar
    [0.8, 0.5, 0.5, 0.2, 0.1, 0.6],    # hazelnuts
    [0.6, 0.4, 0.7, 0.3, 0.2, 0.4],    # spices
])  # fmt: skip


def _food_rows(rng: np.random.Generator, size: np.ndarray) -> dict[str, _Rows]:
    sourcing, risks = _Rows(), _Rows()
    names = list(FOOD_COMMODITIES)
    popularity = np.array([1.5, 1.5, 0.8, 1.6, 1.0, 1.2, 0.6, 0.9])
    for i, s in enumerate(size):
        for k in _pick(rng, popularity, 2 + min(4, int(rng.poisson(1.0 + s)))):
            commodity = names[k]
            countries, certifications, tonnes = FOOD_COMMODITIES[commodity]
            origins = np.asarray(countries)[_pick(rng, np.ones(len(countries)), 1 + rng.integers(0, 3))]
            for country in origins:
                certified = _pick(rng, np.ones(len(certifications)), 1 + rng.integers(0, 2))
                for cert in np.asarray(certifications)[certified]:
                    amount = tonnes * s * rng.lognormal(0.0, 0.4)
                    sourcing.add(i, {"commodity": commodity, "country": str(country), "certification": str(cert)},
                                 {"volume_t": amount})  # fmt: skip
            identified = rng.random(len(FOOD_THEMES)) < _FOOD_RISK_P[k]
            prioritised = identified & (rng.random(len(FOOD_THEMES)) < 0.55)
            for t, theme in enumerate(FOOD_THEMES):
                risks.add(i, {"commodity": commodity, "theme": theme, "risk_identified": bool(identified[t]),
                              "risk_prioritised": bool(prioritised[t])}, {})  # fmt: skip
    return {"sourcing": sourcing, "commodity_risks": risks}


def generate_food(n: int, n_periods: int, seed: int) -> CovenantData:
    return _build(FOOD, n, n_periods, seed, 13, _food_rows, {"sourcing": {"decimals": {"volume_t": 1}}})


# --- forestry -----------------------------------------------------------------------------------------------
_FOREST_NAMES = (
    "Houthandel Van den Berg", "Eikenhout Import", "Noordhout", "Polderhout", "Zaanse Houtvesterij",
    "Rotterdam Timber", "Brabants Hout & Plaat", "Deltahout", "Gelderse Houtcentrale", "IJsselhout",
    "Kennemer Timmerhout", "Lindehout", "Meranti Import", "Veluwe Bouwhout", "Waalhaven Timber",
)  # fmt: skip
FORESTRY = CompanySpec(
    "forestry", "W", _FOREST_NAMES,
    groups={13: "WG1", 14: "WG1"},
    waivers=(),
    formats={1: "csv_nl", 2: "xlsx", 4: "csv", 5: "csv"},
    size=lambda rng, n: rng.lognormal(0.0, 0.6, n),
)  # fmt: skip
# species group: countries of harvest with P(fsc), P(pefc) (the rest uncertified) and P(risk mitigated)
FOREST_ORIGINS: dict[str, tuple[tuple[str, float, float, float], ...]] = {
    "tropical_hardwood": (("BR", 0.45, 0.0, 0.6), ("GA", 0.6, 0.05, 0.5), ("CM", 0.3, 0.0, 0.7),
                          ("CG", 0.5, 0.0, 0.6), ("MY", 0.2, 0.5, 0.5), ("ID", 0.35, 0.1, 0.6)),
    "temperate_hardwood": (("DE", 0.3, 0.6, 0.05), ("FR", 0.2, 0.7, 0.05), ("US", 0.3, 0.2, 0.1),
                           ("HR", 0.8, 0.1, 0.2), ("PL", 0.7, 0.2, 0.1)),
    "softwood": (("SE", 0.6, 0.35, 0.02), ("FI", 0.2, 0.75, 0.02), ("DE", 0.3, 0.6, 0.02),
                 ("LV", 0.5, 0.3, 0.1), ("EE", 0.5, 0.3, 0.1), ("CA", 0.4, 0.4, 0.05)),
}  # fmt: skip
_M3_PER_MONTH = {"tropical_hardwood": 600.0, "temperate_hardwood": 900.0, "softwood": 4000.0}


def _forestry_rows(rng: np.random.Generator, size: np.ndarray) -> dict[str, _Rows]:
    timber = _Rows()
    groups = list(FOREST_ORIGINS)
    for i, s in enumerate(size):
        for g in _pick(rng, np.array([1.0, 0.8, 1.4]), 2 + rng.integers(0, 2)):
            group = groups[g]
            origins = FOREST_ORIGINS[group]
            for o in _pick(rng, np.ones(len(origins)), 2 + rng.integers(0, 3)):
                country, p_fsc, p_pefc, p_mitigated = origins[o]
                total = _M3_PER_MONTH[group] * s * rng.lognormal(0.0, 0.4)
                for cert, p_cert in (("fsc", p_fsc), ("pefc", p_pefc), ("none", 1 - p_fsc - p_pefc)):
                    if p_cert <= 0 or rng.random() > 0.3 + p_cert:
                        continue
                    mitigated = p_mitigated * (2.0 if cert == "none" else 0.5)
                    outcome = "risk_mitigated" if rng.random() < mitigated else "negligible_risk"
                    timber.add(i, {"species_group": group, "country": country, "certification": cert,
                                   "due_diligence_outcome": outcome}, {"volume_m3": total * p_cert})  # fmt: skip
                    if cert == "none" and group == "tropical_hardwood" and rng.random() < 0.4:
                        timber.add(i, {"species_group": group, "country": country, "certification": cert,
                                       "due_diligence_outcome": "rejected"}, {"volume_m3": total * 0.2})  # fmt: skip
    return {"timber": timber}


def generate_forestry(n: int, n_periods: int, seed: int) -> CovenantData:
    return _build(FORESTRY, n, n_periods, seed, 14, _forestry_rows, {"timber": {"decimals": {"volume_m3": 1}}})


SPECS = {spec.covenant: spec for spec in (BANKING, INSURANCE, FOOD, FORESTRY)}
GENERATORS = {"banking": generate_banking, "insurance": generate_insurance, "food": generate_food,
              "forestry": generate_forestry}  # fmt: skip
SAMPLE_SIZES = {"banking": 12, "insurance": 15, "food": 20, "forestry": 15}
