"""The company registry: who may submit, to which covenant, with which signing key, and in which group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from . import log as action_log
from .cellkey import CellKey
from .envelope import keys
from .errors import AggregatorError
from .store import Store


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
        fingerprint = keys.fingerprint(keys.signing_public_key_from_bytes(public_key_bytes))
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
        fingerprint = keys.fingerprint(keys.signing_public_key_from_bytes(public_key_bytes))
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
        """The secretariat's manual verdicts per cell (True: unsafe), the latest per cell winning."""
        rows = self.store.con.execute(
            "SELECT cell_key, action FROM overrides WHERE covenant = ? ORDER BY created_at", [covenant]
        ).fetchall()
        return {CellKey.parse(key): action == "unsafe" for key, action in rows}

    def contributor_map(self) -> dict[str, str]:
        """company id -> group id, for counting contributors at group level."""
        rows = self.store.con.execute("SELECT company_id, group_id FROM companies").fetchall()
        return dict(rows)


def _check_company_id(company_id: str) -> None:
    if not company_id or not company_id.replace("-", "").replace("_", "").isalnum() or len(company_id) > 32:
        raise AggregatorError(
            f"'{company_id}' is not a valid company id", hint="use letters, digits, - and _ only, e.g. T001"
        )
