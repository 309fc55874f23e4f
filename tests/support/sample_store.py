"""A store holding the sample data (sample_data/generate.py) as intake would leave it, without envelopes.

The demo seals and takes in every file (about a minute); tests of what the releases disclose only need the
accepted rows, so they load the generator's tables directly: the same companies, groups, waivers and rows as
the committed sample.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aggregator.intake import DUCKDB_TYPES
from aggregator.registry import Registry
from aggregator.store import Store
from imvo_submit.validation import load_template

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sample_data.generate import SEED, generate_covenant  # noqa: E402
from sample_data.synth.sectors import SAMPLE_SIZES  # noqa: E402

COMPANIES = {"textile": 64, "gold": 16, **SAMPLE_SIZES}
REGISTERED = "2025-01-02T09:00:00Z"


def sample_tables(covenant: str, periods: int = 3):
    """The generator's data of the committed sample (64 textile, 16 gold, 12 banks, ... companies)."""
    return generate_covenant(COMPANIES[covenant], periods, 1.0, SEED, covenant)


def load_sample(store: Store, covenant: str, periods: int = 3) -> None:
    """Companies (with groups and waivers) and every on-time submission of the sample, accepted."""
    data = sample_tables(covenant, periods)
    companies = data.companies
    with store.transaction() as con:
        con.register("sample_companies", companies)
        con.execute(
            "INSERT INTO companies SELECT company_id, name, group_id, [covenant], 'active', NULL, ? "
            "FROM sample_companies",
            [REGISTERED],
        )
        con.unregister("sample_companies")
    registry = Registry(store)
    for company, waiver in zip(companies["company_id"].to_pylist(), companies["waiver"].to_pylist(), strict=True):
        if waiver == "yes":
            registry.grant_waiver(company, covenant, "*", now=REGISTERED)
    for template, table in sorted(data.tables.items()):
        submit_rows(store, covenant, template, table, tag="on-time")


def submit_rows(store: Store, covenant: str, template: str, table: pa.Table, *, tag: str) -> None:
    """Accept the rows of `table` (company_id, period and the template's columns) as one submission per
    company and period; an accepted earlier one of the same company, template and period is superseded."""
    columns = load_template(covenant, template).columns
    types = {c.name: DUCKDB_TYPES[c.type] for c in columns}
    with store.transaction() as con:
        name = store.ensure_rows_table(covenant, template, types)
        company, period = (pc.cast(table[c], pa.string()) for c in ("company_id", "period"))
        submission = pc.binary_join_element_wise(company, period, f"/{template}/{tag}/")
        keyed = {"submission_id": submission, "company_id": company, "period": period}
        keyed["source_row"] = pa.array(np.arange(table.num_rows, dtype=np.int32))
        frame = pa.table({**keyed, **{c.name: table[c.name] for c in columns if c.name in table.column_names}})
        con.register("sample_rows", frame)
        con.execute(
            "UPDATE submissions SET state = 'superseded' WHERE state = 'accepted' AND covenant = ? AND template = ? "
            "AND (company_id, period) IN (SELECT DISTINCT company_id, period FROM sample_rows)",
            [covenant, template],
        )
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM sample_rows")
        con.execute(
            "INSERT INTO submissions (submission_id, company_id, covenant, template, period, sealed_at, "
            "received_at, original_name, state, reason, plaintext_blake3, raw_path) "
            "SELECT DISTINCT submission_id, company_id, ?, ?, period, 't', 't', submission_id, 'accepted', "
            "'accepted', sha256(submission_id), submission_id FROM sample_rows",
            [covenant, template],
        )
        con.unregister("sample_rows")


def sample_store(path: Path, covenants: Iterable[str] = ("textile", "gold"), periods: int = 3) -> Store:
    """A new unencrypted store at `path` with the sample data of the covenants."""
    store = Store(path, None)
    for covenant in covenants:
        load_sample(store, covenant, periods)
    return store
