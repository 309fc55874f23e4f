"""Text from outside (file names, values in messages) made safe to show on a terminal or in a log line."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

# One CSV dialect per language for every CSV a person opens in Excel (the committee's release tables, a company's
# error report): English ',' and a decimal point, Dutch ';' and a decimal comma, as Excel in that locale expects.
CSV_DELIMITER = {"en": ",", "nl": ";"}

# Control characters (C0, DEL, C1), format characters (bidirectional overrides, zero-width joiners), line and
# paragraph separators, surrogates and unassigned code points can move the cursor, recolour the screen or
# reorder what a clerk reads.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def printable(text: str) -> str:
    """`text` with every character that could act on a terminal written as a Python-style escape (\\x1b,
    \\u202e); letters of every script, digits, punctuation and spaces stay as they are."""
    return "".join(_shown(char) for char in str(text))


def _shown(char: str) -> str:
    if unicodedata.category(char) not in _UNSAFE_CATEGORIES:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def character_name(char: str) -> str:
    """One character as a person can find it: `'–' (U+2013 EN DASH)`; an unsafe one is shown escaped."""
    return f"'{printable(char)}' (U+{ord(char):04X} {unicodedata.name(char, 'unnamed character')})"


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean 'textile'?` when one of `known` is close to `name` (difflib), else an empty string."""
    close = difflib.get_close_matches(str(name).casefold(), list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
