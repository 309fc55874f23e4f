"""The secretariat's signed JSON documents (receipts, rules bundles): one signature block, made and checked in
one place. The signature covers a document-specific prefix and the canonical JSON of the signed body."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from imvo_submit.envelope.keys import fingerprint


def signature_block(key: Ed25519PrivateKey, message: bytes) -> dict:
    """{"algorithm", "key_fingerprint", "value"} for `message` signed with `key`."""
    return {
        "algorithm": "ed25519",
        "key_fingerprint": fingerprint(key.public_key()),
        "value": base64.b64encode(key.sign(message)).decode("ascii"),
    }


def signature_holds(block: dict, key: Ed25519PublicKey, message: bytes) -> bool:
    """Whether the block's value is `key`'s signature of `message` (a malformed value does not hold)."""
    try:
        value = base64.b64decode(str(block.get("value", "")).encode("ascii"), validate=True)
        key.verify(value, message)
    except (InvalidSignature, binascii.Error, UnicodeEncodeError):
        return False
    return True
