"""The sealed submission file (.imvo): HPKE-wrapped file key, STREAM-encrypted padded chunks, Ed25519 signature.

Byte layout (docs/envelope.md is the normative page; all integers big-endian):

    magic "IMVOSEAL" (8) | version u16 = 3 | header length u32 | header (canonical JSON)
    | encapsulation length u16 | HPKE enc || HPKE-sealed 32-byte file key
    | payload: the framed stream in 64 KiB chunks, each AEAD(chunk) with a 16-byte tag
    | Ed25519 signature (64)

    framed stream = plaintext size u64 | plaintext | zeros up to the size class | BLAKE3-256(plaintext)

Format 3 shows nothing derived from the plaintext in the clear: the header names only the size class (the next
power of two, at least 64 KiB), and the plaintext's size and hash travel inside the encryption. The chunk size is
fixed by the format (64 KiB, as in age). The signature signs PREFIX || BLAKE3(magic..encapsulation) ||
BLAKE3(payload), so a writer seals in one pass and a reader verifies it, streaming with fixed buffers, before it
decrypts anything; memory for the plaintext grows only with chunks that have authenticated.

Format 2 (cleartext plaintext hash and size, a chunk size chosen by the sender) is still opened, with a
deprecation notice, when its chunk size is the 64 KiB every imvo-submit wrote; format 1 is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import stat
import struct
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

import blake3
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from aggregator.envelope.keys import (
    KEM_HYBRID,
    KEM_X25519,
    EncryptionPrivateKey,
    EncryptionPublicKey,
    atomic_write,
    fingerprint,
    legacy_fingerprint,
)
from aggregator.errors import EnvelopeError

MAGIC = b"IMVOSEAL"
FORMAT_VERSION = 3
LEGACY_VERSION = 2  # still opened, with a deprecation notice
MAX_HEADER_BYTES = 16 * 1024
CHUNK_SIZE = 64 * 1024  # fixed by the format (format 2 let the sender choose, down to 16 bytes)
MIN_SIZE_CLASS, MAX_SIZE_CLASS = CHUNK_SIZE, 2**40
SIZE_FIELD, DIGEST_FIELD = 8, 32  # the framed stream: size before the plaintext, BLAKE3 at the very end
TAG_SIZE = 16
SIGNATURE_SIZE = 64
FILE_KEY_SIZE = 32


@dataclass(frozen=True)
class Labels:
    """Domain-separation strings of one format version."""

    hpke_info: bytes
    payload_key: bytes
    signature: bytes


LABELS = {
    3: Labels(b"imvo-envelope/v3 file key\n", b"imvo-envelope/v3 payload key", b"imvo-envelope/v3 signature\n"),
    2: Labels(b"imvo-envelope/v2 file key\n", b"imvo-envelope/v2 payload key", b"imvo-envelope/v2 signature\n"),
}

_PREAMBLE_FIXED = struct.Struct(">8sHI")  # magic, version, header length
_ENCAP_LENGTH = struct.Struct(">H")
_SIZE = struct.Struct(">Q")
_HASH_BLOCK = 1024 * 1024
# Bytes handled per step of the sealing/opening pipeline. _RING_DEPTH steps are in flight (one being encrypted or
# decrypted while a worker reads the next and another hashes/writes the previous), so opening keeps about 8 MiB
# of buffers and sealing about 16 MiB, whatever the file size. On 1 GiB, 2 MiB steps used ~10% less CPU than
# 512 KiB ones when opening, 4 MiB ~4% less than 1 MiB when sealing.
_BATCH_BYTES = 2 * 1024 * 1024
_SEAL_BATCH_BYTES = 4 * 1024 * 1024
_RING_DEPTH = 2
# Payloads up to this size (the 64 KiB .. 2 MiB size classes, nearly every submission) are sealed and opened on
# the calling thread, all in memory: a file this small fills at most one batch, so worker threads would have
# nothing to overlap, and starting them cost most of the time of a small file (`python -m bench.bench_envelope
# --small 256`). Both paths write and accept exactly the same bytes, with the same checks in the same order.
_INLINE_MAX_BYTES = 2 * 1024 * 1024 + SIZE_FIELD + DIGEST_FIELD
_ZEROS = memoryview(bytes(_HASH_BLOCK))


@dataclass(frozen=True)
class SuiteSpec:
    """One supported HPKE suite: KEM for the file key, AEAD for both the file key and the payload chunks."""

    name: str
    kem: str
    hpke_kem: KEM
    hpke_aead: AEAD
    payload_aead: type

    def hpke(self) -> Suite:
        return Suite(self.hpke_kem, KDF.HKDF_SHA256, self.hpke_aead)

    @property
    def encapsulation_size(self) -> int:
        return self.hpke_kem.enc_length() + FILE_KEY_SIZE + TAG_SIZE


SUITES: dict[str, SuiteSpec] = {
    s.name: s
    for s in (
        SuiteSpec("x25519/chacha20-poly1305", KEM_X25519, KEM.X25519, AEAD.CHACHA20_POLY1305, ChaCha20Poly1305),
        SuiteSpec("x25519/aes-256-gcm", KEM_X25519, KEM.X25519, AEAD.AES_256_GCM, AESGCM),
        SuiteSpec(
            "mlkem768-x25519/chacha20-poly1305",
            KEM_HYBRID,
            KEM.MLKEM768_X25519,
            AEAD.CHACHA20_POLY1305,
            ChaCha20Poly1305,
        ),
        SuiteSpec("mlkem768-x25519/aes-256-gcm", KEM_HYBRID, KEM.MLKEM768_X25519, AEAD.AES_256_GCM, AESGCM),
    )
}

# Every way opening can fail; intake stores the code, the clerk reads the message.
REASONS = (
    "unreadable",
    "not_an_envelope",
    "unsupported_version",
    "header_too_large",
    "malformed_header",
    "unsupported_suite",
    "truncated",
    "trailing_data",
    "wrong_signer",
    "bad_signature",
    "wrong_recipient",
    "tampered",
    "plaintext_mismatch",
)
# Reasons found after the signature was verified: the named company really sealed the file.
SIGNED_REASONS = frozenset({"wrong_recipient", "tampered", "plaintext_mismatch"})


class EnvelopeRejected(EnvelopeError):
    """A sealed file was refused; `reason` is one of REASONS, the message is for a secretariat clerk."""

    def __init__(self, reason: str, message: str, hint: str | None = None):
        if reason not in REASONS:
            raise ValueError(f"unknown envelope rejection reason {reason!r}")
        super().__init__(message, hint)
        self.reason = reason

    @property
    def signer_verified(self) -> bool:
        """Whether the file's signature held (the refusal came later): its sender is the company it names."""
        return self.reason in SIGNED_REASONS


class BinarySink(Protocol):
    """Receives plaintext as memoryviews into buffers that are reused: write or copy them during the call
    (files, BytesIO and hashes do); do not keep a reference."""

    def write(self, data: bytes | memoryview, /) -> object: ...


# ---------------------------------------------------------------- the header


_IDENT = re.compile(r"[a-z][a-z0-9_]{0,63}")
_COMPANY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_FINGERPRINT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}")
_LEGACY_FINGERPRINT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}")
_DIGEST_HEX = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Layout(NamedTuple):
    """How the encrypted stream is cut: `stream` bytes in chunks of `chunk` bytes (the last 1..chunk, or one
    empty chunk for an empty stream), each sealed with a 16-byte tag."""

    stream: int
    chunk: int

    @property
    def chunk_count(self) -> int:
        return max(1, -(-self.stream // self.chunk))

    @property
    def payload_size(self) -> int:
        return self.stream + TAG_SIZE * self.chunk_count


@dataclass(frozen=True)
class EnvelopeHeader:
    """The signed, cleartext description of a submission (format 3, readable without any key). It names the
    plaintext's size class, never its size or hash: those are inside the encryption."""

    format_version: int
    covenant: str
    template: str
    company_id: str
    period: str  # YYYY-MM
    created: str  # ISO 8601 UTC, seconds, "Z"
    suite: str
    recipient_fingerprint: str
    signer_fingerprint: str
    file_name: str  # base name only
    size_class: int  # padded plaintext size: a power of two from 64 KiB

    deprecation = None  # the current format

    def to_dict(self) -> dict:
        return asdict(self)

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, no whitespace, ASCII only."""
        return canonical_json(self.to_dict())

    @property
    def layout(self) -> Layout:
        return Layout(self.size_class + SIZE_FIELD + DIGEST_FIELD, CHUNK_SIZE)

    def fingerprint_of(self, key: object) -> str:
        """A key's fingerprint in this format's form."""
        return fingerprint(key)

    @classmethod
    def from_dict(cls, doc: dict) -> EnvelopeHeader:
        """Strictly validated; raises ValueError naming the first bad field."""
        names = [f.name for f in fields(cls)]
        if set(doc) != set(names):
            missing = ", ".join(sorted(set(names) - set(doc))) or "none"
            extra = ", ".join(sorted(set(doc) - set(names))) or "none"
            raise ValueError(f"fields missing: {missing}; unexpected fields: {extra}")
        header = cls(**doc)
        header.validate()
        return header

    def validate(self) -> None:
        """Raise ValueError with a plain description of the first field that breaks the format."""
        _expect_int(self.format_version, "format_version", FORMAT_VERSION, FORMAT_VERSION)
        _validate_common(self, _FINGERPRINT)
        _expect_int(self.size_class, "size_class", MIN_SIZE_CLASS, MAX_SIZE_CLASS)
        if self.size_class & (self.size_class - 1):
            raise ValueError(f"size_class {self.size_class} is not a power of two")


@dataclass(frozen=True)
class LegacyHeader(EnvelopeHeader):
    """A format-2 header: it shows the plaintext's BLAKE3 hash and exact size in the clear (deprecated)."""

    size_class: int = 0  # not part of format 2
    plaintext_blake3: str = ""
    plaintext_size: int = 0
    chunk_size: int = CHUNK_SIZE

    deprecation = (
        "sealed with envelope format 2, whose readable header shows the data's size and checksum; it was "
        "accepted, but ask the company to update imvo-submit before its next submission"
    )

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "size_class"}

    @property
    def layout(self) -> Layout:
        return Layout(self.plaintext_size, self.chunk_size)

    def fingerprint_of(self, key: object) -> str:
        return legacy_fingerprint(key)

    @classmethod
    def from_dict(cls, doc: dict) -> LegacyHeader:
        names = [f.name for f in fields(cls) if f.name != "size_class"]
        if set(doc) != set(names):
            missing = ", ".join(sorted(set(names) - set(doc))) or "none"
            extra = ", ".join(sorted(set(doc) - set(names))) or "none"
            raise ValueError(f"fields missing: {missing}; unexpected fields: {extra}")
        header = cls(**doc)
        header.validate()
        return header

    def validate(self) -> None:
        _expect_int(self.format_version, "format_version", LEGACY_VERSION, LEGACY_VERSION)
        _validate_common(self, _LEGACY_FINGERPRINT)
        _expect_match(self.plaintext_blake3, "plaintext_blake3", _DIGEST_HEX, "64 lower-case hex digits")
        _expect_int(self.plaintext_size, "plaintext_size", 0, 2**62)
        _expect_int(self.chunk_size, "chunk_size", 16, 1024 * 1024)
        if self.chunk_size != CHUNK_SIZE:
            raise ValueError(f"chunk_size {self.chunk_size} is not {CHUNK_SIZE}, the only one imvo-submit wrote")


def _validate_common(header: EnvelopeHeader, fingerprint_pattern: re.Pattern) -> None:
    _expect_match(header.covenant, "covenant", _IDENT, "a lower-case name such as 'textile'")
    _expect_match(header.template, "template", _IDENT, "a lower-case name such as 'living_wage'")
    _expect_match(header.company_id, "company_id", _COMPANY, "letters, digits, '_', '.' or '-'")
    _expect_match(header.period, "period", _PERIOD, "a month written YYYY-MM")
    _expect_match(header.created, "created", _CREATED, "a UTC time written YYYY-MM-DDTHH:MM:SSZ")
    datetime.strptime(header.created, "%Y-%m-%dT%H:%M:%SZ")  # rejects 2026-02-30 and the like
    if header.suite not in SUITES:
        raise ValueError(f"suite {header.suite!r} is unknown")
    for name in ("recipient_fingerprint", "signer_fingerprint"):
        _expect_match(getattr(header, name), name, fingerprint_pattern, "a key fingerprint")
    if not isinstance(header.file_name, str) or header.file_name != sanitise_file_name(header.file_name):
        raise ValueError("file_name must be a plain base name")


def _expect_match(value: object, name: str, pattern: re.Pattern, what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{name} {value!r} is not {what}")


def _expect_int(value: object, name: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} {value!r} is not a whole number from {low} to {high}")


def sanitise_file_name(name: str) -> str:
    """Base name only, without control characters, at most 255 characters; "submission" if nothing is left."""
    base = re.split(r"[/\\]", name)[-1]
    base = _CONTROL.sub("", base).strip()[:255].strip()
    return "submission" if base in ("", ".", "..") else base


def canonical_json(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def size_class(plaintext_size: int) -> int:
    """The padded size a plaintext is sealed at: the next power of two, at least one chunk (64 KiB). Every
    submission up to 64 KiB looks the same; larger ones show only their power of two."""
    return max(MIN_SIZE_CLASS, 1 << max(0, plaintext_size - 1).bit_length())


def encode_preamble(header: EnvelopeHeader) -> bytes:
    """Magic, version, header length and the canonical header: what HPKE's info binds."""
    body = header.to_bytes()
    return _PREAMBLE_FIXED.pack(MAGIC, header.format_version, len(body)) + body


# ---------------------------------------------------------------- crypto building blocks


def chunk_nonce(index: int, last: bool) -> bytes:
    """STREAM nonce: 11-byte big-endian chunk counter, then 0x01 for the final chunk, else 0x00."""
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def payload_cipher(suite: SuiteSpec, file_key: bytes, version: int = FORMAT_VERSION) -> ChaCha20Poly1305 | AESGCM:
    """The payload AEAD, keyed by HKDF-SHA256(file key) so the file key itself is used by HPKE only."""
    info = LABELS[version].payload_key
    return suite.payload_aead(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(file_key))


def seal_file_key(suite: SuiteSpec, file_key: bytes, recipient: EncryptionPublicKey, preamble: bytes) -> bytes:
    """HPKE base-mode seal of the file key; info binds the preamble so the header cannot be swapped."""
    info = LABELS[_version_of(preamble)].hpke_info + preamble
    return suite.hpke().encrypt(file_key, recipient.hpke_key(), info=info)


def encode_encapsulation(sealed_key: bytes) -> bytes:
    return _ENCAP_LENGTH.pack(len(sealed_key)) + sealed_key


def signature_message(prefix: bytes, payload_digest: bytes) -> bytes:
    """What the company signs: domain prefix, BLAKE3 of magic..encapsulation, BLAKE3 of the payload."""
    return LABELS[_version_of(prefix)].signature + blake3.blake3(prefix).digest() + payload_digest


def frame_plaintext(plaintext: bytes) -> bytes:
    """The framed stream of a plaintext held in memory (test vectors; sealing streams the same bytes)."""
    padding = bytes(size_class(len(plaintext)) - len(plaintext))
    return _SIZE.pack(len(plaintext)) + plaintext + padding + blake3.blake3(plaintext).digest()


def _version_of(preamble: bytes) -> int:
    return _PREAMBLE_FIXED.unpack_from(preamble)[1]


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
) -> EnvelopeHeader:
    """Encrypt `src_path` to the secretariat and sign it; write `dst_path` atomically; return the header.

    `suite` defaults to "<recipient kem>/chacha20-poly1305"; `created` defaults to now (UTC); `file_name`
    defaults to the source's base name. Raises EnvelopeError for bad input; a failure leaves no file.
    """
    src_path, dst_path = Path(src_path), Path(dst_path)
    spec = _choose_suite(suite, recipient_public_key)
    with _open_source(src_path) as src:
        size = os.fstat(src.fileno()).st_size
        header = _new_header(
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
    seal_payload = _seal_payload_inline if _is_small(header.layout) else _seal_payload
    payload_digest = seal_payload(src, out, header.layout, payload_cipher(spec, file_key))
    src.check_finished()
    out.write(signer.sign(signature_message(prefix, payload_digest)))


def _new_file_key() -> bytes:
    return os.urandom(FILE_KEY_SIZE)


def _is_small(layout: Layout) -> bool:
    """Whether this file is sealed or opened inline (see _INLINE_MAX_BYTES)."""
    return layout.stream <= _INLINE_MAX_BYTES


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
            piece = _SIZE.pack(self.size)[self.position : self.position + len(view)]
        elif self.position < self.file_end:
            return self._read_file(view[: self.file_end - self.position])
        elif self.position < self.digest_start:
            piece = _ZEROS[: min(len(view), self.digest_start - self.position, len(_ZEROS))]
        else:
            at = self.position - self.digest_start
            piece = self.hash.digest()[at : at + len(view)]
        view[: len(piece)] = piece
        self.position += len(piece)
        return len(piece)

    def _read_file(self, view: memoryview) -> int:
        got = _read_into(self.fh, view)
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
    batch = _Batch(0, layout.chunk_count, layout.stream)
    sealed = memoryview(bytearray(batch.sealed))
    _encrypt_batch(layout, aead, batch, plain, sealed)
    out.write(sealed)
    return blake3.blake3(sealed).digest()


def _seal_payload(src: _FramedSource, out: BinaryIO, layout: Layout, aead: ChaCha20Poly1305 | AESGCM) -> bytes:
    """Encrypt the stream batch by batch into reused buffers, on three threads: a reader fills the plaintext
    buffers (hashing the source as it goes), this thread encrypts, a writer hashes and writes the sealed chunks.

    Returns the payload's BLAKE3 digest."""
    ring = _ring(layout, _SEAL_BATCH_BYTES)
    payload_hash = blake3.blake3()

    def read(slot: _Slot, batch: _Batch) -> None:
        src.readinto(slot.plain[: batch.plain])

    def hash_and_write(sealed: memoryview) -> None:
        payload_hash.update(sealed)
        out.write(sealed)

    with _InOrder("seal-read") as reader, _InOrder("seal-write") as writer:
        for slot, batch, reading in _read_ahead(ring, _batches(layout, _SEAL_BATCH_BYTES), reader, read):
            reading.result()
            sealed = slot.claim().sealed[: batch.sealed]  # the writer is done with this slot's last batch
            _encrypt_batch(layout, aead, batch, slot.plain, sealed)
            slot.pending.append(writer.submit(hash_and_write, sealed))
        for slot in ring:
            slot.claim()  # every write done (or its error raised) before the caller writes the signature
    return payload_hash.digest()


def _encrypt_batch(
    layout: Layout, aead: ChaCha20Poly1305 | AESGCM, batch: _Batch, plain: memoryview, sealed: memoryview
) -> None:
    step, last = layout.chunk, layout.chunk_count - 1
    for k in range(batch.count):
        index, start = batch.first + k, k * step
        size = min(step, batch.plain - start)
        offset = start + k * TAG_SIZE
        target = sealed[offset : offset + size + TAG_SIZE]
        aead.encrypt_into(chunk_nonce(index, index == last), plain[start : start + size], None, target)


class _InOrder:
    """Calls run on one worker thread, one at a time in submission order.

    BLAKE3 and file reads and writes release the GIL, the AEAD does not (cryptography 50, measured): so the
    AEAD gets the calling thread to itself while workers read, hash and write on the other core. Each call
    returns a future: the caller must not reuse a buffer before the futures using it are done."""

    def __init__(self, name: str) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imvo-{name}")

    def submit(self, func: Callable[..., object], *args: object) -> Future:
        return self._worker.submit(func, *args)

    def drain(self) -> None:
        """Wait for every submitted call; the first failure is re-raised by the caller's futures."""
        self._worker.shutdown(wait=True)

    def __enter__(self) -> _InOrder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)


class _BackgroundHash(_InOrder):
    """BLAKE3-256 computed on a worker thread from buffers handed over in order."""

    def __init__(self) -> None:
        super().__init__("blake3")
        self._hash = blake3.blake3()

    def update(self, data: memoryview) -> Future:
        return self.submit(self._hash.update, data)

    def digest(self) -> bytes:
        self.drain()
        return self._hash.digest()


class _Slot:
    """One batch's buffers (plaintext and sealed chunks) and the background work still using them."""

    def __init__(self, plain_size: int, sealed_size: int) -> None:
        self.plain = memoryview(bytearray(plain_size))
        self.sealed = memoryview(bytearray(sealed_size))
        self.pending: list[Future] = []

    def claim(self) -> _Slot:
        """Wait until the background work is done with this slot's buffers (re-raising its errors)."""
        for future in self.pending:
            future.result()
        self.pending.clear()
        return self


class _Batch(NamedTuple):
    """Chunks first..first+count-1 of the payload: `plain` stream bytes, `plain + 16 * count` sealed."""

    first: int
    count: int
    plain: int

    @property
    def sealed(self) -> int:
        return self.plain + TAG_SIZE * self.count


def _batches(layout: Layout, batch_bytes: int) -> Iterator[_Batch]:
    per_batch = max(1, batch_bytes // layout.chunk)
    size, step, total = layout.stream, layout.chunk, layout.chunk_count
    for first in range(0, total, per_batch):
        count = min(per_batch, total - first)
        yield _Batch(first, count, min(count * step, size - first * step))


def _ring(layout: Layout, batch_bytes: int) -> list[_Slot]:
    per_batch = max(1, batch_bytes // layout.chunk)
    plain = min(per_batch * layout.chunk, layout.stream)
    return [_Slot(plain, plain + TAG_SIZE * per_batch) for _ in range(_RING_DEPTH)]


class _Scheduled(NamedTuple):
    slot: _Slot
    batch: _Batch
    read: Future


def _read_ahead(
    ring: list[_Slot], batches: Iterator[_Batch], reader: _InOrder, read: Callable[[_Slot, _Batch], object]
) -> Iterator[_Scheduled]:
    """Yield the batches in order, each with its slot and its read already submitted to `reader`.

    Up to len(ring) reads are in flight; batch n + len(ring) is read into the slot of batch n once the caller
    asks for the next batch, so the caller must be done with that slot's input buffer by then."""
    queue: deque[_Scheduled] = deque()
    for number, batch in enumerate(batches):
        slot = ring[number % len(ring)]
        if len(queue) == len(ring):
            yield queue.popleft()
        queue.append(_Scheduled(slot, batch, reader.submit(read, slot, batch)))
    while queue:
        yield queue.popleft()


def _read_into(fh: BinaryIO, view: memoryview) -> int:
    """Fill `view` from `fh`; fewer bytes only at the end of the file."""
    got = 0
    while got < len(view):
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    return got


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


def _new_header(**values: object) -> EnvelopeHeader:
    header = EnvelopeHeader(format_version=FORMAT_VERSION, **values)
    try:
        header.validate()
    except ValueError as exc:
        raise EnvelopeError(f"cannot seal: {exc}", hint="check the covenant, template, company and period") from exc
    return header


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
    with _open_envelope(path) as fh:
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
    with _open_envelope(path) as fh:
        header, preamble = _read_preamble(fh, path)
        spec, layout = SUITES[header.suite], header.layout
        encapsulation = _read_encapsulation(fh, path, spec)
        prefix = preamble + _ENCAP_LENGTH.pack(len(encapsulation)) + encapsulation
        _check_total_size(path, os.fstat(fh.fileno()).st_size, len(prefix) + layout.payload_size)
        _check_signer(path, header, signer_public_key)
        collect = _Collect() if sink is None else None
        output = _Unframe.of(path, header, sink or collect)
        if _is_small(layout):
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


def _open_envelope(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")  # noqa: SIM115 - returned to the caller's with-block
    except OSError as exc:
        raise EnvelopeRejected("unreadable", f"cannot read {path}: {exc.strerror}", hint="check the path") from exc


def _read_preamble(fh: BinaryIO, path: Path) -> tuple[EnvelopeHeader, bytes]:
    fixed = fh.read(_PREAMBLE_FIXED.size)
    if fixed[: len(MAGIC)] != MAGIC[: len(fixed)] or len(fixed) < len(MAGIC):
        raise _reject(path, "not_an_envelope")
    if len(fixed) < _PREAMBLE_FIXED.size:
        raise _reject(path, "truncated")
    _, version, length = _PREAMBLE_FIXED.unpack(fixed)
    if 1 <= version < LEGACY_VERSION:  # a format we wrote once: the company needs a current imvo-submit
        raise _reject(path, "unsupported_version", message="older_version", version=version)
    if version not in (FORMAT_VERSION, LEGACY_VERSION):
        raise _reject(path, "unsupported_version", version=version)
    if length > MAX_HEADER_BYTES:
        raise _reject(path, "header_too_large", size=length)
    body = fh.read(length)
    if len(body) < length:
        raise _reject(path, "truncated")
    return _parse_header(path, body, version), fixed + body


def _parse_header(path: Path, body: bytes, version: int) -> EnvelopeHeader:
    try:
        doc = json.loads(body.decode("ascii"), object_pairs_hook=_no_duplicate_keys)
        if not isinstance(doc, dict):
            raise ValueError("the header is not a JSON object")
        if canonical_json(doc) != body:
            raise ValueError("the header is not in canonical form")
        if doc.get("suite") is not None and doc["suite"] not in SUITES:
            raise _reject(path, "unsupported_suite", suite=str(doc["suite"])[:80])
        if doc.get("format_version") != version:
            raise ValueError(f"format_version {doc.get('format_version')!r} is not the file's version {version}")
        return (EnvelopeHeader if version == FORMAT_VERSION else LegacyHeader).from_dict(doc)
    except RecursionError as exc:
        raise _reject(path, "malformed_header", detail="it is nested too deeply to be a header") from exc
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise _reject(path, "malformed_header", detail=str(exc)[:200]) from exc


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("the header repeats a field")
    return dict(pairs)


def _read_encapsulation(fh: BinaryIO, path: Path, spec: SuiteSpec) -> bytes:
    raw_length = fh.read(_ENCAP_LENGTH.size)
    if len(raw_length) < _ENCAP_LENGTH.size:
        raise _reject(path, "truncated")
    (length,) = _ENCAP_LENGTH.unpack(raw_length)
    if length != spec.encapsulation_size:
        raise _reject(path, "malformed_header", detail=f"key encapsulation of {length} bytes for {spec.name}")
    data = fh.read(length)
    if len(data) < length:
        raise _reject(path, "truncated")
    return data


def _check_total_size(path: Path, actual: int, before_signature: int) -> None:
    expected = before_signature + SIGNATURE_SIZE
    if actual < expected:
        raise _reject(path, "truncated", missing=expected - actual)
    if actual > expected:
        raise _reject(path, "trailing_data", extra=actual - expected)


def _check_signer(path: Path, header: EnvelopeHeader, signer: Ed25519PublicKey) -> None:
    expected = header.fingerprint_of(signer)
    if header.signer_fingerprint != expected:
        raise _reject(
            path,
            "wrong_signer",
            company=header.company_id,
            found=header.signer_fingerprint,
            expected=expected,
        )


def _verify_signature(fh: BinaryIO, path: Path, layout: Layout, prefix: bytes, signer: Ed25519PublicKey) -> None:
    """Hash the whole payload (reading overlapped with hashing in a worker thread), then check the signature."""
    ring = [memoryview(bytearray(_BATCH_BYTES)) for _ in range(_RING_DEPTH)]
    pending: list[Future | None] = [None] * len(ring)
    remaining = layout.payload_size
    with _BackgroundHash() as payload_hash:
        for number in itertools.count():
            if not remaining:
                break
            slot = number % len(ring)
            if pending[slot] is not None:
                pending[slot].result()
            block = ring[slot][: min(_BATCH_BYTES, remaining)]
            got = _read_into(fh, block)
            if got != len(block):
                raise _reject(path, "truncated", missing=remaining - got + SIGNATURE_SIZE)
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
    got = _read_into(fh, payload)
    if got != len(payload):
        raise _reject(path, "truncated", missing=len(payload) - got + SIGNATURE_SIZE)
    _check_signature(fh, path, prefix, blake3.blake3(payload).digest(), signer)
    return payload


def _check_signature(fh: BinaryIO, path: Path, prefix: bytes, payload_digest: bytes, signer: Ed25519PublicKey) -> None:
    """Read the trailing signature (the file's position is just after the payload) and verify it."""
    signature = fh.read(SIGNATURE_SIZE)
    try:
        signer.verify(signature, signature_message(prefix, payload_digest))
    except InvalidSignature as exc:
        raise _reject(path, "bad_signature") from exc


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
        raise _reject(path, "wrong_recipient", found=header.recipient_fingerprint, expected=ours)
    info = LABELS[header.format_version].hpke_info + preamble
    try:
        file_key = spec.hpke().decrypt(encapsulation, recipient.hpke_key(), info=info)
    except (InvalidTag, ValueError) as exc:
        # The header names our key, yet the key does not unlock it: the sealer lied or used a stale key.
        raise _reject(path, "wrong_recipient", message="cannot_unlock", expected=ours) from exc
    if len(file_key) != FILE_KEY_SIZE:
        raise _reject(path, "tampered", chunk="key")
    return file_key


def _decrypt_payload(
    fh: BinaryIO, path: Path, layout: Layout, aead: ChaCha20Poly1305 | AESGCM, output: _Unframe
) -> None:
    """Decrypt batch by batch; each batch goes to `output` only after all its chunks authenticated.

    A reader thread fetches the next sealed batches and a hashing thread hashes the plaintext, so this thread
    only decrypts (the AEAD holds the GIL)."""
    ring = _ring(layout, _BATCH_BYTES)

    def read_sealed(slot: _Slot, batch: _Batch) -> int:
        return _read_into(fh, slot.sealed[: batch.sealed])

    with _InOrder("open-read") as reader, _BackgroundHash() as plain_hash:
        output.hasher = plain_hash
        for slot, batch, read in _read_ahead(ring, _batches(layout, _BATCH_BYTES), reader, read_sealed):
            got = read.result()
            if got != batch.sealed:
                raise _reject(path, "truncated", missing=batch.sealed - got)
            plain = slot.claim().plain[: batch.plain]  # the hash of this slot's previous plaintext is done
            _decrypt_batch(path, layout, aead, batch, slot.sealed[: batch.sealed], plain)
            slot.pending += output.feed(plain)
        output.finish(plain_hash.digest())


def _decrypt_payload_inline(
    path: Path, layout: Layout, aead: ChaCha20Poly1305 | AESGCM, payload: memoryview, output: _Unframe
) -> None:
    """_decrypt_payload for a small file held in memory: every chunk authenticates before the output gets
    anything (as the threaded path does for its single batch), then the framing and hash are checked."""
    plain = memoryview(bytearray(layout.stream))
    _decrypt_batch(path, layout, aead, _Batch(0, layout.chunk_count, layout.stream), payload, plain)
    output.hasher = _InlineHash()
    output.feed(plain)
    output.finish(output.hasher.digest())


def _decrypt_batch(
    path: Path,
    layout: Layout,
    aead: ChaCha20Poly1305 | AESGCM,
    batch: _Batch,
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
            raise _reject(path, "tampered", chunk=str(index + 1)) from exc


class _InlineHash:
    """_BackgroundHash's interface on the calling thread."""

    def __init__(self) -> None:
        self._hash = blake3.blake3()

    def update(self, data: memoryview) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


class _Collect:
    """A sink that keeps the plaintext, growing only as authenticated batches arrive."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: memoryview) -> None:
        self.data += data

    def value(self) -> bytes:
        return bytes(self.data)


class _Unframe:
    """Takes the decrypted stream in order and hands the plaintext to the sink, hashing it.

    Format 3: the stream is size | plaintext | zero padding | BLAKE3; the size must fit the size class, the
    padding must be zeros, the hash must match. Format 2: the stream is the plaintext, whose size and hash
    are in the header."""

    def __init__(self, path: Path, header: EnvelopeHeader, sink: BinarySink):
        self.path, self.header, self.sink = path, header, sink
        self.hasher: _BackgroundHash | _InlineHash | None = None
        self.position = 0
        self.size: int | None = None
        self.digest = bytearray()

    @classmethod
    def of(cls, path: Path, header: EnvelopeHeader, sink: BinarySink) -> _Unframe:
        return _LegacyUnframe(path, header, sink) if isinstance(header, LegacyHeader) else cls(path, header, sink)

    def feed(self, data: memoryview) -> list[Future]:
        """Consume the next stream bytes; returns the hashing work still using `data`."""
        start, self.position = self.position, self.position + len(data)
        if start == 0:
            self._read_size(data)
        plain_end, digest_start = SIZE_FIELD + self.size, self.header.layout.stream - DIGEST_FIELD
        futures = self._plaintext(data, start, max(start, SIZE_FIELD), min(self.position, plain_end))
        self._check_zeros(data[max(0, plain_end - start) : max(0, min(len(data), digest_start - start))])
        self.digest += data[max(0, digest_start - start) :]
        return futures

    def _read_size(self, data: memoryview) -> None:
        (self.size,) = _SIZE.unpack_from(data)
        if self.size > self.header.size_class or size_class(self.size) != self.header.size_class:
            raise _reject(self.path, "plaintext_mismatch")

    def _plaintext(self, data: memoryview, start: int, low: int, high: int) -> list[Future]:
        if high <= low:
            return []
        piece = data[low - start : high - start]
        self.sink.write(piece)
        future = self.hasher.update(piece)
        return [] if future is None else [future]

    def _check_zeros(self, padding: memoryview) -> None:
        for at in range(0, len(padding), len(_ZEROS)):
            block = padding[at : at + len(_ZEROS)]
            if block != _ZEROS[: len(block)]:
                raise _reject(self.path, "plaintext_mismatch")

    def finish(self, plain_digest: bytes) -> None:
        if self.position != self.header.layout.stream or bytes(self.digest) != plain_digest:
            raise _reject(self.path, "plaintext_mismatch")


class _LegacyUnframe(_Unframe):
    def feed(self, data: memoryview) -> list[Future]:
        self.position += len(data)
        self.sink.write(data)
        future = self.hasher.update(data)
        return [] if future is None else [future]

    def finish(self, plain_digest: bytes) -> None:
        if self.position != self.header.plaintext_size or plain_digest.hex() != self.header.plaintext_blake3:
            raise _reject(self.path, "plaintext_mismatch")


# ---------------------------------------------------------------- messages


_MESSAGES = {
    "not_an_envelope": (
        "{name} is not a sealed IMVO submission (it does not start with the envelope marker)",
        "ask the company to seal its file with `imvo-submit seal` and send the .imvo file",
    ),
    "unsupported_version": (
        "{name} uses envelope format version {version}, which this aggregator cannot read",
        "update the aggregator, or ask the company which imvo-submit version it used",
    ),
    "older_version": (
        "{name} was sealed by an older imvo-submit (envelope format version {version}), "
        "which this aggregator no longer opens",
        "ask the company to re-seal the file with the current imvo-submit and send it again",
    ),
    "header_too_large": (
        "{name} declares a header of {size} bytes (at most 16384 allowed): the file is damaged or not genuine",
        "ask the company to send the file again",
    ),
    "malformed_header": ("{name} has a damaged header: {detail}", "ask the company to seal the file again"),
    "unsupported_suite": (
        "{name} is sealed with an unknown encryption suite {suite!r}",
        "update the aggregator, or ask the company to seal with the default suite",
    ),
    "truncated": (
        "{name} is incomplete: it ends before its declared end (the transfer was probably cut off)",
        "ask the company to send the file again",
    ),
    "trailing_data": (
        "{name} has {extra} unexpected bytes after its end: the file was changed after it was sealed",
        "ask the company to send the original file again",
    ),
    "wrong_signer": (
        "{name} was not signed with the registered key of company {company} (signed by {found}, registered {expected})",
        "if the company made a new signing key, register it first; otherwise treat the file as forged",
    ),
    "bad_signature": (
        "{name}: the file was changed after it was sealed (signature does not match)",
        "ask the company to send the original file again; if it happens again, treat the file as forged",
    ),
    "wrong_recipient": (
        "{name} was sealed for another key ({found}); it cannot be opened with this secretariat key ({expected})",
        "ask the company to seal again with the secretariat's current public key",
    ),
    "cannot_unlock": (
        "{name} names this secretariat key ({expected}) but cannot be unlocked with it: it was sealed for another key",
        "ask the company to seal again with the secretariat's current public key",
    ),
    "tampered": (
        "{name} is damaged inside (part {chunk} does not decrypt) even though its signature is valid",
        "ask the company to seal the file again with an up-to-date imvo-submit",
    ),
    "plaintext_mismatch": (
        "the decrypted contents of {name} do not match the size and checksum the company sealed",
        "ask the company to seal the file again with an up-to-date imvo-submit",
    ),
}


def _reject(path: Path, reason: str, message: str | None = None, **details: object) -> EnvelopeRejected:
    message, hint = _MESSAGES[message or reason]
    return EnvelopeRejected(reason, message.format(name=path.name, **details), hint)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a whole file, read in blocks (intake's duplicate key and the receipt's file hash)."""
    digest = hashlib.sha256()
    with _open_envelope(Path(path)) as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
