"""The sealed submission file (.imvo): HPKE-wrapped file key, STREAM-encrypted chunks, Ed25519 signature.

Byte layout (docs/envelope.md is the normative page; all integers big-endian):

    magic "IMVOSEAL" (8) | version u16 = 2 | header length u32 | header (canonical JSON)
    | encapsulation length u16 | HPKE enc || HPKE-sealed 32-byte file key
    | payload: ceil(size / chunk_size) chunks (at least one), each AEAD(chunk) with a 16-byte tag
    | Ed25519 signature (64)

Sealing is one pass over the source: the header's length is fixed before the payload is known (the
plaintext hash is hex of fixed length), so the payload is written at its final offset while the source is
hashed, and the preamble and encapsulation are written last. The signature therefore signs
PREFIX || BLAKE3(magic..encapsulation) || BLAKE3(payload) rather than one running hash.

Version 2 hashes with BLAKE3-256 where version 1 used SHA-256: both hashes sit on the sealing and opening hot
path, and SHA-256 (1.9 GB/s here) was slower than the ChaCha20-Poly1305 it accompanies (3.5 GB/s); BLAKE3
runs at ~7 GB/s on one core. Version 1 files are refused with a message asking for a re-seal.
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
from dataclasses import asdict, dataclass, fields, replace
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
    legacy_fingerprint,
)
from aggregator.errors import EnvelopeError

MAGIC = b"IMVOSEAL"
FORMAT_VERSION = 2
MAX_HEADER_BYTES = 16 * 1024
DEFAULT_CHUNK_SIZE = 64 * 1024
MIN_CHUNK_SIZE, MAX_CHUNK_SIZE = 16, 1024 * 1024  # the cap bounds a reader's memory per chunk
TAG_SIZE = 16
SIGNATURE_SIZE = 64
FILE_KEY_SIZE = 32

HPKE_INFO_PREFIX = b"imvo-envelope/v2 file key\n"
PAYLOAD_KEY_INFO = b"imvo-envelope/v2 payload key"
SIGNATURE_PREFIX = b"imvo-envelope/v2 signature\n"

_PREAMBLE_FIXED = struct.Struct(">8sHI")  # magic, version, header length
_ENCAP_LENGTH = struct.Struct(">H")
_PLACEHOLDER_DIGEST = "0" * 64  # same length as the real hex digest, so the header size is final
_HASH_BLOCK = 1024 * 1024
# Bytes of plaintext handled per step of the sealing/opening pipeline. _RING_DEPTH steps are in flight (one
# being encrypted or decrypted while a worker reads the next and another hashes/writes the previous), so opening
# keeps about 8 MiB of buffers and sealing about 16 MiB, whatever the file size. Each step costs thread
# hand-overs: on 1 GiB, 2 MiB steps used ~10% less CPU than 512 KiB ones when opening, 4 MiB ~4% less than
# 1 MiB when sealing.
_BATCH_BYTES = 2 * 1024 * 1024
_SEAL_BATCH_BYTES = 4 * 1024 * 1024
_RING_DEPTH = 2
# Plaintexts up to this size are sealed and opened on the calling thread, all in memory (at most ~6 MiB, below
# the threaded path's buffers). A file this small fills at most one batch, so the worker threads would have
# nothing to overlap, and starting them (with their buffers) cost most of the time of a 4 KB file: opening
# ~4 ms threaded against ~0.4 ms inline (`python -m bench.bench_envelope --small 256`). Both paths write and
# accept exactly the same bytes, with the same checks in the same order.
_INLINE_MAX_BYTES = 2 * 1024 * 1024


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


class EnvelopeRejected(EnvelopeError):
    """A sealed file was refused; `reason` is one of REASONS, the message is for a secretariat clerk."""

    def __init__(self, reason: str, message: str, hint: str | None = None):
        if reason not in REASONS:
            raise ValueError(f"unknown envelope rejection reason {reason!r}")
        super().__init__(message, hint)
        self.reason = reason


class BinarySink(Protocol):
    """Receives plaintext as memoryviews into buffers that are reused: write or copy them during the call
    (files, BytesIO and hashes do); do not keep a reference."""

    def write(self, data: bytes | memoryview, /) -> object: ...


# ---------------------------------------------------------------- the header


_IDENT = re.compile(r"[a-z][a-z0-9_]{0,63}")
_COMPANY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_FINGERPRINT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}")
_DIGEST_HEX = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class EnvelopeHeader:
    """The signed, cleartext description of a submission (readable without any key)."""

    format_version: int
    covenant: str
    template: str
    company_id: str
    period: str  # YYYY-MM
    created: str  # ISO 8601 UTC, seconds, "Z"
    suite: str
    recipient_fingerprint: str
    signer_fingerprint: str
    plaintext_blake3: str  # hex BLAKE3-256 of the plaintext
    plaintext_size: int
    file_name: str  # base name only
    chunk_size: int

    def to_dict(self) -> dict:
        return asdict(self)

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, no whitespace, ASCII only."""
        return canonical_json(self.to_dict())

    @property
    def chunk_count(self) -> int:
        return chunk_count(self.plaintext_size, self.chunk_size)

    @property
    def payload_size(self) -> int:
        return self.plaintext_size + TAG_SIZE * self.chunk_count

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
        _expect_match(self.covenant, "covenant", _IDENT, "a lower-case name such as 'textile'")
        _expect_match(self.template, "template", _IDENT, "a lower-case name such as 'living_wage'")
        _expect_match(self.company_id, "company_id", _COMPANY, "letters, digits, '_', '.' or '-'")
        _expect_match(self.period, "period", _PERIOD, "a month written YYYY-MM")
        _expect_match(self.created, "created", _CREATED, "a UTC time written YYYY-MM-DDTHH:MM:SSZ")
        datetime.strptime(self.created, "%Y-%m-%dT%H:%M:%SZ")  # rejects 2026-02-30 and the like
        if self.suite not in SUITES:
            raise ValueError(f"suite {self.suite!r} is unknown")
        _expect_match(self.recipient_fingerprint, "recipient_fingerprint", _FINGERPRINT, "a key fingerprint")
        _expect_match(self.signer_fingerprint, "signer_fingerprint", _FINGERPRINT, "a key fingerprint")
        _expect_match(self.plaintext_blake3, "plaintext_blake3", _DIGEST_HEX, "64 lower-case hex digits")
        _expect_int(self.plaintext_size, "plaintext_size", 0, 2**62)
        _expect_int(self.chunk_size, "chunk_size", MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
        if not isinstance(self.file_name, str) or self.file_name != sanitise_file_name(self.file_name):
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


def chunk_count(plaintext_size: int, chunk_size: int) -> int:
    """Number of payload chunks: at least one (an empty payload is one empty final chunk)."""
    return max(1, -(-plaintext_size // chunk_size))


def encode_preamble(header: EnvelopeHeader) -> bytes:
    """Magic, version, header length and the canonical header: what HPKE's info binds."""
    body = header.to_bytes()
    return _PREAMBLE_FIXED.pack(MAGIC, FORMAT_VERSION, len(body)) + body


# ---------------------------------------------------------------- crypto building blocks


def chunk_nonce(index: int, last: bool) -> bytes:
    """STREAM nonce: 11-byte big-endian chunk counter, then 0x01 for the final chunk, else 0x00."""
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def payload_cipher(suite: SuiteSpec, file_key: bytes) -> ChaCha20Poly1305 | AESGCM:
    """The payload AEAD, keyed by HKDF-SHA256(file key) so the file key itself is used by HPKE only."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PAYLOAD_KEY_INFO).derive(file_key)
    return suite.payload_aead(key)


def seal_file_key(suite: SuiteSpec, file_key: bytes, recipient: EncryptionPublicKey, preamble: bytes) -> bytes:
    """HPKE base-mode seal of the file key; info binds the preamble so the header cannot be swapped."""
    return suite.hpke().encrypt(file_key, recipient.hpke_key(), info=HPKE_INFO_PREFIX + preamble)


def encode_encapsulation(sealed_key: bytes) -> bytes:
    return _ENCAP_LENGTH.pack(len(sealed_key)) + sealed_key


def signature_message(prefix: bytes, payload_digest: bytes) -> bytes:
    """What the company signs: domain prefix, BLAKE3 of magic..encapsulation, BLAKE3 of the payload."""
    return SIGNATURE_PREFIX + blake3.blake3(prefix).digest() + payload_digest


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
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    file_name: str | None = None,
) -> EnvelopeHeader:
    """Encrypt `src_path` to the secretariat and sign it; write `dst_path` atomically; return the header.

    `suite` defaults to "<recipient kem>/chacha20-poly1305"; `created` defaults to now (UTC); `file_name`
    defaults to the source's base name. Raises EnvelopeError for bad input; a failure leaves no file.
    """
    src_path, dst_path = Path(src_path), Path(dst_path)
    spec = _choose_suite(suite, recipient_public_key)
    with _open_source(src_path) as src:
        header = _new_header(
            covenant=covenant,
            template=template,
            company_id=company_id,
            period=period,
            created=_format_created(created),
            suite=spec.name,
            recipient_fingerprint=legacy_fingerprint(recipient_public_key),
            signer_fingerprint=legacy_fingerprint(signing_private_key.public_key()),
            plaintext_blake3=_PLACEHOLDER_DIGEST,
            plaintext_size=os.fstat(src.fileno()).st_size,
            file_name=sanitise_file_name(file_name if file_name is not None else src_path.name),
            chunk_size=chunk_size,
        )
        sealed: list[EnvelopeHeader] = []
        write = lambda out: sealed.append(  # noqa: E731
            _seal_stream(src, out, header, spec, recipient_public_key, signing_private_key)
        )
        atomic_write(dst_path, write, mode=0o644)
    return sealed[0]


def _seal_stream(
    src: BinaryIO,
    out: BinaryIO,
    header: EnvelopeHeader,
    spec: SuiteSpec,
    recipient: EncryptionPublicKey,
    signer: Ed25519PrivateKey,
) -> EnvelopeHeader:
    """Write the payload at its final offset while hashing, then the preamble, encapsulation and signature."""
    file_key = _new_file_key()
    aead = payload_cipher(spec, file_key)
    prefix_size = len(encode_preamble(header)) + _ENCAP_LENGTH.size + spec.encapsulation_size
    out.seek(prefix_size)
    seal_payload = _seal_payload_inline if _is_small(header) else _seal_payload
    plaintext_blake3, payload_digest = seal_payload(src, out, header, aead)
    final = replace(header, plaintext_blake3=plaintext_blake3)
    preamble = encode_preamble(final)
    prefix = preamble + encode_encapsulation(seal_file_key(spec, file_key, recipient, preamble))
    if len(prefix) != prefix_size:  # cannot happen unless the format code is broken: never write such a file
        raise AssertionError("envelope prefix changed size while sealing")
    out.write(signer.sign(signature_message(prefix, payload_digest)))
    out.seek(0)
    out.write(prefix)
    return final


def _new_file_key() -> bytes:
    return os.urandom(FILE_KEY_SIZE)


def _is_small(header: EnvelopeHeader) -> bool:
    """Whether this file is sealed or opened inline (see _INLINE_MAX_BYTES)."""
    return header.plaintext_size <= _INLINE_MAX_BYTES


def _seal_payload_inline(
    src: BinaryIO, out: BinaryIO, header: EnvelopeHeader, aead: ChaCha20Poly1305 | AESGCM
) -> tuple[str, bytes]:
    """_seal_payload for a small source: read it whole, encrypt, write once, all on this thread.

    Same bytes and same errors as the threaded path; a source that changed size is refused before anything
    is written (the threaded path notices growth only after writing, but the temporary file is removed anyway)."""
    plain = memoryview(bytearray(header.plaintext_size))
    if _read_into(src, plain) != header.plaintext_size or src.read(1):
        raise _source_changed(header)
    batch = _Batch(0, header.chunk_count, header.plaintext_size)
    sealed = memoryview(bytearray(batch.sealed))
    _encrypt_batch(header, aead, batch, plain, sealed)
    out.write(sealed)
    return blake3.blake3(plain).hexdigest(), blake3.blake3(sealed).digest()


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
    """Chunks first..first+count-1 of the payload: `plain` plaintext bytes, `plain + 16 * count` sealed."""

    first: int
    count: int
    plain: int

    @property
    def sealed(self) -> int:
        return self.plain + TAG_SIZE * self.count


def _batches(header: EnvelopeHeader, batch_bytes: int) -> Iterator[_Batch]:
    per_batch = max(1, batch_bytes // header.chunk_size)
    size, step, total = header.plaintext_size, header.chunk_size, header.chunk_count
    for first in range(0, total, per_batch):
        count = min(per_batch, total - first)
        yield _Batch(first, count, min(count * step, size - first * step))


def _ring(header: EnvelopeHeader, batch_bytes: int) -> list[_Slot]:
    per_batch = max(1, batch_bytes // header.chunk_size)
    plain = min(per_batch * header.chunk_size, header.plaintext_size)
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


def _seal_payload(
    src: BinaryIO, out: BinaryIO, header: EnvelopeHeader, aead: ChaCha20Poly1305 | AESGCM
) -> tuple[str, bytes]:
    """Encrypt the source batch by batch into reused buffers, on three threads: a reader fills and hashes
    the plaintext buffers, this thread encrypts, a writer hashes and writes the sealed chunks.

    Returns the plaintext's hex BLAKE3 and the payload's BLAKE3 digest."""
    ring = _ring(header, _SEAL_BATCH_BYTES)
    plain_hash, payload_hash = blake3.blake3(), blake3.blake3()

    def read_and_hash(slot: _Slot, batch: _Batch) -> None:
        plain = slot.plain[: batch.plain]
        if _read_into(src, plain) != batch.plain:
            raise _source_changed(header)
        plain_hash.update(plain)

    def hash_and_write(sealed: memoryview) -> None:
        payload_hash.update(sealed)
        out.write(sealed)

    with _InOrder("seal-read") as reader, _InOrder("seal-write") as writer:
        for slot, batch, read in _read_ahead(ring, _batches(header, _SEAL_BATCH_BYTES), reader, read_and_hash):
            read.result()
            sealed = slot.claim().sealed[: batch.sealed]  # the writer is done with this slot's last batch
            _encrypt_batch(header, aead, batch, slot.plain, sealed)
            slot.pending.append(writer.submit(hash_and_write, sealed))
        if src.read(1):  # every read is done: the reader thread no longer touches `src`
            raise _source_changed(header)
        for slot in ring:
            slot.claim()  # every write done (or its error raised) before the caller writes the prefix
    return plain_hash.hexdigest(), payload_hash.digest()


def _encrypt_batch(
    header: EnvelopeHeader, aead: ChaCha20Poly1305 | AESGCM, batch: _Batch, plain: memoryview, sealed: memoryview
) -> None:
    step, last = header.chunk_size, header.chunk_count - 1
    for k in range(batch.count):
        index, start = batch.first + k, k * step
        size = min(step, batch.plain - start)
        offset = start + k * TAG_SIZE
        target = sealed[offset : offset + size + TAG_SIZE]
        aead.encrypt_into(chunk_nonce(index, index == last), plain[start : start + size], None, target)


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
    """Parse and validate the cleartext header without any key (nothing is verified yet!)."""
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
    """Verify the signature over the whole file, then decrypt chunk by chunk and check hash and size.

    With a `sink`, plaintext is written to it in batches of authenticated chunks, as memoryviews of reused
    buffers (memory stays near 8 MiB; see BinarySink) and `plaintext` is None; if an EnvelopeRejected is
    raised midway, discard what the sink got.
    Raises EnvelopeRejected with a `reason` from REASONS.
    """
    path = Path(path)
    with _open_envelope(path) as fh:
        header, preamble = _read_preamble(fh, path)
        spec = SUITES[header.suite]
        encapsulation = _read_encapsulation(fh, path, spec)
        prefix = preamble + _ENCAP_LENGTH.pack(len(encapsulation)) + encapsulation
        _check_total_size(path, os.fstat(fh.fileno()).st_size, len(prefix) + header.payload_size)
        _check_signer(path, header, signer_public_key)
        if _is_small(header):
            payload = _verify_signature_inline(fh, path, header, prefix, signer_public_key)
            file_key = _open_file_key(path, header, spec, encapsulation, preamble, recipient_private_key)
            plaintext = _decrypt_payload_inline(path, header, payload_cipher(spec, file_key), payload, sink)
        else:
            _verify_signature(fh, path, header, prefix, signer_public_key)
            file_key = _open_file_key(path, header, spec, encapsulation, preamble, recipient_private_key)
            fh.seek(len(prefix))
            plaintext = _decrypt_payload(fh, path, header, payload_cipher(spec, file_key), sink)
    return OpenedEnvelope(header, plaintext)


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
    if 1 <= version < FORMAT_VERSION:  # a format we wrote once: the company needs a current imvo-submit
        raise _reject(path, "unsupported_version", message="older_version", version=version)
    if version != FORMAT_VERSION:
        raise _reject(path, "unsupported_version", version=version)
    if length > MAX_HEADER_BYTES:
        raise _reject(path, "header_too_large", size=length)
    body = fh.read(length)
    if len(body) < length:
        raise _reject(path, "truncated")
    return _parse_header(path, body), fixed + body


def _parse_header(path: Path, body: bytes) -> EnvelopeHeader:
    try:
        doc = json.loads(body.decode("ascii"), object_pairs_hook=_no_duplicate_keys)
        if not isinstance(doc, dict):
            raise ValueError("the header is not a JSON object")
        if canonical_json(doc) != body:
            raise ValueError("the header is not in canonical form")
        if doc.get("suite") is not None and doc["suite"] not in SUITES:
            raise _reject(path, "unsupported_suite", suite=str(doc["suite"])[:80])
        return EnvelopeHeader.from_dict(doc)
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
    expected = legacy_fingerprint(signer)
    if header.signer_fingerprint != expected:
        raise _reject(
            path,
            "wrong_signer",
            company=header.company_id,
            found=header.signer_fingerprint,
            expected=expected,
        )


def _verify_signature(
    fh: BinaryIO, path: Path, header: EnvelopeHeader, prefix: bytes, signer: Ed25519PublicKey
) -> None:
    """Hash the whole payload (reading overlapped with hashing in a worker thread), then check the signature."""
    ring = [memoryview(bytearray(_BATCH_BYTES)) for _ in range(_RING_DEPTH)]
    pending: list[Future | None] = [None] * len(ring)
    remaining = header.payload_size
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
    fh: BinaryIO, path: Path, header: EnvelopeHeader, prefix: bytes, signer: Ed25519PublicKey
) -> memoryview:
    """_verify_signature for a small file, on this thread; returns the verified payload, which is then
    decrypted from memory (so exactly the bytes that were verified are decrypted)."""
    payload = memoryview(bytearray(header.payload_size))
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
    ours = legacy_fingerprint(recipient.public_key())
    if header.recipient_fingerprint != ours or recipient.kem != spec.kem:
        raise _reject(path, "wrong_recipient", found=header.recipient_fingerprint, expected=ours)
    try:
        file_key = spec.hpke().decrypt(encapsulation, recipient.hpke_key(), info=HPKE_INFO_PREFIX + preamble)
    except (InvalidTag, ValueError) as exc:
        # The header names our key, yet the key does not unlock it: the sealer lied or used a stale key.
        raise _reject(path, "wrong_recipient", message="cannot_unlock", expected=ours) from exc
    if len(file_key) != FILE_KEY_SIZE:
        raise _reject(path, "tampered", chunk="key")
    return file_key


def _decrypt_payload(
    fh: BinaryIO, path: Path, header: EnvelopeHeader, aead: ChaCha20Poly1305 | AESGCM, sink: BinarySink | None
) -> bytes | None:
    """Decrypt batch by batch; each batch goes to the sink only after all its chunks authenticated.

    A reader thread fetches the next sealed batches and a hashing thread hashes the decrypted ones, so this
    thread only decrypts (the AEAD holds the GIL). Without a sink the plaintext is decrypted straight into one
    buffer of the declared size (the file's length was checked against the header, so the size is real)."""
    whole = memoryview(bytearray(header.plaintext_size)) if sink is None else None
    ring = _ring(header, _BATCH_BYTES)

    def read_sealed(slot: _Slot, batch: _Batch) -> int:
        return _read_into(fh, slot.sealed[: batch.sealed])

    with _InOrder("open-read") as reader, _BackgroundHash() as plain_hash:
        for slot, batch, read in _read_ahead(ring, _batches(header, _BATCH_BYTES), reader, read_sealed):
            got = read.result()
            if got != batch.sealed:
                raise _reject(path, "truncated", missing=batch.sealed - got)
            slot.claim()  # the hash of this slot's previous plaintext is done
            start = batch.first * header.chunk_size
            plain = whole[start : start + batch.plain] if whole is not None else slot.plain[: batch.plain]
            _decrypt_batch(path, header, aead, batch, slot.sealed[: batch.sealed], plain)
            slot.pending.append(plain_hash.update(plain))
            if sink is not None:
                sink.write(plain)
        digest = plain_hash.digest()
    if digest.hex() != header.plaintext_blake3:
        raise _reject(path, "plaintext_mismatch")
    return None if whole is None else whole.tobytes()


def _decrypt_payload_inline(
    path: Path, header: EnvelopeHeader, aead: ChaCha20Poly1305 | AESGCM, payload: memoryview, sink: BinarySink | None
) -> bytes | None:
    """_decrypt_payload for a small file held in memory: every chunk authenticates before the sink gets
    anything (as the threaded path does for its single batch), then the plaintext hash is checked."""
    plain = memoryview(bytearray(header.plaintext_size))
    _decrypt_batch(path, header, aead, _Batch(0, header.chunk_count, header.plaintext_size), payload, plain)
    if sink is not None:
        sink.write(plain)
    if blake3.blake3(plain).hexdigest() != header.plaintext_blake3:
        raise _reject(path, "plaintext_mismatch")
    return None if sink is not None else plain.tobytes()


def _decrypt_batch(
    path: Path,
    header: EnvelopeHeader,
    aead: ChaCha20Poly1305 | AESGCM,
    batch: _Batch,
    sealed: memoryview,
    plain: memoryview,
) -> None:
    step, last = header.chunk_size, header.chunk_count - 1
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
        "the decrypted contents of {name} do not match the checksum the company sealed",
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
