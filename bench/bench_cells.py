"""Cell statistics benchmark: `.venv/bin/python -m bench.bench_cells --rows 10000000`.

A 3-dimensional hierarchical table: country (UN M49: country -> sub-region -> region -> world, 249 codes)
x product (25 codes in 5 groups) x channel (8 flat codes) = 49,800 inner cells, filled with synthetic
contribution rows generated with numpy. Each inner cell draws its rows from `--per-cell` of the
`--contributors` companies (groups of up to two companies), so cells have realistic contributor counts.

Reported, best of `--repeat` runs in the same process and database, as wall-clock time and as CPU time of
the process (all DuckDB threads; on a shared machine the CPU ratio is the steadier one):
- plain: `SELECT country, product, channel, sum(value), count(*) ... GROUP BY ALL` (inner cells only)
- inner: one pass over the rows: summed per submission, company and cell, then joined to the accepted
  submissions and the contributors and summed per contributor per inner cell (a temporary table); values
  in exact integer micro-units while the data's absolute total stays below 2**52 of them (this data), else
  in DECIMAL(38, 6)
- margins and statistics: per-contributor sums at every margin (a lattice of GROUP BYs over one node id
  per dimension) and per cell X, N, n_all, top-K, waived total, largest contributor
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
from aggregator.store import row_source
from imvo_submit.validation.reference import m49

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


def best_of(repeat: int, run) -> tuple[tuple[float, float], object]:
    """(best wall-clock seconds, best CPU seconds of the process) over `repeat` runs, and the last result."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return (wall, cpu), result


def seconds(timing: tuple[float, float]) -> str:
    return f"{timing[0]:.3f} s (CPU {timing[1]:.3f} s)"


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
        print(f"plain GROUP BY: {len(inner):,} inner cells in {seconds(plain)}")
        # What every per-contributor rule needs at least (N, dominance, p%): one sum per contributor and cell.
        per_contributor_sql = """SELECT company_id, country, product, channel, sum(value) AS value
                                 FROM rows_bench_contributions GROUP BY ALL"""
        floor2, pairs_plain = best_of(args.repeat, lambda: con.execute(per_contributor_sql).to_arrow_table().num_rows)
        print(f"plain per-contributor GROUP BY: {pairs_plain:,} records in {seconds(floor2)}")

        source = row_source(con, "bench")
        full, component = best_of(
            args.repeat, lambda: build_table_cells(source, protocol, "cells", "2026-06", params)[0]
        )
        query, dims = component.query, component.dimensions

        def inner_step():
            with query.inner_cells(con) as inner:
                return con.execute(f"SELECT count(*) FROM {inner.name}").fetchone()[0]

        inner_time, pairs = best_of(args.repeat, inner_step)
        with query.inner_cells(con) as inner, registered(con, dims) as names:
            sql = query.stats_sql(inner, dims, names)
            margins_time, _ = best_of(args.repeat, lambda: con.execute(sql).df())
        inner_mask = (component.frame.filter(like="_depth") > 0).all(axis=1).to_numpy()
        print(f"per-contributor inner cells: {pairs:,} (contributor, cell) records in {seconds(inner_time)}")
        print(f"margins and statistics from them: {len(component):,} cells in {seconds(margins_time)}")
        print(f"build_table_cells (all of it, plus frame, keys, relations): {seconds(full)}")
        for kind, k in (("wall-clock", 0), ("CPU", 1)):
            sql_time = inner_time[k] + margins_time[k]
            print(f"ratio to plain ({kind}): SQL {sql_time / plain[k]:.2f}x; whole call {full[k] / plain[k]:.2f}x")
            print(f"ratio to plain per-contributor ({kind}): whole call {full[k] / floor2[k]:.2f}x")
        print(
            f"contributors per inner cell: median {np.median(component.stats.n_all[inner_mask]):.0f}; "
            f"relations: {len(component.relations):,}"
        )


if __name__ == "__main__":
    main()
