"""The ledger: every release, every cell it published or suppressed, and its snapshot, kept forever.

This module holds all the SQL of the ledger's tables (`releases`, `released_cells`, `ledger_cells`,
`ledger_relations`, `ledger_contributions`; their schema is in store.py). The library only inserts and reads
ledger rows, never updates or deletes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from aggregator.aggregation.contributions import gap_contributions
from aggregator.cellkey import CellKey
from aggregator.disclosure.contributions import Contributions
from aggregator.disclosure.model import ProtectionProblem
from aggregator.errors import AggregatorError
from aggregator.store import Store
from imvo_submit.periods import Period

from .snapshot import Snapshot


class UnknownRelease(AggregatorError):
    """A release id that is not in the ledger."""


@dataclass(frozen=True)
class ReleaseRow:
    """The `releases` row of one release."""

    release_id: str
    covenant: str
    protocol_version: str
    protocol_sha256: str
    period: str
    audience: str
    released_at: str
    is_revision: bool
    tables: list[str]
    manifest: dict
    audit: dict


def record_release(con: duckdb.DuckDBPyConnection, row: ReleaseRow, cells: pd.DataFrame, snapshot: Snapshot) -> None:
    """Insert a release, its cells (table_id, component, cell_key, value, status) and its snapshot; call it
    inside the transaction that records the release."""
    con.execute(
        "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            row.release_id,
            row.covenant,
            row.protocol_version,
            row.protocol_sha256,
            row.period,
            row.audience,
            row.released_at,
            row.is_revision,
            row.tables,
            json.dumps(row.manifest, sort_keys=True),
            json.dumps(row.audit, sort_keys=True),
        ],
    )
    insert_frame(con, "released_cells", cells.assign(release_id=row.release_id)[RELEASED_CELLS])
    record_snapshot(con, snapshot, row.release_id)


RELEASED_CELLS = ["release_id", "table_id", "component", "cell_key", "value", "status"]


def record_snapshot(con: duckdb.DuckDBPyConnection, snapshot: Snapshot, release_id: str) -> None:
    """Insert one release's snapshot under `release_id`."""
    p = snapshot.problem
    cells = pd.DataFrame(
        {
            "release_id": release_id,
            "cell": np.arange(p.size, dtype=np.int32),
            "cell_key": [str(key) for key in p.keys],
            "base_key": [str(key) for key in snapshot.bases],
            "table_id": snapshot.tables,
            "span": [",".join(map(str, s)) for s in snapshot.spans],
            "additive": snapshot.additive.astype(bool),
            "value": p.values.astype(float),
            "lo_bound": p.lower.astype(float),
            "hi_bound": p.upper.astype(float),
            "upl": p.upl.astype(float),
            "lpl": p.lpl.astype(float),
            "is_primary": p.primary.astype(bool),
            "hidden": snapshot.hidden.astype(bool),
        }
    )
    relations = pd.DataFrame(
        [(release_id, n, t, part) for n, (t, parts) in enumerate(p.relations) for part in (parts or (None,))],
        columns=["release_id", "relation", "total", "part"],
    ).astype({"relation": "int32", "total": "int32", "part": "Int32"})
    for table, frame in (("ledger_cells", cells), ("ledger_relations", relations)):
        insert_frame(con, table, frame)
    _insert_contributions(con, release_id, p.insiders, _gap_cells(p.keys))


def _gap_cells(keys: Sequence[CellKey]) -> np.ndarray:
    return np.fromiter((key.is_gap for key in keys), dtype=bool, count=len(keys))


def _insert_contributions(
    con: duckdb.DuckDBPyConnection, release_id: str, insiders: Contributions, gap: np.ndarray
) -> None:
    """One ledger row per contributor and cell, except the gap cells' (`gap`): at 10,000 companies they are
    4.5M of 11.3M records, and load_snapshot derives them from the others.

    The (millions of) records go in as one Arrow table with the names dictionary-encoded, several times
    faster than a frame of Python strings, and unsorted (sorting 11M records first cost more than it saved
    the insert)."""
    kept = insiders.where(~gap[insiders.cell])
    if not len(kept):
        return
    names = pa.array([str(name) for name in kept.names.tolist()], pa.string())
    table = pa.table(
        {
            "contributor": pa.DictionaryArray.from_arrays(pa.array(kept.who.astype(np.int32)), names),
            "cell": pa.array(kept.cell.astype(np.int32)),
            "value": pa.array(kept.value.astype(np.float64)),
        }
    )
    name = "_ledger_insert_contributions"
    con.register(name, table)
    try:
        con.execute(
            f"INSERT INTO ledger_contributions SELECT ?, CAST(contributor AS VARCHAR), cell, value FROM {name}",
            [release_id],
        )
    finally:
        con.unregister(name)


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Append a frame to a ledger table in one statement (executemany inserts row by row)."""
    if frame.empty:
        return
    name = f"_ledger_insert_{table}"
    con.register(name, frame)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM {name}")
    finally:
        con.unregister(name)


# ------------------------------------------------------------------------------------------ reading


def load_snapshot(store: Store, release_id: str) -> Snapshot:
    """An earlier release's snapshot from the ledger."""
    meta = store.con.execute(
        "SELECT period, audience, rowid FROM releases WHERE release_id = ?", [release_id]
    ).fetchone()
    cells = store.query_df("SELECT * FROM ledger_cells WHERE release_id = ? ORDER BY cell", [release_id])
    if meta is None or cells.empty:
        raise UnknownRelease(
            f"release {release_id} has no cells in the ledger", hint="list the releases with `aggregator releases list`"
        )
    keys = [CellKey.parse(text) for text in cells["cell_key"]]
    relations = _relations(store, release_id)
    own = store.con.execute(
        "SELECT contributor, cell, value FROM ledger_contributions WHERE release_id = ?", [release_id]
    ).fetchnumpy()
    stored = Contributions.from_names(own["contributor"], own["cell"], own["value"])
    problem = ProtectionProblem(
        keys=keys,
        values=cells["value"].to_numpy(float),
        relations=relations,
        lower=cells["lo_bound"].to_numpy(float),
        upper=cells["hi_bound"].to_numpy(float),
        upl=cells["upl"].to_numpy(float),
        lpl=cells["lpl"].to_numpy(float),
        primary=cells["is_primary"].to_numpy(bool),
        cost=np.zeros(len(cells)),
        fixed=~cells["hidden"].to_numpy(bool),
        insiders=with_gap_records(stored, keys, relations),
    )
    spans = {text: tuple(Period.parse(m) for m in text.split(",")) for text in cells["span"].unique()}
    return Snapshot(
        release_id,
        Period.parse(meta[0]),
        meta[1],
        problem,
        cells["hidden"].to_numpy(bool),
        list(cells["table_id"]),
        [key.base for key in keys],
        [spans[text] for text in cells["span"]],
        cells["additive"].to_numpy(bool),
        int(meta[2]),
    )


def _relations(store: Store, release_id: str) -> list[tuple[int, tuple[int, ...]]]:
    rel = store.query_df(
        "SELECT relation, total, list(part ORDER BY part) FILTER (WHERE part IS NOT NULL) AS parts "
        "FROM ledger_relations WHERE release_id = ? GROUP BY relation, total ORDER BY relation",
        [release_id],
    )
    return [
        (int(t), tuple(int(x) for x in (parts if parts is not None else [])))
        for t, parts in zip(rel["total"], rel["parts"], strict=True)
    ]


def with_gap_records(
    own: Contributions, keys: list[CellKey], relations: list[tuple[int, tuple[int, ...]]]
) -> Contributions:
    """The gap cells' records added, derived from the others (gap_contributions). A ledger written before
    they were derived holds them too: those are dropped and derived again, to the same values."""
    gap = _gap_cells(keys)
    kept = own.where(~gap[own.cell])
    # a gap relation: total = part + gap (relations list their parts sorted, so the gap may come first)
    links = np.array(
        [(t, *sorted(parts, key=lambda c: bool(gap[c]))) for t, parts in relations if any(gap[c] for c in parts)],
        dtype=np.int64,
    ).reshape(-1, 3)
    derived = gap_contributions(kept.who, kept.cell, kept.value, links[:, 0], links[:, 1], links[:, 2])
    columns = (np.concatenate(c) for c in zip((kept.who, kept.cell, kept.value), derived, strict=True))
    return Contributions(own.names, *columns)


def release_spans(store: Store, covenant: str, audiences: Sequence[str]) -> dict[str, set[Period]]:
    """The months each release of these audiences covers, by release id."""
    rows = store.con.execute(
        "SELECT DISTINCT r.release_id, l.span FROM releases r JOIN ledger_cells l USING (release_id) "
        "WHERE r.covenant = ? AND list_contains(?::VARCHAR[], r.audience) ORDER BY 1, 2",
        [covenant, list(audiences)],
    ).fetchall()
    spans: dict[str, set[Period]] = {}
    for release_id, span in rows:
        spans.setdefault(release_id, set()).update(Period.parse(m) for m in span.split(","))
    return spans


def releases_of_audiences(store: Store, covenant: str, audiences: Sequence[str]) -> list[str]:
    """The ids of every release of these audiences that has a snapshot in the ledger, sorted."""
    return sorted(release_spans(store, covenant, audiences))


def release_count(con: duckdb.DuckDBPyConnection, covenant: str, period: str, audience: str) -> int:
    """How many releases (the first and its revisions) the ledger holds for this covenant, period and audience."""
    (count,) = con.execute(
        "SELECT count(*) FROM releases WHERE covenant = ? AND period = ? AND audience = ?",
        [covenant, period, audience],
    ).fetchone()
    return int(count)


def releases_of(con: duckdb.DuckDBPyConnection, covenant: str, audience: str) -> list[tuple[str, str]]:
    """(period, release id) of every release to the audience, in the order they were made."""
    rows = con.execute(
        "SELECT period, release_id FROM releases WHERE covenant = ? AND audience = ? ORDER BY released_at",
        [covenant, audience],
    ).fetchall()
    return [(str(period), str(release_id)) for period, release_id in rows]


def list_releases(store: Store, covenant: str | None = None) -> pd.DataFrame:
    """Every release, oldest first: id, covenant, period, audience, time, revision flag, cells and hidden cells."""
    return store.query_df(
        "SELECT r.release_id, r.covenant, r.period, r.audience, r.released_at, r.is_revision, "
        "count(c.cell_key) AS cells, count(c.cell_key) FILTER (WHERE c.status <> 'published') AS suppressed "
        "FROM releases r LEFT JOIN released_cells c USING (release_id) "
        "WHERE ? IS NULL OR r.covenant = ? "
        "GROUP BY ALL ORDER BY r.released_at, r.release_id",
        [covenant, covenant],
    )


@dataclass
class ReleaseDetail:
    """One release as recorded: its ledger row and every cell it published (value) or suppressed (None)."""

    release: dict
    cells: pd.DataFrame  # table_id, component, cell_key, value, status ("published" | "suppressed")


def show_release(store: Store, release_id: str) -> ReleaseDetail:
    """The recorded release; suppression reasons (primary/secondary) are folded into one status."""
    row = store.query_df("SELECT * FROM releases WHERE release_id = ?", [release_id])
    if row.empty:
        raise UnknownRelease(
            f"there is no release {release_id}", hint="list the releases with `aggregator releases list`"
        )
    record = row.iloc[0].to_dict()
    record["tables"] = list(record["tables"])
    record["manifest"] = json.loads(record.pop("manifest_json"))
    record["audit"] = json.loads(record.pop("audit_json"))
    cells = store.query_df(
        "SELECT table_id, component, cell_key, value, "
        "CASE WHEN status = 'published' THEN 'published' ELSE 'suppressed' END AS status "
        "FROM released_cells WHERE release_id = ? ORDER BY table_id, component, cell_key",
        [release_id],
    )
    return ReleaseDetail(record, cells)
