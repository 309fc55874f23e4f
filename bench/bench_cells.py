"""Cell statistics benchmark: `.venv/bin/python -m bench.bench_cells --rows 10000000`.

A 3-dimensional hierarchical table: country (UN M49: country -> sub-region -> region -> world, 249 codes)
x product (25 codes in 5 groups) x channel (8 flat codes) = 49,800 inner cells, filled with synthetic
contribution rows generated with numpy. Each inner cell draws its rows from `--per-cell` of the
`--contributors` companies (groups of up to two companies), so cells have realistic contributor counts.

Reported, best of `--repeat` runs in the same process and database:
- plain: `SELECT country, product, channel, sum(value), count(*) ... GROUP BY ALL` (inner cells only)
- inner: one pass over the rows: summed per contributor per inner cell (a temporary table)
- margins and statistics: per-contributor sums at every margin (a lattice of GROUP BYs) and per cell
  X, N, n_all, top-K, waived total, largest contributor
- build_table_cells: the whole call (both queries + display frame, keys and relations in pandas)
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from aggregator.aggregation.cells import build_table_cells
from aggregator.aggregation.query import registered
from aggregator.protocol import load_protocol
from aggregator.validation.reference import m49

PRODUCTS = [f"p{g}{k}" for g in range(5) for k in range(5)]
CHANNELS = [f"ch{k}" for k in range(8)]


def write_config(folder: Path) -> Path:
    """A one-template rules folder and a protocol with one table over it."""
    rules = folder / "rules" / "bench"
    rules.mkdir(parents=True)
    columns = [("country", "country", ""), ("product", "enum", PRODUCTS), ("channel", "enum", CHANNELS)]
    text = ""
    for name, kind, allowed in columns:
        text += f'[[columns]]\nname = "{name}"\ntype = "{kind}"\nrequired = true\nsensitivity = "A"\n'
        text += f"allowed = {list(allowed)}\n\n".replace("'", '"') if allowed else "\n"
    text += '[[columns]]\nname = "value"\ntype = "number"\nrequired = true\nsensitivity = "B"\n'
    (rules / "contributions.toml").write_text(text)
    parents = "\n".join(f'{p} = "g{p[1]}"' for p in PRODUCTS)
    protocol = folder / "bench.toml"
    protocol.write_text(
        textwrap.dedent(
            """\
            [covenant]
            id = "bench"
            name = { en = "Benchmark", nl = "Benchmark" }
            version = "1"
            templates = ["contributions"]

            [[tables]]
            id = "cells"
            title = { en = "Cells", nl = "Cellen" }
            unit = { en = "units", nl = "eenheden" }
            template = "contributions"
            dimensions = [{ column = "country", hierarchy = "m49" },
                          { column = "product", hierarchy = "groups" }, { column = "channel" }]
            measure = { kind = "sum", column = "value" }

            [[audiences]]
            id = "committee"
            name = { en = "Committee", nl = "Commissie" }
            tables = ["cells"]
            frequency = "monthly"
            """
        )
        + f"\n[hierarchies.groups.parent]\n{parents}\n"
    )
    return protocol


def load_rows(con: duckdb.DuckDBPyConnection, rows: int, contributors: int, per_cell: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    countries = sorted(m49()["alpha2"])
    n_cells = len(countries) * len(PRODUCTS) * len(CHANNELS)
    cell = rng.integers(0, n_cells, rows, dtype=np.int64)
    # each cell has its own small set of candidate contributors: a stride walk through all companies
    stride = 1 + (cell * 7919) % (contributors - 1)
    company = (cell * 104729 + rng.integers(0, per_cell, rows) * stride) % contributors
    frame = pd.DataFrame(
        {
            "cell": cell,
            "company": company,
            "value": np.round(rng.lognormal(3.0, 1.0, rows), 1),
        }
    )
    con.register("generated", frame)
    con.execute(
        """CREATE TABLE rows_bench_contributions AS
           SELECT 's' || company AS submission_id, 'C' || company AS company_id, '2026-06' AS period,
                  row_number() OVER () AS source_row,
                  ($1::VARCHAR[])[1 + cell // ($2 * $3)] AS country,
                  ($4::VARCHAR[])[1 + (cell // $3) % $2] AS product,
                  ($5::VARCHAR[])[1 + cell % $3] AS channel,
                  value
           FROM generated""",
        [countries, len(PRODUCTS), len(CHANNELS), PRODUCTS, CHANNELS],
    )
    con.unregister("generated")
    con.execute(
        """CREATE TABLE companies AS SELECT 'C' || i AS company_id, 'G' || (i // 2) AS group_id
           FROM range(?) t(i)""",
        [contributors],
    )
    con.execute(
        "CREATE TABLE submissions AS SELECT 's' || i AS submission_id, 'accepted' AS state FROM range(?) t(i)",
        [contributors],
    )


def best_of(repeat: int, run) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--contributors", type=int, default=200, help="companies (two per group)")
    parser.add_argument("--per-cell", type=int, default=12, help="candidate companies per inner cell")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        protocol = load_protocol(write_config(Path(tmp)), rules_dir=Path(tmp) / "rules")
        con = duckdb.connect()
        start = time.perf_counter()
        load_rows(con, args.rows, args.contributors, args.per_cell, args.seed)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - start:.1f} s")
        params = protocol.rule_params("cells", "committee")

        plain_sql = """SELECT country, product, channel, sum(value) AS value, count(*) AS n
                       FROM rows_bench_contributions GROUP BY ALL"""
        plain, inner = best_of(args.repeat, lambda: con.execute(plain_sql).df())
        print(f"plain GROUP BY: {len(inner):,} inner cells in {plain:.3f} s")

        full, component = best_of(args.repeat, lambda: build_table_cells(con, protocol, "cells", "2026-06", params)[0])
        query, dims = component.query, component.dimensions

        def inner_step():
            with query.inner_cells(con) as inner:
                return con.execute(f"SELECT count(*) FROM {inner}").fetchone()[0]

        inner_time, pairs = best_of(args.repeat, inner_step)
        with query.inner_cells(con) as inner, registered(con, dims) as names:
            sql = query.stats_sql(inner, dims, names)
            margins_time, _ = best_of(args.repeat, lambda: con.execute(sql).df())
        inner_mask = (component.frame.filter(like="_depth") > 0).all(axis=1).to_numpy()
        print(f"per-contributor inner cells: {pairs:,} (contributor, cell) records in {inner_time:.3f} s")
        print(f"margins and statistics from them: {len(component):,} cells in {margins_time:.3f} s")
        print(f"build_table_cells (all of it, plus frame, keys, relations): {full:.3f} s")
        sql_time = inner_time + margins_time
        print(f"ratio to plain: SQL {sql_time / plain:.2f}x; whole call {full / plain:.2f}x")
        print(
            f"contributors per inner cell: median {np.median(component.stats.n_all[inner_mask]):.0f}; "
            f"relations: {len(component.relations):,}"
        )


if __name__ == "__main__":
    main()
