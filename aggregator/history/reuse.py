"""A month's current cells from the ledger, when nothing they are computed from has changed since a release.

Protecting a release together with a year of earlier ones needs the current cells of every month (the data as
they stand now). Recomputing them all grows with the rows of every month, though in most months nothing has
changed since they were released. Each release therefore records a fingerprint of what its months' cells
are computed from; when the fingerprint of a month still matches, the recorded snapshot of a monthly release
that has every table needed *is* the month's current cells (the same values and every contributor's share).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from aggregator.protocol import Protocol
from aggregator.store import Store
from imvo_submit.periods import Period

from .snapshot import Snapshot


def data_fingerprint(store: Store, protocol: Protocol, month: Period) -> str:
    """What a month's cells and their verdicts are computed from: the protocol, the accepted submissions of the
    month (and of the months before it when figures are carried forward), every company's group and status,
    the waivers and the manual overrides."""
    carry = protocol.carries_forward
    (submissions,) = store.con.execute(
        "SELECT coalesce(string_agg(submission_id || '/' || template || '/' || period, ',' ORDER BY submission_id,"
        " template), '') FROM submissions WHERE state = 'accepted' AND covenant = ? AND (period = ? OR (? AND "
        "period < ?))",
        [protocol.covenant.id, str(month), carry, str(month)],
    ).fetchone()
    (companies,) = store.con.execute(
        "SELECT coalesce(string_agg(company_id || '/' || group_id || '/' || status, ',' ORDER BY company_id), '') "
        "FROM companies WHERE list_contains(covenants, ?)",
        [protocol.covenant.id],
    ).fetchone()
    consent = [
        store.con.execute(sql, [protocol.covenant.id]).fetchone()[0] or ""
        for sql in (
            "SELECT string_agg(w, ',' ORDER BY w) FROM (SELECT company_id || '/' || scope || '/' || granted_at || "
            "'/' || coalesce(revoked_at, '-') AS w FROM waivers WHERE covenant = ?)",
            "SELECT string_agg(o, ',' ORDER BY o) FROM (SELECT table_id || '/' || cell_key || '/' || action || '/' "
            "|| created_at AS o FROM overrides WHERE covenant = ?)",
        )
    ]
    text = "\n".join([protocol.sha256, protocol.non_response, str(month), submissions, companies, *consent])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprints(store: Store, protocol: Protocol, months: Sequence[Period]) -> dict[str, str]:
    """month -> fingerprint, recorded with a release (ledger `audit` JSON, key "data_fingerprints")."""
    return {str(m): data_fingerprint(store, protocol, m) for m in sorted(months)}


def recorded_current(
    store: Store, protocol: Protocol, month: Period, tables: Sequence[str], earlier: Sequence[Snapshot]
) -> Snapshot | None:
    """The month's current cells from the latest earlier monthly release of every table in `tables`, when the
    month's fingerprint has not changed since; else None (they must be computed)."""
    candidates = [
        s
        for s in earlier
        if s.months == {month} and all(span == (month,) for span in s.spans) and set(tables) <= set(s.tables)
    ]
    if not candidates:
        return None
    latest = max(candidates, key=lambda s: (s.sequence, s.release_id))
    row = store.con.execute("SELECT audit_json FROM releases WHERE release_id = ?", [latest.release_id]).fetchone()
    recorded = json.loads(row[0]).get("data_fingerprints", {}) if row else {}
    if recorded.get(str(month)) != data_fingerprint(store, protocol, month):
        return None
    return replace(latest, release_id=f"current {month}", hidden=np.ones(latest.problem.size, dtype=bool))
