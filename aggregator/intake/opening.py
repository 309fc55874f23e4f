"""Opening one sealed file: a registered, active sender signing with its current key, a plausible header, a
sealing time that is not in the future. Every refusal is a Quarantine with its reason and category."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from aggregator.errors import HOSTILE_INPUT_ERRORS, EnvelopeError
from aggregator.registry import Company, Registry
from aggregator.store import Store
from aggregator.workspace import Workspace
from imvo_submit import envelope
from imvo_submit.periods import Period
from imvo_submit.states import Reason
from imvo_submit.validation import templates_for

from .model import FUTURE_SKEW_MINUTES, MAX_SEALED_BYTES, Opened, Quarantine

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class RegistryLookups:
    """The registry's answers, memoised for one intake: it holds the workspace lock and never changes the
    registry, so each company and key is looked up once instead of three times per file."""

    def __init__(self, store: Store):
        self._registry = Registry(store)
        self._memo: dict[tuple[str, ...], object] = {}

    def _cached(self, method: str, *args: str):
        key = (method, *args)
        if key not in self._memo:
            self._memo[key] = getattr(self._registry, method)(*args)
        return self._memo[key]

    def find(self, company_id: str) -> Company | None:
        return self._cached("find", company_id)

    def get(self, company_id: str) -> Company:
        return self.find(company_id) or self._registry.get(company_id)  # the registry raises for a stranger

    def active_key(self, company_id: str, fingerprint: str) -> bytes | None:
        return self._cached("active_key", company_id, fingerprint)

    def key_owners(self, fingerprint: str) -> list[tuple[str, str | None]]:
        return self._cached("key_owners", fingerprint)


def header_or_none(path: Path) -> envelope.EnvelopeHeader | None:
    try:
        return envelope.read_header(path)
    except (EnvelopeError, OSError, *HOSTILE_INPUT_ERRORS):
        return None


def header_fields(header: envelope.EnvelopeHeader | None) -> list[str | None]:
    return [getattr(header, f, None) for f in ("company_id", "covenant", "template", "period")]


def open_sealed(workspace: Workspace, registry: RegistryLookups, path: Path) -> Opened:
    size = path.stat().st_size
    if size == 0:
        raise Quarantine("the file is empty (0 bytes): nothing was sent", category=Reason.UNREADABLE)
    if size > MAX_SEALED_BYTES:
        raise Quarantine(
            f"the file is larger than {MAX_SEALED_BYTES // 1024**2} MB; submissions are much smaller, so it was not "
            "opened (a genuine file this large must be split into smaller ones)",
            category=Reason.UNREADABLE,
        )
    try:
        header = envelope.read_header(path)
    except EnvelopeError as exc:
        raise Quarantine(f"not a valid sealed submission: {exc.message}", category=Reason.UNREADABLE) from None
    key_bytes = signing_key_of(registry, header)
    try:
        _, plaintext = envelope.open_file(
            path, workspace.decryption_key, envelope.keys.signing_public_key_from_bytes(key_bytes)
        )
    except EnvelopeError as exc:
        signed = getattr(exc, "signer_verified", False)
        raise Quarantine(exc.message, category=Reason.UNREADABLE, signed=signed) from None
    return Opened(header, plaintext)


def signing_key_of(registry: RegistryLookups, header: envelope.EnvelopeHeader) -> bytes:
    """The registered, current public key the file claims to be signed with; quarantines every other case."""
    company = registry.find(header.company_id)
    if company is None:
        raise Quarantine(f"company {header.company_id} is not registered with the secretariat", category=Reason.SENDER)
    if company.status != "active":
        raise Quarantine(f"company {header.company_id} is revoked and may not submit", category=Reason.SENDER)
    key_bytes = registry.active_key(header.company_id, header.signer_fingerprint)
    if key_bytes is not None:
        return key_bytes
    owners = registry.key_owners(header.signer_fingerprint)
    others = sorted(c for c, _ in owners if c != header.company_id)
    retired = [r for c, r in owners if c == header.company_id and r is not None]
    if others:
        why = (
            f"the file claims to come from {header.company_id} but is signed with the key of company "
            f"{others[0]}: a forgery or a mix-up; not opened"
        )
    elif retired:
        why = (
            f"the file is signed with an old key of {header.company_id} (replaced on {retired[0]}); "
            "files signed with a replaced key are refused"
        )
    else:
        why = (
            f"the file is signed with key {header.signer_fingerprint}, which is not a registered key of "
            f"{header.company_id}"
        )
    raise Quarantine(why, category=Reason.SENDER)


def check_header(
    workspace: Workspace,
    registry: RegistryLookups,
    header: envelope.EnvelopeHeader,
    now: str,
    expected_period: str | None,
) -> None:
    company = registry.get(header.company_id)
    if header.covenant not in workspace.protocols:
        raise Quarantine(f"covenant '{header.covenant}' is not handled by this secretariat", category=Reason.ADDRESS)
    if header.covenant not in company.covenants:
        raise Quarantine(
            f"company {header.company_id} is not a member of covenant '{header.covenant}'", category=Reason.ADDRESS
        )
    if header.template not in templates_for(header.covenant):
        raise Quarantine(
            f"'{header.template}' is not a template of covenant '{header.covenant}'", category=Reason.ADDRESS
        )
    check_times(header, now, expected_period)


def check_times(header: envelope.EnvelopeHeader, now: str, expected_period: str | None) -> None:
    """The period (a month, not in the future, the one expected) and the sealing time (not in the future)."""
    if not Period.is_valid(header.period):
        raise Quarantine(f"'{header.period}' is not a reporting period (YYYY-MM)", category=Reason.PERIOD)
    if header.period > now[:7]:
        raise Quarantine(f"the reporting period {header.period} lies in the future", category=Reason.PERIOD)
    if expected_period and header.period != expected_period:
        raise Quarantine(
            f"the file was sealed for period {header.period}, but this intake is for {expected_period} "
            "(a replay or a file sent in the wrong month)",
            category=Reason.PERIOD,
        )
    sealed, clock = datetime.strptime(header.created, UTC_FORMAT), datetime.strptime(now, UTC_FORMAT)
    if sealed - clock > timedelta(minutes=FUTURE_SKEW_MINUTES):
        # Accepted, such a file would outrank every later correction of the period (newest sealing time wins).
        raise Quarantine(
            f"the file says it was sealed at {header.created}, more than {FUTURE_SKEW_MINUTES} minutes after the "
            f"secretariat's clock ({now}): the sender's computer clock is wrong; ask the company to correct it "
            "and seal the file again",
            category=Reason.CLOCK,
        )
