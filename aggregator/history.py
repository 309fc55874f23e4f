"""Release history: the permanent ledger of every release, and the attacker's view across releases.

A release is not alone. A late submission that changes a published month, a year-to-date table next to last
month's and two audiences that talk to each other all let an attacker subtract one published figure from
another. This module keeps, per release, the whole protection problem as it was released (every cell's true
value, bounds, protection, whether it was hidden, the additivity relations and every contributor's own share)
and builds one combined problem over the new release and every earlier release it is arithmetically related
to. Model (docs/protocols.md, "Release history"):

- the *current* cells of every month involved, C[m], computed from the data in the store now;
- every earlier release's cells: published ones are fixed facts, hidden ones stay hidden with the protection
  they had (primary) or none (secondary);
- per earlier cell e covering months S: e = sum over m in S of C[m] + change, where the hidden *change* cell is
  what the submissions that changed since contribute (old minus new); it is primary with the protection the
  rules give those changed contributions, so subtracting two releases cannot reveal a late company's figures;
- per new cell covering months S: new = sum over m in S of C[m].

Nothing here updates or deletes ledger rows: the library only inserts and reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from . import log as action_log
from .aggregation import TableCells, build_problem, build_table_cells, release_contributions
from .aggregation.contributions import gap_contributions, incidences
from .cellkey import CellKey, ViewKind
from .disclosure.audit import audit
from .disclosure.contributions import Contributions, lexsort
from .disclosure.model import AuditResult, CellStats, PrimaryResult, ProtectionProblem, RuleParams
from .disclosure.rules import evaluate_primary
from .errors import AggregatorError
from .periods import PeriodMode
from .protocol import Protocol
from .store import Store

OUTSIDER = "outsider"

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_cells (
    release_id VARCHAR NOT NULL,
    cell INTEGER NOT NULL,              -- position in the release's protection problem
    cell_key VARCHAR NOT NULL,
    base_key VARCHAR NOT NULL,          -- the key of one month's cell (cumulative marker left out)
    table_id VARCHAR NOT NULL,
    span VARCHAR NOT NULL,              -- months the cell covers, comma-separated
    additive BOOLEAN NOT NULL,          -- a sum over months equals the cumulative cell
    value DOUBLE NOT NULL,              -- the true value, also of hidden cells (the store is encrypted)
    lo_bound DOUBLE NOT NULL,
    hi_bound DOUBLE NOT NULL,
    upl DOUBLE NOT NULL,
    lpl DOUBLE NOT NULL,
    is_primary BOOLEAN NOT NULL,
    hidden BOOLEAN NOT NULL,
    PRIMARY KEY (release_id, cell)
);
CREATE TABLE IF NOT EXISTS ledger_relations (
    release_id VARCHAR NOT NULL,
    relation INTEGER NOT NULL,
    total INTEGER NOT NULL,
    part INTEGER                        -- one row per part; NULL for a relation without parts
);
CREATE TABLE IF NOT EXISTS ledger_contributions (
    release_id VARCHAR NOT NULL,
    contributor VARCHAR NOT NULL,
    cell INTEGER NOT NULL,
    value DOUBLE NOT NULL
);
"""


class UnknownRelease(AggregatorError):
    """A release id that is not in the ledger."""


class HistoryRefused(AggregatorError):
    """A release cannot be made safe together with the releases before it."""


# ------------------------------------------------------------------------------------------ cells


def params_for(protocol: Protocol, table_id: str, audience_id: str) -> RuleParams:
    """The table's rules for this audience, or for the first audience that receives it."""
    audience = protocol.audience(audience_id)
    if table_id not in audience.tables:
        audience = next(a for a in protocol.audiences if table_id in a.tables)
    return protocol.rule_params(table_id, audience.id)


def _count_unit(protocol: Protocol, table_id: str, audience_id: str) -> str:
    audience = protocol.audience(audience_id)
    if table_id not in audience.tables:
        audience = next(a for a in protocol.audiences if table_id in a.tables)
    return protocol.settings(table_id, audience.id).count_unit


def compute_cells(
    con: duckdb.DuckDBPyConnection,
    protocol: Protocol,
    audience_id: str,
    period: str,
    table_ids: Sequence[str],
    *,
    waived: Mapping[str, frozenset[str]],
    overrides: Mapping[CellKey, bool] | None = None,
    monthly: bool = False,
    contributions: bool = False,
) -> tuple[list[TableCells], list[PrimaryResult]]:
    """Cells and primary verdicts of the tables for `period`.

    A cumulative table (periods = "year_to_date", ...) sums its months and gets its own keys, so it never
    merges with the monthly table of the same measure. `monthly` computes every table for the single month
    instead (the current cells C[m] of the history model).
    """
    components, primaries = [], []
    for table_id in table_ids:
        spec = protocol.table(table_id)
        params = params_for(protocol, table_id, audience_id)
        for comp in build_table_cells(
            con,
            protocol,
            table_id,
            period,
            params,
            mode=PeriodMode.MONTH if monthly else spec.periods,
            waived=waived.get(table_id, frozenset()),
            count_unit=_count_unit(protocol, table_id, audience_id),
            contributions=contributions,
        ):
            local = {i: overrides[k] for i, k in enumerate(comp.keys) if overrides and k in overrides}
            components.append(comp)
            primaries.append(evaluate_primary(comp.stats, params, local or None))
    return components, primaries


# ------------------------------------------------------------------------------------------ snapshots


@dataclass
class Snapshot:
    """One release's protection problem as the ledger keeps it.

    `problem.insiders` holds *every* contributor's own contribution to every cell (not only the largest
    ones), because the change between two releases is computed from it.
    """

    release_id: str
    period: str
    audience_id: str
    problem: ProtectionProblem
    hidden: np.ndarray
    tables: list[str]
    bases: list[CellKey]
    spans: list[tuple[str, ...]]
    additive: np.ndarray
    sequence: int = 1 << 62  # order of the release in the ledger (a new release comes after every other)


def snapshot_of(
    con: duckdb.DuckDBPyConnection,
    protocol: Protocol,
    release_id: str,
    period: str,
    audience_id: str,
    components: list[TableCells],
    problem: ProtectionProblem,
    *,
    monthly: bool = False,
    gap_records: bool = True,
) -> Snapshot:
    """The snapshot of a freshly built problem (nothing hidden yet), with every contributor's contributions.

    `gap_records=False` leaves out those of the gap helper cells, which the ledger does not keep (they
    follow from the others; load_snapshot derives them): for a snapshot that is only recorded."""
    index, tables, bases, spans, additive = _layout(protocol, period, components, problem, monthly)
    full = replace(problem, insiders=release_contributions(con, components, index, gaps=gap_records))
    return Snapshot(
        release_id, period, audience_id, full, np.zeros(problem.size, dtype=bool), tables, bases, spans, additive
    )


def release_months(
    protocol: Protocol, period: str, components: list[TableCells], problem: ProtectionProblem
) -> set[str]:
    """The months the cells of a release span (those of its snapshot), without building the snapshot."""
    return {month for span in _layout(protocol, period, components, problem, False)[3] for month in span}


def _layout(
    protocol: Protocol, period: str, components: list[TableCells], problem: ProtectionProblem, monthly: bool
) -> tuple[dict[str, int], list[str], list[str], list[tuple[str, ...]], np.ndarray]:
    """Per cell of the problem: its table, its key without the period marker, the months it spans and whether
    it is additive; and the key -> index map."""
    index = {key: i for i, key in enumerate(problem.keys)}
    tables = [""] * problem.size
    bases = [key.base for key in problem.keys]
    spans: list[tuple[str, ...]] = [(period,)] * problem.size
    additive = np.ones(problem.size, dtype=bool)
    for comp in components:
        mode = PeriodMode.MONTH if monthly else protocol.table(comp.table_id).periods
        span = tuple(str(m) for m in mode.months(period))
        own_keys = list(comp.keys) + [k for a in comp.aux for k in (a.sum_key, a.overlap_key)]
        for key in own_keys:
            i = index[key]
            tables[i] = tables[i] or comp.table_id
            spans[i] = span
            additive[i] = comp.additive
    return index, tables, bases, spans, additive


def current_snapshot(
    store: Store,
    protocol: Protocol,
    audiences: Sequence[str],
    month: str,
    table_ids: Sequence[str],
    waived: Mapping[str, frozenset[str]],
) -> Snapshot:
    """C[month]: every table computed for one month from the data in the store now.

    A cell is primary when it fails the rules of every audience in `audiences` (the loosest rules win) and
    gets the smallest protection they ask: one audience's legitimate release must not count as a disclosure
    under another's stricter rules. A release passes only its own audience, so there the rules are its own.
    """
    built = []
    for audience_id in audiences:
        components, primaries = compute_cells(
            store.con,
            protocol,
            audience_id,
            month,
            sorted(table_ids),
            waived=waived,
            monthly=True,
            contributions=audience_id == audiences[0],  # the snapshot's components
        )
        problem = build_problem(
            components,
            primaries,
            cost=protocol.defaults.cost,
            apriori_upper_factor=protocol.defaults.apriori_upper_factor,
        )
        built.append((components, problem))
    components, problem = built[0]
    for _, other in built[1:]:
        problem = replace(
            problem,
            primary=problem.primary & other.primary,
            upl=np.minimum(problem.upl, other.upl),
            lpl=np.minimum(problem.lpl, other.lpl),
        )
    snap = snapshot_of(store.con, protocol, f"current {month}", month, audiences[0], components, problem, monthly=True)
    snap.hidden = np.ones(problem.size, dtype=bool)  # never published as such: unknown to the attacker
    return snap


# ------------------------------------------------------------------------------------------ the ledger


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(LEDGER_SCHEMA)


def record_snapshot(con: duckdb.DuckDBPyConnection, snapshot: Snapshot) -> None:
    """Insert one release's snapshot (call inside the transaction that records the release)."""
    ensure_ledger(con)
    p, rid = snapshot.problem, snapshot.release_id
    cells = pd.DataFrame(
        {
            "release_id": rid,
            "cell": np.arange(p.size, dtype=np.int32),
            "cell_key": [str(key) for key in p.keys],
            "base_key": [str(key) for key in snapshot.bases],
            "table_id": snapshot.tables,
            "span": [",".join(s) for s in snapshot.spans],
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
        [(rid, n, t, part) for n, (t, parts) in enumerate(p.relations) for part in (parts or (None,))],
        columns=["release_id", "relation", "total", "part"],
    ).astype({"relation": "int32", "total": "int32", "part": "Int32"})
    for table, frame in (("ledger_cells", cells), ("ledger_relations", relations)):
        insert_frame(con, table, frame)
    _insert_contributions(con, rid, p.insiders, _gap_cells(p.keys))


def _gap_cells(keys: Sequence[CellKey]) -> np.ndarray:
    return np.fromiter((key.is_gap for key in keys), dtype=bool, count=len(keys))


def _insert_contributions(
    con: duckdb.DuckDBPyConnection, release_id: str, insiders: Contributions, gap: np.ndarray
) -> None:
    """One ledger row per contributor and cell, except the gap cells' (`gap`): at 10,000 companies they are
    4.5M of 11.3M records, and load_snapshot derives them from the others. Read back in contributor and
    cell order (load_snapshot).

    The (millions of) records go in as one Arrow table with the names dictionary-encoded, several times
    faster than a frame of Python strings, and unsorted (sorting 11M records first cost more than it saved
    the insert)."""
    who, cell, value = insiders.who, insiders.cell, insiders.value
    kept = ~gap[cell]
    if not kept.all():
        who, cell, value = who[kept], cell[kept], value[kept]
    if not len(who):
        return
    names = pa.array([str(name) for name in insiders.names.tolist()], pa.string())
    table = pa.table(
        {
            "contributor": pa.DictionaryArray.from_arrays(pa.array(who.astype(np.int32)), names),
            "cell": pa.array(cell.astype(np.int32)),
            "value": pa.array(value.astype(np.float64)),
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
    """Append a frame to a table in one statement (executemany inserts row by row)."""
    if frame.empty:
        return
    name = f"_ledger_insert_{table}"
    con.register(name, frame)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM {name}")
    finally:
        con.unregister(name)


def load_snapshot(store: Store, release_id: str) -> Snapshot:
    """An earlier release's snapshot from the ledger."""
    ensure_ledger(store.con)
    meta = store.con.execute(
        "SELECT period, audience, rowid FROM releases WHERE release_id = ?", [release_id]
    ).fetchone()
    cells = store.query_df("SELECT * FROM ledger_cells WHERE release_id = ? ORDER BY cell", [release_id])
    if meta is None or cells.empty:
        raise UnknownRelease(
            f"release {release_id} has no cells in the ledger", hint="list the releases with `aggregator releases list`"
        )
    rel = store.query_df(
        "SELECT relation, total, list(part ORDER BY part) FILTER (WHERE part IS NOT NULL) AS parts "
        "FROM ledger_relations WHERE release_id = ? GROUP BY relation, total ORDER BY relation",
        [release_id],
    )
    keys = [CellKey.parse(text) for text in cells["cell_key"]]
    relations = [
        (int(t), tuple(int(x) for x in (parts if parts is not None else [])))
        for t, parts in zip(rel["total"], rel["parts"], strict=True)
    ]
    own = store.con.execute(
        "SELECT contributor, cell, value FROM ledger_contributions WHERE release_id = ?", [release_id]
    ).fetchnumpy()
    stored = Contributions.from_names(own["contributor"], own["cell"], own["value"])
    insiders = _with_gap_records(stored, keys, relations)
    n = len(cells)
    problem = ProtectionProblem(
        keys=keys,
        values=cells["value"].to_numpy(float),
        relations=relations,
        lower=cells["lo_bound"].to_numpy(float),
        upper=cells["hi_bound"].to_numpy(float),
        upl=cells["upl"].to_numpy(float),
        lpl=cells["lpl"].to_numpy(float),
        primary=cells["is_primary"].to_numpy(bool),
        cost=np.zeros(n),
        fixed=~cells["hidden"].to_numpy(bool),
        insiders=insiders,
    )
    return Snapshot(
        release_id,
        meta[0],
        meta[1],
        problem,
        cells["hidden"].to_numpy(bool),
        list(cells["table_id"]),
        [key.base for key in keys],
        [tuple(s.split(",")) for s in cells["span"]],
        cells["additive"].to_numpy(bool),
        int(meta[2]),
    )


def _with_gap_records(
    own: Contributions, keys: list[CellKey], relations: list[tuple[int, tuple[int, ...]]]
) -> Contributions:
    """The gap cells' records added, derived from the others (gap_contributions). A ledger written before
    they were derived holds them too: those are dropped and derived again, to the same values."""
    gap = _gap_cells(keys)
    kept = ~gap[own.cell]
    who, cell, value = own.who[kept], own.cell[kept], own.value[kept]
    # a gap relation: total = part + gap (relations list their parts sorted, so the gap may come first)
    links = np.array(
        [(t, *sorted(parts, key=lambda c: bool(gap[c]))) for t, parts in relations if any(gap[c] for c in parts)],
        dtype=np.int64,
    ).reshape(-1, 3)
    derived = gap_contributions(who, cell, value, links[:, 0], links[:, 1], links[:, 2])
    columns = (np.concatenate(c) for c in zip((who, cell, value), derived, strict=True))
    return Contributions(own.names, *columns)


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


def list_waivers(store: Store, covenant: str | None = None) -> pd.DataFrame:
    """Every waiver ever recorded (revoked ones too), by company, covenant, scope and date."""
    return store.query_df(
        "SELECT company_id, covenant, scope, granted_at, revoked_at FROM waivers "
        "WHERE ? IS NULL OR covenant = ? ORDER BY company_id, covenant, scope, granted_at",
        [covenant, covenant],
    )


def active_waiver_exists(store: Store, company_id: str, covenant: str, scope: str) -> bool:
    row = store.con.execute(
        "SELECT count(*) FROM waivers WHERE company_id = ? AND covenant = ? AND scope = ? AND revoked_at IS NULL",
        [company_id, covenant, scope],
    ).fetchone()
    return bool(row and row[0])


# ------------------------------------------------------------------------------------------ related releases


def visible_audiences(protocol: Protocol, audience_id: str) -> list[str]:
    """Audiences whose releases this audience's members may know: itself, and every audience that shares
    when this one shares too (shares_with_others = false keeps an audience apart in both directions)."""
    own = protocol.audience(audience_id)
    if not own.shares_with_others:
        return [audience_id]
    return sorted({audience_id} | {a.id for a in protocol.audiences if a.shares_with_others})


def own_readers_view(protocol: Protocol, audience_id: str, snaps: Sequence[Snapshot]) -> list[Snapshot]:
    """The releases every reader of the audience knows: its own, and those of audiences open to all."""
    return [s for s in snaps if s.audience_id == audience_id or protocol.audience(s.audience_id).open_to_all]


def related_releases(store: Store, protocol: Protocol, audience_id: str, months: set[str]) -> list[str]:
    """Earlier releases visible to the audience whose cells cover any of `months`, closed under overlap
    (a year-to-date release brings in its months, which bring in the releases of those months)."""
    ensure_ledger(store.con)
    rows = store.con.execute(
        "SELECT DISTINCT r.release_id, l.span FROM releases r JOIN ledger_cells l USING (release_id) "
        "WHERE r.covenant = ? AND list_contains(?::VARCHAR[], r.audience) ORDER BY 1, 2",
        [protocol.covenant.id, visible_audiences(protocol, audience_id)],
    ).fetchall()
    spans: dict[str, set[str]] = {}
    for release_id, span in rows:
        spans.setdefault(release_id, set()).update(span.split(","))
    wanted, chosen = set(months), set()
    grew = True
    while grew:
        grew = False
        for release_id, covered in spans.items():
            if release_id not in chosen and covered & wanted:
                chosen.add(release_id)
                wanted |= covered
                grew = True
    return sorted(chosen)


# ------------------------------------------------------------------------------------------ combining


@dataclass
class HistoryProblem:
    """The new release and its history as one protection problem.

    The first `new_cells` cells are the new release's, in its own order. `known` (over the new cells) marks
    cells whose value an earlier release already published unchanged: fixed in the model (they add nothing),
    though a cell that fails the new audience's rules is still shown suppressed.
    """

    problem: ProtectionProblem
    new_cells: int
    known: np.ndarray
    earlier: list[str]


class _Builder:
    def __init__(self) -> None:
        self.keys: list[CellKey] = []
        self.columns: dict[str, list] = {
            n: [] for n in ("value", "lower", "upper", "upl", "lpl", "primary", "fixed", "cost", "epoch")
        }
        self.relations: list[tuple[int, tuple[int, ...]]] = []
        self.own: list[Contributions] = []  # every contributor's own contribution to each cell of the combined problem
        self.scale: list[tuple | None] = []  # (monthly quantity, helper?) for the bounds; None: no measure

    def add(self, key: CellKey, scale: tuple | None = None, **cell) -> int:
        self.keys.append(key)
        self.scale.append(scale)
        for column, values in self.columns.items():
            values.append(cell[column])
        return len(self.keys) - 1

    def add_snapshot(self, snap: Snapshot, view: tuple[ViewKind, str] | None, *, new: bool, epoch: int) -> list[int]:
        p = snap.problem
        ids = []
        for i, key in enumerate(p.keys):
            hidden = bool(snap.hidden[i])
            ids.append(
                self.add(
                    key.in_view(*view) if view else key,
                    (key.quantity.monthly, key.is_helper),
                    value=float(p.values[i]),
                    lower=float(p.lower[i]),
                    upper=float(p.upper[i]),
                    upl=float(p.upl[i]),
                    lpl=float(p.lpl[i]),
                    # new cells keep their verdict; earlier cells stay hidden when they were (secondary ones need no
                    # protection, so the model may assume the attacker knows them: that only makes it stricter)
                    primary=bool(p.primary[i]) if new else hidden and bool(p.primary[i]),
                    fixed=bool(p.fixed[i]) if new else not hidden,
                    cost=float(p.cost[i]) if new else 0.0,
                    epoch=epoch,
                )
            )
        self.relations += [(ids[t], tuple(ids[x] for x in parts)) for t, parts in p.relations]
        own = p.insiders
        self.own.append(Contributions(own.names, own.who, np.asarray(ids, dtype=np.int64)[own.cell], own.value))
        return ids

    def widen_bounds(self) -> None:
        """Give every cell of one measure the widest a-priori bounds any snapshot gives it.

        Bounds are relative (a factor times the largest cell of a release), so linked cells of two releases
        would otherwise get the tighter of two bounds, which neither release was protected against; wider
        bounds only weaken the attacker, and the requirement cap rises with them."""
        widest: dict[str, tuple[float, float]] = {}
        for scale, lo, hi in zip(self.scale, self.columns["lower"], self.columns["upper"], strict=True):
            if scale is not None:
                old = widest.get(scale, (lo, hi))
                widest[scale] = (min(old[0], lo), max(old[1], hi))
        for i, scale in enumerate(self.scale):
            if scale is not None:
                self.columns["lower"][i], self.columns["upper"][i] = widest[scale]

    def merge_equal_cells(self, keep_apart: int) -> None:
        """Make cells linked by a one-part relation (`a == b`) one cell.

        Unchanged cells are linked as earlier == current == new; their values come from different float sums,
        and two relations pinning one hidden cell to values 1e-7 apart make the audit LP infeasible. The lowest
        index represents the group (the first `keep_apart` cells, the new release's, are never merged with each
        other, so they keep their places); a published member's value
        is the fact; the group is primary when any member is (and nothing is published), with the largest
        protection and the widest bounds."""
        root = list(range(len(self.keys)))

        def find(x: int) -> int:
            while root[x] != x:
                root[x] = root[root[x]]
                x = root[x]
            return x

        for total, parts in self.relations:
            if len(parts) == 1:
                a, b = sorted((find(total), find(parts[0])))
                if b >= keep_apart:
                    root[b] = a
        groups: dict[int, list[int]] = {}
        for i in range(len(self.keys)):
            groups.setdefault(find(i), []).append(i)
        if len(groups) == len(self.keys):
            return
        keep = sorted(groups)
        position = {r: n for n, r in enumerate(keep)}
        where = [position[find(i)] for i in range(len(self.keys))]
        c = self.columns
        merged: dict[str, list] = {name: [] for name in c}
        for r in keep:
            members = groups[r]
            published = [m for m in members if c["fixed"][m]]
            merged["value"].append(c["value"][published[0] if published else r])
            merged["fixed"].append(bool(published))
            merged["primary"].append(not published and any(c["primary"][m] for m in members))
            for name, pick in (("upl", max), ("lpl", max), ("lower", min), ("upper", max)):
                merged[name].append(pick(c[name][m] for m in members))
            merged["cost"].append(c["cost"][r])
            # published: known since its first publication; hidden: judged by the latest release that must
            # protect it, against everything published before that (each earlier one was judged at its time)
            judges = [m for m in members if c["primary"][m]] or members
            merged["epoch"].append(
                min(c["epoch"][m] for m in published) if published else max(c["epoch"][m] for m in judges)
            )
        self.columns = merged
        self.keys = [self.keys[r] for r in keep]
        self.scale = [self.scale[r] for r in keep]
        self.relations = sorted(
            {
                (where[t], tuple(sorted(where[p] for p in parts)))
                for t, parts in self.relations
                if not (len(parts) == 1 and where[t] == where[parts[0]])
            }
        )
        self.own = [Contributions.concat(self.own).moved(np.asarray(where, dtype=np.int64))]

    def problem(self) -> ProtectionProblem:
        c = {name: np.array(values) for name, values in self.columns.items()}
        primary = c["primary"].astype(bool)
        own = Contributions.concat(self.own)
        return ProtectionProblem(
            keys=self.keys,
            values=c["value"].astype(float),
            relations=self.relations,
            lower=c["lower"].astype(float),
            upper=c["upper"].astype(float),
            upl=np.where(primary, c["upl"], 0.0).astype(float),
            lpl=np.where(primary, c["lpl"], 0.0).astype(float),
            primary=primary,
            cost=c["cost"].astype(float),
            fixed=c["fixed"].astype(bool),
            insiders=own.only(own.largest_in(primary)),
            epoch=c["epoch"].astype(np.int64),
        )


def _linkable(snap: Snapshot, i: int) -> bool:
    """Cells whose current value is a sum of monthly cells: not helper cells, and additive over months when
    they cover several (companies are counted once over months, so a year's count is no sum of months)."""
    return not snap.problem.keys[i].is_helper and (len(snap.spans[i]) == 1 or bool(snap.additive[i]))


def combine(
    new: Snapshot | None,
    earlier: Sequence[Snapshot],
    current: Mapping[str, Snapshot],
    params_of: Callable[[str, str], list[RuleParams]],
) -> HistoryProblem:
    """One problem over the new release (if any), the earlier releases and the current month cells.

    `params_of(table_id, audience_id)` gives the rule sets that judge a change cell of an earlier release to
    that audience: a change is unsafe when any of them says so, with the largest protection."""
    b = _Builder()
    earlier = sorted(earlier, key=lambda snap: (snap.sequence, snap.release_id))
    epochs = _Epochs(new, earlier)
    new_ids = b.add_snapshot(new, None, new=True, epoch=epochs.new) if new is not None else []
    month_cell: dict[tuple[str, CellKey], int] = {}
    month_snaps = {m: s for m, s in sorted(current.items())}
    month_own = {m: s.problem.insiders for m, s in month_snaps.items()}
    month_base = {
        m: {base: i for i, base in enumerate(s.bases) if not s.problem.keys[i].is_helper}
        for m, s in month_snaps.items()
    }
    month_ids = {}
    for m, snap in month_snaps.items():
        month_ids[m] = b.add_snapshot(snap, (ViewKind.CURRENT, m), new=False, epoch=epochs.current(m))
        for i in range(snap.problem.size):
            if not snap.problem.keys[i].is_helper:
                month_cell[(m, snap.bases[i])] = month_ids[m][i]
    earlier_ids = [
        b.add_snapshot(snap, (ViewKind.EARLIER, snap.release_id), new=False, epoch=epochs.of[snap.release_id])
        for snap in earlier
    ]
    b.widen_bounds()  # before the change cells, whose bounds follow from their linked cells'
    unchanged_published: dict[tuple[str, tuple[str, ...]], int] = {}  # -> epoch of its first publication
    for snap, ids in zip(earlier, earlier_ids, strict=True):
        changes = _changes(snap, month_own, month_base)
        bounds = np.searchsorted(changes.cell, np.arange(snap.problem.size + 1)).tolist()
        change_cell = np.full(snap.problem.size, -1, dtype=np.int64)
        for i in range(snap.problem.size):
            if not _linkable(snap, i):
                continue
            parts = [month_cell[(m, snap.bases[i])] for m in snap.spans[i] if (m, snap.bases[i]) in month_cell]
            change = changes.value[bounds[i] : bounds[i + 1]]
            changed = _change_cell(b, snap, i, ids[i], parts, change, params_of, epochs)
            if changed is not None:
                change_cell[i] = changed
            if changed is None and not parts:
                continue  # an empty cell then and now: nothing to link
            b.relations.append((ids[i], tuple(sorted(parts + ([changed] if changed is not None else [])))))
            if changed is None and not snap.hidden[i]:
                first = unchanged_published.get((snap.bases[i], snap.spans[i]), epochs.of[snap.release_id])
                unchanged_published[(snap.bases[i], snap.spans[i])] = min(first, epochs.of[snap.release_id])
        kept = change_cell[changes.cell] >= 0  # each contributor's own change is its contribution to the change cell
        b.own.append(
            Contributions(changes.names, changes.who[kept], change_cell[changes.cell[kept]], changes.value[kept])
        )
    for m, snap in month_snaps.items():
        for i, cell in enumerate(month_ids[m]):
            if (snap.bases[i], (m,)) in unchanged_published:
                b.columns["fixed"][cell], b.columns["primary"][cell] = True, False
                b.columns["epoch"][cell] = unchanged_published[(snap.bases[i], (m,))]
    known = np.zeros(len(new_ids), dtype=bool)
    if new is not None:
        for i in range(new.problem.size):
            if not _linkable(new, i):
                continue
            parts = [month_cell[(m, new.bases[i])] for m in new.spans[i] if (m, new.bases[i]) in month_cell]
            if parts:
                b.relations.append((new_ids[i], tuple(sorted(parts))))
            if (new.bases[i], new.spans[i]) in unchanged_published:
                known[i] = True
                b.columns["fixed"][new_ids[i]], b.columns["primary"][new_ids[i]] = True, False
                b.columns["epoch"][new_ids[i]] = unchanged_published[(new.bases[i], new.spans[i])]
    b.merge_equal_cells(keep_apart=len(new_ids))
    return HistoryProblem(b.problem(), len(new_ids), known, [s.release_id for s in earlier])


class _Epochs:
    """When each cell of the combined problem became known, in release order (ProtectionProblem.epoch).

    Earlier releases count 1, 2, ... in ledger order and the new release comes last. A month's current
    cells date from the latest release covering that month; a change to an earlier cell from the first
    release after it that touches its months: only from then on could anyone subtract the two."""

    def __init__(self, new: Snapshot | None, earlier: Sequence[Snapshot]):
        self.of = {snap.release_id: n for n, snap in enumerate(earlier, start=1)}
        self.new = len(earlier) + 1
        self.months: list[tuple[int, set[str]]] = [
            (self.of[snap.release_id], {m for span in snap.spans for m in span}) for snap in earlier
        ]
        if new is not None:
            self.months.append((self.new, {m for span in new.spans for m in span}))

    def current(self, month: str) -> int:
        return max((e for e, months in self.months if month in months), default=self.new)

    def change(self, snap: Snapshot, i: int) -> int:
        after = [e for e, months in self.months if e > self.of[snap.release_id] and months & set(snap.spans[i])]
        return min(after, default=self.new + 1)


def _changes(
    snap: Snapshot, month_own: Mapping[str, Contributions], month_base: Mapping[str, dict[CellKey, int]]
) -> Contributions:
    """Per linkable cell of an earlier release, each contributor's own change: its contribution then minus
    its contributions now to the current cells of the same base over the months the cell spans (added up in
    the order of the months), where that is not ~0 (1e-9 of the cell). Sorted by cell, then contributor."""
    then = snap.problem.insiders
    size = snap.problem.size
    linkable = np.fromiter((_linkable(snap, i) for i in range(size)), dtype=bool, count=size)
    links: dict[str, list[tuple[int, int, int]]] = {}  # month -> (earlier cell, current cell, place in the span)
    for i in np.flatnonzero(linkable).tolist():
        for k, m in enumerate(snap.spans[i]):
            j = month_base.get(m, {}).get(snap.bases[i])
            if j is not None:
                links.setdefault(m, []).append((i, j, k))
    batches = [then]
    places = [np.zeros(len(then.cell), dtype=np.int64)]
    for m, triples in sorted(links.items()):
        now, pairs = month_own[m], np.array(triples, dtype=np.int64)
        record, link = incidences(now.cell, pairs[:, 1])
        batches.append(Contributions(now.names, now.who[record], pairs[link, 0], now.value[record]))
        places.append(pairs[link, 2])
    joined = Contributions.concat(batches)
    names, who, cell, value = joined.names, joined.who, joined.cell, joined.value
    is_then = np.zeros(len(cell), dtype=bool)
    is_then[: len(then.cell)] = True
    keep = linkable[cell]
    who, cell, value, is_then, place = who[keep], cell[keep], value[keep], is_then[keep], np.concatenate(places)[keep]
    # per (cell, contributor): then - (0.0 + now_1 + now_2 ...), the months added in span order as record by
    # record (bincount adds in input order)
    order = lexsort((place, who, cell))
    who, cell, value, is_then = who[order], cell[order], value[order], is_then[order]
    pair = np.r_[True, (who[1:] != who[:-1]) | (cell[1:] != cell[:-1])] if len(cell) else np.zeros(0, dtype=bool)
    group = np.cumsum(pair) - 1
    then_value = np.zeros(int(pair.sum()))
    then_value[group[is_then]] = value[is_then]
    change = then_value - np.bincount(group[~is_then], weights=value[~is_then], minlength=len(then_value))
    first = np.flatnonzero(pair)
    scale = np.maximum(1.0, np.abs(snap.problem.values.astype(float)))
    changed = np.abs(change) > 1e-9 * scale[cell[first]]
    return Contributions(names, who[first][changed], cell[first][changed], change[changed])


def _change_cell(
    b: _Builder,
    snap: Snapshot,
    i: int,
    old: int,
    parts: list[int],
    change: np.ndarray,
    params_of: Callable[[str, str], list[RuleParams]],
    epochs: _Epochs,
) -> int | None:
    """The hidden cell 'earlier value minus current value' of one earlier cell, or None when nothing changed.

    Its contributions are each contributor's own `change` (_changes); the rules judge the changed
    contributors' absolute changes, so a late company alone in a change is a threshold case however large
    the cell is."""
    scale = max(1.0, abs(float(snap.problem.values[i])))
    current_value = sum(b.columns["value"][p] for p in parts)
    value = float(snap.problem.values[i]) - current_value
    if not len(change) and abs(value) <= 1e-9 * scale:
        return None
    verdict = _judge_change(change.tolist(), params_of(snap.tables[i], snap.audience_id))
    # A-priori range: from the earlier cell's bounds (its value when it was published: a fact) and the current
    # cells' bounds. The requirement is capped at what an attacker who knows the earlier value could reach
    # at most (its sole contributor does): beyond that the audit would ask for the impossible, as it caps
    # requirements at a-priori bounds for any other cell. Capping a requirement tells the attacker nothing.
    hidden_before = bool(snap.hidden[i])
    earlier_value = b.columns["value"][old]
    old_lo = b.columns["lower"][old] if hidden_before else earlier_value
    old_hi = b.columns["upper"][old] if hidden_before else earlier_value
    current_lo = sum(b.columns["lower"][p] for p in parts)
    current_hi = sum(b.columns["upper"][p] for p in parts)
    upl = min(verdict[1], max(0.0, earlier_value - current_lo - value))
    lpl = min(verdict[1], max(0.0, value - (earlier_value - current_hi)))
    cell = b.add(
        snap.problem.keys[i].in_view(ViewKind.CHANGE, snap.release_id),
        value=value,
        lower=min(old_lo - current_hi, value),
        upper=max(old_hi - current_lo, value),
        upl=upl,
        lpl=lpl,
        primary=verdict[0],
        fixed=False,
        cost=0.0,
        epoch=epochs.change(snap, i),
    )
    return cell


def _judge_change(changes: list[float], rule_sets: list[RuleParams]) -> tuple[bool, float]:
    """(unsafe, protection) of a change cell: the primary rules on the changed contributors' |changes|."""
    if not changes:
        return False, 0.0
    sizes = sorted((abs(v) for v in changes), reverse=True)
    unsafe, protection = False, 0.0
    for params in rule_sets:
        top = np.zeros((1, params.top_k))
        top[0, : min(len(sizes), params.top_k)] = sizes[: params.top_k]
        stats = CellStats(
            total=np.array([sum(sizes)]),
            n=np.array([len(sizes)]),
            top=top,
            waived=np.zeros(1),
            n_all=np.array([len(sizes)]),
            has_negative=np.zeros(1, dtype=bool),
        )
        result = evaluate_primary(stats, replace(params, negative_values="absolute"))
        unsafe |= bool(result.unsafe[0])
        protection = max(protection, float(result.upl[0]), float(result.lpl[0]))
    return unsafe, protection


# ------------------------------------------------------------------------------------------ auditing


def audit_history(
    store: Store, protocol: Protocol, audience_id: str, *, own_only: bool = False
) -> tuple[HistoryProblem, AuditResult]:
    """Audit every release visible to the audience together, against the data in the store now.

    Published cells are fixed facts; hidden cells, changes and current cells are unknown. A passing result
    means no combination of everything released so far narrows a protected cell too far beyond what was
    known before the release that protects it. `own_only`: the view of a reader of this audience alone.
    """
    ensure_ledger(store.con)
    spans = store.con.execute("SELECT DISTINCT span FROM ledger_cells").fetchall()
    all_months = {m for (span,) in spans for m in span.split(",")}
    releases = related_releases(store, protocol, audience_id, all_months)
    earlier = [load_snapshot(store, r) for r in releases]
    if own_only:
        earlier = own_readers_view(protocol, audience_id, earlier)
    combined = history_for(store, protocol, audience_id, None, earlier)
    return combined, audit(combined.problem, ~combined.problem.fixed)


def history_for(
    store: Store,
    protocol: Protocol,
    audience_id: str,
    new: Snapshot | None,
    earlier: Sequence[Snapshot],
    waived: Mapping[str, frozenset[str]] | None = None,
) -> HistoryProblem:
    """Build the current month cells the new release and the earlier ones need, and combine everything.

    With a new release the current cells are judged by its audience's rules; without one (auditing the
    ledger) by the loosest rules of the audiences that received the releases."""
    snaps = ([new] if new is not None else []) + list(earlier)
    months = sorted({m for s in snaps for span in s.spans for m in span})
    tables = sorted({t for s in snaps for t in s.tables if t} & {t.id for t in protocol.tables})
    judges = [audience_id] if new is not None else sorted({s.audience_id for s in earlier}) or [audience_id]
    current = {m: current_snapshot(store, protocol, judges, m, tables, waived or {}) for m in months}

    def change_rules(table_id: str, earlier_audience: str) -> list[RuleParams]:
        # A release must not let its own audience subtract what its rules protect, nor let anyone learn more
        # about a change to an earlier release than that release's audience may; the ledger audit checks what
        # every release enforced at least: the earlier audience's rules.
        judges = {earlier_audience} | ({audience_id} if new is not None else set())
        return [params_for(protocol, table_id, a) for a in sorted(judges)]

    return combine(new, earlier, current, change_rules)


__all__ = [
    "HistoryProblem",
    "HistoryRefused",
    "ReleaseDetail",
    "Snapshot",
    "UnknownRelease",
    "audit_history",
    "combine",
    "compute_cells",
    "current_snapshot",
    "ensure_ledger",
    "history_for",
    "active_waiver_exists",
    "list_releases",
    "list_waivers",
    "own_readers_view",
    "load_snapshot",
    "params_for",
    "record_snapshot",
    "related_releases",
    "show_release",
    "snapshot_of",
    "visible_audiences",
]


@dataclass
class ReleaseAudit:
    """A recorded release audited again: on its own, together with everything its audience may know, and
    with only its own audience's releases (the view of a reader who sees no other audience's)."""

    release_id: str
    alone: AuditResult
    with_history: AuditResult
    own_audience: AuditResult
    cells: int
    hidden: int


def audit_release(store: Store, protocol: Protocol, release_id: str, now: str) -> ReleaseAudit:
    """Re-run the audit of a recorded release from the ledger (true values are kept in the encrypted store)."""
    snap = load_snapshot(store, release_id)
    alone = audit(snap.problem, snap.hidden)
    _, together = audit_history(store, protocol, snap.audience_id)
    _, own = audit_history(store, protocol, snap.audience_id, own_only=True)
    result = ReleaseAudit(release_id, alone, together, own, snap.problem.size, int(snap.hidden.sum()))
    details = {"release": release_id, "alone": alone.passed, "with_history": together.passed, "own": own.passed}
    failures = len(alone.failures) + len(together.failures) + len(own.failures)
    action_log.append(store, "audit.run", details | {"failures": failures}, now)
    return result
