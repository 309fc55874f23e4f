"""A secretariat workspace: keys, the encrypted store, received files and the secretariat's own reports.

Layout (all created by `create_workspace`):

    workspace.toml          protocols used, the store's key-derivation salt
    keys/                   secretariat encryption and signing keys (private keys passphrase-encrypted, 0600)
    store.duckdb            the store, encrypted with a key derived from the passphrase
    received/<state>/       every sealed file exactly as received, filed under its final state
    outbox/<company>/       signed receipts for the companies (no company data beyond the sealed file's header)
    secretariat/            audit reports and other views that never go to a committee
"""

from __future__ import annotations

import os
import secrets
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from filelock import FileLock, Timeout

from imvo_submit import passphrase as passphrases
from imvo_submit.envelope import keys
from imvo_submit.fileio import atomic_write
from imvo_submit.text import did_you_mean, printable

from . import log as action_log
from .errors import AggregatorError
from .protocol import Protocol, load_protocol
from .store import Store

CONFIG_NAME = "workspace.toml"
PRIVATE_MAGIC = b"IMVO-PRIVATE-1\n"
# Workspaces made before the store's scrypt cost was written to workspace.toml derived the store key at 2**15.
LEGACY_STORE_SCRYPT_N = 2**15


class WrongWorkspacePassphrase(AggregatorError):
    """The passphrase does not open this workspace's store."""


@dataclass
class Workspace:
    root: Path
    passphrase: str = field(repr=False)
    protocol_paths: list[Path]
    store_salt: bytes = field(repr=False)
    store_scrypt_n: int = LEGACY_STORE_SCRYPT_N

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def received_dir(self) -> Path:
        return self.root / "received"

    @property
    def secretariat_dir(self) -> Path:
        return self.root / "secretariat"

    @property
    def outbox_dir(self) -> Path:
        """Signed receipts waiting to be delivered: outbox/<company_id>/<sealed file name>.receipt."""
        return self.root / "outbox"

    @cached_property
    def protocols(self) -> dict[str, Protocol]:
        loaded = [load_protocol(p) for p in self.protocol_paths]
        return {p.covenant.id: p for p in loaded}

    def protocol(self, covenant: str) -> Protocol:
        try:
            return self.protocols[covenant]
        except KeyError:
            known = ", ".join(sorted(self.protocols)) or "none"
            raise AggregatorError(
                f"covenant '{printable(covenant)}' has no protocol in this workspace (known: {known})"
                + did_you_mean(covenant, self.protocols),
                hint=f"for a new covenant, add its protocol file to {self.root / CONFIG_NAME}",
            ) from None

    def store_key(self) -> str:
        return self._derived_store_key

    @cached_property
    def _derived_store_key(self) -> str:
        # Derived once per Workspace object: commands open the store several times.
        cost = passphrases.ScryptCost(self.store_scrypt_n)
        return passphrases.derive_key(self.passphrase, self.store_salt, cost).hex()

    def open_store(self) -> Store:
        try:
            return Store(self.root / "store.duckdb", self.store_key())
        except AggregatorError as exc:
            # DuckDB only says "wrong encryption key"; for the user that means the passphrase.
            if "wrong encryption key" in str(exc.__cause__).lower():
                raise WrongWorkspacePassphrase(
                    f"wrong passphrase for the workspace {self.root}",
                    hint="type it again, or check the passphrase in AGGREGATOR_PASSPHRASE",
                ) from None
            raise

    @cached_property
    def decryption_key(self):
        return keys.load_private_key(self.keys_dir / "secretariat_encryption.key", self.passphrase)

    @cached_property
    def signing_key(self):
        return keys.load_private_key(self.keys_dir / "secretariat_signing.key", self.passphrase)

    def _private_files_cipher(self) -> AESSIV:
        """Deterministic authenticated encryption (AES-SIV) for the secretariat's own files: the same report
        gives the same bytes, so reruns stay comparable; the key is derived from the store key."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"imvo secretariat private files v1")
        return AESSIV(hkdf.derive(bytes.fromhex(self.store_key())))

    def seal_private_files(self, source_dir: Path, target_dir: Path) -> list[Path]:
        """Encrypt every file of `source_dir` into `target_dir` as `<name>.sealed` (nothing readable left there)."""
        files = {p.name: p.read_bytes() for p in sorted(Path(source_dir).iterdir()) if p.is_file()}
        return self.seal_private_bytes(files, target_dir)

    def seal_private_bytes(self, files: dict[str, bytes], target_dir: Path) -> list[Path]:
        """Encrypt each (name, plaintext) into `target_dir` as `<name>.sealed`; only ciphertext is written."""
        cipher = self._private_files_cipher()
        written = []
        for name, plaintext in sorted(files.items()):
            sealed = PRIVATE_MAGIC + cipher.encrypt(plaintext, [name.encode()])
            target = Path(target_dir) / f"{name}.sealed"
            written.append(atomic_write(target, lambda handle, data=sealed: handle.write(data)))
        return written

    def clean_leftovers(self) -> list[Path]:
        """Remove what a killed command can leave behind, before the next one starts (under the lock): the
        temporary files of atomic writes (`.<name>.*.tmp`, at most ciphertext), half-written receipts, and the
        audit report scratch folders (`/dev/shm/.audit-*`, plaintext) that versions before this one rendered."""
        found = [p for p in self.root.rglob(".*.tmp") if p.is_file() and not p.is_symlink()]
        found += [p for p in self.outbox_dir.rglob(".*.receipt.partial") if p.is_file()]
        for path in found:
            path.unlink(missing_ok=True)
        scratch = Path("/dev/shm")
        legacy = sorted(scratch.glob(".audit-*")) if scratch.is_dir() else []
        for folder in legacy:
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid():
                shutil.rmtree(folder, ignore_errors=True)
                found.append(folder)
        return found

    def open_private_file(self, sealed: Path) -> bytes:
        """The plaintext of a `.sealed` secretariat file; a wrong passphrase or an edited file is refused."""
        data = Path(sealed).read_bytes()
        name = Path(sealed).name.removesuffix(".sealed")
        if not data.startswith(PRIVATE_MAGIC):
            raise AggregatorError(f"{sealed} is not a sealed secretariat file")
        try:
            return self._private_files_cipher().decrypt(data[len(PRIVATE_MAGIC) :], [name.encode()])
        except InvalidTag:
            raise AggregatorError(
                f"{sealed} cannot be opened: wrong passphrase, or the file was changed", hint="check the passphrase"
            ) from None

    @contextmanager
    def session(self, now: str) -> Iterator[Store]:
        """Lock the workspace and open the store; check the action log against its checkpoint first (refusing
        to work on a log that fails it), and on success move the checkpoint forward."""
        with self.locked(), self.open_store() as store:
            self.clean_leftovers()
            action_log.check_checkpoint(self, store)
            yield store
            action_log.save_checkpoint(self, store, now)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the workspace lock: one intake, batch or release at a time."""
        lock = FileLock(self.root / ".lock", timeout=0, thread_local=False)  # flock on Unix, msvcrt on Windows
        try:
            lock.acquire()
        except Timeout:
            raise AggregatorError(
                f"another aggregator command is working on {self.root}",
                hint="wait for it to finish, then run this command again",
            ) from None
        try:
            yield
        finally:
            lock.release()


def create_workspace(
    root: Path,
    passphrase: str,
    protocol_paths: list[Path],
    *,
    kem: str = "x25519",
    now: str | None = None,
) -> Workspace:
    """Create a new workspace with fresh secretariat keys. Refuses to overwrite an existing one, and a
    passphrase that fails the policy (`passphrase.check_passphrase`)."""
    root = Path(root)
    if (root / CONFIG_NAME).exists():
        raise AggregatorError(f"{root} is already a workspace", hint="use it as it is, or choose another folder")
    passphrases.check_passphrase(passphrase, context=("secretariat", "imvo", "aggregator", root.name))
    protocol_paths = [Path(p).resolve() for p in protocol_paths]
    for path in protocol_paths:
        load_protocol(path)  # fail before anything is written
    for sub in ("keys", "received", "secretariat", "outbox"):
        (root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(root, 0o700)
    _write_keys(root / "keys", passphrase, kem)
    salt = secrets.token_bytes(16)
    _write_config(root, protocol_paths, salt, passphrases.scrypt_cost().n)
    workspace = open_workspace(root, passphrase)
    now = now or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    genesis = action_log.LogHead(0, action_log.GENESIS_HASH)  # the empty log's checkpoint: the chain starts here
    action_log.write_checkpoint(
        root / action_log.CHECKPOINT_NAME, genesis, action_log.checkpoint_key(workspace.store_key()), now
    )
    with workspace.session(now) as store:
        fingerprints = {
            name: keys.fingerprint(keys.load_public_key(root / "keys" / f"secretariat_{name}.pub"))
            for name in ("encryption", "signing")
        }
        action_log.append(store, "workspace.create", {"kem": kem, "fingerprints": fingerprints}, now)
    return workspace


def _write_keys(keys_dir: Path, passphrase: str, kem: str) -> None:
    encryption = keys.generate_encryption_key(kem)
    signing = keys.generate_signing_key()
    keys.save_private_key(encryption, keys_dir / "secretariat_encryption.key", passphrase)
    keys.save_public_key(encryption.public_key(), keys_dir / "secretariat_encryption.pub")
    keys.save_private_key(signing, keys_dir / "secretariat_signing.key", passphrase)
    keys.save_public_key(signing.public_key(), keys_dir / "secretariat_signing.pub")


def _write_config(root: Path, protocol_paths: list[Path], salt: bytes, scrypt_n: int) -> None:
    lines = [
        "# Secretariat workspace. Keep this folder private; the store and keys are encrypted with the passphrase.",
        "protocols = [" + ", ".join(f'"{p.as_posix()}"' for p in protocol_paths) + "]",
        f'store_salt = "{salt.hex()}"',
        f"store_scrypt_n = {scrypt_n}",
        "",
    ]
    (root / CONFIG_NAME).write_text("\n".join(lines), encoding="utf-8")


def require_workspace(root: Path) -> Path:
    """The workspace's config file; raises before anyone is asked for a passphrase when there is none."""
    config_path = Path(root) / CONFIG_NAME
    if not config_path.is_file():
        raise AggregatorError(
            f"{root} is not a workspace (no {CONFIG_NAME})",
            hint="create one with `aggregator --workspace FOLDER init --protocol protocols/textile.toml`, "
            "or point to an existing one with --workspace or AGGREGATOR_WORKSPACE",
        )
    return config_path


def open_workspace(root: Path, passphrase: str) -> Workspace:
    root = Path(root)
    config_path = require_workspace(root)
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
        protocols, salt = config["protocols"], bytes.fromhex(config["store_salt"])
        scrypt_n = config.get("store_scrypt_n", LEGACY_STORE_SCRYPT_N)
        if type(scrypt_n) is not int or not 2**10 <= scrypt_n <= 2**20 or scrypt_n & (scrypt_n - 1):
            raise ValueError(f"store_scrypt_n {scrypt_n!r} is not a power of two from 2**10 to 2**20")
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise AggregatorError(
            f"{config_path} is damaged ({exc.__class__.__name__}: {exc})",
            hint="restore it from a backup: it holds the store's salt, without which the store cannot be opened",
        ) from None
    return Workspace(
        root=root,
        passphrase=passphrase,
        protocol_paths=[Path(p) for p in protocols],
        store_salt=salt,
        store_scrypt_n=scrypt_n,
    )
