"""Start-up checks that the workspace's secrets are readable by their owner only.

The store and the private keys are encrypted, but a folder that others can read still lets them copy the
ciphertext and try passphrases offline, or swap files. `check_permissions` returns plain warnings; the CLI
prints them before it works on the workspace (it does not refuse: the owner may know better).
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from imvo_submit.passphrase import scrypt_cost

# Files that hold secrets (encrypted, but still worth an offline attack) or the log's checkpoint.
_SECRET_FILES = ("store.duckdb", "store.duckdb.wal", "log_head.json")
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def check_permissions(root: Path) -> list[str]:
    """Warnings, in plain words with the command that fixes each; empty when everything is private.

    Checked: the workspace folder and keys/ grant nothing to group or others and belong to the current user;
    private keys, the store and the log checkpoint grant nothing to group or others; the store key's scrypt
    cost is not below today's.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    warnings = _folder_warnings(root) + _folder_warnings(root / "keys")
    secrets = sorted((root / "keys").glob("*.key")) + [root / name for name in _SECRET_FILES]
    for path in secrets:
        warnings += _file_warnings(path)
    return warnings + _kdf_warnings(root)


def _kdf_warnings(root: Path) -> list[str]:
    """A store key derived at less than today's scrypt cost (workspaces made before it was raised)."""
    try:
        config = tomllib.loads((root / "workspace.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []
    n = config.get("store_scrypt_n", 2**15)
    if isinstance(n, int) and n < scrypt_cost().n:
        return [
            f"the store key of {root} is derived with scrypt N = {n}, below today's {scrypt_cost().n}: a stolen "
            "copy is cheaper to attack; create a new workspace and move the work there when it suits you"
        ]
    return []


def _folder_warnings(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    info = folder.stat()
    found = []
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        found.append(f"the folder {folder} belongs to another user (uid {info.st_uid}); run: chown -R $USER {folder}")
    if info.st_mode & _OTHERS:
        found.append(
            f"the folder {folder} can be opened by other users (mode {_mode(info.st_mode)}); run: chmod 700 {folder}"
        )
    return found


def _file_warnings(path: Path) -> list[str]:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return []
    if stat.S_ISLNK(info.st_mode):
        return [f"{path} is a symbolic link; secrets must be plain files inside the workspace"]
    if info.st_mode & _OTHERS:
        return [f"{path} can be read by other users (mode {_mode(info.st_mode)}); run: chmod 600 {path}"]
    return []


def _mode(mode: int) -> str:
    return oct(stat.S_IMODE(mode))[2:].rjust(3, "0")
