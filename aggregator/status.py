"""The secretariat's view of one period: who submitted what, who is missing, what was quarantined and why."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from .store import Store
from .validation import templates_for
from .workspace import Workspace

STATE_ORDER = {"accepted": 0, "superseded": 1, "duplicate": 2, "quarantined": 3}


def period_status(store: Store, workspace: Workspace, period: str) -> pd.DataFrame:
    """One row per (covenant, company, template): accepted / missing, plus every other file received."""
    expected = _expected(store, workspace)
    received = store.query_df(
        "SELECT covenant, company_id, template, state, reason, original_name AS file, received_at, "
        "left(submission_id, 12) AS submission, left(coalesce(superseded_by, ''), 12) AS superseded_by "
        "FROM submissions WHERE period = ? OR period IS NULL ORDER BY received_at, submission_id",
        [period],
    )
    accepted = received[received.state == "accepted"][["covenant", "company_id", "template"]]
    merged = expected.merge(accepted.assign(has=True), how="left", on=["covenant", "company_id", "template"])
    missing = (
        merged[merged.has.isna()].drop(columns="has").assign(state="missing", reason="no accepted submission")
    )
    frame = pd.concat([received, missing], ignore_index=True)
    frame["order"] = frame.state.map(STATE_ORDER).fillna(9)
    return (
        frame.sort_values(["covenant", "company_id", "template", "order"], na_position="first")
        .drop(columns="order")
        .reset_index(drop=True)
    )


def _expected(store: Store, workspace: Workspace) -> pd.DataFrame:
    companies = store.query_df(
        "SELECT company_id, unnest(covenants) AS covenant FROM companies WHERE status = 'active'"
    )
    rows = [
        (c.covenant, c.company_id, template)
        for c in companies.itertuples()
        if c.covenant in workspace.protocols
        for template in templates_for(c.covenant)
    ]
    return pd.DataFrame(rows, columns=["covenant", "company_id", "template"])


def print_status(frame: pd.DataFrame, console: Console) -> None:
    for covenant, part in frame.groupby("covenant", dropna=False, sort=True):
        counts = part.state.value_counts()
        summary = ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("accepted", "missing", "quarantined", "superseded")
        )
        console.print(f"[bold]{covenant or 'unreadable files'}[/]: {summary}")
        table = Table("company", "template", "state", "reason", "file")
        for row in part[part.state != "accepted"].itertuples():
            table.add_row(str(row.company_id), str(row.template), row.state, row.reason, str(row.file or ""))
        if table.row_count:
            console.print(table)
