"""Envelope format 2, written from the library's own building blocks: format-3 readers must still open it.

The format-2 sealer no longer exists; tests that need a fresh format-2 file (for a company of their own, or
with a chosen size) build one here. Committed format-2 files: tests/vectors/envelope/v2/.
"""

from __future__ import annotations

from pathlib import Path

import blake3

from imvo_submit.envelope.format import (
    CHUNK_SIZE,
    LEGACY_VERSION,
    SUITES,
    LegacyHeader,
    chunk_nonce,
    encode_encapsulation,
    encode_preamble,
    payload_cipher,
    seal_file_key,
    signature_message,
)
from imvo_submit.envelope.keys import legacy_fingerprint


def legacy_header(plaintext: bytes, recipient, signer, **fields) -> LegacyHeader:
    """The header the format-2 sealer wrote for `plaintext`; `fields` override any field (a lying header too)."""
    values = dict(covenant="textile", template="living_wage", company_id="C0042", period="2026-10",
                  created="2026-11-01T09:30:00Z", file_name="legacy.csv", suite="x25519/chacha20-poly1305")  # fmt: skip
    values |= dict(
        format_version=LEGACY_VERSION,
        recipient_fingerprint=legacy_fingerprint(recipient),
        signer_fingerprint=legacy_fingerprint(signer.public_key()),
        plaintext_blake3=blake3.blake3(plaintext).hexdigest(),
        plaintext_size=len(plaintext),
        chunk_size=CHUNK_SIZE,
    )
    return LegacyHeader(**(values | fields))


def seal_v2(plaintext: bytes, target: Path, recipient, signer, *, damage_chunk: int | None = None, **fields) -> Path:
    """A format-2 file as the format-2 sealer wrote it; `damage_chunk` flips a byte of that chunk's ciphertext
    and signs the result, so only decryption can notice."""
    header = legacy_header(plaintext, recipient, signer, **fields)
    spec = SUITES[header.suite]
    file_key = bytes(range(32))
    preamble = encode_preamble(header)
    prefix = preamble + encode_encapsulation(seal_file_key(spec, file_key, recipient, preamble))
    aead = payload_cipher(spec, file_key, LEGACY_VERSION)
    pieces = [plaintext[i : i + CHUNK_SIZE] for i in range(0, len(plaintext), CHUNK_SIZE)] or [b""]
    chunks = [aead.encrypt(chunk_nonce(i, i == len(pieces) - 1), p, None) for i, p in enumerate(pieces)]
    if damage_chunk is not None:
        chunks[damage_chunk] = bytes([chunks[damage_chunk][0] ^ 1]) + chunks[damage_chunk][1:]
    payload = b"".join(chunks)
    signature = signer.sign(signature_message(prefix, blake3.blake3(payload).digest()))
    target.write_bytes(prefix + payload + signature)
    return target
