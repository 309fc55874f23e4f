"""Seeded tables shaped like sector-wide company data (issue 18): `.venv/bin/python -m bench.realistic [--only NAME]`.

Three dimensions, the first with a country -> region -> world hierarchy, the others with a total; companies in
holdings (about 85% of holdings a single company; the contributor is the holding); lognormal company sizes
times lognormal noise per record; 3 to 30 companies per inner cell; all three rules of the issue at once
(at least 5 holdings, (2,85)-dominance, p% with p = 10), evaluated by the engine's own `evaluate_primary`.
Cost is the cell value (as in bench_suppression). Everything follows from the seed.

Run as a module it prints, per instance, its size and the time of protect (fast) and of the final audit
(outsider and every insider), with the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import time

import numpy as np

from aggregator.cellkey import CellKey, Coordinate, Quantity
from aggregator.disclosure.contributions import Contributions
from aggregator.disclosure.model import CellStats, ProtectionProblem, RuleParams
from aggregator.disclosure.rules import evaluate_primary
from bench.problems import _aggregate, _axis, _table_relations

RULES = RuleParams(min_contributors=5, safety_range_percent=10.0, dominance=((2, 85.0),), p_percent=(10.0, 1))

SIZE_SIGMA = 2.2  # spread of company sizes (lognormal)
NOISE_SIGMA = 1.0  # spread of one company's figures across cells

# name, (countries, regions), inner sizes of the two flat dimensions, companies, seed
INSTANCES = [
    ("real-1.6k", (20, 4), (8, 6), 500, 18),
    ("real-13k", (40, 6), (15, 16), 2_000, 18),
    ("real-62k", (80, 8), (25, 26), 5_000, 18),
]


def holdings(n_companies: int, rng: np.random.Generator) -> np.ndarray:
    """Holding index per company: about 85% of holdings own one company, the rest 2 or 3."""
    owner = np.empty(n_companies, dtype=np.int64)
    h = c = 0
    while c < n_companies:
        size = 1 if rng.random() < 0.85 else int(rng.integers(2, 4))
        owner[c : c + size] = h
        c += size
        h += 1
    return owner


def realistic_problem(
    countries: int, regions: int, flat: tuple[int, int], n_companies: int, seed: int
) -> ProtectionProblem:
    rng = np.random.default_rng(seed)
    region_of = np.arange(countries) % regions
    hier = {f"R{g}": [k for k in range(countries) if region_of[k] == g] for g in range(regions)}
    hier["W"] = list(hier)
    axes = [_axis(countries, hier, "country"), _axis(flat[0], None, "theme"), _axis(flat[1], None, "kind")]
    inner_shape = (countries, *flat)
    n_inner = int(np.prod(inner_shape))
    owner = holdings(n_companies, rng)
    size = rng.lognormal(0.0, SIZE_SIGMA, n_companies)  # company size
    popularity = rng.lognormal(0.0, 1.0, n_companies)  # how widely a company reports
    p = popularity / popularity.sum()
    per_cell = np.floor(np.exp(rng.uniform(np.log(3), np.log(31), n_inner))).astype(np.int64)  # 3..30, log-uniform
    rec_inner, rec_company = [], []
    for j in range(n_inner):
        who = np.unique(rng.choice(n_companies, per_cell[j], replace=False, p=p))
        rec_inner.append(np.full(len(who), j))
        rec_company.append(who)
    inner_idx = np.concatenate(rec_inner)
    company = np.concatenate(rec_company)
    value = np.round(size[company] * rng.lognormal(0.0, NOISE_SIGMA, len(company)) * 100.0, 2)
    holding = owner[company]
    # every cell that adds up each inner cell: the product of each axis' codes that contain the leaf
    grid_shape = tuple(len(ax.codes) for ax in axes)
    leaf_coords = np.unravel_index(inner_idx, inner_shape)
    ancestors = [[np.flatnonzero(ax.leaves[:, leaf]) for leaf in range(ax.leaves.shape[1])] for ax in axes]
    cells_of_leaf = _cells_containing(ancestors, inner_shape, grid_shape)  # (n_inner, k) cell indices
    cells = cells_of_leaf[inner_idx].ravel()
    k = cells_of_leaf.shape[1]
    hold_rep = np.repeat(holding, k)
    val_rep = np.repeat(value, k)
    del leaf_coords
    # sum per (holding, cell)
    key = hold_rep * (int(np.prod(grid_shape)) + 1) + cells
    uniq, inverse = np.unique(key, return_inverse=True)
    own = np.bincount(inverse, weights=val_rep)
    own_holding = uniq // (int(np.prod(grid_shape)) + 1)
    own_cell = uniq % (int(np.prod(grid_shape)) + 1)
    n_cells = int(np.prod(grid_shape))
    inner_values = np.bincount(inner_idx, weights=value, minlength=n_inner).reshape(inner_shape)
    total = _aggregate(inner_values, axes).ravel()
    stats = _cell_stats(total, own_cell, own, n_cells, RULES.top_k)
    primary = evaluate_primary(stats, RULES)
    quantity = Quantity("volume", "value")
    dims = ("country", "theme", "kind")
    keys = [
        CellKey(quantity, [Coordinate(d, ax.codes[i]) for d, ax, i in zip(dims, axes, idx, strict=True)])
        for idx in np.ndindex(grid_shape)
    ]
    names = np.array([f"h{h:05d}" for h in range(int(owner.max()) + 1)], dtype=object)
    insiders = Contributions(names, own_holding.astype(np.int64), own_cell.astype(np.int64), own)
    upper = np.full(n_cells, 1.5 * float(total.max()))
    return ProtectionProblem(
        keys=keys,
        values=total,
        relations=_table_relations(axes, grid_shape),
        lower=np.zeros(n_cells),
        upper=upper,
        upl=primary.upl,
        lpl=np.minimum(primary.lpl, total),
        primary=primary.unsafe,
        cost=np.abs(total),
        fixed=np.zeros(n_cells, dtype=bool),
        insiders=insiders,
    )


def _cells_containing(ancestors, inner_shape, grid_shape) -> np.ndarray:
    """For every inner cell (flat index), the flat indices of every table cell that contains it."""
    per_leaf = []
    for idx in np.ndindex(inner_shape):
        codes = np.meshgrid(*(ancestors[d][i] for d, i in enumerate(idx)), indexing="ij")
        per_leaf.append(np.ravel_multi_index(tuple(c.ravel() for c in codes), grid_shape))
    return np.array(per_leaf, dtype=np.int64)


def _cell_stats(total, own_cell, own, n_cells, k) -> CellStats:
    order = np.lexsort((-own, own_cell))
    cell_sorted, val_sorted = own_cell[order], own[order]
    counts = np.bincount(own_cell, minlength=n_cells)
    start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(order)) - start[cell_sorted]
    top = np.zeros((n_cells, k))
    keep = rank < k
    top[cell_sorted[keep], rank[keep]] = val_sorted[keep]
    return CellStats(
        total=total,
        n=counts,
        top=top,
        waived=np.zeros(n_cells),
        n_all=counts,
        has_negative=np.zeros(n_cells, dtype=bool),
    )


def build(name: str) -> ProtectionProblem:
    for n, (countries, regions), flat, companies, seed in INSTANCES:
        if n == name:
            return realistic_problem(countries, regions, flat, companies, seed)
    raise KeyError(name)


def greedy_pattern(problem: ProtectionProblem) -> np.ndarray:
    """The pattern fast starts from (primary cells and the greedy closure, before any repair): many failures,
    many insiders at work, for audit benchmarks and tests."""
    from aggregator.disclosure.suppression.fast import _close_pattern, _Pattern
    from aggregator.disclosure.suppression.structure import build_structure

    pattern = _Pattern(build_structure(problem), problem.primary.astype(bool))
    _close_pattern(pattern, list(np.flatnonzero(pattern.hidden)))
    return pattern.hidden


def contributor_sweep(companies=(250, 500, 1000, 2000), seed: int = 18) -> list[tuple[int, int, float, float]]:
    """Audit cost against the number of contributors at a fixed table (real-1.6k's shape): for each company
    count, the full audit (outsider and every insider) of the greedy pattern fast starts from, in CPU seconds.
    Returns (companies, holdings, cpu seconds, LPs) per count and prints the log-log slope."""
    from aggregator.disclosure.audit import audit

    out = []
    for n in companies:
        problem = realistic_problem(20, 4, (8, 6), n, seed)
        hidden = greedy_pattern(problem)
        c0 = time.process_time()
        result = audit(problem, hidden)
        cpu = time.process_time() - c0
        out.append((n, len(problem.insiders.names), cpu, result.lp_solves))
        print(f"  {n} companies, {out[-1][1]} holdings: audit {cpu:.1f} s CPU, {result.lp_solves} LPs", flush=True)
    x, y = np.log([o[1] for o in out]), np.log([o[2] for o in out])
    print(f"  slope of audit CPU against holdings (log-log): {np.polyfit(x, y, 1)[0]:.2f}", flush=True)
    return out


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from aggregator.disclosure.audit import audit
    from aggregator.disclosure.suppression import protect

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", help="instance name(s)")
    ap.add_argument("--method", default="fast")
    ap.add_argument("--no-protect", action="store_true", help="only build and describe the instances")
    ap.add_argument("--sweep", action="store_true", help="audit cost against the number of contributors")
    args = ap.parse_args()
    if args.sweep:
        contributor_sweep()
        return
    for name, *_ in INSTANCES:
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        problem = build(name)
        built = time.monotonic() - t0
        n_contrib = len(problem.insiders.names)
        print(
            f"{name}: {problem.size} cells, {int(problem.primary.sum())} primary "
            f"({100 * problem.primary.mean():.0f}%), {n_contrib} holdings, {len(problem.insiders)} records, "
            f"built in {built:.1f} s",
            flush=True,
        )
        if args.no_protect:
            continue
        t0, c0 = time.monotonic(), time.process_time()
        res = protect(problem, args.method)
        t_protect, c_protect = time.monotonic() - t0, time.process_time() - c0
        t0, c0 = time.monotonic(), time.process_time()
        verdict = audit(problem, res.suppressed)
        t_audit, c_audit = time.monotonic() - t0, time.process_time() - c0
        digest = hashlib.sha256(np.packbits(res.suppressed).tobytes()).hexdigest()[:12]
        print(
            f"  protect {args.method}: {t_protect:.1f} s wall, {c_protect:.1f} s CPU; {res.n_secondary} secondary, "
            f"cost {res.cost:.0f}, method {res.method}, pattern {digest}; final audit {t_audit:.1f} s wall, "
            f"{c_audit:.1f} s CPU ({verdict.lp_solves} LPs, {verdict.insiders_checked} insiders, "
            f"passed {verdict.passed}); peak {_peak_mb():.0f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
