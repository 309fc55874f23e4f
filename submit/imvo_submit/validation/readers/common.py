"""What every reader shares: the warning type, file-level refusals, format detection and header checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imvo_submit.errors import ValidationFailed
from imvo_submit.validation import declared
from imvo_submit.validation.report import Problem, ValidationReport

MAX_COLUMNS = declared.MAX_COLUMNS
FIRST_DATA_ROW = 2  # the header is spreadsheet row 1
TRUE_WORDS = frozenset({"true", "waar", "ja", "yes", "y", "j", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "onwaar", "nee", "no", "n", "0", "0.0"})


@dataclass(frozen=True)
class ReadWarning:
    """A change the reader made (or a doubt it had), reported to the company; one per kind and column."""

    code: str
    message_en: str
    message_nl: str
    column: str | None = None
    count: int = 0

    def __str__(self) -> str:
        return self.message_en

    def message(self, language: str = "en") -> str:
        return self.message_nl if language == "nl" else self.message_en


def load_bytes(source: str | Path | bytes, filename: str | None = None) -> tuple[bytes, str]:
    """The file's bytes and a name for messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), filename or "<upload>"
    path = Path(source)
    try:
        return path.read_bytes(), filename or path.name
    except OSError as exc:
        raise file_problem("unreadable", f"cannot read {path}: {exc.strerror}", f"kan {path} niet lezen") from exc


def detect_format(data: bytes, name: str = "") -> str:
    """'xlsx', 'parquet' or 'csv', from the file's first bytes."""
    body = without_bom(data)
    if not body[:4096].strip() and not body.strip():  # strip copies: only look further when the start is blank
        raise file_problem("empty_file", "the file is empty", "het bestand is leeg")
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise file_problem(
            "unreadable",
            "this is an old Excel file (.xls), which cannot be read; save it as .xlsx or .csv",
            "dit is een oud Excel-bestand (.xls), dat niet gelezen kan worden; sla het op als .xlsx of .csv",
        )
    return "csv"


def without_bom(data: bytes) -> bytes:
    """The bytes after a byte-order mark: a file that holds only a BOM is empty, not binary."""
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if data.startswith(bom):
            return data[len(bom) :]
    return data


def file_problem(rule: str, message_en: str, message_nl: str, column: str | None = None) -> ValidationFailed:
    report = ValidationReport.from_problems([Problem(None, column, None, rule, message_en, message_nl)])
    return ValidationFailed(message_en, report=report, hint="fix the file and check it again")


def check_header(header: list[Any]) -> None:
    if len(header) > MAX_COLUMNS:
        raise declared.too_wide(len(header))
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        key = normalise_header(name)
        if key and key in seen:
            raise file_problem(
                "duplicate_column",
                f"column '{key}' appears twice in the header (columns {seen[key]} and {position}); keep one",
                f"kolom '{key}' staat twee keer in de kopregel (kolommen {seen[key]} en {position}); houd er één",
                column=key,
            )
        seen[key] = position


def normalise_header(name: Any) -> str:
    """'Order Value EUR ' -> 'order_value_eur'."""
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return ""
    return re.sub(r"[\s\-]+", "_", str(name).strip().removeprefix("\ufeff")).casefold()
