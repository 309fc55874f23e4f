"""Secondary suppression benchmark: `.venv/bin/python -m bench.bench_suppression [--max-cells N] [--cap S]`.

A family of 2-D and 3-D tables with hierarchies (~100 to ~100,000 cells) filled with random contributors;
primary cells by the threshold rule (fewer than 3 contributors). For each table and method: time (protect
includes our own outsider + insider check), suppressed cells, suppressed value, cost, and the gap to the
LP-relaxation lower bound.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from aggregator.disclosure.suppression import check_pattern, lp_lower_bound, protect
from bench.problems import table_problem


def random_contributions(shape: tuple[int, ...], n_contributors: int, mean: float, seed: int) -> dict:
    """Each inner cell gets Poisson(mean) distinct contributors, each with an amount of 10-30."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    counts = np.minimum(rng.poisson(mean, size), n_contributors)
    arrays = {f"c{k:04d}": np.zeros(size) for k in range(n_contributors)}
    names = sorted(arrays)
    for cell in np.flatnonzero(counts):
        for who in rng.choice(n_contributors, counts[cell], replace=False):
            arrays[names[who]][cell] = float(rng.integers(10, 31))
    return {k: a.reshape(shape) for k, a in arrays.items() if a.any()}


def grouped(n: int, groups: int) -> dict:
    """A two-level hierarchy: leaves -> `groups` regions -> total T."""
    regions = {f"R{g}": [k for k in range(n) if k % groups == g] for g in range(groups)}
    return {**regions, "T": list(regions)}


TABLES = [
    # name, shape, hierarchies (None = flat total), contributors, mean contributors per inner cell
    ("2d-10x8", (10, 8), (None, None), 12, 4.0),
    ("2d-20x15h", (20, 15), ("h3", None), 25, 4.0),
    ("2d-40x30h", (40, 30), ("h4", "h3"), 40, 5.0),
    ("3d-12x10x8h", (12, 10, 8), ("h3", None, "h2"), 40, 4.0),
    ("3d-40x25x50h", (40, 25, 50), ("h5", None, "h5"), 150, 8.0),
    ("3d-50x30x60h", (50, 30, 60), ("h5", "h3", "h6"), 200, 8.0),
]


def build(shape, hier, n_contrib, mean, seed=1, cost="value"):
    hierarchies = [None if h is None else grouped(n, int(h[1:])) for n, h in zip(shape, hier, strict=True)]
    contributions = random_contributions(shape, n_contrib, mean, seed)
    return table_problem(contributions=contributions, hierarchies=hierarchies, cost=cost)


def run(max_cells: int, cap: float, optimal_max: int) -> list[dict]:
    rows = []
    for name, shape, hier, n_contrib, mean in TABLES:
        problem = build(shape, hier, n_contrib, mean)
        if problem.size > max_cells:
            continue
        bound = lp_lower_bound(problem, time_limit=cap) if problem.size <= optimal_max else math.nan
        for method in ("fast", "optimal"):
            if method == "optimal" and problem.size > optimal_max:
                continue
            t0 = time.monotonic()
            res = protect(problem, method, time_limit=cap)
            seconds = time.monotonic() - t0
            failures = check_pattern(problem, res.suppressed)
            best_bound = max(bound, res.lower_bound) if not math.isnan(res.lower_bound) else bound
            rows.append(
                dict(
                    table=name,
                    cells=problem.size,
                    inner=int(np.prod(shape)),
                    primary=int(problem.primary.sum()),
                    method=res.method,
                    requested=method,
                    seconds=seconds,
                    secondary=res.n_secondary,
                    suppressed_value=float(problem.values[res.suppressed].sum()),
                    cost=res.cost,
                    bound=best_bound,
                    gap=(res.cost - best_bound) / best_bound if best_bound and best_bound > 0 else math.nan,
                    optimal=res.optimal,
                    failures=len(failures),
                )
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--max-cells", type=int, default=120_000)
    ap.add_argument("--cap", type=float, default=120.0, help="time limit per protect call (s)")
    ap.add_argument("--optimal-max", type=int, default=2_500, help="largest table given to 'optimal'")
    args = ap.parse_args()
    header = "table cells inner primary method seconds secondary supp_value cost lp_bound gap% optimal fails"
    print(header)
    for r in run(args.max_cells, args.cap, args.optimal_max):
        method = r["method"] if r["method"] == r["requested"] else f"{r['requested']}->{r['method']}"
        print(
            f"{r['table']} {r['cells']} {r['inner']} {r['primary']} {method} {r['seconds']:.2f} "
            f"{r['secondary']} {r['suppressed_value']:.0f} {r['cost']:.0f} {r['bound']:.1f} "
            f"{100 * r['gap']:.2f} {r['optimal']} {r['failures']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
