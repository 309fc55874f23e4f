"""The states a submitted file and a released cell can be in, each defined once.

They are StrEnums: the store, receipts and output files hold their text values, and a member compares equal
to its text, so rows read back from the store need no conversion.
"""

from __future__ import annotations

from enum import StrEnum


class FileState(StrEnum):
    """Where a file that arrived at the secretariat ended; every file ends in exactly one of these."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # the same sealed file was received before
    SUPERSEDED = "superseded"  # accepted once, replaced by a later correction
    QUARANTINED = "quarantined"
    # not stored: an intake rerun met a file it had decided before, and nothing changed
    ALREADY_RECEIVED = "already-received"


class Reason(StrEnum):
    """Why a file ended where it did, in one word. Stored with the submission and written in its receipt, so a
    company learns the kind of problem (the secretariat's full reason stays with the secretariat)."""

    VALID = "valid"
    CHECK_NUMBERS = "valid_check_numbers"  # accepted, but some numbers could be read two ways: check them
    DUPLICATE = "duplicate"  # the same content or the same sealed file was received before
    REPLACED = "replaced"  # accepted once, superseded by a later correction
    UNREADABLE = "unreadable"  # not a sealed file, damaged or changed on the way, empty or too large
    SENDER = "sender"  # unknown or revoked company, or a key that is not its current one
    ADDRESS = "address"  # a covenant or template this secretariat does not handle for the company
    PERIOD = "period"  # not the period of this intake, or a period in the future
    CLOCK = "clock"  # sealed at a time in the future: the sender's clock is wrong
    REPLAY = "replay"  # older than the submission already accepted for the period
    CONTENT = "content"  # the data does not meet the rules
    LIMITS = "limits"  # checking needed more memory or time than allowed, or stopped unexpectedly


class CellStatus(StrEnum):
    """A cell's fate in a release. Readers of a release see only PUBLISHED or SUPPRESSED; PRIMARY and
    SECONDARY (why it was hidden) stay in the secretariat's audit report and ledger."""

    PUBLISHED = "published"
    PRIMARY = "primary"  # failed a rule by itself
    SECONDARY = "secondary"  # hidden to protect a primary cell
    SUPPRESSED = "suppressed"  # primary or secondary, as a reader sees it

    @property
    def hidden(self) -> bool:
        return self is not CellStatus.PUBLISHED

    def for_readers(self) -> CellStatus:
        return CellStatus.PUBLISHED if self is CellStatus.PUBLISHED else CellStatus.SUPPRESSED
