"""Rules bundles: the secretariat's templates and checks, signed, for companies to install.

The secretariat writes one with `aggregator rules export`; a company installs it with `imvo-submit init --rules`
or `imvo-submit rules update`, and from then on checks, templates and seals with exactly those rules. A bundle
is one JSON document (UTF-8):

    {"format": "imvo-rules", "version": 1,
     "rules": {"rules_version": "<12 hex>", "created": "<UTC time>", "files": {"textile/materials.toml": "...", ...}},
     "signature": {"algorithm": "ed25519", "key_fingerprint": ..., "value": <base64>}}

The signature (the secretariat's signing key, the one that signs receipts) covers BUNDLE_PREFIX || the canonical
JSON of "rules". `rules_version` is the digest of the files (imvo_submit.validation.rules.rules_version), checked
again on reading, so it names the content and not a label someone chose. Reference lists (M49 regions) are not
part of a bundle: they change with a release of the tool.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .envelope.format import canonical_json
from .envelope.keys import fingerprint
from .envelope.signed import signature_block, signature_holds
from .errors import ConfigError
from .validation.rules import rule_files, rules_version, templates_for

BUNDLE_PREFIX = b"imvo-rules/v1\n"
BUNDLE_FORMAT_VERSION = 1
INSTALLED_MARK = "bundle.json"  # in an installed rules folder: where the rules came from
_MAX_BUNDLE_BYTES = 8 * 1024 * 1024
_FILE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_VERSION = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class RulesBundle:
    rules_version: str
    created: str
    files: dict[str, str]  # path below the rules folder -> text

    @property
    def covenants(self) -> list[str]:
        return sorted({name.split("/")[0] for name in self.files})


def export_bundle(signing_key: Ed25519PrivateKey, created: str, rules_dir: Path | None = None) -> bytes:
    """A signed bundle of the rules in `rules_dir` (None: the rules in force)."""
    try:
        files = {name: content.decode("utf-8") for name, content in rule_files(rules_dir).items()}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"a rules file is not UTF-8 text ({exc})", hint="save the rules files as UTF-8") from exc
    body = {"rules_version": rules_version(rules_dir), "created": created, "files": files}
    doc = {
        "format": "imvo-rules",
        "version": BUNDLE_FORMAT_VERSION,
        "rules": body,
        "signature": signature_block(signing_key, BUNDLE_PREFIX + canonical_json(body)),
    }
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def read_bundle(data: bytes, secretariat_signing_key: Ed25519PublicKey) -> RulesBundle:
    """The bundle when the secretariat's signature holds and its content is what it claims; ConfigError else."""
    body, signature = _parse(data)
    expected = fingerprint(secretariat_signing_key)
    if signature.get("key_fingerprint") != expected:
        raise ConfigError(
            f"this rules bundle was signed by key {signature.get('key_fingerprint')!r}, not by the secretariat key "
            f"{expected}",
            hint="ask the secretariat for the current rules bundle, or check that you set up its current keys",
        )
    if not signature_holds(signature, secretariat_signing_key, BUNDLE_PREFIX + canonical_json(body)):
        raise ConfigError(
            "this rules bundle was changed or forged: its signature does not match the secretariat key",
            hint="ask the secretariat for the rules bundle again",
        )
    return _checked(body)


def install_bundle(bundle: RulesBundle, target: Path) -> None:
    """Replace the rules in `target` with the bundle's, whole or not at all (a half-written folder never counts:
    the new folder is complete before it takes the old one's place)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".rules-", dir=target.parent))
    try:
        for name, text in bundle.files.items():
            path = fresh / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="")  # bytes as sent: the version is their digest
        mark = {"rules_version": bundle.rules_version, "created": bundle.created}
        (fresh / INSTALLED_MARK).write_text(json.dumps(mark, sort_keys=True) + "\n", encoding="utf-8")
        if rules_version(fresh) != bundle.rules_version:
            raise ConfigError("the rules bundle could not be written as sent", hint="check the disk and try again")
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)  # a folder cannot replace a folder on Windows: move the old one aside first
        os.replace(fresh, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def installed_version(rules_dir: Path) -> dict | None:
    """{"rules_version", "created"} of the bundle installed in `rules_dir`; None when there is none."""
    try:
        return json.loads((Path(rules_dir) / INSTALLED_MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _parse(data: bytes) -> tuple[dict, dict]:
    if len(data) > _MAX_BUNDLE_BYTES:
        raise ConfigError("this file is too large to be a rules bundle", hint="check that you chose the right file")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError("this file is not a rules bundle (not readable JSON)", hint=_WHICH_FILE) from exc
    if not isinstance(doc, dict) or doc.get("format") != "imvo-rules":
        raise ConfigError("this file is not a rules bundle", hint=_WHICH_FILE)
    if doc.get("version") != BUNDLE_FORMAT_VERSION:
        raise ConfigError(
            f"this rules bundle has format version {doc.get('version')!r}, which this imvo-submit cannot read",
            hint="install the current imvo-submit",
        )
    body, signature = doc.get("rules"), doc.get("signature")
    if not isinstance(body, dict) or not isinstance(signature, dict):
        raise ConfigError("this rules bundle is damaged (its rules or signature are missing)", hint=_WHICH_FILE)
    return body, signature


def _checked(body: dict) -> RulesBundle:
    files, version, created = body.get("files"), body.get("rules_version"), body.get("created")
    if not isinstance(files, dict) or not files or not all(isinstance(t, str) for t in files.values()):
        raise ConfigError("this rules bundle holds no rules", hint=_WHICH_FILE)
    bad = sorted(name for name in files if not isinstance(name, str) or not _FILE_NAME.fullmatch(name))
    if bad:
        raise ConfigError(f"this rules bundle names a file outside a covenant folder: {bad[0]!r}", hint=_WHICH_FILE)
    if not isinstance(version, str) or not _VERSION.fullmatch(version) or not isinstance(created, str):
        raise ConfigError("this rules bundle has no valid version", hint=_WHICH_FILE)
    bundle = RulesBundle(version, created, dict(files))
    with tempfile.TemporaryDirectory() as scratch:  # the digest of the files as they would be installed
        for name, text in files.items():
            (Path(scratch) / name).parent.mkdir(exist_ok=True)
            (Path(scratch) / name).write_text(text, encoding="utf-8", newline="")
        if rules_version(Path(scratch)) != version or not all(
            templates_for(c, Path(scratch)) for c in bundle.covenants
        ):
            raise ConfigError("this rules bundle's content does not match its version", hint=_WHICH_FILE)
    return bundle


_WHICH_FILE = "use the rules file (.imvo-rules) the secretariat sent; ask for it again if it came damaged"
