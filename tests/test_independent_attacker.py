"""An attacker of its own (issue 17): it reads only what the releases publish and builds its own linear programs
with highspy, then checks every figure the rules protect against what it can derive.

The run is the demo's: the sample data of both covenants, the committee's releases of three months, the public
annual report of the last one and (textile) a revision of February when its late company's file arrives, plus
one case the sample lacks (crafted_companies: a published count of companies bounds hidden locations). The
attacker reads the Parquet files (values, and the range shown for a hidden cell) and the manifests of every
release, the public protocol (hierarchies and rules) and what any reader knows of the domain: a hidden count is
at least 1, companies with locations in a country are at most those locations. It knows which releases were
built from the same figures (only a revision changes them), which only makes it stronger. Nothing of
`aggregator.disclosure` is used: the judge of what must stay protected is the test's own reading of the
submitted figures (carry-forward included) and its own code of the primary rules, applied per reader class
(committee members hold the committee's and the public's releases and are protected by the committee's rules;
the public holds the public report), to every hidden cell, against the outsider and each largest contributor,
and to the difference of every cell between two months (or two versions of a month).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import highspy
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from highspy._core import _Highs

from aggregator import batch
from aggregator.protocol import load_protocol
from aggregator.release import write_release
from support.sample_store import sample_store, sample_tables, submit_rows

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-06-01T00:00:00Z"
MONTHS = ("2025-01", "2025-02", "2025-03")
COMMITTEE, PUBLIC = "monitoring_committee", "public"
TOTAL = "_T"
# What every reader of the domain knows beyond the sums (the committee's tables): smaller <= larger, cells matched
# by their codes (a dimension only the larger table has at its total).
RELATIONS = {"textile": [("companies_per_country", "locations_by_region_type")], "gold": []}
TOL = 1e-6


# ------------------------------------------------------------------------------- the run


@dataclass
class Published:
    """One release as its readers get it, and (for the judge only) the figures it was built from."""

    covenant: str
    audience: str
    period: str
    version: str  # which figures of the month it shows: a revision shows newer ones
    folder: Path
    manifest: dict
    tables: dict[str, pd.DataFrame]  # table id -> dimension codes, value (NaN when hidden), status
    figures: dict[str, pd.DataFrame]  # template -> the rows of the month it counted


def carried(frames: dict[str, pd.DataFrame], month: str, carry: bool) -> dict[str, pd.DataFrame]:
    """The month's rows per template; with `carry` (the protocol's non_response = "carry_forward"), every
    company missing that month counts with its latest earlier month's rows: the test's own reading of it."""
    out = {}
    for template, rows in frames.items():
        here = rows[rows["period"] == month]
        if not carry:
            out[template] = here
            continue
        earlier = rows[(rows["period"] < month) & ~rows["company_id"].isin(here["company_id"])]
        latest = earlier.groupby("company_id")["period"].transform("max") == earlier["period"]
        out[template] = pd.concat([here, earlier[latest].assign(period=month)], ignore_index=True)
    return out


def read_release(folder: Path, covenant: str, audience: str, period: str, version: str, figures) -> Published:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:  # the files are those the manifest lists
        assert hashlib.sha256((folder / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    tables = {}
    for path in sorted((folder / "parquet").glob("*.parquet")):
        table = pq.read_table(path)
        meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items() if k != b"ARROW:schema"}
        frame = table.to_pandas()
        frame.attrs["kind"] = meta["kind"]
        frame.attrs["decimals"] = int(meta["decimals"])
        tables[meta["table_id"]] = frame
    return Published(covenant, audience, period, version, folder, manifest, tables, figures)


@dataclass
class Run:
    releases: list[Published] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    groups: dict[str, dict[str, str]] = field(default_factory=dict)  # covenant -> company -> group
    waived: dict[str, set[str]] = field(default_factory=dict)  # covenant -> groups all of whose companies waived


def crafted_companies(store, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A case the sample lacks: nine companies source from Uzbekistan, one of them with 30 of the 38
    locations. The count of companies (nine) is safe, the count of locations is not (dominance), and a
    published nine would tell every reader that the hidden locations are at least nine."""
    ids = [f"Z{n:02d}" for n in range(1, 10)]
    for company in ids:
        store.con.execute("INSERT INTO companies VALUES (?, ?, ?, ['textile'], 'active', NULL, 'x')", [company] * 3)
    rows = []
    for month in MONTHS:
        for company in ids:
            for n in range(30 if company == "Z01" else 1):
                rows.append((company, month, f"{company}-UZ-{n}", "UZ", "cut_make_trim", 1, "1-50", 100, 1000.0))
    columns = ["company_id", "period", "facility_id", "country", "facility_type", "tier", "workers_band",
               "order_volume_pieces", "order_value_eur"]  # fmt: skip
    crafted = pd.DataFrame(rows, columns=columns)
    submit_rows(store, "textile", "production_locations", pa_table(crafted), tag="crafted")
    frames["production_locations"] = pd.concat([frames["production_locations"], crafted], ignore_index=True)
    return pd.DataFrame({"company_id": ids, "group_id": ids, "waiver": "no"})


def release_all(store, covenant: str, out: Path, run: Run) -> None:
    protocol = load_protocol(ROOT / "protocols" / f"{covenant}.toml")
    data = sample_tables(covenant)
    frames = {t: table.to_pandas() for t, table in data.tables.items()}
    companies = data.companies.to_pandas()
    if covenant == "textile":
        companies = pd.concat([companies, crafted_companies(store, frames)], ignore_index=True)
    run.groups[covenant] = dict(zip(companies["company_id"], companies["group_id"], strict=True))
    waiving = companies.groupby("group_id")["waiver"].agg(lambda w: bool((w == "yes").all()))
    run.waived[covenant] = set(waiving[waiving].index)
    plan = [(m, COMMITTEE, False) for m in MONTHS] + [(MONTHS[-1], PUBLIC, False)]
    if covenant == "textile":
        plan.append((MONTHS[1], COMMITTEE, True))
    for clock, (month, audience, revision) in enumerate(plan):
        version = month
        if revision:  # the company missing in February sends its file late: January's, one location fewer
            frames, version = late_file(store, covenant, frames, month), f"{month}-revised"
        folder = out / covenant / month / audience
        try:
            batch.release_audience(store, protocol, month, audience, now=f"{NOW[:-3]}{clock:02d}Z",
                                   revision=revision, write=lambda r: write_release(r, out))  # fmt: skip
        except Exception as refused:  # noqa: BLE001 - a refusal is recorded and asserted on below
            run.refused.append(f"{covenant} {month} {audience}: {refused}")
            continue
        carry = getattr(protocol, "non_response", "exclude") == "carry_forward"
        run.releases.append(read_release(folder, covenant, audience, month, version, carried(frames, month, carry)))


def late_file(store, covenant: str, frames: dict[str, pd.DataFrame], month: str) -> dict[str, pd.DataFrame]:
    rows = frames["production_locations"]
    late = sorted(set(rows["company_id"]) - set(rows.loc[rows["period"] == month, "company_id"]))[0]
    updated = {}
    for template, table in frames.items():
        sent = table[(table["company_id"] == late) & (table["period"] < month)]
        sent = sent[sent["period"] == sent["period"].max()].assign(period=month)
        if template == "production_locations":
            sent = sent.iloc[1:]  # one facility closed
        submit_rows(store, covenant, template, pa_table(sent), tag="late")
        updated[template] = pd.concat([table, sent], ignore_index=True)
    return updated


def pa_table(frame: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("attacker")
    result = Run()
    with sample_store(root / "s.duckdb") as store:
        for covenant in ("textile", "gold"):
            release_all(store, covenant, root / "out", result)
    return result


# ------------------------------------------------------------------------------- the judge: figures and rules


def ancestors(protocol, dimension, code: str) -> list[str]:
    """The cells a row's code counts in along one dimension: the code, its groups and the total."""
    if dimension.hierarchy is None:
        return [code, TOTAL]
    return [*protocol.hierarchy(dimension.hierarchy).path(code), TOTAL]


def parent(protocol, dimension, code: str) -> str | None:
    if code == TOTAL:
        return None
    if dimension.hierarchy is None:
        return TOTAL
    path = protocol.hierarchy(dimension.hierarchy).path(code)
    return path[-2] if len(path) > 1 else TOTAL


def contributions(protocol, table_id: str, rows: pd.DataFrame, groups: dict[str, str]) -> dict[tuple, pd.Series]:
    """Each cell's contributions (codes in the table's dimension order -> group -> its own figure)."""
    spec = protocol.table(table_id)
    for f in spec.filters:
        rows = rows[rows[f.column] == f.equals]
    kind = spec.measure.kind
    if kind == "sum":
        operand = spec.measure.value
        own = rows[operand.column] * (rows[operand.weight] if operand.weight else 1.0)
    else:
        own = pd.Series(1.0, index=rows.index)
    frame = pd.DataFrame({"group": rows["company_id"].map(groups), "own": own.astype(float)})
    dims = [d.column for d in spec.dimensions]
    for d in spec.dimensions:
        frame[d.column] = [ancestors(protocol, d, str(c)) for c in rows[d.column]]
    for d in dims:
        frame = frame.explode(d)
    summed = frame.groupby([*dims, "group"])["own"].agg("max" if kind == "companies" else "sum")
    if not dims:
        return {(): summed.droplevel(list(range(summed.index.nlevels - 1)))}
    return {cell if isinstance(cell, tuple) else (cell,): part.droplevel(dims)
            for cell, part in summed.groupby(level=dims)}  # fmt: skip


def protection(figures: Iterable[float], settings) -> float:
    """The protection the primary rules ask for a cell made of these contributions (the non-waived ones, by
    absolute value); 0 when safe. The rules written here again: threshold, (n,k)-dominance, p% and (p,q), with
    their boundaries (equal is safe)."""
    x = np.sort(np.abs(np.array(list(figures), dtype=float)))[::-1]
    n = len(x)
    if n == 0:
        return 0.0
    total = float(x.sum())
    asked = []
    if n < settings.min_contributors:
        asked.append(max(settings.safety_range_percent / 100.0 * total, 1.0))
    for top, k in settings.dominance:
        share = float(x[:top].sum())
        asked.append(100.0 / k * share - total)
    rules = []
    if settings.p_percent:
        rules.append((settings.p_percent[0] / 100.0, settings.p_percent[1]))
    if settings.pq:
        rules.append((settings.pq[0] / settings.pq[1], settings.pq[2]))
    for ratio, coalition in rules:
        asked.append(ratio * x[0] - (total - float(x[: coalition + 1].sum())))
    scale = 1e-9 * max(1.0, total)
    return max([a for a in asked if a > scale], default=0.0)


def cell_protection(cell: pd.Series, settings, waived: set[str]) -> float:
    return protection(cell[~cell.index.isin(waived)].tolist(), settings)


# ------------------------------------------------------------------------------- the attacker's linear programs


class Knowledge:
    """What a reader class knows, as linear rows over the cells of every release it holds: a cell is (figures
    version, table, codes); published values are fixed; each total is the sum of its parts (at most the sum,
    and at least each part, for counts of companies); a hidden count is at least 1; the domain's relations."""

    def __init__(self, protocol, covenant: str, releases: list[Published]):
        self.protocol, self.covenant = protocol, covenant
        self.index: dict[tuple, int] = {}
        self.floor: list[float] = []
        self.least: list[float] = []  # what any reader knows without a published value: 1 for a count
        self.ceiling: dict[int, float] = {}  # a published sum is known to half a unit of its last decimal
        self.fixed: dict[int, float] = {}
        self.rows: list[tuple[dict[int, float], float, float]] = []  # coefficients, lower, upper
        done: set[tuple[str, str]] = set()
        for release in releases:
            for table_id, frame in sorted(release.tables.items()):
                if frame.attrs["kind"] == "ratio":
                    continue  # a bare ratio: its parts are never published
                cells = self._cells(release.version, table_id, frame)
                if (release.version, table_id) not in done:
                    done.add((release.version, table_id))
                    self._sums(release.version, table_id, frame.attrs["kind"], cells)
        for version in sorted({r.version for r in releases}):
            self._relations(version)

    def var(self, key: tuple) -> int | None:
        return self.index.get(key)

    def _cells(self, version: str, table_id: str, frame: pd.DataFrame) -> list[tuple]:
        dims = [d.column for d in self.protocol.table(table_id).dimensions]
        counts = frame.attrs["kind"] in ("count", "companies")
        half = 0.0 if counts else 0.5 * 10.0 ** -frame.attrs["decimals"]  # counts are whole numbers: exact
        cells = []
        # a hidden cell may be published as a range (lower, upper): the reader holds it too
        ranges = zip(*(frame[c] if c in frame else [np.nan] * len(frame) for c in ("lower", "upper")), strict=True)
        for codes, value, (low, high) in zip(
            frame[dims].itertuples(index=False, name=None), frame["value"], ranges, strict=True
        ):
            key = (version, table_id, tuple(codes))
            if key not in self.index:
                self.index[key] = len(self.floor)
                self.least.append(1.0 if counts else 0.0)  # the release lists only non-empty cells
                self.floor.append(self.least[-1])
            i = self.index[key]
            if np.isnan(value):
                if not np.isnan(low):
                    self.floor[i] = max(self.floor[i], float(low))
                if not np.isnan(high):
                    self.ceiling[i] = min(self.ceiling.get(i, np.inf), float(high))
            elif half == 0.0:
                old = self.fixed.setdefault(i, float(value))
                assert abs(old - value) <= TOL * max(1.0, abs(value)), ("one cell, two values", key)
            else:
                self.floor[i] = max(self.floor[i], float(value) - half)
                self.ceiling[i] = min(self.ceiling.get(i, np.inf), float(value) + half)
            cells.append(tuple(codes))
        return cells

    def _sums(self, version: str, table_id: str, kind: str, cells: list[tuple]) -> None:
        spec = self.protocol.table(table_id)
        children: dict[tuple, list[tuple]] = {}
        for cell in cells:
            for d, dimension in enumerate(spec.dimensions):
                up = parent(self.protocol, dimension, cell[d])
                if up is not None:
                    children.setdefault((d, (*cell[:d], up, *cell[d + 1 :])), []).append(cell)
        for (_, total), parts in sorted(children.items()):
            t = self.index.get((version, table_id, total))
            if t is None:
                continue
            p = [self.index[(version, table_id, c)] for c in parts]
            if kind == "companies":  # a company in two parts counts once in the total
                self.rows.append(({t: 1.0, **{i: -1.0 for i in p}}, -np.inf, 0.0))
                self.rows += [({t: 1.0, i: -1.0}, 0.0, np.inf) for i in p]
            else:
                self.rows.append(({t: 1.0, **{i: -1.0 for i in p}}, 0.0, 0.0))

    def _relations(self, version: str) -> None:
        for small, large in RELATIONS[self.covenant]:
            large_dims = [d.column for d in self.protocol.table(large).dimensions]
            small_dims = [d.column for d in self.protocol.table(small).dimensions]
            for (v, table, codes), i in list(self.index.items()):
                if v != version or table != small:
                    continue
                at = dict(zip(small_dims, codes, strict=True))
                j = self.index.get((version, large, tuple(at.get(c, TOTAL) for c in large_dims)))
                if j is not None:
                    self.rows.append(({i: 1.0, j: -1.0}, -np.inf, 0.0))


class Attack:
    """Intervals of every hidden cell, for the outsider or a contributor who knows its own figures: one LP per
    group of hidden cells linked by rows, warm-started for each bound."""

    def __init__(self, knowledge: Knowledge):
        self.k = knowledge
        n = len(knowledge.floor)
        parent_of = list(range(n))

        def find(a: int) -> int:
            while parent_of[a] != a:
                parent_of[a] = parent_of[parent_of[a]]
                a = parent_of[a]
            return a

        for coefs, _, _ in knowledge.rows:
            free = [i for i in coefs if i not in knowledge.fixed]
            for i in free[1:]:
                a, b = find(free[0]), find(i)
                if a != b:
                    parent_of[max(a, b)] = min(a, b)
        groups: dict[int, list[int]] = {}
        for i in range(n):
            if i not in knowledge.fixed:
                groups.setdefault(find(i), []).append(i)
        self.groups = [np.array(g) for _, g in sorted(groups.items())]
        self.group_of = {int(i): g for g, members in enumerate(self.groups) for i in members}
        self.rows_of: dict[int, list[int]] = {}
        for r, (coefs, _, _) in enumerate(knowledge.rows):
            free = [i for i in coefs if i not in knowledge.fixed]
            if free:
                self.rows_of.setdefault(self.group_of[free[0]], []).append(r)
        self.witness: dict[tuple[int, int, bool], np.ndarray] = {}  # the outsider's optimum per cell and sense
        self.truth = np.zeros(n)  # the true values (the judge's), for pulling optima towards them

    def witnessed(self, cell: int, maximise: bool, floor_of) -> float | None:
        """A value of the cell the attacker cannot rule out: the outsider's optimum x pulled towards the truth v
        until it respects the attacker's own figures (v + s(x - v) lies in both feasible sets, which are
        convex). `floor_of(group)`: the attacker's lower bounds over the group's cells."""
        g = self.group_of[cell]
        x = self.witness.get((g, cell, maximise))
        if x is None:
            return None
        floor, v = floor_of(g), self.truth[self.groups[g]]
        below = x < floor - TOL
        s = float(np.min((v[below] - floor[below]) / (v[below] - x[below]), initial=1.0))
        col = int(np.searchsorted(self.groups[g], cell))
        return float(v[col] + max(0.0, min(1.0, s)) * (x[col] - v[col]))

    def _model(self, g: int, cells: np.ndarray, floor: np.ndarray):
        local = {int(c): k for k, c in enumerate(cells)}
        start, index, value, lower, upper = [0], [], [], [], []
        for r in self.rows_of.get(g, []):
            coefs, lo, hi = self.k.rows[r]
            known = sum(c * self.k.fixed[i] for i, c in coefs.items() if i in self.k.fixed)
            for i, c in coefs.items():
                if i not in self.k.fixed:
                    index.append(local[i])
                    value.append(c)
            start.append(len(index))
            lower.append(lo - known)
            upper.append(hi - known)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(cells), len(lower)
        lp.col_cost_ = np.zeros(len(cells))
        ceiling = np.array([self.k.ceiling.get(int(c), np.inf) for c in cells])
        lp.col_lower_, lp.col_upper_ = floor, np.where(np.isinf(ceiling), highspy.kHighsInf, ceiling)
        lp.row_lower_ = np.where(np.isinf(lower), -highspy.kHighsInf, lower)
        lp.row_upper_ = np.where(np.isinf(upper), highspy.kHighsInf, upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_, lp.a_matrix_.index_ = np.array(start), np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(value, dtype=float)
        h = _Highs()  # the plain binding: no Python callback on each of thousands of small solves
        for option, value in (("output_flag", False), ("presolve", "off"), ("threads", 1), ("random_seed", 0)):
            h.setOptionValue(option, value)
        h.passModel(lp)
        return h


def _optimise(h, n: int, col: int, maximise: bool) -> tuple[float, np.ndarray | None]:
    cost = np.zeros(n)
    cost[col] = 1.0
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize if maximise else highspy.ObjSense.kMinimize)
    h.run()
    status = h.getModelStatus()
    if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kUnbounded):
        h.clearSolver()  # a warm start can stall on badly scaled rows: believe only a cold start's verdict
        h.run()
        status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kUnbounded:
        return (np.inf if maximise else -np.inf), None
    assert status == highspy.HighsModelStatus.kOptimal, status
    x = np.array(h.getSolution().col_value)
    return float(x[col]), x


class View:
    """One attacker's bounds of the hidden cells, solved when first asked. A contributor knows each cell it has
    a record in is at least its own figure; the outsider's optima (pulled towards the truth) answer many of its
    questions without a solve ("quick": a value it cannot rule out, so its bound reaches at least that far)."""

    def __init__(self, attack: Attack, own: dict[int, float] | None = None):
        self.attack, self.own = attack, own or {}
        self.exact: dict[tuple[int, bool], float] = {}
        self.models: dict[int, object] = {}
        self.floors: dict[int, np.ndarray] = {}

    def floor_of(self, g: int) -> np.ndarray:
        if g not in self.floors:
            cells = self.attack.groups[g]
            self.floors[g] = np.array([max(self.attack.k.floor[i], self.own.get(int(i), 0.0)) for i in cells])
        return self.floors[g]

    def bound(self, cell: int, maximise: bool, quick: bool = False) -> float:
        known = self.attack.k.fixed
        if cell in known:
            return known[cell]
        if (cell, maximise) in self.exact:
            return self.exact[(cell, maximise)]
        if quick and self.own:
            value = self.attack.witnessed(cell, maximise, self.floor_of)
            if value is not None:
                return value
        g = self.attack.group_of[cell]
        if g not in self.models:
            self.models[g] = self.attack._model(g, self.attack.groups[g], self.floor_of(g))
        n = len(self.attack.groups[g])
        value, x = _optimise(self.models[g], n, int(np.searchsorted(self.attack.groups[g], cell)), maximise)
        if not self.own and x is not None:
            self.attack.witness[(g, cell, maximise)] = x
        self.exact[(cell, maximise)] = value
        return value

    def interval(self, target: Target, quick: bool) -> tuple[float, float]:
        """The attacker's [lo, hi] of a cell, or of a difference (later minus earlier)."""
        if len(target.cells) == 1:
            return self.bound(target.cells[0], False, quick), self.bound(target.cells[0], True, quick)
        first, second = target.cells
        lo = self.bound(second, False, quick) - self.bound(first, True, quick)
        return lo, self.bound(second, True, quick) - self.bound(first, False, quick)


# ------------------------------------------------------------------------------- what must stay protected


HOLDS = {COMMITTEE: (COMMITTEE, PUBLIC), PUBLIC: (PUBLIC,)}  # a committee member also reads the annual report


@dataclass
class Target:
    what: str
    cells: tuple[int, ...]  # one cell, or (earlier, later) for a difference
    value: float
    need: float  # the protection the reader class's rules ask, both ways
    contributors: set[str]  # groups with a record in the cell, or whose figures differ
    largest: str
    high: float = np.inf  # the upward requirement's cap: the protocol's a-priori bound


class Judge:
    """One reader class of one covenant: what it holds, the truth behind it and its rules."""

    def __init__(self, run: Run, covenant: str, reader_class: str):
        self.protocol = load_protocol(ROOT / "protocols" / f"{covenant}.toml")
        self.reader_class = reader_class
        self.releases = [r for r in run.releases if r.covenant == covenant and r.audience in HOLDS[reader_class]]
        self.groups, self.waived = run.groups[covenant], run.waived[covenant]
        self.knowledge = Knowledge(self.protocol, covenant, self.releases)
        self.figures = {r.version: r.figures for r in self.releases}
        self._truth: dict[tuple[str, str], dict[tuple, pd.Series]] = {}
        self._bare: Attack | None = None
        self._floors: dict[int, float] = {}

    def truth(self, version: str, table_id: str) -> dict[tuple, pd.Series]:
        if (version, table_id) not in self._truth:
            rows = self.figures[version][self.protocol.table(table_id).template]
            self._truth[(version, table_id)] = contributions(self.protocol, table_id, rows, self.groups)
        return self._truth[(version, table_id)]

    def largest(self, version: str, table_id: str) -> float:
        """The largest cell of the table (the protocol's a-priori upper bound is a factor of it)."""
        key = ("largest", version, table_id)
        if key not in self._truth:
            self._truth[key] = max(abs(float(c.sum())) for c in self.truth(version, table_id).values())
        return self._truth[key]

    def settings(self, table_id: str):
        return self.protocol.settings(table_id, self.reader_class)

    def cells(self) -> tuple[list[Target], list[str]]:
        """Every cell the class's rules protect: hidden ones as targets, published ones as failures."""
        targets, published = [], []
        for (version, table_id, codes), i in sorted(self.knowledge.index.items()):
            truth = self.truth(version, table_id)
            cell = truth[codes]
            need = cell_protection(cell, self.settings(table_id), self.waived)
            if need <= 0:
                continue
            what = f"{table_id} {version} {'/'.join(codes)}"
            if i in self.knowledge.fixed:
                published.append(f"{what} is published although the rules protect it")
                continue
            high = self.settings(table_id).apriori_upper_factor * self.largest(version, table_id)
            largest = str(cell.abs().idxmax())
            targets.append(Target(what, (i,), float(cell.sum()), need, set(cell.index), largest, high))
        return targets, published

    def differences(self) -> list[Target]:
        """The change of every cell between two versions of the figures (months, or a month and its revision)
        the class holds, where so few companies' figures differ that the rules protect it."""
        versions = sorted(self.figures)
        targets = []
        for a, first in enumerate(versions):
            for second in versions[a + 1 :]:
                targets += self._pair(first, second)
        return targets

    def _pair(self, first: str, second: str) -> list[Target]:
        out = []
        for (version, table_id, codes), j in sorted(self.knowledge.index.items()):
            i = self.knowledge.var((first, table_id, codes))
            if version != second or i is None:
                continue
            before, after = self.truth(first, table_id)[codes], self.truth(second, table_id)[codes]
            change = after.sub(before, fill_value=0.0)
            change = change[change.abs() > 1e-9 * max(1.0, abs(before.sum()), abs(after.sum()))]
            need = protection(change.tolist(), self.settings(table_id)) if len(change) else 0.0
            if need > 0:
                what = f"{table_id} {'/'.join(codes)} from {first} to {second}"
                value = float(after.sum() - before.sum())
                out.append(Target(what, (i, j), value, need, set(change.index), str(change.abs().idxmax())))
        return out

    def structural_floor(self, cell: int) -> float:
        """The least value of a cell when nothing is published: what the releases' lists of non-empty cells and
        the sums imply alone (no protection can reach below it)."""
        if self._bare is None:
            bare = Knowledge.__new__(Knowledge)
            bare.__dict__ |= self.knowledge.__dict__ | {"fixed": {}, "ceiling": {}}
            bare.floor = list(self.knowledge.least)
            self._bare, self._floors = Attack(bare), {}
        if cell not in self._floors:
            self._floors[cell] = View(self._bare).bound(cell, False)
        return self._floors[cell]

    def values(self) -> np.ndarray:
        """The true value of every cell of the class's releases."""
        values = np.zeros(len(self.knowledge.floor))
        for (version, table_id, codes), i in self.knowledge.index.items():
            values[i] = float(self.truth(version, table_id)[codes].sum())
        return values

    def own(self, group: str) -> dict[int, float]:
        """The group's own figure in every cell of the class's releases."""
        mine = {}
        for (version, table_id, codes), i in self.knowledge.index.items():
            cell = self.truth(version, table_id)[codes]
            if group in cell.index:
                mine[i] = float(cell[group])
        return mine


def shortfalls(judge: Judge, view: View, targets: list[Target], who: str) -> list[str]:
    """Targets the attacker narrows beyond their protection."""
    failures = []
    for t in targets:
        if who != "outsider" and who in t.contributors:
            continue  # its own cell: the rules' protection already models a contributor attacking the rest
        eps = TOL * max(1.0, abs(t.value) + t.need)
        lo, hi = view.interval(t, quick=True)
        up, down = min(t.value + t.need, t.high), t.value - t.need
        if hi >= up - eps and lo <= down + eps:
            continue
        lo, hi = view.interval(t, quick=False)
        short_up, short_down = hi < up - eps, lo > down + eps
        if short_down and len(t.cells) == 1:
            short_down = lo > judge.structural_floor(t.cells[0]) + eps  # what existence alone implies: no lower
        if short_up or short_down:
            failures.append(f"{who} narrows {t.what} (value {t.value:g}, protection {t.need:g}) to [{lo:g}, {hi:g}]")
    return failures


def attack_class(run: Run, covenant: str, reader_class: str) -> list[str]:
    """Every failure the outsider and each largest contributor find for one reader class."""
    judge = Judge(run, covenant, reader_class)
    cells, failures = judge.cells()
    targets = cells + judge.differences()
    attack = Attack(judge.knowledge)
    attack.truth = judge.values()
    failures += shortfalls(judge, View(attack), targets, "outsider")
    for group in sorted({t.largest for t in targets}):
        own = {i: v for i, v in judge.own(group).items() if i in attack.group_of and v > judge.knowledge.floor[i]}
        touched = {attack.group_of[i] for i in own}
        theirs = [t for t in targets if any(attack.group_of.get(c, -1) in touched for c in t.cells)]
        failures += shortfalls(judge, View(attack, own), theirs, group)
    return failures


# ------------------------------------------------------------------------------- the tests


def test_every_release_of_the_run_is_made_and_only_one_that_would_show_nothing_is_refused(run: Run):
    # issue 17, leak 5: the public rules (ten contributors) are not applied to committee members, who also hold
    # the committee's releases; each reader class is protected by its own rules. Gold's annual report hides every
    # cell under the public rules (sixteen companies), and a release that would show nothing is not made (issue 19).
    assert [r.split(": the ")[0] for r in run.refused] == [f"gold {MONTHS[-1]} {PUBLIC}"]
    assert "would show no figure" in run.refused[0]
    made = {(r.covenant, r.period, r.audience, r.version) for r in run.releases}
    assert ("textile", MONTHS[-1], PUBLIC, MONTHS[-1]) in made
    assert {(c, m) for c, m, a, _ in made if a == COMMITTEE} == {(c, m) for c in ("textile", "gold") for m in MONTHS}
    assert ("textile", MONTHS[1], COMMITTEE, f"{MONTHS[1]}-revised") in made


@pytest.mark.parametrize("covenant", ["textile", "gold"])
@pytest.mark.parametrize("reader_class", [COMMITTEE, PUBLIC])
def test_no_protected_figure_can_be_derived_by_a_reader_class(run: Run, covenant: str, reader_class: str):
    failures = attack_class(run, covenant, reader_class)
    assert failures == [], f"{len(failures)} disclosures, e.g.\n" + "\n".join(failures[:15])


SUBMISSION_TRACES = re.compile(r"submission|plaintext|blake3|received|sealed|company|companies_checked|insider")


def test_manifests_list_the_released_files_and_nothing_from_the_submissions(run: Run):
    # issue 17, leak 4: a manifest may name the released files, their hashes and counts and the protocol, and
    # anchor the action log; no hash or count that follows from the submitted files
    allowed = {"format", "covenant", "period", "audience", "language", "created", "is_revision", "protocol",
               "code_version", "log_head", "files", "tables", "audit_summary"}  # fmt: skip
    for release in run.releases:
        manifest = release.manifest
        assert set(manifest) <= allowed, set(manifest) - allowed
        assert set(manifest["audit_summary"]) <= {"cells", "cells_suppressed", "audit", "audited_with"}
        text = json.dumps(manifest)
        assert not SUBMISSION_TRACES.search(text.replace("companies_per_country", "")), text
        released = {f["sha256"] for f in manifest["files"]} | {manifest["protocol"]["sha256"]}
        anchor = manifest["log_head"].split(":")[1]
        for digest in re.findall(r"[0-9a-f]{64}", text):
            assert digest in released or digest == anchor, f"{digest} in {release.folder}/manifest.json"
