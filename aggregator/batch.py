"""The monthly batch: aggregate -> primary rules -> secondary suppression -> audit -> release -> ledger.

`protect_release` is the disclosure pipeline for one audience and is shared with the standalone `protect`
mode; `run_batch` adds the protocol's release controls (data age, frequency), writes the files and records
every published cell in the ledger. Nothing is written unless the audit passed.
"""

from __future__ import annotations

import functools
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from imvo_submit.periods import Period
from imvo_submit.states import CellStatus

from . import __version__, history
from . import log as action_log
from .aggregation import TableCells, with_insiders
from .aggregation.release import release_cells, release_problem, source_of
from .cellkey import CellKey
from .disclosure.model import AuditResult, ProtectionProblem
from .disclosure.ranges import outward, public_intervals
from .disclosure.suppression import SuppressionResult
from .errors import DisclosureError, ReleaseRefused
from .history.reuse import fingerprints
from .history.snapshot import release_months
from .protocol import TOTAL_CODE, Protocol, TableSpec, code_label, dimension_label
from .registry import Registry
from .release import render_audit_files, write_release
from .release.model import Release, ReleasedCell, ReleasedTable
from .release.ratio_ranges import with_ratio_ranges
from .store import Store, carried_forward
from .workspace import Workspace

DECIMALS = {"count": 0, "companies": 0, "sum": 0, "ratio": 1}  # printed decimals per measure kind


@dataclass
class ProtectedRelease:
    """One audience's tables after suppression and a passed audit, with what the ledger and reports need."""

    audience_id: str
    tables: list[ReleasedTable]
    problem: ProtectionProblem
    suppression: SuppressionResult
    audit: AuditResult
    components: list[TableCells]
    snapshot: history.Snapshot | None = None  # what the ledger keeps of this release
    audited_with: list[str] = field(default_factory=list)  # earlier releases audited together with this one
    reader_classes: list[str] = field(default_factory=list)  # the reader classes it was protected for
    carried_forward: dict[str, int] = field(default_factory=dict)  # template -> figures carried forward

    def table_cells(self) -> np.ndarray:
        """Indices of the problem's cells that appear in a table (not the helper cells of company counts)."""
        index = {k: i for i, k in enumerate(self.problem.keys)}
        return np.array(sorted({index[k] for c in self.components for k in c.keys}), dtype=np.int64)

    def summary(self) -> dict:
        """What the manifest may say: counts of released cells and the audit's verdict (nothing that follows
        from the submissions beyond the published tables)."""
        hidden = int(self.suppression.suppressed[self.table_cells()].sum())
        return {
            "cells": len(self.table_cells()),
            "cells_suppressed": hidden,
            "audit": "passed" if self.audit.passed else "failed",
            "audited_with": list(self.audited_with),
        }

    def internal(self) -> dict:
        """What only the secretariat's sealed report and the ledger say: insiders audited, reader classes, and
        figures carried forward for companies that sent none (per template)."""
        return {
            "insiders_checked": int(self.audit.insiders_checked),
            "reader_classes": list(self.reader_classes),
            "carried_forward": dict(self.carried_forward),
        }


@dataclass
class AudienceOutcome:
    audience_id: str
    released: bool
    reason: str
    out_dir: Path | None = None
    summary: dict = field(default_factory=dict)
    internal: dict = field(default_factory=dict)


@dataclass
class BatchReport:
    covenant: str
    period: str
    outcomes: list[AudienceOutcome]

    def summary(self) -> dict:
        return {
            "covenant": self.covenant,
            "period": self.period,
            "audiences": [
                {
                    "audience": o.audience_id,
                    "released": o.released,
                    "reason": o.reason,
                    "out": str(o.out_dir or ""),
                }
                | o.summary
                | o.internal
                for o in self.outcomes
            ],
        }


# ------------------------------------------------------------------------------------------- protection


def protect_release(
    store: Store,
    protocol: Protocol,
    period: Period | str,
    audience_id: str,
    *,
    waived: dict[str, frozenset[str]] | None = None,
    overrides: dict[CellKey, bool] | None = None,
    alone: bool = False,
) -> ProtectedRelease:
    """Compute, protect and audit every table the audience receives, together with every earlier release it
    is arithmetically related to (the history's door). Raises DisclosureError if the tables cannot be
    protected on their own, ReleaseRefused if they cannot be made safe together with what was published
    before. `alone`: without the history (a protocol comparison: what this period costs under a protocol)."""
    waived = waived or {}
    table_ids = [t.id for t in protocol.tables_for(audience_id)]
    source = source_of(store, protocol)
    components, primaries = release_cells(
        source,
        protocol,
        audience_id,
        period,
        table_ids,
        waived=waived,
        overrides=overrides or {},
        contributions=True,  # the snapshot and the insiders read them
    )
    problem = release_problem(protocol, audience_id, components, primaries)
    problem = with_insiders(source, problem, components, primaries)
    if alone:
        suppression, checked = history.protect_alone(protocol, Period.of(period), audience_id, problem)
        done = history.HistoryOutcome(suppression, checked, None, [])
    else:
        done = history.protect_with_history(store, protocol, period, audience_id, components, problem, waived=waived)
    carried = {} if alone else carried_figures(store, protocol, period, components)
    ranges = public_intervals(problem, *_as_printed(protocol, audience_id, components, problem, done.suppression))
    pairs = zip(components, primaries, strict=True)
    reasons = {k: r for c, p in pairs for k, r in zip(c.keys, p.reasons, strict=True) if r}
    verdict = _Verdict(problem, done.suppression, done.audit, ranges, reasons)
    tables = [
        _released_table(protocol, t, components, verdict, t.template in carried)
        for t in protocol.tables_for(audience_id)
    ]
    return ProtectedRelease(
        audience_id,
        tables,
        problem,
        done.suppression,
        done.audit,
        components,
        done.snapshot,
        done.audited_with,
        done.reader_classes,
        carried,
    )


def _as_printed(protocol, audience_id, components, problem, suppression) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's value as the release prints it (NaN where it prints none: hidden cells, helper cells, the
    parts of a ratio) and how far the true value may lie from it (counts print exactly)."""
    shown, slack = np.full(problem.size, np.nan), np.zeros(problem.size)
    index = {k: i for i, k in enumerate(problem.keys)}
    kinds = {t.id: t.measure.kind for t in protocol.tables_for(audience_id)}
    for comp in components:
        kind = kinds.get(comp.table_id)
        if kind in (None, "ratio") or comp.component != "value":
            continue
        cells = np.array([index[k] for k in comp.keys], dtype=np.int64)
        cells = cells[~suppression.suppressed[cells]]
        shown[cells] = np.round(problem.values[cells], DECIMALS[kind])
        slack[cells] = 0.0 if kind in ("count", "companies") else 0.5 * 10.0 ** -DECIMALS[kind]
    return shown, slack


@dataclass(frozen=True)
class _Verdict:
    """What protection decided for every cell of a release's problem, and the ranges readers can derive."""

    problem: ProtectionProblem
    suppression: SuppressionResult
    audit: AuditResult
    ranges: tuple[np.ndarray, np.ndarray]  # public_intervals: NaN for published cells
    reasons: dict[CellKey, tuple[str, ...]]  # the primary rules that fired per cell

    @functools.cached_property
    def index(self) -> dict[CellKey, int]:
        return {k: i for i, k in enumerate(self.problem.keys)}


def carried_figures(store: Store, protocol: Protocol, period: Period | str, components: list[TableCells]) -> dict:
    """Per template, the figures a release counts for companies that sent none for a month it covers (their
    latest earlier ones), when the protocol carries them forward; else nothing."""
    if not protocol.carries_forward:
        return {}
    months = sorted(str(m) for m in release_months(protocol, period, components))
    return carried_forward(store.con, protocol.covenant.id, months)


CARRIED_NOTE = {
    "en": "Companies that sent no figures for the month count with their latest earlier figures.",
    "nl": "Bedrijven die voor de maand geen cijfers stuurden, tellen mee met hun laatste eerdere cijfers.",
}


def _released_table(
    protocol: Protocol, spec: TableSpec, components: list[TableCells], verdict: _Verdict, carried: bool = False
) -> ReleasedTable:
    language = protocol.covenant.language
    parts = {c.component: c for c in components if c.table_id == spec.id}
    dims = [d.column for d in spec.dimensions]
    main = parts["value"] if "value" in parts else parts["numerator"]  # an empty component is falsy
    decimals = DECIMALS[spec.measure.kind]
    cells = []
    for row_no in range(len(main.keys)):
        codes = tuple(str(main.frame.iloc[row_no][d]) for d in dims)
        cells.append(_released_cell(protocol, spec, parts, codes, row_no, verdict, decimals))
    cells.sort(key=lambda c: _display_order(protocol, spec, c.codes))
    table = ReleasedTable(
        table_id=spec.id,
        title=spec.title(language),
        unit=spec.unit(language),
        dimensions=tuple(dims),
        dimension_labels=tuple(dimension_label(d, language) for d in dims),
        kind=spec.measure.kind,
        cells=cells,
        footnote=" ".join(([spec.footnote(language)] if spec.footnote else []) + [CARRIED_NOTE[language]] * carried),
        decimals=decimals,
    )
    # a ratio's parts are never shown, so its hidden cells get the ranges the printed ratios imply
    known_non_negative = all(verdict.problem.lower[verdict.index[k]] >= 0 for c in parts.values() for k in c.keys)
    return with_ratio_ranges(table, functools.partial(_parent_code, protocol, spec), known_non_negative)


def _parent_code(protocol: Protocol, spec: TableSpec, dimension: int, code: str) -> str | None:
    """The code one level up along a table's dimension; None for the total."""
    if code == TOTAL_CODE:
        return None
    hierarchy = spec.dimensions[dimension].hierarchy
    return TOTAL_CODE if hierarchy is None else protocol.hierarchy(hierarchy).parent.get(code, TOTAL_CODE)


def _released_cell(protocol, spec, parts, codes, row_no, verdict: _Verdict, decimals: int) -> ReleasedCell:
    """A cell is published only when every component behind it is published (ratios need both)."""
    problem, checked = verdict.problem, verdict.audit
    index = verdict.index
    ids = {name: index[parts[name].keys[row_no]] for name in sorted(parts)}
    hidden = [bool(verdict.suppression.suppressed[i]) for i in ids.values()]
    primary = any(bool(problem.primary[i]) for i in ids.values())
    values = {name: float(problem.values[i]) for name, i in ids.items()}
    true_value = _cell_value(spec, values)
    status = CellStatus.PUBLISHED if not any(hidden) else (CellStatus.PRIMARY if primary else CellStatus.SECONDARY)
    first = next(iter(ids.values()))
    language = protocol.covenant.language
    low, high = _published_range(verdict, ids, decimals) if any(hidden) else (None, None)
    return ReleasedCell(
        codes=codes,
        labels=tuple(code_label(protocol, d, c, language) for d, c in zip(spec.dimensions, codes, strict=True)),
        depths=tuple(_depth(protocol, d, c) for d, c in zip(spec.dimensions, codes, strict=True)),
        value=None if any(hidden) or true_value is None else true_value,
        status=status if true_value is not None or any(hidden) else CellStatus.SECONDARY,
        range_lo=low,
        range_hi=high,
        true_value=true_value,
        lo=_finite(checked.lo[first]),
        hi=_finite(checked.hi[first]),
        upl=float(problem.upl[first]),
        lpl=float(problem.lpl[first]),
        reasons=tuple(sorted({r for i in ids.values() for r in verdict.reasons.get(problem.keys[i], ())})),
    )


def _published_range(verdict: _Verdict, ids: dict[str, int], decimals: int) -> tuple[float | None, float | None]:
    """The interval every reader can derive for a hidden cell, rounded outward. A ratio gets none here: its
    reader sees ratios only, which bound neither part (its range follows from the printed ratios:
    release/ratio_ranges.py)."""
    if "value" not in ids:
        return None, None
    lo, hi = verdict.ranges
    return outward(float(lo[ids["value"]]), float(hi[ids["value"]]), decimals)


def _cell_value(spec: TableSpec, values: dict[str, float]) -> float | None:
    if spec.measure.kind != "ratio":
        return values["value"]
    if values["denominator"] == 0:
        return None
    return 100.0 * values["numerator"] / values["denominator"]


def _finite(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _depth(protocol: Protocol, dim, code: str) -> int:
    if code == TOTAL_CODE:
        return 0
    if dim.hierarchy is None:
        return 1
    return len(protocol.hierarchy(dim.hierarchy).path(code))


def _display_order(protocol: Protocol, spec: TableSpec, codes: tuple[str, ...]) -> tuple:
    order = []
    for dim, code in zip(spec.dimensions, codes, strict=True):
        if code == TOTAL_CODE:
            order.append(())
        elif dim.hierarchy is None:
            order.append((code,))
        else:
            order.append(protocol.hierarchy(dim.hierarchy).path(code))
    return tuple(order)


# ---------------------------------------------------------------------------------------------- batch


def run_batch(
    workspace: Workspace,
    covenant: str,
    period: str,
    *,
    out_dir: Path,
    now: str,
    audiences: list[str] | None = None,
    revision: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> BatchReport:
    """Release every audience's tables for one period. An audience that may not be released is reported, not fatal;
    when none is released, nothing is recorded (no release, no log entry).

    `progress(step, done, total)` is called before each audience and once at the end (the CLI draws a bar)."""
    protocol = workspace.protocol(covenant)
    audience_ids = audiences or [a.id for a in protocol.audiences]
    outcomes = []
    with workspace.session(now) as store:
        for done, audience_id in enumerate(audience_ids):
            protocol.audience(audience_id)
            if progress:
                progress(f"{covenant} {period}: {audience_id}", done, len(audience_ids))
            outcomes.append(_release_audience(workspace, store, protocol, period, audience_id, out_dir, now, revision))
        released = [o.audience_id for o in outcomes if o.released]
        refused = [o.audience_id for o in outcomes if not o.released]
        if released:  # a batch that releases nothing records nothing (the CLI exits 1 and says why)
            details = {"covenant": covenant, "period": period, "released": released, "refused": refused}
            action_log.append(store, "batch.run", details, now)
    if progress:
        progress(f"{covenant} {period}", len(audience_ids), len(audience_ids))
    return BatchReport(covenant, period, outcomes)


@dataclass
class Released:
    release_id: str
    release: Release
    protected: ProtectedRelease


def protect_audience(
    store: Store, protocol: Protocol, period: Period | str, audience_id: str, *, alone: bool = False
) -> ProtectedRelease:
    """`protect_release` with the registry's waivers and manual overrides of the covenant."""
    registry = Registry(store)
    covenant = protocol.covenant.id
    return protect_release(
        store,
        protocol,
        period,
        audience_id,
        # every table, not only the audience's: the release history recomputes other audiences' tables too
        waived=registry.waived_by_table(covenant, [t.id for t in protocol.tables]),
        overrides=registry.overrides(covenant),
        alone=alone,
    )


def release_audience(
    store: Store,
    protocol: Protocol,
    period: str,
    audience_id: str,
    *,
    now: str,
    revision: bool = False,
    write: Callable[[Release], None] | None = None,
) -> Released:
    """Check the release controls, protect and audit (with the release history), `write` the files, and record
    the release in the ledger. Raises ReleaseRefused or DisclosureError (also for a release that would show no
    figure at all); nothing is written or recorded then."""
    check_release_allowed(store, protocol, period, audience_id, now, revision)
    protected = protect_audience(store, protocol, period, audience_id)
    release = _release_record(store, protocol, period, audience_id, protected, now, revision)
    if shows_nothing(release.tables):
        raise _shows_nothing_refusal(protocol, period, audience_id, release)
    if write is not None:
        write(release)
    release_id = _record_ledger(store, protocol, release, protected, now)
    return Released(release_id, release, protected)


def write_sealed_audit_report(workspace: Workspace, release: Release, secret_dir: Path) -> list[Path]:
    """The audit report holds the true values of hidden cells: it is rendered in memory and written only
    sealed (`aggregator releases report` opens it); no scratch file, so a killed batch leaves nothing readable."""
    secret_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return workspace.seal_private_bytes(render_audit_files(release), secret_dir)


def _release_audience(workspace, store, protocol, period, audience_id, out_dir, now, revision) -> AudienceOutcome:
    secret_dir = workspace.secretariat_dir / protocol.covenant.id / period / audience_id

    def write(release: Release) -> None:
        _discard_unrecorded_release(store, release, out_dir)
        write_release(release, out_dir)
        write_sealed_audit_report(workspace, release, secret_dir)

    try:
        done = release_audience(store, protocol, period, audience_id, now=now, revision=revision, write=write)
    except (ReleaseRefused, DisclosureError) as exc:
        return AudienceOutcome(audience_id, False, str(exc))
    protected = done.protected
    internal = {
        "release_id": done.release_id,
        "primary": int(protected.problem.primary[protected.table_cells()].sum()),
        "secondary": int(protected.suppression.secondary[protected.table_cells()].sum()),
        "coverage": _coverage(done.release),
        "value_coverage": {t.table_id: v for t in done.release.tables if (v := value_coverage(t)) is not None},
        "hidden_by_rule": hidden_by_rule(done.release.tables),
        "method": protected.suppression.method,
        "audit_report": str(secret_dir),
    }
    return AudienceOutcome(
        audience_id, True, "released", done.release.target_dir(out_dir), protected.summary(), internal
    )


def _discard_unrecorded_release(store: Store, release: Release, out_dir: Path) -> None:
    """Undo what an interrupted earlier attempt left at the release's target, so the rerun writes it afresh.

    Files written but never recorded in the ledger were never released (the workspace lock keeps other
    writers out), and the same inputs write the same bytes again. A recorded release is never touched: the
    folder counts as unrecorded only when there are more release folders (the target and the ones a revision
    moved aside) than ledger releases for this covenant, period and audience.
    """
    target = release.target_dir(out_dir)
    if target.parent.is_dir():
        # hidden staging folders of a writer that was killed before it could clean up
        for partial in sorted(target.parent.glob(f".{target.name}.partial-*")):
            shutil.rmtree(partial, ignore_errors=True)
    if not target.exists():
        return
    recorded = history.release_count(store.con, release.covenant_id, release.period, release.audience_id)
    on_disk = 1
    while target.with_name(f"{target.name}.superseded-{on_disk}").exists():
        on_disk += 1
    if on_disk <= recorded:
        return
    # An interrupted revision already moved the release it replaces aside, exactly where the rerun puts it.
    shutil.rmtree(target)


def _release_record(store, protocol, period, audience_id, protected, now, revision) -> Release:
    audience = protocol.audience(audience_id)
    language = protocol.covenant.language
    return Release(
        covenant_id=protocol.covenant.id,
        covenant_name=protocol.covenant.name(language),
        period=period,
        audience_id=audience_id,
        audience_name=audience.name(language),
        language=language,
        protocol_version=protocol.covenant.version,
        protocol_sha256=protocol.sha256,
        code_version=__version__,
        created=now[:10],
        log_head=str(action_log.head(store)),  # anchors the log in every manifest (nothing from submissions)
        tables=protected.tables,
        audit_summary=protected.summary(),
        internal_summary=protected.internal(),
        is_revision=revision,
    )


def _record_ledger(store: Store, protocol: Protocol, release: Release, protected: ProtectedRelease, now: str) -> str:
    """One transaction: the release, every cell it published or suppressed, and its snapshot for the history."""
    count = history.release_count(store.con, release.covenant_id, release.period, release.audience_id)
    release_id = f"{release.covenant_id}-{release.period}-{release.audience_id}-r{count + 1}"
    row = history.ReleaseRow(
        release_id=release_id,
        covenant=release.covenant_id,
        protocol_version=release.protocol_version,
        protocol_sha256=release.protocol_sha256,
        period=release.period,
        audience=release.audience_id,
        released_at=now,
        is_revision=release.is_revision,
        tables=[t.table_id for t in release.tables],
        manifest={"tables": [t.table_id for t in release.tables], "log_head": release.log_head},
        audit=protected.summary()
        | protected.internal()
        | {"data_fingerprints": _fingerprints(store, protocol, protected)},
    )
    with store.transaction() as con:
        history.record_release(con, row, _released_cells(protected), protected.snapshot)
        details = {"release": release_id, "audience": release.audience_id, "period": release.period}
        details |= {"revision": release.is_revision, "manifest_tables": row.tables}
        action_log.append(con, "release.write", details | protected.summary(), now)
    return release_id


def _fingerprints(store: Store, protocol: Protocol, protected: ProtectedRelease) -> dict[str, str]:
    """What the release's months were computed from (history/reuse.py): a later release reads the months
    that have not changed since from the ledger instead of computing them again."""
    months = protected.snapshot.months if protected.snapshot is not None else set()
    return fingerprints(store, protocol, sorted(months))


def _released_cells(protected: ProtectedRelease) -> pd.DataFrame:
    """Every cell of every table as the ledger records it: its value when published, and its status."""
    problem, hidden = protected.problem, protected.suppression.suppressed
    index = {k: i for i, k in enumerate(problem.keys)}
    rows = []
    for comp in protected.components:
        for key in comp.keys:
            i = index[key]
            status = _status(bool(hidden[i]), bool(problem.primary[i]))
            value = None if hidden[i] else float(problem.values[i])
            rows.append((comp.table_id, comp.component, str(key), value, str(status)))
    cells = pd.DataFrame(rows, columns=["table_id", "component", "cell_key", "value", "status"])
    return cells.astype({"value": "float64"})


def _status(hidden: bool, primary: bool) -> CellStatus:
    if not hidden:
        return CellStatus.PUBLISHED
    return CellStatus.PRIMARY if primary else CellStatus.SECONDARY


# ------------------------------------------------------------------------------------ release controls


def release_allowed_from(period: Period | str, months: int) -> date:
    """Data of a period may go out from the first day of the month `months` after the period's last month."""
    first = Period.of(period).shifted(months + 1)
    return date(first.year, first.month, 1)


def frequency_window(period: Period | str, frequency: str) -> str:
    period = Period.of(period)
    if frequency == "monthly":
        return str(period)
    if frequency == "quarterly":
        return f"{period.year}-Q{period.quarter}"
    return str(period.year)


def check_release_allowed(
    store: Store, protocol: Protocol, period: str, audience_id: str, now: str, revision: bool
) -> None:
    """Data age per table and the audience's release frequency; raises ReleaseRefused naming what blocks it."""
    today = date.fromisoformat(now[:10])
    for table in protocol.tables_for(audience_id):
        allowed = release_allowed_from(period, protocol.data_age_months(table.id))
        if today < allowed:
            raise ReleaseRefused(
                f"table '{table.id}' holds data of {period} that is too recent to release; "
                f"it may go out from {allowed.isoformat()}",
                hint="wait until then, or leave the table out of this audience in the protocol",
            )
    audience = protocol.audience(audience_id)
    window = frequency_window(period, audience.frequency)
    earlier = history.releases_of(store.con, protocol.covenant.id, audience_id)
    same_window = [r for r in earlier if frequency_window(r[0], audience.frequency) == window]
    if same_window and not revision:
        raise ReleaseRefused(
            f"audience '{audience_id}' already received release {same_window[-1][1]} in the same "
            f"{audience.frequency} window ({window})",
            hint="a correction of that release must be declared with --revision",
        )
    if revision and not any(r[0] == period for r in earlier):
        raise ReleaseRefused(f"there is no earlier release of {period} for '{audience_id}' to revise")


def shows_nothing(tables: list[ReleasedTable]) -> bool:
    """Whether every cell of the release is hidden without a range: it tells its readers nothing."""
    return not any(t.coverage().published or t.coverage().ranged for t in tables)


def _shows_nothing_refusal(protocol: Protocol, period: str, audience_id: str, release: Release) -> ReleaseRefused:
    """Why a release that would tell its readers nothing is not made, and where a protocol change would help."""
    cells = sum(len(t.cells) for t in release.tables)
    rules = ", ".join(f"{rule} {n}" for rule, n in hidden_by_rule(release.tables).items()) or "none"
    return ReleaseRefused(
        f"the {protocol.covenant.id} release of {period} for '{audience_id}' would show no figure: all {cells} "
        f"cells hidden, none with a range (hidden by each rule: {rules}); nothing was written or recorded",
        hint="fewer or coarser cells, or thresholds less strict for the rule that hid most, would publish "
        f"something: compare variants with `aggregator protocols compare {period} --protocol A.toml --protocol "
        "B.toml`",
    )


def _coverage(release: Release) -> dict[str, int]:
    """Cells the release's tables show as a figure, as a range, or not at all."""
    parts = [t.coverage() for t in release.tables]
    shown = {name: sum(getattr(p, name) for p in parts) for name in ("cells", "published", "ranged", "hidden")}
    secondary = sum(c.status == CellStatus.SECONDARY for t in release.tables for c in t.cells)
    return shown | {"hidden_to_protect_others": secondary}


def value_coverage(table: ReleasedTable) -> dict[str, float] | None:
    """Shares of a count or sum table's value its finest cells show as a figure and as a range, for the
    secretariat only: beside a published figure, the share of a hidden total would give that total away.
    None for tables whose cells do not add up (ratios, company counts) or hold no value."""
    if table.kind not in ("count", "sum") or not table.cells:
        return None
    finest = tuple(max(c.depths[d] for c in table.cells) for d in range(len(table.dimensions)))
    leaves = [(c, abs(v)) for c in table.cells if c.depths == finest and (v := _true(c)) is not None]
    total = sum(v for _, v in leaves)
    if total == 0:
        return None
    shown = sum(v for c, v in leaves if not c.suppressed)
    ranged = sum(v for c, v in leaves if c.suppressed and c.range_lo is not None and c.range_hi is not None)
    return {"published": round(shown / total, 4), "as_range": round(ranged / total, 4)}


def _true(cell: ReleasedCell) -> float | None:
    return cell.true_value if cell.true_value is not None else cell.value


def hidden_by_rule(tables: list[ReleasedTable]) -> dict[str, int]:
    """How many cells each primary rule hid (a cell that failed two rules counts for both), for the secretariat."""
    primary = (c for t in tables for c in t.cells if c.status == CellStatus.PRIMARY)
    counts = Counter(r for c in primary for r in c.reasons)
    return dict(sorted(counts.items()))


def print_report(report: BatchReport, console) -> None:
    console.print(f"[bold]{report.covenant} {report.period}[/]")
    for o in report.outcomes:
        if o.released:
            shown = o.internal["coverage"]
            rules = ", ".join(f"{rule} {n}" for rule, n in o.internal["hidden_by_rule"].items()) or "-"
            console.print(
                f"  {o.audience_id}: released {shown['cells']} cells: {shown['published']} published, "
                f"{shown['ranged']} as a range, {shown['hidden']} hidden (by each rule: {rules}; "
                f"{shown['hidden_to_protect_others']} to protect others); audit {o.summary['audit']} -> {o.out_dir}"
            )
            if o.internal["value_coverage"]:
                shares = ", ".join(
                    f"{table} {v['published']:.0%}" + (f" (+{v['as_range']:.0%} as a range)" if v["as_range"] else "")
                    for table, v in o.internal["value_coverage"].items()
                )
                console.print(f"    value shown at the finest level: {shares}")
        else:
            console.print(f"  {o.audience_id}: [yellow]not released[/]: {o.reason}")
