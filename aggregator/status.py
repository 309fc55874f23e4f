"""The secretariat's view of one period: who submitted what, who is missing, what was quarantined and why."""

from __future__ import annotations

import json

import pandas as pd

from imvo_submit.states import FileState, Reason
from imvo_submit.validation import templates_for

from .store import Store
from .workspace import Workspace

STATE_ORDER = {FileState.ACCEPTED: 0, FileState.SUPERSEDED: 1, FileState.DUPLICATE: 2, FileState.QUARANTINED: 3}
SUMMARY_STATES = (FileState.ACCEPTED, "missing", FileState.QUARANTINED, FileState.SUPERSEDED, FileState.DUPLICATE)


def period_status(store: Store, workspace: Workspace, period: str) -> pd.DataFrame:
    """One row per (covenant, company, template): accepted / missing, plus every other file received. Each
    received file carries its reason's category and the readers' warnings (e.g. numbers that read two ways)."""
    expected = _expected(store, workspace)
    received = store.query_df(
        "SELECT covenant, company_id, template, state, reason, reason_category AS category, "
        "original_name AS file, received_at, left(submission_id, 12) AS submission, "
        "left(coalesce(superseded_by, ''), 12) AS superseded_by, warnings_json "
        "FROM submissions WHERE period = ? OR period IS NULL ORDER BY received_at, submission_id",
        [period],
    )
    received["warnings"] = [_warnings(text) for text in received.pop("warnings_json")]
    accepted = received[received.state == FileState.ACCEPTED][["covenant", "company_id", "template"]]
    merged = expected.merge(accepted.assign(has=True), how="left", on=["covenant", "company_id", "template"])
    missing = merged[merged.has.isna()].drop(columns="has").assign(state="missing", reason="no accepted submission")
    missing["warnings"] = [[] for _ in range(len(missing))]
    frame = pd.concat([received, missing], ignore_index=True)
    frame["order"] = frame.state.map(STATE_ORDER).fillna(9)
    return (
        frame.sort_values(["covenant", "company_id", "template", "order"], na_position="first")
        .drop(columns="order")
        .reset_index(drop=True)
    )


def needs_a_look(frame: pd.DataFrame) -> pd.Series:
    """Rows a clerk should read: everything but a plainly accepted file (an accepted one whose numbers could be
    read two ways is listed too)."""
    return (frame.state != FileState.ACCEPTED) | (frame.get("category") == Reason.CHECK_NUMBERS)


def _warnings(text: object) -> list[str]:
    try:
        found = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return [str(w) for w in found] if isinstance(found, list) else []


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
