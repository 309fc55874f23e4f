"""The company registry: who may submit, to which covenant, with which signing key, and in which group."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from imvo_submit.envelope import keys
from imvo_submit.text import printable

from . import log as action_log
from .cellkey import CellKey
from .errors import AggregatorError
from .protocol import Protocol
from .store import Store

# What an envelope's company_id allows ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}), narrowed: no '.', at most 32.
COMPANY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", re.ASCII)


@dataclass(frozen=True)
class Company:
    company_id: str
    name: str
    group_id: str
    covenants: tuple[str, ...]
    status: str


class Registry:
    """Registry operations on an open store. Every change is one transaction."""

    def __init__(self, store: Store):
        self.store = store

    def add(
        self,
        company_id: str,
        name: str,
        covenants: list[str],
        public_key_bytes: bytes,
        *,
        group_id: str | None = None,
        now: str,
    ) -> str:
        """Register a company with its signing public key; returns the key's fingerprint."""
        _check_company_id(company_id)
        if self.find(company_id) is not None:
            raise AggregatorError(
                f"company {company_id} is already registered",
                hint=f"use `aggregator companies rotate-key {company_id}` to give it a new key",
            )
        fingerprint = self._unused_key(company_id, public_key_bytes)
        with self.store.transaction() as con:
            con.execute(
                "INSERT INTO companies VALUES (?, ?, ?, ?, 'active', NULL, ?)",
                [company_id, name, group_id or company_id, sorted(covenants), now],
            )
            con.execute(
                "INSERT INTO company_keys VALUES (?, ?, ?, ?, NULL)",
                [company_id, fingerprint, public_key_bytes, now],
            )
            details = {"company": company_id, "group": group_id or company_id, "key": fingerprint}
            action_log.append(con, "company.register", details | {"covenants": sorted(covenants)}, now)
        return fingerprint

    def _unused_key(self, company_id: str, public_key_bytes: bytes) -> str:
        """The key's fingerprint, unless another company holds or once held the key: a file signed with it
        could then be either company's, and one company could send files in the other's name."""
        fingerprint = keys.fingerprint(keys.signing_public_key_from_bytes(public_key_bytes))
        others = [(owner, retired) for owner, retired in self.key_owners(fingerprint) if owner != company_id]
        if others:
            owner, retired = others[0]
            held = f"is registered to company {owner}" if retired is None else f"was company {owner}'s until {retired}"
            raise AggregatorError(
                f"key {fingerprint} {held}; one key cannot sign for two companies",
                hint=f"ask {company_id} for the .pub file of its own key (made with `imvo-submit keygen` on its "
                "own computer), and compare the fingerprint with it by phone",
            )
        return fingerprint

    def find(self, company_id: str) -> Company | None:
        row = self.store.con.execute(
            "SELECT company_id, name, group_id, covenants, status FROM companies WHERE company_id = ?",
            [company_id],
        ).fetchone()
        if row is None:
            return None
        return Company(row[0], row[1], row[2], tuple(row[3]), row[4])

    def get(self, company_id: str) -> Company:
        company = self.find(company_id)
        if company is None:
            raise AggregatorError(
                f"company {company_id} is not registered",
                hint="register it with `aggregator companies add`",
            )
        return company

    def active_key(self, company_id: str, fingerprint: str) -> bytes | None:
        """The company's signing public key with this fingerprint (current or the 80-bit one of envelope
        format 2), if it is current (not rotated out)."""
        prefix = keys.fingerprint_digest_prefix(fingerprint)
        if prefix is None:
            return None
        row = self.store.con.execute(
            "SELECT public_key FROM company_keys WHERE company_id = ? AND retired_at IS NULL "
            "AND starts_with(sha256(public_key), ?)",
            [company_id, prefix.hex()],
        ).fetchone()
        return None if row is None else bytes(row[0])

    def key_owners(self, fingerprint: str) -> list[tuple[str, str | None]]:
        """Every (company id, retired_at) that ever held the key with this fingerprint, by company id."""
        prefix = keys.fingerprint_digest_prefix(fingerprint)
        if prefix is None:
            return []
        return self.store.con.execute(
            "SELECT company_id, retired_at FROM company_keys WHERE starts_with(sha256(public_key), ?) "
            "ORDER BY company_id",
            [prefix.hex()],
        ).fetchall()

    def list(self) -> pd.DataFrame:
        return self.store.query_df(
            "SELECT c.company_id, c.name, c.group_id, array_to_string(c.covenants, ',') AS covenants, c.status, "
            "k.fingerprint FROM companies c LEFT JOIN company_keys k "
            "ON k.company_id = c.company_id AND k.retired_at IS NULL ORDER BY c.company_id"
        )

    def revoke(self, company_id: str, reason: str, *, now: str) -> None:
        self.get(company_id)
        with self.store.transaction() as con:
            con.execute(
                "UPDATE companies SET status = 'revoked', status_reason = ? WHERE company_id = ?",
                [reason, company_id],
            )
            con.execute(
                "UPDATE company_keys SET retired_at = ? WHERE company_id = ? AND retired_at IS NULL",
                [now, company_id],
            )
            action_log.append(con, "company.revoke", {"company": company_id, "reason": reason}, now)

    def rotate_key(self, company_id: str, public_key_bytes: bytes, *, now: str) -> str:
        """Replace the company's signing key: files signed with the old key are refused from now on."""
        company = self.get(company_id)
        if company.status != "active":
            raise AggregatorError(f"company {company_id} is revoked; a revoked company cannot get a new key")
        fingerprint = self._unused_key(company_id, public_key_bytes)
        with self.store.transaction() as con:
            con.execute(
                "UPDATE company_keys SET retired_at = ? WHERE company_id = ? AND retired_at IS NULL",
                [now, company_id],
            )
            con.execute(
                "INSERT INTO company_keys VALUES (?, ?, ?, ?, NULL)",
                [company_id, fingerprint, public_key_bytes, now],
            )
            action_log.append(con, "company.rotate_key", {"company": company_id, "key": fingerprint}, now)
        return fingerprint

    def grant_waiver(self, company_id: str, covenant: str, scope: str, *, now: str) -> None:
        """Record the company's consent to publish its own figures (scope: a table id or '*')."""
        self.get(company_id)
        with self.store.transaction() as con:
            con.execute("INSERT INTO waivers VALUES (?, ?, ?, ?, NULL)", [company_id, covenant, scope, now])
            details = {"company": company_id, "covenant": covenant, "scope": scope, "granted": True}
            action_log.append(con, "waiver.set", details, now)

    def revoke_waiver(self, company_id: str, covenant: str, scope: str, *, now: str) -> None:
        """Withdraw consent for future releases; earlier releases stay as they were."""
        with self.store.transaction() as con:
            con.execute(
                "UPDATE waivers SET revoked_at = ? WHERE company_id = ? AND covenant = ? AND scope = ? "
                "AND revoked_at IS NULL",
                [now, company_id, covenant, scope],
            )
            details = {"company": company_id, "covenant": covenant, "scope": scope, "granted": False}
            action_log.append(con, "waiver.set", details, now)

    def waivers(self, covenant: str | None = None) -> pd.DataFrame:
        """Every waiver ever recorded (revoked ones too), by company, covenant, scope and date."""
        return self.store.query_df(
            "SELECT company_id, covenant, scope, granted_at, revoked_at FROM waivers "
            "WHERE ? IS NULL OR covenant = ? ORDER BY company_id, covenant, scope, granted_at",
            [covenant, covenant],
        )

    def has_active_waiver(self, company_id: str, covenant: str, scope: str) -> bool:
        row = self.store.con.execute(
            "SELECT count(*) FROM waivers WHERE company_id = ? AND covenant = ? AND scope = ? AND revoked_at IS NULL",
            [company_id, covenant, scope],
        ).fetchone()
        return bool(row and row[0])

    def waived_by_table(self, covenant: str, table_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """Per table: the companies whose active waiver covers it (aggregation lifts this to groups: a group
        counts as waived only when all its companies did)."""
        rows = self.store.con.execute(
            "SELECT scope, company_id FROM waivers WHERE covenant = ? AND revoked_at IS NULL", [covenant]
        ).fetchall()
        return {table: frozenset(c for scope, c in rows if scope in ("*", table)) for table in table_ids}

    def overrides(self, covenant: str) -> dict[CellKey, bool]:
        """The secretariat's manual verdicts in force per cell (True: unsafe), the latest per cell winning; a
        revoked override is no verdict."""
        rows = self.store.con.execute(
            "SELECT cell_key, action FROM overrides WHERE covenant = ? ORDER BY created_at, rowid", [covenant]
        ).fetchall()
        latest = dict(rows)
        return {CellKey.parse(key): action == "unsafe" for key, action in latest.items() if action != "revoked"}

    def set_override(
        self, protocol: Protocol, table_id: str, cell: str, *, unsafe: bool, reason: str, now: str
    ) -> CellKey:
        """Record a manual verdict for one cell of `table_id`: unsafe (suppressed, protected like a primary
        cell) or safe (published unless it must hide another cell). Applies from the next batch; logged."""
        key = override_cell(protocol, table_id, cell)
        covenant, action = protocol.covenant.id, "unsafe" if unsafe else "safe"
        _check_reason(reason)
        with self.store.transaction() as con:
            con.execute(
                "INSERT INTO overrides VALUES (?, ?, ?, ?, ?, ?)", [covenant, table_id, str(key), action, reason, now]
            )
            details = {"covenant": covenant, "table": table_id, "cell": str(key), "action": action, "reason": reason}
            action_log.append(con, "override.set", details, now)
        return key

    def revoke_override(self, covenant: str, cell: str, *, reason: str, now: str) -> CellKey:
        """End the override in force for the cell (from the next batch); earlier releases stay as they were."""
        key = CellKey.parse(cell)
        if key not in self.overrides(covenant):
            raise AggregatorError(
                f"no override is in force for cell {cell} of covenant {covenant}",
                hint="list the overrides with `aggregator overrides list`",
            )
        _check_reason(reason)
        (table_id,) = self.store.con.execute(
            "SELECT table_id FROM overrides WHERE covenant = ? AND cell_key = ? ORDER BY created_at DESC, rowid DESC "
            "LIMIT 1",
            [covenant, str(key)],
        ).fetchone()
        with self.store.transaction() as con:
            con.execute(
                "INSERT INTO overrides VALUES (?, ?, ?, 'revoked', ?, ?)", [covenant, table_id, str(key), reason, now]
            )
            details = {"covenant": covenant, "table": table_id, "cell": str(key), "action": "revoked", "reason": reason}
            action_log.append(con, "override.set", details, now)
        return key

    def override_history(self, covenant: str | None = None) -> pd.DataFrame:
        """Every override ever recorded, oldest first, with whether it is the one in force for its cell."""
        return self.store.query_df(
            "SELECT covenant, table_id, cell_key, action, reason, created_at, "
            "row_number() OVER (PARTITION BY covenant, cell_key ORDER BY created_at DESC, rowid DESC) = 1 "
            "AND action != 'revoked' AS in_force "
            "FROM overrides WHERE ? IS NULL OR covenant = ? ORDER BY created_at, rowid",
            [covenant, covenant],
        )

    def contributor_map(self) -> dict[str, str]:
        """company id -> group id, for counting contributors at group level."""
        rows = self.store.con.execute("SELECT company_id, group_id FROM companies").fetchall()
        return dict(rows)


def override_cell(protocol: Protocol, table_id: str, cell: str) -> CellKey:
    """The key of a cell of `table_id` as `aggregator releases show` prints it; refuses another table's cell,
    a helper cell or a view of an earlier release (overrides are verdicts on the cells a table publishes)."""
    spec = protocol.table(table_id)
    key = CellKey.parse(cell)
    columns = {d.column for d in spec.dimensions}
    if key.helper is not None or key.view is not None:
        raise AggregatorError(
            f"{cell} is a cell the engine adds for its own checks, not a cell of table {table_id}",
            hint="copy a cell key of the table from `aggregator releases show RELEASE`",
        )
    if key.quantity.template != spec.template or not {c.column for c in key.coordinates} <= columns:
        raise AggregatorError(
            f"{cell} is not a cell of table {table_id}",
            hint="copy the table id and the cell key from the same line of `aggregator releases show RELEASE`",
        )
    return key


def _check_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise AggregatorError("an override needs a reason", hint="say why, with --reason; it is kept in the log")


def _check_company_id(company_id: str) -> None:
    """Ids a sealed file can carry (envelope: ASCII letters and digits first, then also '_', '.', '-'), narrowed
    to letters, digits, '-' and '_' and 32 characters: a Cyrillic or full-width lookalike is refused here."""
    if isinstance(company_id, str) and COMPANY_ID.fullmatch(company_id):
        return
    text = str(company_id)
    odd = next((c for c in text if not (c.isascii() and (c.isalnum() or c in "-_"))), None)
    if odd is not None:
        why = f": {printable(odd)!r} ({_describe(odd)}) is not a plain letter or digit, and sealed files refuse it"
    elif not text:
        why = ": it is empty"
    elif len(text) > 32:
        why = f": it has {len(text)} characters (at most 32)"
    else:
        why = ": it must start with a letter or digit"
    raise AggregatorError(
        f"'{printable(text)}' is not a valid company id{why}",
        hint="use the letters A-Z and a-z, the digits 0-9, - and _ only (at most 32, starting with a letter "
        "or digit), e.g. T001",
    )


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'an unnamed character')}"
