"""Signed receipts: the secretariat's proof to a company that a sealed file arrived and what became of it.

A receipt is one self-describing JSON document (UTF-8):

    {"format": "imvo-receipt", "version": 3,
     "receipt": {covenant, template, company_id, period, created, file_name, signer_fingerprint,
                 file_sha256, received_at, state, log_head[, reason_category]},
     "signature": {"algorithm": "ed25519", "key_fingerprint": ..., "value": <base64>}}

The signature covers RECEIPT_PREFIX || canonical JSON of "receipt" (sorted keys, no whitespace, ASCII).
Version 3 carries nothing derived from the plaintext (versions 1 and 2 repeated its hash and size from the
envelope header) and the head of the secretariat's action log when the intake began (`COUNT:HASH`, an anchor
the company keeps). Receipts made since issue 21 add `reason_category`: why the file ended in its state, in one
word (valid, valid_check_numbers, content, period, ...; see docs/envelope.md); older version-3 receipts lack it
and verify as before. Receipts of versions 1 and 2 still verify, so a company can check the ones it holds.
The intake writes a receipt only for a file whose signature verified with the company's registered key.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from imvo_submit.envelope.format import EnvelopeHeader, canonical_json
from imvo_submit.envelope.keys import fingerprint, legacy_fingerprint
from imvo_submit.envelope.signed import signature_block, signature_holds
from imvo_submit.errors import EnvelopeError
from imvo_submit.states import FileState

RECEIPT_PREFIX = b"imvo-receipt/v1\n"
RECEIPT_STATES = (
    "received",  # the file arrived; a decision follows
    FileState.ACCEPTED,
    FileState.DUPLICATE,
    FileState.SUPERSEDED,
    FileState.QUARANTINED,
)
RECEIPT_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
_MAX_RECEIPT_BYTES = 64 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HEADER_FIELDS = (
    "covenant",
    "template",
    "company_id",
    "period",
    "created",
    "file_name",
    "signer_fingerprint",
)
_LOG_HEAD = re.compile(r"\d+:[0-9a-f]{64}")
_CATEGORY = re.compile(r"[a-z][a-z_]{0,39}")


class ReceiptInvalid(EnvelopeError):
    """A receipt is damaged, forged, or signed by another key than the secretariat's."""


def make_receipt(
    header: EnvelopeHeader,
    file_sha256: str,
    received_at: datetime | str,
    state: str,
    secretariat_signing_key: Ed25519PrivateKey,
    *,
    log_head: str | None = None,
    reason_category: str | None = None,
) -> bytes:
    """A signed receipt for one sealed file; `file_sha256` is the hex SHA-256 of the whole .imvo file,
    `log_head` the action log's head as `COUNT:HASH` (None: no log, as for a receipt made outside a workspace)
    and `reason_category` why the file ended in `state`, in one word (imvo_submit.states.Reason; None: left out)."""
    if state not in RECEIPT_STATES:
        raise EnvelopeError(f"unknown receipt state {state!r}", hint=f"use one of {', '.join(RECEIPT_STATES)}")
    if not isinstance(file_sha256, str) or not _SHA256_HEX.fullmatch(file_sha256):
        raise EnvelopeError("file_sha256 must be 64 lower-case hex digits")
    if log_head is not None and not _LOG_HEAD.fullmatch(log_head):
        raise EnvelopeError(f"log_head {log_head!r} is not COUNT:HASH")
    body = {name: getattr(header, name) for name in _HEADER_FIELDS}
    body |= {"file_sha256": file_sha256, "received_at": _utc_text(received_at), "state": state}
    body |= {"log_head": log_head}
    if reason_category is not None:
        if not _CATEGORY.fullmatch(str(reason_category)):
            raise EnvelopeError(f"reason_category {reason_category!r} is not one lower-case word")
        body["reason_category"] = str(reason_category)
    doc = {
        "format": "imvo-receipt",
        "version": RECEIPT_VERSION,
        "receipt": body,
        "signature": signature_block(secretariat_signing_key, RECEIPT_PREFIX + canonical_json(body)),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def verify_receipt(receipt_bytes: bytes, secretariat_signing_public_key: Ed25519PublicKey) -> dict:
    """The receipt's fields when the secretariat's signature holds; raises ReceiptInvalid otherwise."""
    doc = _parse(receipt_bytes)
    body, sig = doc["receipt"], doc["signature"]
    expected = fingerprint(secretariat_signing_public_key)
    if sig.get("key_fingerprint") not in (expected, legacy_fingerprint(secretariat_signing_public_key)):
        raise ReceiptInvalid(
            f"this receipt was signed by key {sig.get('key_fingerprint')!r}, not by the secretariat key {expected}",
            hint="check that you use the secretariat's current public key",
        )
    if not signature_holds(sig, secretariat_signing_public_key, RECEIPT_PREFIX + canonical_json(body)):
        raise ReceiptInvalid(
            "this receipt is forged or was changed: its signature does not match the secretariat key",
            hint="ask the secretariat for a new receipt",
        )
    return dict(body)


def _parse(receipt_bytes: bytes) -> dict:
    if len(receipt_bytes) > _MAX_RECEIPT_BYTES:
        raise ReceiptInvalid("this file is far too large to be a receipt")
    try:
        doc = json.loads(receipt_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReceiptInvalid("this file is not a receipt (it is not JSON)") from exc
    valid = (
        isinstance(doc, dict)
        and doc.get("format") == "imvo-receipt"
        and isinstance(doc.get("receipt"), dict)
        and isinstance(doc.get("signature"), dict)
    )
    if not valid:
        raise ReceiptInvalid("this file is not an IMVO receipt")
    version = doc.get("version")
    if type(version) is not int or version not in _READABLE_VERSIONS or doc["signature"].get("algorithm") != "ed25519":
        raise ReceiptInvalid(f"receipt version {doc.get('version')!r} is not supported")
    return doc


def _utc_text(value: datetime | str) -> str:
    if isinstance(value, str):
        try:
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError as exc:
            raise EnvelopeError(f"received_at {value!r} is not written YYYY-MM-DDTHH:MM:SSZ") from exc
        return value
    if value.tzinfo is None:
        raise EnvelopeError("received_at must include a time zone", hint="pass datetime.now(UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
