"""Key pairs of the secretariat and the companies, their files, and phone-comparable fingerprints.

Signing keys are plain `cryptography` Ed25519 objects. Encryption keys (HPKE recipients) are wrapped in
`EncryptionPrivateKey` / `EncryptionPublicKey` because the hybrid post-quantum key of `cryptography` has no
byte serialisation of its own; the wrapper stores raw bytes and builds the HPKE key object on demand.

Private key file (JSON, UTF-8, mode 0600), every binary value base64:

    {"format": "imvo-private-key", "version": 1, "type": "ed25519" | "x25519" | "mlkem768-x25519",
     "public_key": ..., "fingerprint": "K3QF-7ZJA-...",
     "kdf": {"name": "scrypt", "n": 262144, "r": 8, "p": 1, "salt": <16 bytes>},
     "cipher": "chacha20-poly1305", "nonce": <12 bytes>, "encrypted_key": <raw private key + 16-byte tag>}

The AEAD's associated data is the canonical JSON of every field except `nonce` and `encrypted_key`, so the
KDF parameters, the type and the public key cannot be swapped without the passphrase check failing.

Public key file (text): comment lines starting with `#`, then one line `imvo-public-key <type> <base64>`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey, MLKEM768X25519PublicKey

from imvo_submit import passphrase as passphrases
from imvo_submit.errors import AggregatorError
from imvo_submit.fileio import atomic_write

KEM_X25519 = "x25519"
KEM_HYBRID = "mlkem768-x25519"
KEMS = (KEM_X25519, KEM_HYBRID)
SIGNING_TYPE = "ed25519"

# Bounds for scrypt parameters read from a file: a hostile key file must not make us allocate gigabytes.
_MIN_SCRYPT_N, _MAX_SCRYPT_N = 2**10, 2**20
_MAX_SCRYPT_R, _MAX_SCRYPT_P = 32, 16
_MAX_KEY_FILE_BYTES = 64 * 1024

_PRIVATE_FORMAT = "imvo-private-key"
_PUBLIC_TAG = "imvo-public-key"
# Raw sizes: hybrid private = ML-KEM-768 seed (64) || X25519 private (32);
# hybrid public = ML-KEM-768 public (1184) || X25519 public (32).
_MLKEM_SEED, _MLKEM_PUBLIC, _X25519_LEN = 64, 1184, 32


class KeyFileError(AggregatorError):
    """A key file is missing, damaged, of the wrong kind, or the passphrase does not open it."""


class WrongPassphrase(KeyFileError):
    """The passphrase does not decrypt the private key file."""


@dataclass(frozen=True)
class EncryptionPublicKey:
    """An HPKE recipient public key: `kem` is "x25519" or "mlkem768-x25519", `raw` its documented bytes."""

    kem: str
    raw: bytes

    def hpke_key(self) -> x25519.X25519PublicKey | MLKEM768X25519PublicKey:
        if self.kem == KEM_X25519:
            return x25519.X25519PublicKey.from_public_bytes(self.raw)
        ml = mlkem.MLKEM768PublicKey.from_public_bytes(self.raw[:_MLKEM_PUBLIC])
        return MLKEM768X25519PublicKey(ml, x25519.X25519PublicKey.from_public_bytes(self.raw[_MLKEM_PUBLIC:]))


@dataclass(frozen=True, repr=False)
class EncryptionPrivateKey:
    """An HPKE recipient private key; `raw` is secret (repr hides it)."""

    kem: str
    raw: bytes

    def __repr__(self) -> str:
        return f"EncryptionPrivateKey(kem={self.kem!r}, fingerprint={fingerprint(self.public_key())!r})"

    def hpke_key(self) -> x25519.X25519PrivateKey | MLKEM768X25519PrivateKey:
        if self.kem == KEM_X25519:
            return x25519.X25519PrivateKey.from_private_bytes(self.raw)
        ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(self.raw[:_MLKEM_SEED])
        return MLKEM768X25519PrivateKey(ml, x25519.X25519PrivateKey.from_private_bytes(self.raw[_MLKEM_SEED:]))

    def public_key(self) -> EncryptionPublicKey:
        if self.kem == KEM_X25519:
            pub = x25519.X25519PrivateKey.from_private_bytes(self.raw).public_key().public_bytes_raw()
            return EncryptionPublicKey(self.kem, pub)
        ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(self.raw[:_MLKEM_SEED]).public_key()
        xp = x25519.X25519PrivateKey.from_private_bytes(self.raw[_MLKEM_SEED:]).public_key()
        return EncryptionPublicKey(self.kem, ml.public_bytes_raw() + xp.public_bytes_raw())


PrivateKey = Ed25519PrivateKey | EncryptionPrivateKey
PublicKey = Ed25519PublicKey | EncryptionPublicKey


# ---------------------------------------------------------------- generation and raw bytes


def generate_signing_key() -> Ed25519PrivateKey:
    """A new Ed25519 signing key (companies sign submissions, the secretariat signs receipts)."""
    return Ed25519PrivateKey.generate()


def generate_encryption_key(kem: str = KEM_X25519) -> EncryptionPrivateKey:
    """A new HPKE recipient key; `kem` is "x25519" (default) or "mlkem768-x25519" (hybrid post-quantum)."""
    _check_kem(kem)
    x_raw = x25519.X25519PrivateKey.generate().private_bytes_raw()
    if kem == KEM_X25519:
        return EncryptionPrivateKey(kem, x_raw)
    return EncryptionPrivateKey(kem, mlkem.MLKEM768PrivateKey.generate().private_bytes_raw() + x_raw)


def public_key_bytes(key: PublicKey) -> bytes:
    """The raw public key bytes (what the registry stores and what the fingerprint hashes)."""
    if isinstance(key, EncryptionPublicKey):
        return key.raw
    return key.public_bytes_raw()


def signing_public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its 32 raw bytes; raises KeyFileError when the bytes are not a key."""
    try:
        return Ed25519PublicKey.from_public_bytes(bytes(raw))
    except ValueError as exc:
        raise KeyFileError(f"a signing public key must be 32 bytes, got {len(raw)}") from exc


def encryption_public_key_from_bytes(kem: str, raw: bytes) -> EncryptionPublicKey:
    """An encryption public key from its raw bytes, checked by building the HPKE key once."""
    _check_kem(kem)
    key = EncryptionPublicKey(kem, bytes(raw))
    try:
        key.hpke_key()
    except ValueError as exc:
        raise KeyFileError(f"these {len(raw)} bytes are not a {kem} public key") from exc
    return key


def private_key_from_bytes(key_type: str, raw: bytes) -> PrivateKey:
    """A private key from its raw bytes (the inverse of `private_key_bytes`); for test vectors and files."""
    try:
        if key_type == SIGNING_TYPE:
            return Ed25519PrivateKey.from_private_bytes(bytes(raw))
        _check_kem(key_type)
        key = EncryptionPrivateKey(key_type, bytes(raw))
        key.public_key()  # validates the length and the ML-KEM seed
        return key
    except ValueError as exc:
        raise KeyFileError(f"these {len(raw)} bytes are not a {key_type} private key") from exc


def private_key_bytes(key: PrivateKey) -> bytes:
    """The raw secret bytes of a private key (seed form); never write these to disk unencrypted."""
    if isinstance(key, EncryptionPrivateKey):
        return key.raw
    return key.private_bytes_raw()


def key_type(key: PrivateKey | PublicKey) -> str:
    """ "ed25519", "x25519" or "mlkem768-x25519"."""
    if isinstance(key, EncryptionPrivateKey | EncryptionPublicKey):
        return key.kem
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return SIGNING_TYPE
    raise TypeError(f"not a supported key object: {type(key).__name__}")


def public_key_of(key: PrivateKey) -> PublicKey:
    """The public half of a private key."""
    return key.public_key()


# ---------------------------------------------------------------- fingerprints


FINGERPRINT_BYTES = 20  # 160 bits: a collision needs ~2**80 keys, a second key for one fingerprint ~2**160
LEGACY_FINGERPRINT_BYTES = 10  # 80 bits: keys, envelopes (format 2) and receipts made before this version


def fingerprint(key: PublicKey | bytes) -> str:
    """Phone-comparable fingerprint: base32 of the first 20 bytes (160 bits) of SHA-256(raw public key), in
    eight groups of four to read aloud. Same key, same fingerprint, on every machine.

    Example (32 zero bytes): "MZUH-VLPY-MK6X-O3EP-ZWBE-DWGV-5ANK-WOGP".
    """
    return _fingerprint(key, FINGERPRINT_BYTES)


def legacy_fingerprint(key: PublicKey | bytes) -> str:
    """The 80-bit fingerprint of earlier versions ("MZUH-VLPY-MK6X-O3EP"), to recognise old files only."""
    return _fingerprint(key, LEGACY_FINGERPRINT_BYTES)


def fingerprint_digest_prefix(text: str) -> bytes | None:
    """The leading bytes of SHA-256(raw key) that a fingerprint (either length) spells; None if it is none."""
    raw = text.replace("-", "")
    if len(raw) not in (16, 32) or not all(c in _BASE32 for c in raw):
        return None
    return base64.b32decode(raw)


def _fingerprint(key: PublicKey | bytes, size: int) -> str:
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    text = base64.b32encode(hashlib.sha256(raw).digest()[:size]).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


# ---------------------------------------------------------------- private key files


def save_private_key(key: PrivateKey, path: str | os.PathLike, passphrase: str) -> None:
    """Write `key` encrypted under `passphrase` (scrypt at `passphrase.scrypt_cost()` + ChaCha20-Poly1305),
    atomically, mode 0600. The caller checks a new passphrase against the policy (`check_passphrase`)."""
    if not passphrase:
        raise KeyFileError("the passphrase is empty", hint="choose a passphrase of several words")
    cost = passphrases.scrypt_cost()
    kdf = {"name": "scrypt", "n": cost.n, "r": cost.r, "p": cost.p, "salt": _b64(os.urandom(16))}
    public = public_key_of(key)
    doc = {
        "format": _PRIVATE_FORMAT,
        "version": 1,
        "type": key_type(key),
        "public_key": _b64(public_key_bytes(public)),
        "fingerprint": fingerprint(public),
        "kdf": kdf,
        "cipher": "chacha20-poly1305",
    }
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(_derive_wrap_key(passphrase, kdf)).encrypt(nonce, private_key_bytes(key), _canonical(doc))
    doc |= {"nonce": _b64(nonce), "encrypted_key": _b64(sealed)}
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic_write(Path(path), lambda fh: fh.write(data), mode=0o600)


def load_private_key(path: str | os.PathLike, passphrase: str) -> PrivateKey:
    """Read a private key file; raises WrongPassphrase ("wrong passphrase for <file>") or KeyFileError."""
    path = Path(path)
    doc = _read_private_doc(path)
    try:
        sealed, nonce = _unb64(doc["encrypted_key"]), _unb64(doc["nonce"])
        aad_doc = {k: v for k, v in doc.items() if k not in ("nonce", "encrypted_key")}
        wrap_key = _derive_wrap_key(passphrase, doc["kdf"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(path, f"missing or invalid field ({exc})") from exc
    try:
        raw = ChaCha20Poly1305(wrap_key).decrypt(nonce, sealed, _canonical(aad_doc))
    except (InvalidTag, ValueError) as exc:
        raise WrongPassphrase(
            f"wrong passphrase for {path}",
            hint="type the passphrase again; if it is lost, generate a new key and register its public key",
        ) from exc
    key = private_key_from_bytes(doc["type"], raw)
    if public_key_bytes(public_key_of(key)) != _unb64(doc["public_key"]):
        raise _damaged(path, "the stored public key does not belong to the private key")
    return key


def load_signing_key(path: str | os.PathLike, passphrase: str) -> Ed25519PrivateKey:
    """Like load_private_key, but the file must hold an Ed25519 signing key."""
    key = load_private_key(path, passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds an encryption key, not a signing key", hint="check the file name")
    return key


def load_encryption_key(path: str | os.PathLike, passphrase: str) -> EncryptionPrivateKey:
    """Like load_private_key, but the file must hold an HPKE encryption key."""
    key = load_private_key(path, passphrase)
    if not isinstance(key, EncryptionPrivateKey):
        raise KeyFileError(f"{path} holds a signing key, not an encryption key", hint="check the file name")
    return key


def private_key_file_info(path: str | os.PathLike) -> dict:
    """Type, fingerprint and KDF parameters of a private key file, without the passphrase."""
    doc = _read_private_doc(Path(path))
    try:
        shown = fingerprint(_unb64(doc["public_key"]))
    except (KeyError, ValueError):
        shown = doc.get("fingerprint")
    return {"type": doc.get("type"), "fingerprint": shown, "kdf": doc.get("kdf")}


def _read_private_doc(path: Path) -> dict:
    text = _read_small_text(path, "private key")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _damaged(path, "it is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != _PRIVATE_FORMAT:
        raise _damaged(path, "it is not an IMVO private key file")
    if doc.get("version") != 1:
        raise KeyFileError(f"{path} uses key file version {doc.get('version')!r}, which is not supported")
    if doc.get("type") not in (SIGNING_TYPE, *KEMS) or doc.get("cipher") != "chacha20-poly1305":
        raise _damaged(path, "unknown key type or cipher")
    return doc


def _derive_wrap_key(passphrase: str, kdf: dict) -> bytes:
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise ValueError("kdf must be scrypt")
    n, r, p = kdf["n"], kdf["r"], kdf["p"]
    _check_scrypt(n, r, p, where="kdf")
    return passphrases.derive_key(passphrase, _unb64(kdf["salt"]), passphrases.ScryptCost(n, r, p))


def _check_scrypt(n: object, r: object, p: object, *, where: str) -> None:
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (n, r, p))
    if not ints or not (_MIN_SCRYPT_N <= n <= _MAX_SCRYPT_N) or n & (n - 1):
        raise ValueError(f"{where}: scrypt N must be a power of two between 2**10 and 2**20")
    if not (1 <= r <= _MAX_SCRYPT_R and 1 <= p <= _MAX_SCRYPT_P):
        raise ValueError(f"{where}: scrypt r or p out of range")


# ---------------------------------------------------------------- public key files


def save_public_key(key: PublicKey, path: str | os.PathLike) -> None:
    """Write a small text file: a comment with type and fingerprint, then `imvo-public-key <type> <b64>`."""
    kind = key_type(key)
    text = (
        f"# IMVO {kind} public key, fingerprint {fingerprint(key)}\n"
        f"{_PUBLIC_TAG} {kind} {_b64(public_key_bytes(key))}\n"
    )
    atomic_write(Path(path), lambda fh: fh.write(text.encode("ascii")), mode=0o644)


def load_public_key(path: str | os.PathLike) -> PublicKey:
    """Read a public key file written by save_public_key."""
    path = Path(path)
    lines = [ln.strip() for ln in _read_small_text(path, "public key").splitlines()]
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    parts = body[0].split() if len(body) == 1 else []
    if len(parts) != 3 or parts[0] != _PUBLIC_TAG:
        raise _damaged(path, "expected one line 'imvo-public-key <type> <base64>'")
    try:
        raw = _unb64(parts[2])
    except ValueError as exc:
        raise _damaged(path, "the key is not valid base64") from exc
    if parts[1] == SIGNING_TYPE:
        return signing_public_key_from_bytes(raw)
    if parts[1] in KEMS:
        return encryption_public_key_from_bytes(parts[1], raw)
    raise _damaged(path, f"unknown key type {parts[1]!r}")


def load_signing_public_key(path: str | os.PathLike) -> Ed25519PublicKey:
    """Like load_public_key, but the file must hold an Ed25519 signing key."""
    key = load_public_key(path)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds an encryption key, not a signing key", hint="check the file name")
    return key


def load_encryption_public_key(path: str | os.PathLike) -> EncryptionPublicKey:
    """Like load_public_key, but the file must hold an HPKE encryption key."""
    key = load_public_key(path)
    if not isinstance(key, EncryptionPublicKey):
        raise KeyFileError(f"{path} holds a signing key, not an encryption key", hint="check the file name")
    return key


# ---------------------------------------------------------------- shared helpers


def _read_small_text(path: Path, what: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise KeyFileError(f"{what} file {path} does not exist", hint="check the path") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise _damaged(path, "it is far too large for a key file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _damaged(path, "it is not text") from exc


def _damaged(path: Path, detail: str) -> KeyFileError:
    return KeyFileError(f"{path} is not a usable key file: {detail}", hint="check that you chose the right file")


def _check_kem(kem: str) -> None:
    if kem not in KEMS:
        raise KeyFileError(f"unknown encryption key type {kem!r}", hint=f"choose one of {', '.join(KEMS)}")


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    return base64.b64decode(text.encode("ascii"), validate=True)
