"""One exception family for every mistake a user can make; both command lines turn these into `error:`/`hint:`
lines. The engine (imvo_submit.errors) adds its own members to the family."""

from __future__ import annotations

# Last line of defence: parsers that should refuse hostile input with an error of their own but raise these
# instead (a deeply nested header makes json.loads recurse) must cost one refused file, not a whole run.
HOSTILE_INPUT_ERRORS = (RecursionError, ValueError, OverflowError)


class AggregatorError(Exception):
    """A problem the user can fix. `message` says what is wrong, `hint` (optional) what to do next."""

    exit_code = 2  # a mistake in the command or its input (the command line's exit code)

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class ConfigError(AggregatorError):
    """A protocol or rules file is wrong; the message names the file and the key."""


class EnvelopeError(AggregatorError):
    """A sealed file cannot be opened or verified."""


class ValidationFailed(AggregatorError):
    """A submission does not fit its template; `report` holds every failure."""

    def __init__(self, message: str, report=None, hint: str | None = None):
        super().__init__(message, hint)
        self.report = report
