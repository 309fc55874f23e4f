"""The benchmark stage "monthly releases audited as a series": a year of committee releases, month after month.

Each release is protected for every reader class together with every earlier release it holds, including the
difference of every cell between any two months (history/series.py), so the k-th release carries k - 1
earlier ones and k months of current cells. The stage records each release's time and peak memory; the report
fits how the time grows with the number of months held (the target: at most linearly).
"""

from __future__ import annotations

from pathlib import Path

from bench.measure import measure

RELEASED_AT = "2028-01-15T09:00:00Z"  # past every data-age embargo of a 2025 month (class C: 12 months)
AUDIENCE = "monitoring_committee"
STORE_KEY = "cd" * 32  # benchmark only: a fixed store key


def prepare_series(job: dict) -> tuple[Path, list[str], int]:
    """A store with `months` months of textile data at the scale (generated and loaded untimed): its path, the
    months and the number of rows."""
    from bench.stages import load_into_store
    from sample_data.generate import generate_covenant

    store_path = Path(job["work"]) / "series.duckdb"
    covenant = generate_covenant(job["companies"], job["months"], job["rows_scale"], job["seed"])
    rows = load_into_store(store_path, {"companies": covenant.companies, **covenant.tables}, key=STORE_KEY)
    return store_path, list(covenant.periods), rows


def stage_series(job: dict) -> list[dict]:
    """Release the committee's tables for every month in turn (batch.release_audience: controls, protection
    for every reader class with the release history, audit, outputs and ledger), one row per release."""
    from aggregator.batch import release_audience
    from aggregator.errors import AggregatorError
    from aggregator.protocol import load_protocol
    from aggregator.release import write_release
    from aggregator.store import Store
    from bench.stages import PROTOCOL, row

    store_path, months, total_rows = prepare_series(job)
    protocol = load_protocol(PROTOCOL)
    out = Path(job["work"]) / "series-out"
    rows = []
    with Store(store_path, STORE_KEY) as store:
        for k, month in enumerate(months, start=1):

            def release(month: str = month):
                write = lambda r: write_release(r, out)  # noqa: E731
                try:
                    return release_audience(store, protocol, month, AUDIENCE, now=RELEASED_AT, write=write)
                except AggregatorError as exc:  # a refusal is recorded, not fatal to the suite
                    return exc

            done = measure(release)
            if isinstance(done.result, AggregatorError):
                status = f"failed: {done.result.message.splitlines()[0][:160]}"
                rows.append(row("monthly release in a series", k, "months", done, status=status))
                break
            protected = done.result.protected
            cells = protected.table_cells()
            rows.append(
                row("monthly release in a series", k, "months", done, companies=job["companies"], month=month,
                    rows=total_rows,
                    earlier_releases=len(protected.audited_with), cells=len(cells),
                    suppressed=int(protected.suppression.suppressed[cells].sum()),
                    primary=int(protected.problem.primary[cells].sum()))
            )  # fmt: skip
    return rows
