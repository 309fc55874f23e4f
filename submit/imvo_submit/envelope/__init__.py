"""Keys and sealed submission files: one door for the company CLI, intake and the secretariat CLI.

    seal_file(src, dst, covenant=..., template=..., company_id=..., period=...,
              recipient_public_key=..., signing_private_key=...)      -> EnvelopeHeader
    open_file(path, recipient_private_key, signer_public_key, sink=None) -> OpenedEnvelope
    read_header(path) -> EnvelopeHeader (unverified; a LegacyHeader for a deprecated format-2 file)
    make_receipt(...) -> bytes, verify_receipt(bytes, public_key) -> dict

Format: docs/envelope.md. Errors: EnvelopeRejected (with `.reason` in REASONS), KeyFileError,
WrongPassphrase, ReceiptInvalid; all are AggregatorError subclasses.
"""

from imvo_submit.envelope.format import (
    CHUNK_SIZE,
    FORMAT_VERSION,
    REASONS,
    SUITES,
    EnvelopeHeader,
    EnvelopeRejected,
    LegacyHeader,
    file_sha256,
    sanitise_file_name,
    size_class,
)
from imvo_submit.envelope.keys import (
    KEM_HYBRID,
    KEM_X25519,
    EncryptionPrivateKey,
    EncryptionPublicKey,
    KeyFileError,
    WrongPassphrase,
    encryption_public_key_from_bytes,
    fingerprint,
    fingerprint_digest_prefix,
    generate_encryption_key,
    generate_signing_key,
    legacy_fingerprint,
    load_encryption_key,
    load_encryption_public_key,
    load_private_key,
    load_public_key,
    load_signing_key,
    load_signing_public_key,
    private_key_file_info,
    public_key_bytes,
    save_private_key,
    save_public_key,
    signing_public_key_from_bytes,
)
from imvo_submit.envelope.receipts import RECEIPT_STATES, ReceiptInvalid, make_receipt, verify_receipt
from imvo_submit.envelope.seal import seal_file
from imvo_submit.envelope.unseal import OpenedEnvelope, open_file, read_header

__all__ = [
    "CHUNK_SIZE",
    "FORMAT_VERSION",
    "KEM_HYBRID",
    "KEM_X25519",
    "REASONS",
    "RECEIPT_STATES",
    "SUITES",
    "EncryptionPrivateKey",
    "EncryptionPublicKey",
    "EnvelopeHeader",
    "EnvelopeRejected",
    "KeyFileError",
    "LegacyHeader",
    "OpenedEnvelope",
    "ReceiptInvalid",
    "WrongPassphrase",
    "encryption_public_key_from_bytes",
    "file_sha256",
    "fingerprint",
    "fingerprint_digest_prefix",
    "generate_encryption_key",
    "generate_signing_key",
    "legacy_fingerprint",
    "load_encryption_key",
    "load_encryption_public_key",
    "load_private_key",
    "load_public_key",
    "load_signing_key",
    "load_signing_public_key",
    "make_receipt",
    "open_file",
    "private_key_file_info",
    "public_key_bytes",
    "read_header",
    "sanitise_file_name",
    "save_private_key",
    "save_public_key",
    "seal_file",
    "signing_public_key_from_bytes",
    "size_class",
    "verify_receipt",
]
