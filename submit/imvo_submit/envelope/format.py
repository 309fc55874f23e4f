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
import json
import os
import re
import struct
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

import blake3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from imvo_submit.envelope.keys import (
    KEM_HYBRID,
    KEM_X25519,
    EncryptionPublicKey,
    fingerprint,
    legacy_fingerprint,
)
from imvo_submit.errors import EnvelopeError
from imvo_submit.periods import PERIOD_PATTERN

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

PREAMBLE_FIXED = struct.Struct(">8sHI")  # magic, version, header length
ENCAP_LENGTH = struct.Struct(">H")
SIZE_STRUCT = struct.Struct(">Q")
_HASH_BLOCK = 1024 * 1024
# Bytes handled per step of the sealing/opening pipeline. RING_DEPTH steps are in flight (one being encrypted or
# decrypted while a worker reads the next and another hashes/writes the previous), so opening keeps about 8 MiB
# of buffers and sealing about 16 MiB, whatever the file size. On 1 GiB, 2 MiB steps used ~10% less CPU than
# 512 KiB ones when opening, 4 MiB ~4% less than 1 MiB when sealing.
BATCH_BYTES = 2 * 1024 * 1024
SEAL_BATCH_BYTES = 4 * 1024 * 1024
RING_DEPTH = 2
# Payloads up to this size (the 64 KiB .. 2 MiB size classes, nearly every submission) are sealed and opened on
# the calling thread, all in memory: a file this small fills at most one batch, so worker threads would have
# nothing to overlap, and starting them cost most of the time of a small file (`python -m bench.bench_envelope
# --small 256`). Both paths write and accept exactly the same bytes, with the same checks in the same order.
INLINE_MAX_BYTES = 2 * 1024 * 1024 + SIZE_FIELD + DIGEST_FIELD
ZEROS = memoryview(bytes(_HASH_BLOCK))


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
_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_FINGERPRINT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}")
_LEGACY_FINGERPRINT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}")
_DIGEST_HEX = re.compile(r"[0-9a-f]{64}")
_RULES_VERSION = re.compile(r"[0-9a-f]{12}")
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
    # The version of the rules the file was checked against (imvo_submit.validation.rules.rules_version); absent
    # in files sealed before imvo-submit recorded it, so the secretariat can only say "outdated" when present.
    rules_version: str | None = None

    deprecation = None  # the current format

    def to_dict(self) -> dict:
        doc = asdict(self)
        return doc if self.rules_version is not None else {k: v for k, v in doc.items() if k != "rules_version"}

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
        _expect_fields(doc, [f.name for f in fields(cls)], optional={"rules_version"})
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
        if self.rules_version is not None:
            _expect_match(self.rules_version, "rules_version", _RULES_VERSION, "12 lower-case hex digits")


_NOT_IN_FORMAT_2 = ("size_class", "rules_version")


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
        return {k: v for k, v in asdict(self).items() if k not in _NOT_IN_FORMAT_2}

    @property
    def layout(self) -> Layout:
        return Layout(self.plaintext_size, self.chunk_size)

    def fingerprint_of(self, key: object) -> str:
        return legacy_fingerprint(key)

    @classmethod
    def from_dict(cls, doc: dict) -> LegacyHeader:
        _expect_fields(doc, [f.name for f in fields(cls) if f.name not in _NOT_IN_FORMAT_2])
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
    _expect_match(header.period, "period", PERIOD_PATTERN, "a month written YYYY-MM")
    _expect_match(header.created, "created", _CREATED, "a UTC time written YYYY-MM-DDTHH:MM:SSZ")
    datetime.strptime(header.created, "%Y-%m-%dT%H:%M:%SZ")  # rejects 2026-02-30 and the like
    if header.suite not in SUITES:
        raise ValueError(f"suite {header.suite!r} is unknown")
    for name in ("recipient_fingerprint", "signer_fingerprint"):
        _expect_match(getattr(header, name), name, fingerprint_pattern, "a key fingerprint")
    if not isinstance(header.file_name, str) or header.file_name != sanitise_file_name(header.file_name):
        raise ValueError("file_name must be a plain base name")


def _expect_fields(doc: dict, names: list[str], optional: set[str] = frozenset()) -> None:
    if not set(names) - optional <= set(doc) <= set(names):
        missing = ", ".join(sorted(set(names) - optional - set(doc))) or "none"
        extra = ", ".join(sorted(set(doc) - set(names))) or "none"
        raise ValueError(f"fields missing: {missing}; unexpected fields: {extra}")


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
    return PREAMBLE_FIXED.pack(MAGIC, header.format_version, len(body)) + body


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
    return ENCAP_LENGTH.pack(len(sealed_key)) + sealed_key


def signature_message(prefix: bytes, payload_digest: bytes) -> bytes:
    """What the company signs: domain prefix, BLAKE3 of magic..encapsulation, BLAKE3 of the payload."""
    return LABELS[_version_of(prefix)].signature + blake3.blake3(prefix).digest() + payload_digest


def frame_plaintext(plaintext: bytes) -> bytes:
    """The framed stream of a plaintext held in memory (test vectors; sealing streams the same bytes)."""
    padding = bytes(size_class(len(plaintext)) - len(plaintext))
    return SIZE_STRUCT.pack(len(plaintext)) + plaintext + padding + blake3.blake3(plaintext).digest()


def _version_of(preamble: bytes) -> int:
    return PREAMBLE_FIXED.unpack_from(preamble)[1]


def is_small(layout: Layout) -> bool:
    """Whether this file is sealed or opened inline (see INLINE_MAX_BYTES)."""
    return layout.stream <= INLINE_MAX_BYTES


def open_envelope(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")  # noqa: SIM115 - returned to the caller's with-block
    except OSError as exc:
        raise EnvelopeRejected("unreadable", f"cannot read {path}: {exc.strerror}", hint="check the path") from exc


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


def reject(path: Path, reason: str, message: str | None = None, **details: object) -> EnvelopeRejected:
    message, hint = _MESSAGES[message or reason]
    return EnvelopeRejected(reason, message.format(name=path.name, **details), hint)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a whole file, read in blocks (intake's duplicate key and the receipt's file hash)."""
    digest = hashlib.sha256()
    with open_envelope(Path(path)) as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
