"""One benchmark stage in a fresh process: `python -m bench.stages '<json job>'`.

The orchestrator (bench/run_all.py) starts this module once per stage and scale, so each stage's peak RSS
is its own. Setup (opening the store, loading a pickled problem) is not timed; each timed step and its
floor are measured with `bench.measure.measure`. The last stdout line is `BENCH-RESULT <json list of rows>`.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from bench.bench_envelope import _BLOCK, _NullSink, _raw_aead
from bench.measure import Measured, measure
from bench.series import stage_series

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "textile.toml"
STORE_KEY = "ab" * 32  # benchmark only: a fixed store key
PERIOD = "2025-01"
RELEASED_AT = "2026-04-15T09:00:00Z"  # well past the protocol's data-age embargo for PERIOD
REVISED_AT = "2026-04-16T09:00:00Z"
AUDIENCE = "monitoring_committee"
TEMPLATES = ("production_locations", "risk_assessment", "living_wage", "materials")
MARKER = "BENCH-RESULT "
# the rows stage_batch returns, in order, with their size units
BATCH_PARTS = (
    ("whole batch", "rows"),
    ("protection", "cells"),
    ("ledger", "records"),
    ("write outputs", "cells"),
    ("audit (release)", "cells"),
)


def row(stage: str, size: int, unit: str, done: Measured, floor: Measured | None = None, **extra: Any) -> dict:
    """One result row; `ratio` is time over the floor's time when there is a time floor."""
    out = {
        "stage": stage,
        "size": size,
        "size_unit": unit,
        "seconds": round(done.seconds, 4),
        "peak_rss_mb": round(done.peak_rss_mb, 1),
        "growth_mb": round(done.growth_mb, 1),
        "floor_seconds": round(floor.seconds, 4) if floor else None,
        "ratio": round(done.seconds / floor.seconds, 2) if floor and floor.seconds > 0 else None,
        "status": "ok",
    }
    return out | extra


# ------------------------------------------------------------------------------ company-scale stages


def _keys() -> tuple:
    from imvo_submit.envelope import generate_encryption_key, generate_signing_key

    return generate_encryption_key("x25519"), generate_signing_key()


def _raw_open(path: Path) -> float:
    """ChaCha20-Poly1305 decrypt of the same bytes in 64 KiB chunks (encrypted first, untimed): the open floor."""
    return _raw_open_bytes(path.read_bytes())


def _raw_open_bytes(data: bytes) -> float:
    aead = ChaCha20Poly1305(os.urandom(32))
    blocks = [data[at : at + _BLOCK] for at in range(0, len(data), _BLOCK)] or [b""]
    chunks = [aead.encrypt(i.to_bytes(12, "big"), c, None) for i, c in enumerate(blocks)]
    start = time.perf_counter()
    for index, chunk in enumerate(chunks):
        aead.decrypt(index.to_bytes(12, "big"), chunk, None)
    return time.perf_counter() - start


def stage_envelope(job: dict) -> list[dict]:
    """Seal and open the scale's production_locations CSV as one sealed file; floors: raw AEAD."""
    from imvo_submit.envelope import open_file, seal_file

    src = Path(job["data"]) / "production_locations.csv"
    dst = Path(job["work"]) / "production_locations.imvo"
    size, rows = src.stat().st_size, job["rows_file"]
    recipient, signer = _keys()
    floor_seal = measure(lambda: _raw_aead(src, size))
    sealed = measure(
        lambda: seal_file(
            src, dst, covenant="textile", template="production_locations", company_id="T0001", period=PERIOD,
            recipient_public_key=recipient.public_key(), signing_private_key=signer,
            created="2025-02-10T09:00:00Z",
        )
    )  # fmt: skip
    opened = measure(lambda: open_file(dst, recipient, signer.public_key(), sink=_NullSink()))
    floor_open = Measured(_raw_open(src), 0.0, 0.0)
    dst.unlink()
    mb = {"bytes": size}
    return [row("seal", rows, "rows", sealed, floor_seal, **mb), row("open", rows, "rows", opened, floor_open, **mb)]


def stage_read_validate(job: dict) -> list[dict]:
    """read_table + validate of the production_locations CSV; floor: pyarrow.csv.read_csv of the file."""
    from imvo_submit.validation import load_template, read_table, validate

    path = Path(job["data"]) / "production_locations.csv"
    tpl = load_template("textile", "production_locations")
    validate(read_table(path, tpl)[0].head(50), tpl)  # first call imports pandera's backends: not timed

    def read_and_validate() -> bool:
        raw, _warnings = read_table(path, tpl)
        return validate(raw, tpl).ok

    floor = measure(lambda: pacsv.read_csv(path).num_rows)
    done = measure(read_and_validate)
    if not done.result:
        raise SystemExit("benchmark data should be valid")
    return [row("read + validate", job["rows_file"], "rows", done, floor, bytes=path.stat().st_size)]


def _company_files(data: Path, out: Path) -> list[tuple[str, str, Path]]:
    """One CSV per company and template (the template's columns), as companies send them: (company, template,
    path), in company order."""
    from imvo_submit.validation import load_template

    files = []
    for template in TEMPLATES:
        table = pq.read_table(data / "textile" / f"{template}.parquet").sort_by("company_id")
        columns = load_template("textile", template).column_names
        companies = table["company_id"].to_numpy(zero_copy_only=False)
        bounds = np.flatnonzero(np.r_[True, companies[1:] != companies[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            path = out / f"{companies[a]}__{template}.csv"
            pacsv.write_csv(table.slice(a, b - a).select(columns), path)
            files.append((str(companies[a]), template, path))
    return sorted(files)


def stage_intake(job: dict) -> list[dict]:
    """run_intake of one sealed file per company and template (sealed untimed, as companies send them) into a
    new workspace with the companies registered; floor: raw AEAD decrypt and pyarrow.csv.read_csv of every
    file's plaintext."""
    from aggregator.demo import (
        DEMO_PASSPHRASE,
        PROTOCOLS,
        DemoCompany,
        recipient_key,
        register_companies,
        sealed_at,
    )
    from aggregator.intake import run_intake
    from aggregator.workspace import create_workspace
    from imvo_submit.company import seal_submission
    from imvo_submit.envelope import generate_signing_key

    root = Path(job["work"]) / "intake"
    (root / "plain").mkdir(parents=True)
    files = _company_files(Path(job["data"]), root / "plain")
    workspace = create_workspace(root / "ws", DEMO_PASSPHRASE, [PROTOCOLS["textile"]])
    ids = sorted({company for company, _, _ in files})
    companies = {c: DemoCompany(c, c, c, "textile", False, generate_signing_key()) for c in ids}
    register_companies(workspace, list(companies.values()))
    recipient = recipient_key(workspace)
    for company, template, path in files:
        seal_submission(
            path, root / "inbox", company_id=company, covenant="textile", period=PERIOD, template=template,
            recipient_key=recipient, signing_key=companies[company].signing_key, created=sealed_at(PERIOD),
            check=False,
        )  # fmt: skip
    plaintexts = [path.read_bytes() for _, _, path in files]
    decrypt_seconds = sum(_raw_open_bytes(text) for text in plaintexts)
    read = measure(lambda: [pacsv.read_csv(pa.BufferReader(text)) for text in plaintexts])
    floor = Measured(decrypt_seconds + read.seconds, read.peak_rss_mb, read.growth_mb)
    now = sealed_at(PERIOD, day=28)
    done = measure(lambda: run_intake(workspace, root / "inbox", now=now, expected_period=PERIOD))
    accepted = done.result.count("accepted")
    if accepted != len(files):
        raise SystemExit(f"benchmark files should all be accepted, {accepted} of {len(files)} were")
    rows = sum(table.num_rows for table in read.result)
    return [row("intake (envelopes)", rows, "rows", done, floor, files=len(files))]


def _arrow_tables(data: Path) -> dict[str, pa.Table]:
    return {name: pq.read_table(data / "textile" / f"{name}.parquet") for name in ("companies", *TEMPLATES)}


def load_into_store(store_path: Path, tables: dict[str, pa.Table], key: str = STORE_KEY) -> int:
    """Companies, one accepted submission per company, template and period, and the rows, as intake would leave
    them (the rows keyed as intake keys them, appended with the same Store.append_rows)."""
    from aggregator.intake import DUCKDB_TYPES
    from aggregator.store import Store
    from imvo_submit.validation import load_template

    rows = 0
    with Store(store_path, key) as store, store.transaction() as con:
        con.register("bench_companies", tables["companies"])
        con.execute(
            "INSERT INTO companies SELECT company_id, name, group_id, [covenant], 'active', NULL, "
            "'2025-01-02T09:00:00Z' FROM bench_companies"
        )
        con.unregister("bench_companies")
        for template in TEMPLATES:
            tpl = load_template("textile", template)
            name = store.ensure_rows_table("textile", template, {c.name: DUCKDB_TYPES[c.type] for c in tpl.columns})
            table = tables[template]
            submission = pc.binary_join_element_wise(table["company_id"], table["period"], f"/{template}/")
            keys = {"submission_id": submission, "company_id": table["company_id"], "period": table["period"]}
            keys["source_row"] = pa.array(np.arange(table.num_rows, dtype=np.int32))
            keyed = pa.table({**keys, **{c: table[c] for c in tpl.column_names}})
            con.register("bench_rows", keyed)
            store.append_rows(name, keyed.column_names, "bench_rows")
            con.unregister("bench_rows")
            submissions = (
                keyed.select(["submission_id", "company_id", "period"])
                .group_by("submission_id")
                .aggregate([("company_id", "min"), ("period", "min")])
            )
            con.register("bench_submissions", submissions)
            con.execute(
                f"INSERT INTO submissions (submission_id, company_id, covenant, template, period, sealed_at, "
                f"received_at, original_name, state, reason, plaintext_blake3, raw_path) "
                f"SELECT submission_id, company_id_min, 'textile', '{template}', period_min, '2025-02-10T09:00:00Z', "
                f"'2025-02-11T09:00:00Z', submission_id, 'accepted', 'accepted', sha256(submission_id), "
                f"submission_id FROM bench_submissions"
            )
            con.unregister("bench_submissions")
            rows += table.num_rows
    return rows


def _plain_load(tables: dict[str, pa.Table], path: Path | None = None) -> int:
    """CREATE TABLE AS of every Arrow table in a plain DuckDB: in memory, or (`path`) in a new file encrypted
    as the store is, closed at the end (which writes it out)."""
    from aggregator.store import _hex, _httpfs_extension_path

    con = duckdb.connect(config={"threads": 2})
    con.execute("SET enable_progress_bar = false")
    if path is not None:
        con.execute(f"LOAD '{_httpfs_extension_path()}'")
        con.execute(f"ATTACH '{path}' AS plain (ENCRYPTION_KEY '{_hex(STORE_KEY)}')")
        con.execute("USE plain")
    con.execute("SET preserve_insertion_order = false")  # as Store.append_rows: the fastest plain write
    for name, table in tables.items():
        con.register("t", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM t")
        con.unregister("t")
    con.close()
    return sum(t.num_rows for t in tables.values())


def stage_load(job: dict) -> list[dict]:
    """Load every template's rows into a fresh encrypted Store; floor: a plain DuckDB CREATE TABLE AS of the
    same Arrow tables into a new file encrypted the same way (a store must persist). The in-memory CREATE
    TABLE, which writes nothing, is recorded next to it."""
    tables = _arrow_tables(Path(job["data"]))
    store_path, plain_path = Path(job["work"]) / "store.duckdb", Path(job["work"]) / "plain.duckdb"
    store_path.unlink(missing_ok=True)
    in_memory = measure(lambda: _plain_load(tables))
    floor = measure(lambda: _plain_load(tables, plain_path))
    plain_path.unlink()
    done = measure(lambda: load_into_store(store_path, tables))
    extra = {"in_memory_seconds": round(in_memory.seconds, 4)}
    return [row("load into store", job["rows_total"], "rows", done, floor, **extra)]


def plain_group_by_sql(spec) -> str:
    """The floor of one table: leaf-level GROUP BY with sum and count, no contributors, no margins."""
    return _leaf_group_by_sql(spec, [])


def per_contributor_sql(spec) -> str:
    """The floor of one table under a per-contributor rule: the leaf-level GROUP BY of the plain floor, by
    contributor (the rows' company) as well. Every rule on N, dominance or p% needs at least one sum per
    contributor and inner cell; margins, groups of companies and the statistics come on top."""
    return _leaf_group_by_sql(spec, ["company_id"])


def _leaf_group_by_sql(spec, by: list[str]) -> str:
    dims = ", ".join([*by, *(d.column for d in spec.dimensions)])
    measures = []
    for _name, operand in spec.measure.components():
        if operand is not None:
            weight = f" * {operand.weight}" if operand.weight else ""
            measures.append(f"sum({operand.column}{weight})")
    measures.append("count(*)")
    where = " AND ".join([f"period = '{PERIOD}'"] + [f"{f.column} = {f.equals!r}" for f in spec.filters])
    return f"SELECT {dims}, {', '.join(measures)} FROM rows_textile_{spec.template} WHERE {where} GROUP BY ALL"


def _open_store(job: dict):
    from aggregator.protocol import load_protocol
    from aggregator.store import Store

    return Store(Path(job["work"]) / "store.duckdb", STORE_KEY), load_protocol(PROTOCOL)


def stage_cells(job: dict) -> list[dict]:
    """build_release_cells for the committee's tables; floor: one per-contributor GROUP BY (inner cell x
    company) per table on the same store. The plain GROUP BY (inner cell only, the floor before issue 23) is
    recorded next to it as `plain_group_by_seconds`."""
    from aggregator.aggregation import build_release_cells

    store, protocol = _open_store(job)
    with store:
        specs = protocol.tables_for(AUDIENCE)
        plain = measure(lambda: [store.con.execute(plain_group_by_sql(s)).fetchall() for s in specs])
        floor = measure(lambda: [store.con.execute(per_contributor_sql(s)).to_arrow_table() for s in specs])
        source = store.row_source(protocol.covenant.id)
        done = measure(lambda: build_release_cells(source, protocol, AUDIENCE, PERIOD))
        cells = sum(len(c) for c in done.result)
    extra = {"cells": cells, "plain_group_by_seconds": round(plain.seconds, 4)}
    extra["per_contributor_records"] = sum(t.num_rows for t in floor.result)
    return [row("cell statistics", job["rows_total"], "rows", done, floor, **extra)]


def _release(protocol, protected):
    from aggregator import __version__
    from aggregator.release.model import Release

    language = protocol.covenant.language
    return Release(
        covenant_id=protocol.covenant.id,
        covenant_name=protocol.covenant.name(language),
        period=PERIOD,
        audience_id=AUDIENCE,
        audience_name=protocol.audience(AUDIENCE).name(language),
        language=language,
        protocol_version=protocol.covenant.version,
        protocol_sha256=protocol.sha256,
        code_version=__version__,
        created="2026-04-15",
        log_head=None,
        tables=protected.tables,
        audit_summary=protected.summary(),
    )


class _Timed:
    """Wall time spent in some module functions while a piece of work runs (their calls are only timed)."""

    def __init__(self, **targets: tuple[Any, str]):
        self.targets, self.seconds = targets, dict.fromkeys(targets, 0.0)

    def __enter__(self) -> _Timed:
        self.saved = {}
        for label, (module, name) in self.targets.items():
            original = getattr(module, name)
            self.saved[label] = original

            def timed(*args, _original=original, _label=label, **kwargs):
                start = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.seconds[_label] += time.perf_counter() - start

            setattr(module, name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        for label, (module, name) in self.targets.items():
            setattr(module, name, self.saved[label])


def _ledger_floor_tables(protected) -> dict[str, pa.Table]:
    """What the ledger keeps of a release, as plain Arrow tables: the released cells, one record per cell of
    the problem (key, value, bounds, flags) and the own contributions it stores (all but the gap cells')."""
    from aggregator.batch import _released_cells
    from aggregator.history.ledger import _gap_cells

    p = protected.problem
    insiders = protected.snapshot.problem.insiders
    kept = insiders.where(~_gap_cells(protected.snapshot.problem.keys)[insiders.cell])
    names = pa.array([str(name) for name in kept.names.tolist()], pa.string())
    return {
        "released_cells": pa.Table.from_pandas(_released_cells(protected), preserve_index=False),
        "ledger_cells": pa.table(
            {
                "cell_key": [str(k) for k in p.keys],
                "value": p.values.astype(float),
                "lo_bound": p.lower.astype(float),
                "hi_bound": p.upper.astype(float),
                "is_primary": p.primary.astype(bool),
                "hidden": protected.suppression.suppressed.astype(bool),
            }
        ),
        "ledger_contributions": pa.table(
            {
                "contributor": pa.DictionaryArray.from_arrays(pa.array(kept.who.astype(np.int32)), names),
                "cell": pa.array(kept.cell.astype(np.int32)),
                "value": pa.array(kept.value.astype(np.float64)),
            }
        ),
    }


def stage_batch(job: dict) -> list[dict]:
    """The committee's release as the monthly batch makes it (batch.release_audience: release controls,
    protect and audit, write the files, record the release and its snapshot in the ledger), with the time of
    its parts (cell statistics, protection, ledger); then, separately, the write alone, one audit of the
    final pattern (the protection floor: the least any protected release needs is proving it) and the ledger
    floor (a plain CREATE TABLE AS of the records the ledger keeps into a new encrypted file)."""
    import aggregator.batch as batch_module
    from aggregator import history
    from aggregator.batch import release_audience
    from aggregator.disclosure.audit import audit
    from aggregator.errors import AggregatorError
    from aggregator.release import write_release

    store, protocol = _open_store(job)
    out = Path(job["work"]) / "out"
    parts = _Timed(
        cells=(batch_module, "release_cells"),
        protection=(history, "protect_with_history"),
        ledger=(batch_module, "_record_ledger"),
    )
    with store, parts:

        def whole() -> Any:
            try:
                done = release_audience(
                    store, protocol, PERIOD, AUDIENCE, now=RELEASED_AT, write=lambda r: write_release(r, out / "batch")
                )
            except AggregatorError as exc:  # e.g. a refused audit: recorded, not fatal to the suite
                return exc
            return done.protected

        done = measure(whole)
    protected = done.result
    if isinstance(protected, AggregatorError):
        reason = f"failed: {protected.message.splitlines()[0][:160]}"
        return [
            row("whole batch", job["rows_total"], "rows", done, status=reason),
            *({"stage": s, "size_unit": u, "status": "not run (the batch failed)"} for s, u in BATCH_PARTS[1:]),
        ]
    cells = int(protected.problem.size)
    info = {"cells": cells, "suppressed": int(protected.suppression.suppressed.sum())}
    info |= {f"{k}_seconds": round(v, 4) for k, v in parts.seconds.items()}
    written = measure(lambda: write_release(_release(protocol, protected), out / "again"))
    audited = measure(lambda: audit(protected.problem, protected.suppression.suppressed))
    tables = _ledger_floor_tables(protected)
    ledger_path = Path(job["work"]) / "ledger-floor.duckdb"
    ledger_floor = measure(lambda: _plain_load(tables, ledger_path))
    ledger_path.unlink()
    records = sum(t.num_rows for t in tables.values())

    def part(name: str) -> Measured:  # a part of the whole batch: its time (peak and growth are the batch's)
        return Measured(parts.seconds[name], done.peak_rss_mb, done.growth_mb)

    return [
        row("whole batch", job["rows_total"], "rows", done, **info, method=protected.suppression.method),
        row("protection", cells, "cells", part("protection"), audited, rows=job["rows_total"]),
        row("ledger", records, "records", part("ledger"), ledger_floor, rows=job["rows_total"]),
        row("write outputs", cells, "cells", written, rows=job["rows_total"]),
        row("audit (release)", cells, "cells", audited, rows=job["rows_total"]),
    ]


def stage_revision(job: dict) -> list[dict]:
    """A corrected committee release of the same period (after stage_batch recorded the first): the release
    history path, which loads the earlier release's snapshot from the ledger, computes the period's current
    cells and protects and audits all of them together (history.combine)."""
    from aggregator.batch import release_audience
    from aggregator.release import write_release

    store, protocol = _open_store(job)
    out = Path(job["work"]) / "out" / "revision"
    with store:
        done = measure(
            lambda: release_audience(
                store, protocol, PERIOD, AUDIENCE, now=REVISED_AT, revision=True, write=lambda r: write_release(r, out)
            )
        )
    protected = done.result.protected
    cells, linked = int(protected.problem.size), len(protected.audited_with)
    return [row("linked release (revision)", job["rows_total"], "rows", done, cells=cells, earlier_releases=linked)]


# ---------------------------------------------------------------------------------- table-size ladder


def synthetic_stats(cells: int, seed: int = 7):
    """Cell statistics with Poisson(6) contributors per cell and lognormal contributions (top 2 kept)."""
    from aggregator.disclosure.model import CellStats

    rng = np.random.default_rng(seed)
    n = rng.poisson(6.0, cells)
    top = np.sort(rng.lognormal(3.0, 1.0, (cells, 2)), axis=1)[:, ::-1] * (n[:, None] > np.arange(2))
    rest = rng.lognormal(3.0, 1.0, cells) * np.maximum(n - 2, 0)
    return CellStats(
        total=top.sum(axis=1) + rest,
        n=n,
        top=top,
        waived=np.zeros(cells),
        n_all=n,
        has_negative=np.zeros(cells, dtype=bool),
    )


def stage_primary(job: dict) -> list[dict]:
    """evaluate_primary on synthetic cell statistics (threshold 5, 25% dominance, p% 10)."""
    from aggregator.disclosure.model import RuleParams
    from aggregator.disclosure.rules import evaluate_primary

    stats = synthetic_stats(job["cells"])
    params = RuleParams(min_contributors=5, dominance=((1, 25.0),), p_percent=(10.0, 1))
    done = measure(lambda: evaluate_primary(stats, params))
    return [row("primary rules", job["cells"], "cells", done, unsafe=int(done.result.unsafe.sum()))]


def prepare_problem(job: dict) -> list[dict]:
    """Build one ladder table (bench_suppression.build) and pickle it for the suppression and audit stages."""
    from bench.bench_suppression import build

    problem = build(tuple(job["shape"]), tuple(job["hier"]), job["contributors"], job["mean"])
    with open(job["problem"], "wb") as fh:
        pickle.dump(problem, fh)
    return [{"stage": "prepare table", "size": problem.size, "primary": int(problem.primary.sum())}]


def _problem(job: dict):
    with open(job["problem"], "rb") as fh:
        return pickle.load(fh)


def stage_suppression(job: dict) -> list[dict]:
    """protect(problem, method) with the stage cap as its time limit; the pattern is kept for the audit."""
    from aggregator.disclosure.suppression import protect

    problem, method = _problem(job), job["method"]
    done = measure(lambda: protect(problem, method, time_limit=job["cap"]))
    res = done.result
    np.save(Path(job["problem"]).with_suffix(f".{method}.npy"), res.suppressed)
    status = "ok" if res.method == method or method == "auto" else f"fell back to {res.method} (time limit)"
    return [
        row(
            f"suppression {method}", problem.size, "cells", done, table=job["table"], method=res.method,
            primary=int(problem.primary.sum()), secondary=res.n_secondary, cost=round(res.cost, 1),
            proven_optimal=res.optimal, status=status,
        )
    ]  # fmt: skip


def stage_lp_bound(job: dict) -> list[dict]:
    """The quality floor of suppression: the LP-relaxation lower bound on the secondary cost."""
    from aggregator.disclosure.suppression import lp_lower_bound

    problem = _problem(job)
    done = measure(lambda: lp_lower_bound(problem, time_limit=job["cap"]))
    return [row("lp lower bound", problem.size, "cells", done, table=job["table"], bound=round(done.result, 1))]


def stage_audit(job: dict) -> list[dict]:
    """The independent audit (outsider + insiders) of the fast pattern of the same table."""
    from aggregator.disclosure.audit import audit

    problem = _problem(job)
    pattern = Path(job["problem"]).with_suffix(".fast.npy")
    if not pattern.exists():
        return [{"stage": "audit", "size": problem.size, "size_unit": "cells", "status": "skipped (no pattern)"}]
    suppressed = np.load(pattern)
    done = measure(lambda: audit(problem, suppressed))
    res = done.result
    return [row("audit", problem.size, "cells", done, table=job["table"], passed=res.passed, lp_solves=res.lp_solves)]


def prepare_scale(job: dict) -> list[dict]:
    """Generate one period of textile data (sample_data.generate) as Parquet, and the locations as a CSV file."""
    from sample_data.generate import COLUMNS, generate_covenant, write_parquet

    data = Path(job["data"])
    covenant = generate_covenant(job["companies"], 1, job["rows_scale"], job["seed"])
    write_parquet(covenant, data)
    locations = covenant.tables["production_locations"].select(list(COLUMNS["production_locations"]))
    pacsv.write_csv(locations, data / "production_locations.csv")
    return [
        {
            "stage": "prepare scale",
            "rows_file": locations.num_rows,
            "rows_total": covenant.rows(),
            "companies": covenant.companies.num_rows,
        }
    ]


# ------------------------------------------------------------------------------------------- start-up

CLI_COMMANDS = {"imvo-submit --help": ("imvo-submit", "--help"), "aggregator --help": ("aggregator", "--help")}


def _wall(cmd: list[str], times: int) -> list[float]:
    out = []
    for _ in range(times):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - start)
    return out


def stage_cli(job: dict) -> list[dict]:
    """Each command's --help as a user starts it (the installed console script, a fresh interpreter), from
    spawn to exit: the median of `times` runs; floor: `python -c pass` timed the same way, in turn with them."""
    bin_dir = Path(sys.executable).parent
    times = job.get("times", 7)
    floor_runs, runs = [], {name: [] for name in CLI_COMMANDS}
    for _ in range(times):  # interleaved, so a busy moment of a shared machine hits floor and commands alike
        floor_runs += _wall([sys.executable, "-c", "pass"], 1)
        for name, (script, *args) in CLI_COMMANDS.items():
            runs[name] += _wall([str(bin_dir / script), *args], 1)
    floor = Measured(float(np.median(floor_runs)), 0.0, 0.0)
    return [
        row(name, 1, "commands", Measured(float(np.median(r)), 0.0, 0.0), floor, best=round(min(r), 4), runs=times)
        for name, r in runs.items()
    ]


STAGES = {
    "cli": stage_cli,
    "series": stage_series,
    "prepare_scale": prepare_scale,
    "envelope": stage_envelope,
    "intake": stage_intake,
    "read_validate": stage_read_validate,
    "load": stage_load,
    "cells": stage_cells,
    "batch": stage_batch,
    "revision": stage_revision,
    "primary": stage_primary,
    "prepare_problem": prepare_problem,
    "suppression": stage_suppression,
    "lp_bound": stage_lp_bound,
    "audit": stage_audit,
}


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    rows = STAGES[job["kind"]](job)
    print(MARKER + json.dumps(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
