"""The secretariat's view of one period: who submitted what, who is missing, what was quarantined and why."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .states import FileState
from .store import Store
from .validation import templates_for
from .workspace import Workspace

STATE_ORDER = {FileState.ACCEPTED: 0, FileState.SUPERSEDED: 1, FileState.DUPLICATE: 2, FileState.QUARANTINED: 3}


def period_status(store: Store, workspace: Workspace, period: str) -> pd.DataFrame:
    """One row per (covenant, company, template): accepted / missing, plus every other file received."""
    expected = _expected(store, workspace)
    received = store.query_df(
        "SELECT covenant, company_id, template, state, reason, original_name AS file, received_at, "
        "left(submission_id, 12) AS submission, left(coalesce(superseded_by, ''), 12) AS superseded_by "
        "FROM submissions WHERE period = ? OR period IS NULL ORDER BY received_at, submission_id",
        [period],
    )
    accepted = received[received.state == FileState.ACCEPTED][["covenant", "company_id", "template"]]
    merged = expected.merge(accepted.assign(has=True), how="left", on=["covenant", "company_id", "template"])
    missing = merged[merged.has.isna()].drop(columns="has").assign(state="missing", reason="no accepted submission")
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
    """A summary line per covenant, then every row that is not plainly accepted (missing, quarantined, ...)."""
    if frame.empty:
        console.print("nothing received and no registered company expected for this period")
        return
    for covenant, part in frame.groupby("covenant", dropna=False, sort=True):
        counts = part.state.value_counts()
        summary = ", ".join(
            f"{counts.get(s, 0)} {s}"
            for s in (FileState.ACCEPTED, "missing", FileState.QUARANTINED, FileState.SUPERSEDED, FileState.DUPLICATE)
        )
        title = covenant if isinstance(covenant, str) else "unreadable files"
        console.print(f"[bold]{escape(title)}[/]: {summary}")
        table = Table("company", "template", "state", "reason", "file")
        for row in part[part.state != FileState.ACCEPTED].itertuples():
            cells = (row.company_id, row.template, row.state, row.reason, row.file)
            table.add_row(*(escape(_text(c)) for c in cells))
        if table.row_count:
            console.print(table)


def _text(value: object) -> str:
    """Table text: unknown values (an unreadable file has no company) show as '?', not as 'nan'."""
    return "?" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
