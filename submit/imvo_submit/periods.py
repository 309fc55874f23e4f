"""Reporting periods: one month (`Period`, written YYYY-MM) and how many months a table sums (`PeriodMode`).

Periods arrive as text (envelope headers, the command line, the store) and are parsed here, once; the
engine computes with `Period` values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from imvo_submit.errors import AggregatorError

PERIOD_PATTERN = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class InvalidPeriod(AggregatorError):
    """A period that is not a month written YYYY-MM."""


@dataclass(frozen=True, order=True)
class Period:
    """One reporting month. Ordered in time; `str()` gives YYYY-MM."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """The period written YYYY-MM; raises InvalidPeriod for anything else."""
        if not isinstance(text, str) or not PERIOD_PATTERN.fullmatch(text):
            raise InvalidPeriod(f"'{text}' is not a reporting period", hint="write it as YYYY-MM, e.g. 2025-03")
        return cls(int(text[:4]), int(text[5:]))

    @classmethod
    def of(cls, value: Period | str) -> Period:
        """`value` as a Period: library doors accept the text form too."""
        return value if isinstance(value, Period) else cls.parse(value)

    @staticmethod
    def is_valid(text: str) -> bool:
        return isinstance(text, str) and PERIOD_PATTERN.fullmatch(text) is not None

    @property
    def index(self) -> int:
        """Months since year 0: consecutive months have consecutive indices."""
        return self.year * 12 + self.month - 1

    @classmethod
    def from_index(cls, index: int) -> Period:
        return cls(index // 12, index % 12 + 1)

    def shifted(self, months: int) -> Period:
        return Period.from_index(self.index + months)

    @property
    def quarter(self) -> int:
        return (self.month - 1) // 3 + 1

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


class PeriodMode(StrEnum):
    """Which months a table released for period P sums."""

    MONTH = "month"
    YEAR_TO_DATE = "year_to_date"
    ROLLING_3 = "rolling_3"
    ROLLING_12 = "rolling_12"

    def months(self, period: Period | str) -> tuple[Period, ...]:
        """The months a table of this mode covers when released for `period`, oldest first."""
        last = Period.of(period)
        count = {"month": 1, "rolling_3": 3, "rolling_12": 12}.get(self.value, last.month)
        return tuple(last.shifted(-k) for k in range(count - 1, -1, -1))

    @property
    def cumulative(self) -> bool:
        return self is not PeriodMode.MONTH
