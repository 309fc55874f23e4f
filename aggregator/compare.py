"""Protocol comparison: one period's stored data protected under several protocol variants, side by side.

A committee that must agree on a standard protocol sees what each choice costs: per audience and table the
cells published, shown as a range or hidden, the rules that hid them, and the audit's verdict. Each variant is
protected on its own (not with the release history, which was made under the protocol in force), and nothing
is written to the ledger, the log or the committee folders.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from aggregator import batch
from aggregator.errors import AggregatorError, ConfigError, DisclosureError, ReleaseRefused
from aggregator.protocol import Protocol, load_protocol
from aggregator.release.html import coverage_bar, environment
from aggregator.store import Store
from imvo_submit.fileio import atomic_write
from imvo_submit.periods import Period


@dataclass(frozen=True)
class TableCost:
    table_id: str
    title: str
    cells: int
    published: int
    ranged: int
    hidden: int


@dataclass(frozen=True)
class AudienceCost:
    audience_id: str
    name: str
    refused: str  # why the audience could not be protected under this variant ('' when it could)
    tables: tuple[TableCost, ...]
    hidden_by_rule: dict[str, int]

    @property
    def published(self) -> int:
        return sum(t.published for t in self.tables)

    @property
    def cells(self) -> int:
        return sum(t.cells for t in self.tables)


@dataclass(frozen=True)
class Variant:
    name: str  # the protocol file's name
    version: str
    sha256: str
    audiences: tuple[AudienceCost, ...]


@dataclass(frozen=True)
class Comparison:
    covenant: str
    period: str
    variants: tuple[Variant, ...]

    def as_json(self) -> dict:
        return asdict(self)


def compare_protocols(store: Store, period: Period | str, paths: list[Path]) -> Comparison:
    """Protect `period` under every protocol in `paths` (one covenant). Raises ConfigError for a protocol that
    does not load or a covenant that differs between variants."""
    protocols = [load_protocol(p) for p in paths]
    covenants = sorted({p.covenant.id for p in protocols})
    if len(covenants) != 1:
        raise ConfigError(
            f"the protocols belong to different covenants ({', '.join(covenants)})",
            hint="compare variants of one covenant's protocol",
        )
    variants = tuple(_variant(store, Period.of(period), path, p) for path, p in zip(paths, protocols, strict=True))
    return Comparison(covenants[0], str(Period.of(period)), variants)


def _variant(store: Store, period: Period, path: Path, protocol: Protocol) -> Variant:
    audiences = tuple(_audience(store, period, protocol, a.id) for a in protocol.audiences)
    return Variant(path.name, protocol.covenant.version, protocol.sha256, audiences)


def _audience(store: Store, period: Period, protocol: Protocol, audience_id: str) -> AudienceCost:
    name = protocol.audience(audience_id).name(protocol.covenant.language)
    try:
        protected = batch.protect_audience(store, protocol, period, audience_id, alone=True)
    except (DisclosureError, ReleaseRefused) as exc:
        return AudienceCost(audience_id, name, str(exc), (), {})
    tables = tuple(_table_cost(t) for t in protected.tables)
    return AudienceCost(audience_id, name, "", tables, batch.hidden_by_rule(protected.tables))


def _table_cost(table) -> TableCost:
    c = table.coverage()
    return TableCost(table.table_id, table.title, c.cells, c.published, c.ranged, c.hidden)


def render_comparison(comparison: Comparison) -> str:
    """One self-contained HTML page (no external assets)."""
    return environment().get_template("compare.html.j2").render(c=comparison, bar=coverage_bar)


def write_comparison(comparison: Comparison, out_dir: Path) -> tuple[Path, Path]:
    """compare-<covenant>-<period>.html and .json in out_dir; returns both paths."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AggregatorError(f"cannot create {out_dir} ({exc.strerror})") from exc
    stem = out_dir / f"compare-{comparison.covenant}-{comparison.period}"
    html, data = stem.with_suffix(".html"), stem.with_suffix(".json")
    page = render_comparison(comparison).encode("utf-8")
    text = (json.dumps(comparison.as_json(), indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    atomic_write(html, lambda handle: handle.write(page), mode=0o644)  # meant to be shared with the committee
    atomic_write(data, lambda handle: handle.write(text), mode=0o644)
    return html, data
