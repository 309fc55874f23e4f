"""Everything a person's passphrase guards: one policy for new passphrases and one key-derivation cost.

The secretariat's passphrase derives the store key and unlocks the secretariat's private keys; a company's
passphrase unlocks its signing key. Each offline guess costs one scrypt evaluation, so the passphrase's strength
and scrypt's cost together decide how long a stolen copy holds out:

- `check_passphrase` refuses a new passphrase shorter than 12 characters or estimated (zxcvbn, the Dropbox
  estimator) at fewer than 10**10 guesses;
- `scrypt_cost()` is N = 2**18, r = 8, p = 1 (256 MiB, about a second here) for every key written.

Tests would spend minutes in scrypt, so they lower the cost through `weaken_for_tests` (called by the test
suite's conftest.py and nowhere else); production code never calls it, and a test asserts the strong default.
Readers take the parameters stored with each key (older keys used N = 2**15 or 2**17 and still open).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from zxcvbn import zxcvbn

from .errors import AggregatorError

MIN_LENGTH = 12
MIN_GUESSES_LOG10 = 10.0  # zxcvbn score 4: "very unguessable"
_ESTIMATE_CHARS = 72  # zxcvbn refuses longer input; more characters only make a passphrase stronger


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's work factors; 128 * r * n bytes of memory per evaluation."""

    n: int
    r: int = 8
    p: int = 1


STRONG = ScryptCost(2**18)
_lowered: ScryptCost | None = None


class WeakPassphrase(AggregatorError):
    """A new passphrase does not meet the policy."""


def scrypt_cost() -> ScryptCost:
    """The cost for every key derived from a passphrase from now on: STRONG outside the test suite."""
    return _lowered or STRONG


def weaken_for_tests(n: int | None = 2**10) -> None:
    """TEST ONLY: make new keys cheap to derive (None restores the strong cost). Never call this elsewhere."""
    global _lowered
    _lowered = None if n is None else ScryptCost(n)


def derive_key(passphrase: str, salt: bytes, cost: ScryptCost) -> bytes:
    """32 bytes from scrypt(passphrase, salt) at `cost`."""
    return Scrypt(salt=salt, length=32, n=cost.n, r=cost.r, p=cost.p).derive(passphrase.encode("utf-8"))


def check_passphrase(passphrase: str, *, context: tuple[str, ...] = ()) -> None:
    """Raise WeakPassphrase unless `passphrase` has 12+ characters and an estimated 10**10+ guesses.

    `context` lists words an attacker would try first (the company id, the covenant)."""
    hint = "use a sentence of four or more words that nobody could guess, e.g. from a book you own"
    if len(passphrase) < MIN_LENGTH:
        raise WeakPassphrase(
            f"the passphrase is too short ({len(passphrase)} characters; at least {MIN_LENGTH} are needed)", hint
        )
    estimate = zxcvbn(passphrase[:_ESTIMATE_CHARS], user_inputs=list(context))
    if estimate["guesses_log10"] < MIN_GUESSES_LOG10:
        why = estimate["feedback"].get("warning") or "it follows a common pattern"
        raise WeakPassphrase(f"the passphrase is too easy to guess: {why.rstrip('.').lower()}", hint)
