"""What the intake's steps hand each other: a file's outcome, the report, and the decisions on their way to
the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import blake3
import pandas as pd

from imvo_submit import envelope
from imvo_submit.states import FileState, Reason

# A 4-million-row CSV is about 180 MB and checks within the worker's default memory; the intake itself holds a
# file's plaintext and its checked rows, so larger files are refused before they are opened.
MAX_SEALED_BYTES = 512 * 1024**2
# A sealing time this far after the secretariat's clock is a wrong clock on the sender's side, not a time skew.
FUTURE_SKEW_MINUTES = 10


@dataclass
class FileOutcome:
    file: str
    state: FileState
    reason: str
    company_id: str | None = None
    covenant: str | None = None
    template: str | None = None
    period: str | None = None
    warnings: list[str] = field(default_factory=list)
    receipt: str | None = None  # path of the receipt in the outbox, relative to the workspace
    category: Reason | None = None  # the reason in one word, as the receipt carries it


@dataclass(frozen=True)
class Skipped:
    """An entry of the inbox the intake did not read, left where it is: `kind` says what it is."""

    name: str
    kind: str  # hidden | folder | link | special | unreadable
    reason: str

    @property
    def needs_attention(self) -> bool:
        """Hidden files are system or temporary files; everything else may be a submission left unread."""
        return self.kind != "hidden"


@dataclass
class IntakeReport:
    outcomes: list[FileOutcome]
    skipped: list[Skipped] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(o.state == state for o in self.outcomes)

    @property
    def has_problems(self) -> bool:
        """A quarantined file, or an inbox entry left unread that may be a submission."""
        return bool(self.count(FileState.QUARANTINED)) or any(s.needs_attention for s in self.skipped)


class Quarantine(Exception):
    """This file goes to quarantine with `reason` (and the validation report, if any)."""

    def __init__(
        self,
        reason: str,
        report=None,
        *,
        category: Reason,
        signed: bool = False,
        detail: str = "",
        warnings: list[str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.report = report
        self.category = category
        self.signed = signed  # the file's signature verified with the registered key of the company it names
        self.detail = detail  # for the secretariat's log only: why a check ended without a verdict
        self.warnings = warnings or []  # what the readers noted (e.g. numbers that read two ways)


@dataclass
class Opened:
    header: envelope.EnvelopeHeader
    plaintext: bytes

    @property
    def content_hash(self) -> str:
        """BLAKE3 of the plaintext: the duplicate key, kept only in the encrypted store."""
        return blake3.blake3(self.plaintext).hexdigest()


@dataclass
class Decision:
    """What to commit for one file: its outcome, the verified or claimed header, extras for the record."""

    outcome: FileOutcome
    header: envelope.EnvelopeHeader | None
    report_json: str | None = None
    replaces: str | None = None  # submission id of the accepted submission this one supersedes
    rows: pd.DataFrame | None = None  # the validated rows of an accepted file
    template: object = None  # their template (imvo_submit.validation.Template)
    signed: bool = False  # the signature verified with the registered key of header.company_id
    content_hash: str | None = None  # BLAKE3 of the plaintext, when it was decrypted
    detail: str = ""  # a failed check's traceback or last words, logged for the secretariat


@dataclass(frozen=True)
class Earlier:
    """The record a re-decision replaces: the file keeps its submission id and the time it arrived."""

    state: str
    reason: str
    raw_path: str
    received_at: str


@dataclass
class Filed:
    """A decided file whose record is written in the open transaction but not yet committed."""

    path: Path
    submission_id: str
    final: Path
    decision: Decision
    receipt: bytes | None
    earlier: Earlier | None = None  # set when a quarantined file is decided again
