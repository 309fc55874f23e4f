"""Test-suite wide settings.

Key derivation: every key a passphrase guards is derived with scrypt at N = 2**18 (about a second each); the
suite creates hundreds of keys and workspaces, so it lowers the cost here, through the one test-only hook.
`tests/test_keys.py::test_production_paths_derive_keys_at_the_strong_cost` checks the default without it.
"""

from imvo_submit import passphrase

passphrase.weaken_for_tests(2**10)
