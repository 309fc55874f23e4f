import hashlib
import json
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aggregator.errors import AggregatorError
from imvo_submit.envelope import (
    EncryptionPrivateKey,
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
from imvo_submit.envelope.keys import private_key_bytes

PROTOCOL = Path(__file__).resolve().parent.parent / "protocols" / "textile.toml"

FINGERPRINT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}")


@pytest.fixture(params=["ed25519", "x25519", "mlkem768-x25519"])
def private_key(request):
    return generate_signing_key() if request.param == "ed25519" else generate_encryption_key(request.param)


def test_private_key_round_trip_keeps_the_exact_key(tmp_path, private_key):
    path = tmp_path / "key.json"
    save_private_key(private_key, path, "correct horse battery staple")
    loaded = load_private_key(path, "correct horse battery staple")
    assert type(loaded) is type(private_key)
    assert private_key_bytes(loaded) == private_key_bytes(private_key)


def test_private_key_file_hides_the_secret_and_is_owner_only(tmp_path, private_key):
    path = tmp_path / "key.json"
    save_private_key(private_key, path, "pass phrase")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert private_key_bytes(private_key).hex() not in path.read_text()
    assert os.listdir(tmp_path) == ["key.json"]  # the temp file was renamed, nothing left behind


def test_wrong_passphrase_names_the_file(tmp_path):
    path = tmp_path / "company.key"
    save_private_key(generate_signing_key(), path, "right")
    with pytest.raises(WrongPassphrase) as err:
        load_private_key(path, "wrong")
    assert err.value.message == f"wrong passphrase for {path}"
    assert isinstance(err.value, AggregatorError) and err.value.hint


def test_the_scrypt_cost_is_recorded_in_the_file(tmp_path):
    path = tmp_path / "k.json"
    key = generate_signing_key()
    save_private_key(key, path, "pw")
    info = private_key_file_info(path)
    assert info["kdf"]["n"] == 2**10 and info["kdf"]["r"] == 8 and info["kdf"]["p"] == 1  # conftest's test cost
    assert info["fingerprint"] == fingerprint(key.public_key())


def test_changed_kdf_parameters_fail_like_a_wrong_passphrase(tmp_path):
    path = tmp_path / "k.json"
    save_private_key(generate_signing_key(), path, "pw")
    doc = json.loads(path.read_text())
    doc["kdf"]["n"] = 2 * doc["kdf"]["n"]
    path.write_text(json.dumps(doc))
    with pytest.raises(WrongPassphrase):
        load_private_key(path, "pw")


def test_hostile_scrypt_cost_is_refused_before_deriving(tmp_path):
    path = tmp_path / "k.json"
    save_private_key(generate_signing_key(), path, "pw")
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


def test_an_empty_passphrase_is_refused(tmp_path):
    with pytest.raises(KeyFileError, match="empty"):
        save_private_key(generate_signing_key(), tmp_path / "k", "")
    assert not list(tmp_path.iterdir())


def test_typed_loaders_refuse_the_other_kind(tmp_path):
    save_private_key(generate_signing_key(), tmp_path / "sign", "pw")
    save_private_key(generate_encryption_key(), tmp_path / "enc", "pw")
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
    # SHA-256 of 32 zero bytes starts 66687aadf862bd776c8fc18b8e9f8e20089714856; base32 of its first 20 bytes
    # (160 bits), in eight groups of four to read aloud
    assert fingerprint(bytes(32)) == "MZUH-VLPY-MK6X-O3EP-YGFY-5H4O-EAEJ-OFEF"
    assert legacy_fingerprint(bytes(32)) == "MZUH-VLPY-MK6X-O3EP"  # 80 bits, before this version
    digest = hashlib.sha256(bytes(32)).digest()
    assert fingerprint_digest_prefix(fingerprint(bytes(32))) == digest[:20]
    assert fingerprint_digest_prefix(legacy_fingerprint(bytes(32))) == digest[:10]
    assert fingerprint_digest_prefix("not-a-fingerprint") is None
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


def test_production_paths_derive_keys_at_the_strong_cost(tmp_path):
    """Without the suite's test hook, every key a passphrase guards costs scrypt N = 2**18 (r 8, p 1)."""
    from aggregator.workspace import create_workspace, open_workspace
    from imvo_submit import company, passphrase

    assert passphrase.STRONG == passphrase.ScryptCost(2**18, 8, 1)
    passphrase.weaken_for_tests(None)
    try:
        assert passphrase.scrypt_cost() == passphrase.STRONG
        root = tmp_path / "ws"
        create_workspace(root, "secretariat passphrase for tests", [PROTOCOL])
        for name in ("secretariat_encryption.key", "secretariat_signing.key"):
            assert private_key_file_info(root / "keys" / name)["kdf"]["n"] == 2**18
        assert open_workspace(root, "secretariat passphrase for tests").store_scrypt_n == 2**18
        assert "store_scrypt_n = 262144" in (root / "workspace.toml").read_text()
        home = company.CompanyHome(tmp_path / "home", "T001", "textile")
        home.root.mkdir()
        company.keygen(home, "company passphrase for tests")
        assert private_key_file_info(home.key_path)["kdf"]["n"] == 2**18
    finally:
        passphrase.weaken_for_tests()


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("short words", "too short (11 characters; at least 12"),
        ("password1234", "too easy to guess: this is a very common password"),
        ("aaaaaaaaaaaaaaaaaaaa", "too easy to guess: repeats like"),
        ("textile textile", "too easy to guess"),
    ],
)
def test_one_passphrase_policy_for_the_store_and_for_company_keys(tmp_path, secret, problem):
    from aggregator.workspace import create_workspace
    from imvo_submit import company
    from imvo_submit.passphrase import WeakPassphrase, check_passphrase

    with pytest.raises(WeakPassphrase, match=re.escape(problem)) as err:
        check_passphrase(secret, context=("textile",))
    assert err.value.hint.startswith("use a sentence of four or more words")
    with pytest.raises(WeakPassphrase, match=re.escape(problem)):
        create_workspace(tmp_path / "ws", secret, [PROTOCOL])
    home = company.CompanyHome(tmp_path / "home", "T001", "textile")
    home.root.mkdir()
    with pytest.raises(WeakPassphrase, match=re.escape(problem)):
        company.keygen(home, secret)
    assert not (tmp_path / "ws").exists() and not list(home.root.iterdir())


def test_a_sentence_passes_the_passphrase_policy():
    from imvo_submit.passphrase import check_passphrase

    for secret in ("correct horse battery staple", "de kat zit op de mat", "demo passphrase - not a secret"):
        check_passphrase(secret)
