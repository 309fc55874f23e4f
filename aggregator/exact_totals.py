"""Totals the intake keeps so that every aggregate of a period stays exact: a file that would break one is refused.

Each value is bounded by its column's range (rules/), but a period's total is a sum over every company, and the
disclosure core works in doubles: a cell of more than 2**53 pieces is no longer an exact number, its parts no
longer add up to it, and the audit refuses the release (one accepted file then stops every release of the
period). So for every quantity a protocol table adds up over a template (a column, or a column times its
weight), the intake keeps the period's total of absolute values of accepted rows, and quarantines a file that
would lift it beyond PERIOD_TOTAL_LIMIT. The limit leaves room for tables over twelve months (year to date,
rolling 12) and for rounding: 12 * 2**48 < 2**52.

Corrections are counted on top of what they replace (the replaced rows are not subtracted): a bound that errs
on the safe side, far above any real monthly total (2**48 EUR is about 280 trillion).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .protocol import Operand, Protocol
from .store import Store, checked_identifier, rows_table

PERIOD_TOTAL_LIMIT = 2.0**48


def operands(protocol: Protocol, template: str) -> list[Operand]:
    """Every quantity a table of the protocol sums over rows of `template`, each once, in a stable order."""
    found = {
        operand.signature: operand
        for table in protocol.tables
        if table.template == template
        for _, operand in table.measure.components()
        if operand is not None
    }
    return [found[key] for key in sorted(found)]


def row_values(frame: pd.DataFrame, operand: Operand) -> np.ndarray:
    """|column * weight| per row, missing values as 0."""
    values = pd.to_numeric(frame[operand.column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if operand.weight:
        weight = pd.to_numeric(frame[operand.weight], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        values = values * weight
    return np.nan_to_num(np.abs(values), nan=0.0, posinf=np.inf)


class PeriodTotals:
    """The running totals of one intake, read from the store the first time a template and period come up."""

    def __init__(self, store: Store, protocols: Mapping[str, Protocol]):
        self.store, self.protocols = store, protocols
        self._totals: dict[tuple[str, str, str], dict[str, float]] = {}

    def admit(self, covenant: str, template: str, period: str, rows: pd.DataFrame) -> str | None:
        """Count the file's rows and return None, or return why they would make a total inexact (not counted)."""
        protocol = self.protocols.get(covenant)
        if protocol is None:
            return None
        quantities = operands(protocol, template)
        totals = self._period(covenant, template, period, quantities)
        added = {o.signature: float(row_values(rows, o).sum()) for o in quantities}
        for operand in quantities:
            total = totals[operand.signature] + added[operand.signature]
            if not total <= PERIOD_TOTAL_LIMIT:  # also NaN and infinity
                return _refusal(operand, period, total)
        for key, value in added.items():
            totals[key] += value
        return None

    def _period(self, covenant: str, template: str, period: str, quantities: list[Operand]) -> dict[str, float]:
        key = (covenant, template, period)
        if key not in self._totals:
            self._totals[key] = self._stored(covenant, template, period, quantities)
        return self._totals[key]

    def _stored(self, covenant: str, template: str, period: str, quantities: list[Operand]) -> dict[str, float]:
        """The totals of the accepted rows already in the store (none when the template has no table yet)."""
        table = rows_table(covenant, template)
        exists = self.store.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?",
            [table],
        ).fetchone()[0]
        if not exists or not quantities:
            return {o.signature: 0.0 for o in quantities}
        sums = ", ".join(f"coalesce(sum({_absolute(o)}), 0)" for o in quantities)
        row = self.store.con.execute(
            f"SELECT {sums} FROM {table} r JOIN submissions s USING (submission_id) "
            "WHERE s.state = 'accepted' AND r.period = ?",
            [period],
        ).fetchone()
        return {o.signature: float(v) for o, v in zip(quantities, row, strict=True)}


def _absolute(operand: Operand) -> str:
    value = f"CAST(r.{checked_identifier(operand.column)} AS DOUBLE)"
    if operand.weight:
        value += f" * CAST(r.{checked_identifier(operand.weight)} AS DOUBLE)"
    return f"abs({value})"


def _refusal(operand: Operand, period: str, total: float) -> str:
    what = operand.column if not operand.weight else f"{operand.column} times {operand.weight}"
    return (
        f"with this file the total of {what} for {period} would be {total:.4g}, beyond {PERIOD_TOTAL_LIMIT:.4g}, "
        "the largest total the secretariat can add up exactly; the values are far larger than real ones "
        "(check the unit, e.g. grams instead of kilograms)"
    )
