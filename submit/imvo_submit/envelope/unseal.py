"""Opening a sealed file: the signature is verified, streaming, before anything is decrypted."""

from __future__ import annotations

import itertools
import json
import os
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO, NamedTuple

import blake3
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from imvo_submit.envelope.format import (
    BATCH_BYTES,
    ENCAP_LENGTH,
    FILE_KEY_SIZE,
    FORMAT_VERSION,
    LABELS,
    LEGACY_VERSION,
    MAGIC,
    MAX_HEADER_BYTES,
    PREAMBLE_FIXED,
    RING_DEPTH,
    SIGNATURE_SIZE,
    SUITES,
    TAG_SIZE,
    BinarySink,
    EnvelopeHeader,
    Layout,
    LegacyHeader,
    SuiteSpec,
    canonical_json,
    chunk_nonce,
    is_small,
    open_envelope,
    payload_cipher,
    reject,
    signature_message,
)
from imvo_submit.envelope.keys import (
    EncryptionPrivateKey,
)
from imvo_submit.envelope.pipeline import (
    BackgroundHash,
    Batch,
    Collect,
    InlineHash,
    InOrder,
    Slot,
    Unframe,
    batches,
    buffer_ring,
    read_ahead,
    read_into,
)

# ---------------------------------------------------------------- reading


class OpenedEnvelope(NamedTuple):
    """A verified, decrypted submission: `plaintext` is None when a sink received it.

    A named tuple, so callers may write `header, plaintext = open_file(...)`.
    """

    header: EnvelopeHeader
    plaintext: bytes | None


def read_header(path: str | os.PathLike) -> EnvelopeHeader:
    """Parse and validate the cleartext header without any key (nothing is verified yet!). A format-2 file
    gives a LegacyHeader (its `deprecation` says so)."""
    path = Path(path)
    with open_envelope(path) as fh:
        header, _ = _read_preamble(fh, path)
    return header


def open_file(
    path: str | os.PathLike,
    recipient_private_key: EncryptionPrivateKey,
    signer_public_key: Ed25519PublicKey,
    sink: BinarySink | None = None,
) -> OpenedEnvelope:
    """Verify the header and the signature over the whole file (streaming, with fixed buffers), then decrypt
    chunk by chunk and check the plaintext's size, padding and hash.

    Nothing proportional to a size the file declares is allocated before the signature holds; after it, the
    plaintext grows only with chunks that authenticated. With a `sink`, plaintext is written to it in batches of
    authenticated chunks, as memoryviews of reused buffers (memory stays near 8 MiB; see BinarySink) and
    `plaintext` is None; if an EnvelopeRejected is raised midway, discard what the sink got.
    Raises EnvelopeRejected with a `reason` from REASONS.
    """
    path = Path(path)
    with open_envelope(path) as fh:
        header, preamble = _read_preamble(fh, path)
        spec, layout = SUITES[header.suite], header.layout
        encapsulation = _read_encapsulation(fh, path, spec)
        prefix = preamble + ENCAP_LENGTH.pack(len(encapsulation)) + encapsulation
        _check_total_size(path, os.fstat(fh.fileno()).st_size, len(prefix) + layout.payload_size)
        _check_signer(path, header, signer_public_key)
        collect = Collect() if sink is None else None
        output = Unframe.of(path, header, sink or collect)
        if is_small(layout):
            payload = _verify_signature_inline(fh, path, layout, prefix, signer_public_key)
            aead = payload_cipher(
                spec,
                _open_file_key(path, header, spec, encapsulation, preamble, recipient_private_key),
                header.format_version,
            )
            _decrypt_payload_inline(path, layout, aead, payload, output)
        else:
            _verify_signature(fh, path, layout, prefix, signer_public_key)
            aead = payload_cipher(
                spec,
                _open_file_key(path, header, spec, encapsulation, preamble, recipient_private_key),
                header.format_version,
            )
            fh.seek(len(prefix))
            _decrypt_payload(fh, path, layout, aead, output)
    return OpenedEnvelope(header, None if collect is None else collect.value())


def _read_preamble(fh: BinaryIO, path: Path) -> tuple[EnvelopeHeader, bytes]:
    fixed = fh.read(PREAMBLE_FIXED.size)
    if fixed[: len(MAGIC)] != MAGIC[: len(fixed)] or len(fixed) < len(MAGIC):
        raise reject(path, "not_an_envelope")
    if len(fixed) < PREAMBLE_FIXED.size:
        raise reject(path, "truncated")
    _, version, length = PREAMBLE_FIXED.unpack(fixed)
    if 1 <= version < LEGACY_VERSION:  # a format we wrote once: the company needs a current imvo-submit
        raise reject(path, "unsupported_version", message="older_version", version=version)
    if version not in (FORMAT_VERSION, LEGACY_VERSION):
        raise reject(path, "unsupported_version", version=version)
    if length > MAX_HEADER_BYTES:
        raise reject(path, "header_too_large", size=length)
    body = fh.read(length)
    if len(body) < length:
        raise reject(path, "truncated")
    return _parse_header(path, body, version), fixed + body


def _parse_header(path: Path, body: bytes, version: int) -> EnvelopeHeader:
    try:
        doc = json.loads(body.decode("ascii"), object_pairs_hook=_no_duplicate_keys)
        if not isinstance(doc, dict):
            raise ValueError("the header is not a JSON object")
        if canonical_json(doc) != body:
            raise ValueError("the header is not in canonical form")
        if doc.get("suite") is not None and doc["suite"] not in SUITES:
            raise reject(path, "unsupported_suite", suite=str(doc["suite"])[:80])
        if doc.get("format_version") != version:
            raise ValueError(f"format_version {doc.get('format_version')!r} is not the file's version {version}")
        return (EnvelopeHeader if version == FORMAT_VERSION else LegacyHeader).from_dict(doc)
    except RecursionError as exc:
        raise reject(path, "malformed_header", detail="it is nested too deeply to be a header") from exc
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise reject(path, "malformed_header", detail=str(exc)[:200]) from exc


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("the header repeats a field")
    return dict(pairs)


def _read_encapsulation(fh: BinaryIO, path: Path, spec: SuiteSpec) -> bytes:
    raw_length = fh.read(ENCAP_LENGTH.size)
    if len(raw_length) < ENCAP_LENGTH.size:
        raise reject(path, "truncated")
    (length,) = ENCAP_LENGTH.unpack(raw_length)
    if length != spec.encapsulation_size:
        raise reject(path, "malformed_header", detail=f"key encapsulation of {length} bytes for {spec.name}")
    data = fh.read(length)
    if len(data) < length:
        raise reject(path, "truncated")
    return data


def _check_total_size(path: Path, actual: int, before_signature: int) -> None:
    expected = before_signature + SIGNATURE_SIZE
    if actual < expected:
        raise reject(path, "truncated", missing=expected - actual)
    if actual > expected:
        raise reject(path, "trailing_data", extra=actual - expected)


def _check_signer(path: Path, header: EnvelopeHeader, signer: Ed25519PublicKey) -> None:
    expected = header.fingerprint_of(signer)
    if header.signer_fingerprint != expected:
        raise reject(
            path,
            "wrong_signer",
            company=header.company_id,
            found=header.signer_fingerprint,
            expected=expected,
        )


def _verify_signature(fh: BinaryIO, path: Path, layout: Layout, prefix: bytes, signer: Ed25519PublicKey) -> None:
    """Hash the whole payload (reading overlapped with hashing in a worker thread), then check the signature."""
    ring = [memoryview(bytearray(BATCH_BYTES)) for _ in range(RING_DEPTH)]
    pending: list[Future | None] = [None] * len(ring)
    remaining = layout.payload_size
    with BackgroundHash() as payload_hash:
        for number in itertools.count():
            if not remaining:
                break
            slot = number % len(ring)
            if pending[slot] is not None:
                pending[slot].result()
            block = ring[slot][: min(BATCH_BYTES, remaining)]
            got = read_into(fh, block)
            if got != len(block):
                raise reject(path, "truncated", missing=remaining - got + SIGNATURE_SIZE)
            pending[slot] = payload_hash.update(block)
            remaining -= got
        digest = payload_hash.digest()
    _check_signature(fh, path, prefix, digest, signer)


def _verify_signature_inline(
    fh: BinaryIO, path: Path, layout: Layout, prefix: bytes, signer: Ed25519PublicKey
) -> memoryview:
    """_verify_signature for a small file (payload at most ~2 MiB, whatever its header says), on this thread;
    returns the verified payload, which is then decrypted from memory (exactly the bytes that were verified)."""
    payload = memoryview(bytearray(layout.payload_size))
    got = read_into(fh, payload)
    if got != len(payload):
        raise reject(path, "truncated", missing=len(payload) - got + SIGNATURE_SIZE)
    _check_signature(fh, path, prefix, blake3.blake3(payload).digest(), signer)
    return payload


def _check_signature(fh: BinaryIO, path: Path, prefix: bytes, payload_digest: bytes, signer: Ed25519PublicKey) -> None:
    """Read the trailing signature (the file's position is just after the payload) and verify it."""
    signature = fh.read(SIGNATURE_SIZE)
    try:
        signer.verify(signature, signature_message(prefix, payload_digest))
    except InvalidSignature as exc:
        raise reject(path, "bad_signature") from exc


def _open_file_key(
    path: Path,
    header: EnvelopeHeader,
    spec: SuiteSpec,
    encapsulation: bytes,
    preamble: bytes,
    recipient: EncryptionPrivateKey,
) -> bytes:
    ours = header.fingerprint_of(recipient.public_key())
    if header.recipient_fingerprint != ours or recipient.kem != spec.kem:
        raise reject(path, "wrong_recipient", found=header.recipient_fingerprint, expected=ours)
    info = LABELS[header.format_version].hpke_info + preamble
    try:
        file_key = spec.hpke().decrypt(encapsulation, recipient.hpke_key(), info=info)
    except (InvalidTag, ValueError) as exc:
        # The header names our key, yet the key does not unlock it: the sealer lied or used a stale key.
        raise reject(path, "wrong_recipient", message="cannot_unlock", expected=ours) from exc
    if len(file_key) != FILE_KEY_SIZE:
        raise reject(path, "tampered", chunk="key")
    return file_key


def _decrypt_payload(
    fh: BinaryIO, path: Path, layout: Layout, aead: ChaCha20Poly1305 | AESGCM, output: Unframe
) -> None:
    """Decrypt batch by batch; each batch goes to `output` only after all its chunks authenticated.

    A reader thread fetches the next sealed batches and a hashing thread hashes the plaintext, so this thread
    only decrypts (the AEAD holds the GIL)."""
    ring = buffer_ring(layout, BATCH_BYTES)

    def read_sealed(slot: Slot, batch: Batch) -> int:
        return read_into(fh, slot.sealed[: batch.sealed])

    with InOrder("open-read") as reader, BackgroundHash() as plain_hash:
        output.hasher = plain_hash
        for slot, batch, read in read_ahead(ring, batches(layout, BATCH_BYTES), reader, read_sealed):
            got = read.result()
            if got != batch.sealed:
                raise reject(path, "truncated", missing=batch.sealed - got)
            plain = slot.claim().plain[: batch.plain]  # the hash of this slot's previous plaintext is done
            _decrypt_batch(path, layout, aead, batch, slot.sealed[: batch.sealed], plain)
            slot.pending += output.feed(plain)
        output.finish(plain_hash.digest())


def _decrypt_payload_inline(
    path: Path, layout: Layout, aead: ChaCha20Poly1305 | AESGCM, payload: memoryview, output: Unframe
) -> None:
    """_decrypt_payload for a small file held in memory: every chunk authenticates before the output gets
    anything (as the threaded path does for its single batch), then the framing and hash are checked."""
    plain = memoryview(bytearray(layout.stream))
    _decrypt_batch(path, layout, aead, Batch(0, layout.chunk_count, layout.stream), payload, plain)
    output.hasher = InlineHash()
    output.feed(plain)
    output.finish(output.hasher.digest())


def _decrypt_batch(
    path: Path,
    layout: Layout,
    aead: ChaCha20Poly1305 | AESGCM,
    batch: Batch,
    sealed: memoryview,
    plain: memoryview,
) -> None:
    step, last = layout.chunk, layout.chunk_count - 1
    for k in range(batch.count):
        index, start = batch.first + k, k * step
        size = min(step, batch.plain - start)
        offset = start + k * TAG_SIZE
        try:
            aead.decrypt_into(
                chunk_nonce(index, index == last),
                sealed[offset : offset + size + TAG_SIZE],
                None,
                plain[start : start + size],
            )
        except InvalidTag as exc:
            raise reject(path, "tampered", chunk=str(index + 1)) from exc
