"""The engine's errors: the company tool's family (imvo_submit.errors, shared so that a check fails the same way on
both sides) and the members only the secretariat meets."""

from __future__ import annotations

from imvo_submit.errors import (
    HOSTILE_INPUT_ERRORS,
    AggregatorError,
    ConfigError,
    EnvelopeError,
    ValidationFailed,
)

__all__ = [
    "HOSTILE_INPUT_ERRORS",
    "AggregatorError",
    "ConfigError",
    "DisclosureError",
    "EnvelopeError",
    "ReleaseRefused",
    "StoreDamaged",
    "ValidationFailed",
]


class StoreDamaged(AggregatorError):
    """The store cannot be read as a whole: damaged, truncated or replaced. Not a mistake of the command."""

    exit_code = 1


class DisclosureError(AggregatorError):
    """A table cannot be protected or a release fails its audit."""


class ReleaseRefused(AggregatorError):
    """A release is not allowed (data age, frequency, audit failure)."""
