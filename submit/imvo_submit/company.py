"""The company side: a small home folder with the company's key and the secretariat's public keys, and sealing.

<home>/config.toml              company id and covenant
<home>/secretariat_encryption.pub, secretariat_signing.pub   from the secretariat, fingerprints confirmed
<home>/company_signing.key/.pub the company's signing key (private key passphrase-encrypted)
<home>/rules/                   the rules bundle the secretariat sent, when one was installed (imvo_submit.bundle);
                                without one the tool checks with the rules it shipped with
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import envelope
from . import passphrase as passphrases
from .bundle import install_bundle
from .envelope import keys
from .errors import AggregatorError, ValidationFailed
from .periods import Period

if TYPE_CHECKING:  # pandas and pandera: imported when a command needs them
    from .validation import CheckResult

COMPANY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # the registry's rule; also keeps config.toml well-formed


def default_home() -> Path:
    return Path(os.environ.get("IMVO_SUBMIT_HOME", Path.home() / ".imvo-submit"))


def installed_rules(root: Path) -> Path | None:
    """The rules folder of the bundle installed in the home folder `root`; None: use the shipped rules."""
    from .bundle import installed_version

    folder = Path(root) / "rules"
    return folder if installed_version(folder) is not None else None


@dataclass
class CompanyHome:
    root: Path
    company_id: str
    covenant: str

    @property
    def key_path(self) -> Path:
        return self.root / "company_signing.key"

    @property
    def public_key_path(self) -> Path:
        return self.root / "company_signing.pub"

    def secretariat_encryption_key(self) -> keys.EncryptionPublicKey:
        path = self.root / "secretariat_encryption.pub"
        key = keys.load_public_key(path)
        if not isinstance(key, keys.EncryptionPublicKey):  # a home set up before `init` checked the key types
            raise AggregatorError(
                f"{path} holds a signing key, not the secretariat's encryption key",
                hint="run `imvo-submit init` again with --secretariat-key secretariat_encryption.pub and "
                "--receipt-key secretariat_signing.pub",
            )
        return key

    def secretariat_signing_key(self):
        return keys.load_public_key(self.root / "secretariat_signing.pub")

    @property
    def rules_dir(self) -> Path:
        return self.root / "rules"

    def signing_key(self, passphrase: str):
        if not self.key_path.exists():
            raise AggregatorError("this company has no signing key yet", hint="run `imvo-submit keygen` first")
        return keys.load_private_key(self.key_path, passphrase)


def init_home(
    root: Path, company_id: str, covenant: str, encryption_pub: Path, signing_pub: Path, rules: Path | None = None
) -> CompanyHome:
    """Set up the home folder; the caller shows the fingerprints so the user can confirm them by phone. `rules`
    is a rules bundle from the secretariat, installed when given (checked against its signing key first)."""
    from .validation import check_covenant  # pandas and pandera: imported when a command needs them

    if not COMPANY_ID.match(company_id):
        raise AggregatorError(
            f"'{company_id}' is not a valid company id",
            hint="use the id the secretariat gave you: letters, digits, - and _ only, e.g. T001",
        )
    _, signing = secretariat_keys(encryption_pub, signing_pub)  # refuse a damaged or swapped key before writing
    bundle = None if rules is None else _read_bundle(rules, signing)
    if bundle is None:
        check_covenant(covenant)
    elif covenant not in bundle.covenants:
        raise AggregatorError(
            f"the rules bundle has no rules for '{covenant}' (it has {', '.join(bundle.covenants)})",
            hint="use your covenant's short name, or ask the secretariat for the rules bundle of your covenant",
        )
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(encryption_pub, root / "secretariat_encryption.pub")
    shutil.copyfile(signing_pub, root / "secretariat_signing.pub")
    (root / "config.toml").write_text(f'company_id = "{company_id}"\ncovenant = "{covenant}"\n', encoding="utf-8")
    home = CompanyHome(root, company_id, covenant)
    if bundle is not None:
        install_bundle(bundle, home.rules_dir)
    return home


def update_rules(home: CompanyHome, bundle_path: Path):
    """Install the rules bundle at `bundle_path` when the secretariat signed it and it holds the home's covenant."""
    bundle = _read_bundle(bundle_path, home.secretariat_signing_key())
    if home.covenant not in bundle.covenants:
        raise AggregatorError(
            f"this rules bundle has no rules for {home.covenant} (it has {', '.join(bundle.covenants)})",
            hint="ask the secretariat for the rules bundle of your covenant",
        )
    install_bundle(bundle, home.rules_dir)
    return bundle


def _read_bundle(path: Path, secretariat_signing_key):
    from .bundle import read_bundle

    return read_bundle(Path(path).read_bytes(), secretariat_signing_key)


_KEYS_HINT = (
    "give --secretariat-key the secretariat's encryption key (secretariat_encryption.pub) and --receipt-key "
    "its receipt signing key (secretariat_signing.pub)"
)


def secretariat_keys(encryption_pub: Path, signing_pub: Path) -> tuple[keys.EncryptionPublicKey, keys.PublicKey]:
    """The secretariat's two public keys, each checked to be of its kind: the files are easily swapped, and a
    swapped pair would only fail at `seal` (or make every receipt look forged)."""
    encryption, signing = keys.load_public_key(encryption_pub), keys.load_public_key(signing_pub)
    encryption_ok = isinstance(encryption, keys.EncryptionPublicKey)
    signing_ok = keys.key_type(signing) == keys.SIGNING_TYPE
    if encryption_ok and signing_ok:
        return encryption, signing
    if not encryption_ok and not signing_ok:
        problem = (
            f"the two key files are swapped: {encryption_pub} is the secretariat's receipt signing key and "
            f"{signing_pub} its encryption key"
        )
    elif not encryption_ok:
        problem = f"{encryption_pub} is a signing key, not the secretariat's encryption key (--secretariat-key)"
    else:
        problem = f"{signing_pub} is an encryption key, not the secretariat's receipt signing key (--receipt-key)"
    raise AggregatorError(problem, hint=_KEYS_HINT)


def open_home(root: Path) -> CompanyHome:
    config = root / "config.toml"
    if not config.exists():
        raise AggregatorError(
            f"{root} is not set up for a company",
            hint="run `imvo-submit init --company ID --covenant NAME --secretariat-key FILE --receipt-key FILE`",
        )
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    return CompanyHome(root, data["company_id"], data["covenant"])


def keygen(home: CompanyHome, passphrase: str) -> str:
    """Create the company's signing key under `passphrase` (refused when it fails the passphrase policy)."""
    if home.key_path.exists():
        raise AggregatorError(
            f"a signing key already exists in {home.root}",
            hint="to replace it, move the old key away first and ask the secretariat to rotate your key",
        )
    passphrases.check_passphrase(passphrase, context=(home.company_id, home.covenant, "imvo", "submit"))
    key = keys.generate_signing_key()
    keys.save_private_key(key, home.key_path, passphrase)
    keys.save_public_key(key.public_key(), home.public_key_path)
    return keys.fingerprint(key.public_key())


def sealed_name(company_id: str, covenant: str, template: str, period: str) -> str:
    return f"{company_id}_{covenant}_{template}_{period}.imvo"


def check_tables(source: Path, covenant: str, template: str | None = None) -> list[CheckResult]:
    """The file checked with the covenant's rules: one CheckResult (imvo_submit.validation) per table it holds.

    A file holds one table, except the covenant's template workbook with several table sheets filled in: each
    filled sheet is a table of its own, checked (and later sealed) by its template, unless `template` names one.
    `check` shows them all; `seal` seals only when every table passes, one sealed file per table, and checks
    before it asks for the passphrase (a file that fails never prompts)."""
    from .validation import check_file, filled_template_sheets

    sheets = filled_template_sheets(source, covenant) if template is None else []
    if len(sheets) > 1:
        return [check_file(source, covenant, sheet) for sheet in sheets]
    return [check_file(source, covenant, template)]


def _checked_template(source: Path, covenant: str, template: str | None = None) -> str:
    """The file's template when the file meets the covenant's rules; else ValidationFailed with the report."""
    from .validation import check_file

    result = check_file(source, covenant, template)
    if not result.ok:
        raise ValidationFailed(
            f"{source.name} does not meet the {covenant} rules; nothing was sealed",
            report=result.report,
            hint=f"fix the rows listed, or run `imvo-submit check {source.name}` for the report files",
        )
    return result.template


def seal_submission(
    source: Path,
    out_dir: Path,
    *,
    company_id: str,
    covenant: str,
    period: str,
    recipient_key,
    signing_key,
    created: str,
    template: str | None = None,
    check: bool = True,
) -> Path:
    """Validate `source` with the secretariat's rules, then seal it. Refuses invalid data with the full report.

    `check=False` exists only for the demo and tests, which must be able to produce the broken submissions
    that a careless company could send with other tools (and the demo, which checks a period's files together
    with check_files before sealing them).
    """
    from .validation import check_file, rules_version

    Period.parse(period)
    if check:
        template = _checked_template(source, covenant, template)
    elif template is None:
        template = check_file(source, covenant).template
    Path(out_dir).mkdir(parents=True, exist_ok=True)  # --out may name a folder that does not exist yet
    target = Path(out_dir) / sealed_name(company_id, covenant, template, period)
    envelope.seal_file(
        source,
        target,
        covenant=covenant,
        template=template,
        company_id=company_id,
        period=period,
        created=created,
        recipient_public_key=recipient_key,
        signing_private_key=signing_key,
        rules_version=rules_version(),
    )
    return target
