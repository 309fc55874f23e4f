"""What leaves the secretariat: released tables as the batch hands them to the writers.

The batch fills these after suppression and audit. Committee writers read only the display fields
(codes, labels, depths, value and the *public* status); the internal fields (primary/secondary status,
true value of hidden cells, audit interval, required protection, reasons) feed the secretariat's audit
report only. Validation happens on construction, so a malformed release never reaches a writer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aggregator.errors import ReleaseRefused
from imvo_submit.periods import Period
from imvo_submit.states import CellStatus

STATUSES = (CellStatus.PUBLISHED, CellStatus.PRIMARY, CellStatus.SECONDARY)
KINDS = ("count", "companies", "sum", "ratio")
LANGUAGES = ("en", "nl")

# Words that reveal how a cell was protected; they must never reach a committee file.
INTERNAL_STATUS_WORDS = ("primary", "secondary", "primair", "secundair")

_PATH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # becomes a folder or file name
_DIM_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")  # becomes a Parquet column name
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LOG_HEAD = re.compile(r"^\d+:[0-9a-f]{64}$")


class InvalidRelease(ReleaseRefused):
    """The release handed to the writers is inconsistent; nothing is written."""


@dataclass
class ReleasedCell:
    """One cell of a released table, in display order.

    `value` is what is published (None when suppressed); a suppressed cell publishes instead the range any
    reader can derive from the release (`range_lo`..`range_hi`, None for an open side; docs/rules.md). The
    fields after `range_hi` are internal and appear only in the secretariat's audit report.
    """

    codes: tuple[str, ...]  # one code per dimension
    labels: tuple[str, ...]  # display label per dimension, in the release language
    depths: tuple[int, ...]  # hierarchy depth per dimension; 0 = total
    value: float | None  # None when suppressed
    status: CellStatus = CellStatus.PUBLISHED  # PUBLISHED, PRIMARY or SECONDARY
    range_lo: float | None = None  # published for a suppressed cell: the least value a reader can derive
    range_hi: float | None = None  # ... and the greatest (None: no upper bound follows from the release)
    true_value: float | None = None  # internal: the real value of a hidden cell
    lo: float | None = None  # internal: attacker's tightest lower bound (audit)
    hi: float | None = None  # internal: attacker's tightest upper bound (audit)
    upl: float | None = None  # internal: required upper protection
    lpl: float | None = None  # internal: required lower protection
    reasons: tuple[str, ...] = ()  # internal: rules that fired / why a cell was hidden

    @property
    def suppressed(self) -> bool:
        return self.status != CellStatus.PUBLISHED

    @property
    def public_status(self) -> CellStatus:
        """The only status a committee output may show: published or suppressed."""
        return CellStatus.SUPPRESSED if self.suppressed else CellStatus.PUBLISHED

    def check(self, where: str, n_dims: int) -> None:
        """Raise InvalidRelease when the cell is malformed or a hidden value would leak."""
        if not (len(self.codes) == len(self.labels) == len(self.depths) == n_dims):
            raise InvalidRelease(
                f"{where} has {len(self.codes)} codes, {len(self.labels)} labels and "
                f"{len(self.depths)} depths but the table has {n_dims} dimensions"
            )
        if self.status not in STATUSES:
            raise InvalidRelease(f"{where} has status {self.status!r}; expected one of {', '.join(STATUSES)}")
        if any(d < 0 for d in self.depths):
            raise InvalidRelease(f"{where} has a negative hierarchy depth")
        if self.suppressed and self.value is not None:
            raise InvalidRelease(
                f"{where} is suppressed but carries a value",
                hint="set value=None for hidden cells; keep the real value in true_value for the audit",
            )
        if not self.suppressed and (self.value is None or not math.isfinite(self.value)):
            raise InvalidRelease(f"{where} is published but has no finite value")
        self._check_range(where)

    def _check_range(self, where: str) -> None:
        if not self.suppressed and (self.range_lo is not None or self.range_hi is not None):
            raise InvalidRelease(f"{where} is published but carries a range")
        ends = [e for e in (self.range_lo, self.range_hi) if e is not None]
        if any(not math.isfinite(e) for e in ends):
            raise InvalidRelease(f"{where} has a range end that is not a finite number")
        if len(ends) == 2 and self.range_lo > self.range_hi:
            raise InvalidRelease(f"{where} has a range whose lower end exceeds its upper end")


@dataclass(frozen=True)
class Coverage:
    """What a table shows its readers: cells published, hidden with a range bounded on both sides, hidden."""

    cells: int
    published: int
    ranged: int
    hidden: int  # hidden with no range, or one open on a side


@dataclass
class ReleasedTable:
    """One table as the committee sees it; all texts already in the release language."""

    table_id: str
    title: str
    unit: str
    dimensions: tuple[str, ...]  # dimension ids (machine names, e.g. "region")
    dimension_labels: tuple[str, ...]  # dimension names in the release language
    kind: str  # "count" | "companies" | "sum" | "ratio"
    cells: list[ReleasedCell]  # display order
    footnote: str = ""
    decimals: int = 0  # decimals shown; published values are rounded to this everywhere

    def coverage(self) -> Coverage:
        hidden = [c for c in self.cells if c.suppressed]
        ranged = sum(c.range_lo is not None and c.range_hi is not None for c in hidden)
        return Coverage(len(self.cells), len(self.cells) - len(hidden), ranged, len(hidden) - ranged)

    def __post_init__(self) -> None:
        self.dimensions = tuple(self.dimensions)
        self.dimension_labels = tuple(self.dimension_labels)
        self.cells = list(self.cells)
        self.check()

    def check(self) -> None:
        where = f"table {self.table_id!r}"
        if not _PATH_ID.match(self.table_id):
            raise InvalidRelease(f"{where}: the table id may hold only letters, digits, '-' and '_' (it names files)")
        if self.kind not in KINDS:
            raise InvalidRelease(f"{where} has kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not self.dimensions or len(self.dimensions) != len(self.dimension_labels):
            raise InvalidRelease(f"{where} needs at least one dimension and one label per dimension")
        for dim in self.dimensions:
            if not _DIM_ID.match(dim):
                raise InvalidRelease(f"{where}: dimension id {dim!r} is not a plain identifier")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise InvalidRelease(f"{where} names a dimension twice")
        if not 0 <= self.decimals <= 6:
            raise InvalidRelease(f"{where}: decimals must be between 0 and 6, not {self.decimals}")
        self._check_cells(where)

    def _check_cells(self, where: str) -> None:
        seen: set[tuple[str, ...]] = set()
        for cell in self.cells:
            cell.check(f"{where} cell {'/'.join(cell.codes)}", len(self.dimensions))
            if cell.codes in seen:
                raise InvalidRelease(f"{where} lists cell {'/'.join(cell.codes)} twice")
            seen.add(cell.codes)


@dataclass
class Release:
    """One set of tables for one audience and one period."""

    covenant_id: str
    covenant_name: str
    period: str  # "YYYY-MM"
    audience_id: str
    audience_name: str
    language: str  # "en" | "nl"
    protocol_version: str
    protocol_sha256: str
    code_version: str
    created: str  # fixed ISO date (or date-time) from the batch, so outputs are reproducible
    log_head: str | None  # the secretariat's action log head (COUNT:HASH) when the release was built: an anchor
    tables: list[ReleasedTable]
    audit_summary: Mapping[str, Any] = field(default_factory=dict)  # in the manifest: public
    is_revision: bool = False
    internal_summary: Mapping[str, Any] = field(default_factory=dict)  # the sealed audit report only

    def __post_init__(self) -> None:
        self.tables = list(self.tables)
        self.check()

    @property
    def created_at(self) -> datetime:
        """The release date as a timezone-aware datetime (naive input is taken as UTC)."""
        moment = datetime.fromisoformat(self.created)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)

    def target_dir(self, out_dir: Path) -> Path:
        return Path(out_dir) / self.covenant_id / self.period / self.audience_id

    def check(self) -> None:
        self._check_identity()
        if not _SHA256.match(self.protocol_sha256.lower()):
            raise InvalidRelease(f"{self.protocol_sha256!r} is not a 256-bit hex digest")
        if self.log_head is not None and not _LOG_HEAD.match(self.log_head):
            raise InvalidRelease(f"{self.log_head!r} is not a log head (COUNT:HASH)")
        ids = [t.table_id for t in self.tables]
        if not ids:
            raise InvalidRelease("the release has no tables")
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise InvalidRelease(f"table id {duplicates[0]!r} appears twice in the release")
        _check_summary_is_public(self.audit_summary)

    def _check_identity(self) -> None:
        for name, value in (("covenant id", self.covenant_id), ("audience id", self.audience_id)):
            if not _PATH_ID.match(value):
                raise InvalidRelease(f"{name} {value!r} may hold only letters, digits, '-' and '_' (it names a folder)")
        if not Period.is_valid(self.period):
            raise InvalidRelease(f"period {self.period!r} is not of the form YYYY-MM")
        if self.language not in LANGUAGES:
            raise InvalidRelease(f"language {self.language!r} is not supported; use 'en' or 'nl'")
        try:
            self.created_at  # noqa: B018 - parsing is the check
        except ValueError:
            raise InvalidRelease(
                f"created {self.created!r} is not an ISO date", hint="pass e.g. '2026-11-15'"
            ) from None


def _check_summary_is_public(summary: Mapping[str, Any]) -> None:
    """The audit summary goes into the committee manifest: refuse anything naming internal statuses."""
    for text in _strings_in(summary):
        lowered = text.lower()
        for word in INTERNAL_STATUS_WORDS:
            if word in lowered:
                raise InvalidRelease(
                    f"the audit summary mentions {word!r} ({text!r}); committee files must not show "
                    "how cells were suppressed",
                    hint="pass only totals (e.g. cells_suppressed) in audit_summary",
                )


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in (*_strings_in(k), *_strings_in(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings_in(item)]
    return []
