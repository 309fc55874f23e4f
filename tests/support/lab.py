"""A hand-built secretariat store for release tests: one materials table, a handful of companies, and the
protocol they are released under (used by the history, batch, crash and plaintext-on-disk tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aggregator import batch, history
from aggregator.cellkey import CellKey, Coordinate, Quantity
from aggregator.protocol import Protocol, load_protocol
from aggregator.store import Store
from aggregator.workspace import create_workspace, open_workspace

NOW = "2026-06-01T00:00:00Z"
JAN, FEB, MAR = "2025-01", "2025-02", "2025-03"
WEIGHT = Quantity("materials", "sum(weight_kg)")
COTTON = CellKey(WEIGHT, [Coordinate("material", "cotton")])
TOTAL = CellKey(WEIGHT)
PROTOCOL = """
[covenant]
id = "textile"
name = { en = "T", nl = "T" }
version = "t1"
templates = ["materials"]

[disclosure]
min_contributors = 3
dominance = [{ n = 1, k = 60.0 }]
suppression = "optimal"

[age]
B = 0
C = 0

[[tables]]
id = "weight"
title = { en = "Weight", nl = "Gewicht" }
unit = { en = "kg", nl = "kg" }
template = "materials"
dimensions = [{ column = "material" }]
measure = { kind = "sum", column = "weight_kg" }

[[audiences]]
id = "committee"
name = { en = "Committee", nl = "Commissie" }
tables = ["weight"]
frequency = "monthly"
"""


class Lab:
    """A store with companies, submissions and rows inserted directly, and a protocol to release with."""

    def __init__(self, root: Path, protocol_text: str = PROTOCOL):
        root.mkdir(parents=True, exist_ok=True)
        (root / "protocol.toml").write_text(protocol_text)
        self.protocol = load_protocol(root / "protocol.toml")
        self.store = Store(root / "s.duckdb", None)
        self._prepare()

    @classmethod
    def on_store(cls, protocol: Protocol, store: Store) -> Lab:
        """A lab over a workspace's store; submission numbers continue after those already there."""
        lab = cls.__new__(cls)
        lab.protocol, lab.store = protocol, store
        lab._prepare()
        return lab

    def _prepare(self) -> None:
        self.store.ensure_rows_table(
            "textile", "materials", {"material": "VARCHAR", "certification": "VARCHAR", "weight_kg": "DOUBLE"}
        )
        self.count = self.store.con.execute("SELECT count(*) FROM submissions").fetchone()[0]
        self.clock = 0

    def company(self, *ids: str, group: str | None = None) -> None:
        for c in ids:
            self.store.con.execute(
                "INSERT INTO companies VALUES (?, ?, ?, ['textile'], 'active', NULL, 'x')", [c, c, group or c]
            )

    def submit(self, company: str, month: str, weights: dict) -> None:
        """Accept a submission (weights per material, or per (material, certification)); an earlier accepted one
        of the company for the month becomes superseded."""
        self.count += 1
        sid = f"s{self.count}"
        con = self.store.con
        con.execute(
            "UPDATE submissions SET state = 'superseded' WHERE company_id = ? AND period = ? AND state = 'accepted'",
            [company, month],
        )
        con.execute(
            "INSERT INTO submissions (submission_id, company_id, covenant, template, period, received_at, "
            "original_name, state, reason, plaintext_blake3, raw_path) VALUES (?, ?, 'textile', 'materials', ?, "
            "'t', 'f', 'accepted', 'ok', ?, 'r')",
            [sid, company, month, hashlib.sha256(sid.encode()).hexdigest()],
        )
        for i, (where, weight) in enumerate(sorted(weights.items())):
            material, certification = (where, "none") if isinstance(where, str) else where
            con.execute(
                "INSERT INTO rows_textile_materials VALUES (?, ?, ?, ?, ?, ?, ?)",
                [sid, company, month, i, material, certification, weight],
            )

    def release(self, month: str, audience: str = "committee", revision: bool = False) -> batch.Released:
        self.clock += 1
        now = f"2026-06-01T00:00:{self.clock:02d}Z"
        return batch.release_audience(self.store, self.protocol, month, audience, now=now, revision=revision)


def pattern(released: batch.Released) -> dict[str, bool]:
    """cell key -> hidden, for the value component of every table."""
    p = released.protected
    return dict(zip(p.problem.keys, map(bool, p.suppression.suppressed), strict=True))


def four_companies(lab: Lab, month: str = JAN) -> None:
    lab.company("A", "B", "C", "D", "L")
    lab.submit("A", month, {"cotton": 40, "polyester": 30, "wool": 20})
    lab.submit("B", month, {"cotton": 35, "polyester": 30, "wool": 25})
    lab.submit("C", month, {"cotton": 30, "polyester": 35, "wool": 30})
    lab.submit("D", month, {"cotton": 30, "polyester": 25, "wool": 20})


PASSPHRASE = "correct horse battery"


def four_company_workspace(root: Path, protocol: str = PROTOCOL):
    """A secretariat workspace (in root/ws) with the protocol and the four companies' January submissions."""
    (root / "protocol.toml").write_text(protocol)
    create_workspace(root / "ws", PASSPHRASE, [root / "protocol.toml"])
    ws = open_workspace(root / "ws", PASSPHRASE)
    with ws.open_store() as store:
        four_companies(Lab.on_store(ws.protocol("textile"), store))
    return ws


def assert_ledger_is_safe(lab: Lab, *classes: str) -> None:
    """Every reader class (one per audience, or these), audited with everything it holds, by its own rules."""
    for reader_class in classes or [a.id for a in lab.protocol.audiences]:
        _, result = history.audit_history(lab.store, lab.protocol, reader_class)
        assert result.passed, (reader_class, result.failures)
