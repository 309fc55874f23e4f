import json
import os
import re
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aggregator.envelope import (
    EncryptionPrivateKey,
    KeyFileError,
    WrongPassphrase,
    encryption_public_key_from_bytes,
    fingerprint,
    generate_encryption_key,
    generate_signing_key,
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
from aggregator.envelope.keys import private_key_bytes
from aggregator.errors import AggregatorError

FAST_N = 2**10  # the file records N, so tests can unlock quickly; the default stays 2**17
FINGERPRINT = re.compile(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}")


@pytest.fixture(params=["ed25519", "x25519", "mlkem768-x25519"])
def private_key(request):
    return generate_signing_key() if request.param == "ed25519" else generate_encryption_key(request.param)


def test_private_key_round_trip_keeps_the_exact_key(tmp_path, private_key):
    path = tmp_path / "key.json"
    save_private_key(private_key, path, "correct horse battery staple", scrypt_n=FAST_N)
    loaded = load_private_key(path, "correct horse battery staple")
    assert type(loaded) is type(private_key)
    assert private_key_bytes(loaded) == private_key_bytes(private_key)


def test_private_key_file_hides_the_secret_and_is_owner_only(tmp_path, private_key):
    path = tmp_path / "key.json"
    save_private_key(private_key, path, "pass phrase", scrypt_n=FAST_N)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert private_key_bytes(private_key).hex() not in path.read_text()
    assert os.listdir(tmp_path) == ["key.json"]  # the temp file was renamed, nothing left behind


def test_wrong_passphrase_names_the_file(tmp_path):
    path = tmp_path / "company.key"
    save_private_key(generate_signing_key(), path, "right", scrypt_n=FAST_N)
    with pytest.raises(WrongPassphrase) as err:
        load_private_key(path, "wrong")
    assert err.value.message == f"wrong passphrase for {path}"
    assert isinstance(err.value, AggregatorError) and err.value.hint


def test_default_scrypt_cost_is_recorded_in_the_file(tmp_path):
    path = tmp_path / "k.json"
    key = generate_signing_key()
    save_private_key(key, path, "pw")
    info = private_key_file_info(path)
    assert info["kdf"]["n"] == 2**17 and info["kdf"]["r"] == 8 and info["kdf"]["p"] == 1
    assert info["fingerprint"] == fingerprint(key.public_key())


def test_changed_kdf_parameters_fail_like_a_wrong_passphrase(tmp_path):
    path = tmp_path / "k.json"
    save_private_key(generate_signing_key(), path, "pw", scrypt_n=FAST_N)
    doc = json.loads(path.read_text())
    doc["kdf"]["n"] = 2 * FAST_N
    path.write_text(json.dumps(doc))
    with pytest.raises(WrongPassphrase):
        load_private_key(path, "pw")


def test_hostile_scrypt_cost_is_refused_before_deriving(tmp_path):
    path = tmp_path / "k.json"
    save_private_key(generate_signing_key(), path, "pw", scrypt_n=FAST_N)
    doc = json.loads(path.read_text())
    doc["kdf"]["n"] = 2**30  # would need 128 GiB
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="not a usable key file"):
        load_private_key(path, "pw")


@pytest.mark.parametrize("content", [b"", b"not json", b"[1,2]", b'{"format":"other"}', b"\xff\xfe"])
def test_garbage_private_key_files_are_refused(tmp_path, content):
    path = tmp_path / "k.json"
    path.write_bytes(content)
    with pytest.raises(KeyFileError):
        load_private_key(path, "pw")


def test_missing_key_file_says_so(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        load_private_key(tmp_path / "nope.json", "pw")


def test_empty_passphrase_and_weak_cost_are_refused(tmp_path):
    with pytest.raises(KeyFileError, match="empty"):
        save_private_key(generate_signing_key(), tmp_path / "k", "", scrypt_n=FAST_N)
    with pytest.raises(KeyFileError, match="power of two"):
        save_private_key(generate_signing_key(), tmp_path / "k", "pw", scrypt_n=1000)
    assert not list(tmp_path.iterdir())


def test_typed_loaders_refuse_the_other_kind(tmp_path):
    save_private_key(generate_signing_key(), tmp_path / "sign", "pw", scrypt_n=FAST_N)
    save_private_key(generate_encryption_key(), tmp_path / "enc", "pw", scrypt_n=FAST_N)
    assert isinstance(load_signing_key(tmp_path / "sign", "pw"), Ed25519PrivateKey)
    assert isinstance(load_encryption_key(tmp_path / "enc", "pw"), EncryptionPrivateKey)
    with pytest.raises(KeyFileError, match="not a signing key"):
        load_signing_key(tmp_path / "enc", "pw")
    with pytest.raises(KeyFileError, match="not an encryption key"):
        load_encryption_key(tmp_path / "sign", "pw")


@pytest.mark.parametrize("kind", ["ed25519", "x25519", "mlkem768-x25519"])
def test_public_key_file_round_trip_and_fingerprint(tmp_path, kind):
    private = generate_signing_key() if kind == "ed25519" else generate_encryption_key(kind)
    public = private.public_key()
    path = tmp_path / "key.pub"
    save_public_key(public, path)
    text = path.read_text()
    assert fingerprint(public) in text and kind in text
    loaded = load_public_key(path)
    assert public_key_bytes(loaded) == public_key_bytes(public)
    assert fingerprint(loaded) == fingerprint(public)


def test_typed_public_loaders(tmp_path):
    save_public_key(generate_signing_key().public_key(), tmp_path / "s.pub")
    save_public_key(generate_encryption_key().public_key(), tmp_path / "e.pub")
    assert isinstance(load_signing_public_key(tmp_path / "s.pub"), Ed25519PublicKey)
    assert load_encryption_public_key(tmp_path / "e.pub").kem == "x25519"
    with pytest.raises(KeyFileError):
        load_signing_public_key(tmp_path / "e.pub")


@pytest.mark.parametrize(
    "content", ["", "# only a comment\n", "imvo-public-key ed25519\n", "imvo-public-key rsa AAAA\n"]
)
def test_garbage_public_key_files_are_refused(tmp_path, content):
    path = tmp_path / "k.pub"
    path.write_text(content)
    with pytest.raises(KeyFileError):
        load_public_key(path)


def test_fingerprint_is_stable_and_phone_comparable():
    # SHA-256 of 32 zero bytes starts 66687aadf862bd776c8f; base32 of those 10 bytes, in groups of four
    assert fingerprint(bytes(32)) == "MZUH-VLPY-MK6X-O3EP"
    key = generate_signing_key().public_key()
    assert fingerprint(key) == fingerprint(public_key_bytes(key)) == fingerprint(key)
    assert FINGERPRINT.fullmatch(fingerprint(key))
    assert fingerprint(key) != fingerprint(generate_signing_key().public_key())


def test_registry_bytes_round_trip():
    key = generate_signing_key().public_key()
    assert signing_public_key_from_bytes(public_key_bytes(key)) == key
    with pytest.raises(KeyFileError, match="32 bytes"):
        signing_public_key_from_bytes(b"short")
    enc = generate_encryption_key("mlkem768-x25519").public_key()
    assert encryption_public_key_from_bytes(enc.kem, enc.raw) == enc
    with pytest.raises(KeyFileError):
        encryption_public_key_from_bytes("x25519", b"\x00" * 5)


def test_private_key_repr_does_not_leak_the_secret():
    key = generate_encryption_key()
    assert key.raw.hex() not in repr(key) and fingerprint(key.public_key()) in repr(key)
