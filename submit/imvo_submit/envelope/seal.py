"""Sealing a submission: one pass that pads, encrypts and signs (format in format.py and docs/envelope.md)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from imvo_submit.envelope.format import (
    DIGEST_FIELD,
    FILE_KEY_SIZE,
    FORMAT_VERSION,
    SEAL_BATCH_BYTES,
    SIZE_FIELD,
    SIZE_STRUCT,
    SUITES,
    TAG_SIZE,
    ZEROS,
    EnvelopeHeader,
    Layout,
    SuiteSpec,
    chunk_nonce,
    encode_encapsulation,
    encode_preamble,
    is_small,
    payload_cipher,
    sanitise_file_name,
    seal_file_key,
    signature_message,
    size_class,
)
from imvo_submit.envelope.keys import (
    EncryptionPublicKey,
    atomic_write,
    fingerprint,
)
from imvo_submit.envelope.pipeline import (
    Batch,
    InOrder,
    Slot,
    batches,
    buffer_ring,
    read_ahead,
    read_into,
)
from imvo_submit.errors import EnvelopeError

# ---------------------------------------------------------------- sealing


def seal_file(
    src_path: str | os.PathLike,
    dst_path: str | os.PathLike,
    *,
    covenant: str,
    template: str,
    company_id: str,
    period: str,
    recipient_public_key: EncryptionPublicKey,
    signing_private_key: Ed25519PrivateKey,
    created: datetime | str | None = None,
    suite: str | None = None,
    file_name: str | None = None,
    rules_version: str | None = None,
) -> EnvelopeHeader:
    """Encrypt `src_path` to the secretariat and sign it; write `dst_path` atomically; return the header.
    `rules_version` records which rules the file was checked against (None: not recorded).

    `suite` defaults to "<recipient kem>/chacha20-poly1305"; `created` defaults to now (UTC); `file_name`
    defaults to the source's base name. Raises EnvelopeError for bad input; a failure leaves no file.
    """
    src_path, dst_path = Path(src_path), Path(dst_path)
    spec = _choose_suite(suite, recipient_public_key)
    with _open_source(src_path) as src:
        size = os.fstat(src.fileno()).st_size
        header = new_header(
            covenant=covenant,
            template=template,
            company_id=company_id,
            period=period,
            created=_format_created(created),
            suite=spec.name,
            recipient_fingerprint=fingerprint(recipient_public_key),
            signer_fingerprint=fingerprint(signing_private_key.public_key()),
            file_name=sanitise_file_name(file_name if file_name is not None else src_path.name),
            size_class=size_class(size),
            rules_version=rules_version,
        )
        framed = _FramedSource(src, size, header)
        write = lambda out: _seal_stream(framed, out, header, spec, recipient_public_key, signing_private_key)  # noqa: E731
        atomic_write(dst_path, write, mode=0o644)
    return header


def _seal_stream(
    src: _FramedSource,
    out: BinaryIO,
    header: EnvelopeHeader,
    spec: SuiteSpec,
    recipient: EncryptionPublicKey,
    signer: Ed25519PrivateKey,
) -> None:
    """Write the preamble and encapsulation, then the payload while hashing it, then the signature."""
    file_key = _new_file_key()
    preamble = encode_preamble(header)
    prefix = preamble + encode_encapsulation(seal_file_key(spec, file_key, recipient, preamble))
    out.write(prefix)
    seal_payload = _seal_payload_inline if is_small(header.layout) else _seal_payload
    payload_digest = seal_payload(src, out, header.layout, payload_cipher(spec, file_key))
    src.check_finished()
    out.write(signer.sign(signature_message(prefix, payload_digest)))


def _new_file_key() -> bytes:
    return os.urandom(FILE_KEY_SIZE)


class _FramedSource:
    """The source file read as the framed stream: its size, its bytes while hashing them, zeros up to the size
    class, then the hash. Refuses a source whose size changes while it is read."""

    def __init__(self, fh: BinaryIO, size: int, header: EnvelopeHeader):
        self.fh, self.size, self.header = fh, size, header
        self.hash = blake3.blake3()
        self.position, self.end = 0, header.layout.stream
        self.file_end = SIZE_FIELD + size
        self.digest_start = self.end - DIGEST_FIELD

    def readinto(self, view: memoryview) -> int:
        done = 0
        while done < len(view) and self.position < self.end:
            done += self._fill(view[done:])
        return done

    def _fill(self, view: memoryview) -> int:
        if self.position < SIZE_FIELD:
            piece = SIZE_STRUCT.pack(self.size)[self.position : self.position + len(view)]
        elif self.position < self.file_end:
            return self._read_file(view[: self.file_end - self.position])
        elif self.position < self.digest_start:
            piece = ZEROS[: min(len(view), self.digest_start - self.position, len(ZEROS))]
        else:
            at = self.position - self.digest_start
            piece = self.hash.digest()[at : at + len(view)]
        view[: len(piece)] = piece
        self.position += len(piece)
        return len(piece)

    def _read_file(self, view: memoryview) -> int:
        got = read_into(self.fh, view)
        if got != len(view):
            raise _source_changed(self.header)
        self.hash.update(view)
        self.position += got
        return got

    def check_finished(self) -> None:
        """Every byte of the stream was read, and the source did not grow meanwhile."""
        if self.position != self.end or self.fh.read(1):
            raise _source_changed(self.header)


def _seal_payload_inline(src: _FramedSource, out: BinaryIO, layout: Layout, aead: ChaCha20Poly1305 | AESGCM) -> bytes:
    """_seal_payload for a small stream: read it whole, encrypt, write once, all on this thread.

    Same bytes and same errors as the threaded path; returns the payload's BLAKE3 digest."""
    plain = memoryview(bytearray(layout.stream))
    src.readinto(plain)
    batch = Batch(0, layout.chunk_count, layout.stream)
    sealed = memoryview(bytearray(batch.sealed))
    _encrypt_batch(layout, aead, batch, plain, sealed)
    out.write(sealed)
    return blake3.blake3(sealed).digest()


def _seal_payload(src: _FramedSource, out: BinaryIO, layout: Layout, aead: ChaCha20Poly1305 | AESGCM) -> bytes:
    """Encrypt the stream batch by batch into reused buffers, on three threads: a reader fills the plaintext
    buffers (hashing the source as it goes), this thread encrypts, a writer hashes and writes the sealed chunks.

    Returns the payload's BLAKE3 digest."""
    ring = buffer_ring(layout, SEAL_BATCH_BYTES)
    payload_hash = blake3.blake3()

    def read(slot: Slot, batch: Batch) -> None:
        src.readinto(slot.plain[: batch.plain])

    def hash_and_write(sealed: memoryview) -> None:
        payload_hash.update(sealed)
        out.write(sealed)

    with InOrder("seal-read") as reader, InOrder("seal-write") as writer:
        for slot, batch, reading in read_ahead(ring, batches(layout, SEAL_BATCH_BYTES), reader, read):
            reading.result()
            sealed = slot.claim().sealed[: batch.sealed]  # the writer is done with this slot's last batch
            _encrypt_batch(layout, aead, batch, slot.plain, sealed)
            slot.pending.append(writer.submit(hash_and_write, sealed))
        for slot in ring:
            slot.claim()  # every write done (or its error raised) before the caller writes the signature
    return payload_hash.digest()


def _encrypt_batch(
    layout: Layout, aead: ChaCha20Poly1305 | AESGCM, batch: Batch, plain: memoryview, sealed: memoryview
) -> None:
    step, last = layout.chunk, layout.chunk_count - 1
    for k in range(batch.count):
        index, start = batch.first + k, k * step
        size = min(step, batch.plain - start)
        offset = start + k * TAG_SIZE
        target = sealed[offset : offset + size + TAG_SIZE]
        aead.encrypt_into(chunk_nonce(index, index == last), plain[start : start + size], None, target)


def _source_changed(header: EnvelopeHeader) -> EnvelopeError:
    return EnvelopeError(
        f"{header.file_name} changed while it was being sealed",
        hint="close the file in other programs and seal again",
    )


def _open_source(path: Path) -> BinaryIO:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - returned to the caller's with-block
    except FileNotFoundError as exc:
        raise EnvelopeError(f"{path} does not exist", hint="check the file name") from exc
    except OSError as exc:
        raise EnvelopeError(f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.close()
        raise EnvelopeError(f"{path} is not a regular file", hint="seal a saved file, not a folder or a device")
    return fh


def _choose_suite(suite: str | None, recipient: EncryptionPublicKey) -> SuiteSpec:
    name = suite or f"{recipient.kem}/chacha20-poly1305"
    if name not in SUITES:
        raise EnvelopeError(f"unknown suite {name!r}", hint=f"choose one of {', '.join(SUITES)}")
    spec = SUITES[name]
    if spec.kem != recipient.kem:
        raise EnvelopeError(
            f"suite {name} needs a {spec.kem} secretariat key, but the key given is {recipient.kem}",
            hint="leave the suite out to use the one that fits the secretariat key",
        )
    return spec


def _format_created(created: datetime | str | None) -> str:
    if created is None:
        created = datetime.now(UTC)
    if isinstance(created, datetime):
        if created.tzinfo is None:
            raise EnvelopeError("the creation time must include a time zone", hint="pass datetime.now(UTC)")
        return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return created


def new_header(**values: object) -> EnvelopeHeader:
    header = EnvelopeHeader(format_version=FORMAT_VERSION, **values)
    try:
        header.validate()
    except ValueError as exc:
        raise EnvelopeError(f"cannot seal: {exc}", hint="check the covenant, template, company and period") from exc
    return header
