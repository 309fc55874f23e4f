"""Intake receipts bound to the sealed file they answer (issue 22, item 5), format-2 files, and the reason
category every receipt carries (issue 20, item 8)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from aggregator.intake import worker
from imvo_submit import envelope
from imvo_submit.cli.main import CATEGORY_MEANING
from imvo_submit.company import seal_submission
from imvo_submit.envelope import keys
from imvo_submit.states import Reason
from imvo_submit.validation import schema
from support.intake_world import (
    LIVING_WAGE,
    MATERIALS,
    PLAINTEXT_MARKER,
    SEALED,
    World,
    build_world,
    edited,
    only,
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


# ---------------------------------------------------------------- receipts bound to their file (issue 22, item 5)


def test_a_forgery_under_a_companys_file_name_never_touches_its_receipts(world: World):
    """Receipts were keyed by the inbox name: a forgery named like T001's accepted file, claiming T001 but
    signed with T002's key, overwrote T001's "accepted" receipt with "quarantined"."""
    sealed = world.seal(MATERIALS)
    first = only(world.intake())
    genuine = (world.ws.root / first.receipt).read_bytes()
    world.seal(MATERIALS, company="T001", signer="T002", name=sealed.name)  # the same name, a forged sender
    forged = only(world.intake())
    assert forged.state == "quarantined" and "signed with the key of company T002" in forged.reason
    assert forged.receipt is None
    assert [p.read_bytes() for p in (world.ws.outbox_dir / "T001").iterdir()] == [genuine]
    assert not (world.ws.outbox_dir / "T002").exists()


@pytest.mark.parametrize("case", ["unregistered-key", "bad-signature"])
def test_no_receipt_for_a_file_whose_sender_is_not_verified(world: World, case: str):
    if case == "unregistered-key":
        world.seal(MATERIALS, company="T001", signer="T002", name="claims_t001.imvo")
    else:
        sealed = world.seal(MATERIALS, name="claims_t001.imvo")
        data = bytearray(sealed.read_bytes())
        data[-1] ^= 1
        sealed.write_bytes(bytes(data))
    outcome = only(world.intake())
    assert outcome.state == "quarantined" and outcome.company_id == "T001" and outcome.receipt is None
    assert not list(world.ws.outbox_dir.rglob("*.receipt"))


def test_a_resent_copy_keeps_the_receipt_of_its_bytes(world: World):
    sealed = world.seal(MATERIALS)
    first = only(world.intake())
    shutil.copyfile(world.ws.root / world.record(sealed.name)["raw_path"], world.inbox / "resent.imvo")
    again = only(world.intake())
    assert again.state == "duplicate" and again.receipt == first.receipt
    receipt = envelope.verify_receipt((world.ws.root / first.receipt).read_bytes(), world.signing_public_key())
    assert receipt["state"] == "accepted"


def test_a_format_2_file_is_accepted_with_a_deprecation_warning(world: World):
    """Old imvo-submit versions seal format 2: still opened, with a warning for the clerk."""
    from support.legacy_envelope import seal_v2

    recipient = world.ws.decryption_key.public_key()
    path = seal_v2(
        MATERIALS.read_bytes(), world.inbox / "old.imvo", recipient, world.keys["T001"], company_id="T001",
        template="materials", period="2025-01", created="2025-02-10T09:00:00Z",
    )  # fmt: skip
    outcome = only(world.intake())
    assert (outcome.state, outcome.reason) == ("accepted", "valid")
    assert outcome.warnings[0].startswith("sealed with envelope format 2, whose readable header shows")
    assert world.count_rows("materials") == 2 and not path.exists()


# ---------------------------------------------------------------- why, on every receipt (issue 20, item 8)


def _invalid_wage(world: World, tmp_path: Path) -> None:
    source = edited(tmp_path, LIVING_WAGE, "BD,17175,", "BD,-17175,")
    world.seal(source, template="living_wage", check=False)


def _replayed(world: World, tmp_path: Path) -> None:
    world.seal(MATERIALS)
    world.intake()
    world.seal(edited(tmp_path, MATERIALS, "1337629.5", "1337630"), created="2025-02-01T09:00:00Z")


def _wrong_recipient(world: World, tmp_path: Path) -> None:
    """Signed by T001, encrypted to another key: the signature holds, the secretariat cannot open it."""
    seal_submission(
        MATERIALS, world.inbox, company_id="T001", covenant="textile", period="2025-01", created=SEALED,
        recipient_key=keys.generate_encryption_key().public_key(), signing_key=world.keys["T001"],
    )  # fmt: skip


def _internal_error(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that raises (run in this process, where it can be made to) stops without a verdict."""
    monkeypatch.setattr(worker, "_idle", [])
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    monkeypatch.setattr(schema, "no_duplicates", lambda values: {}["a check that raises"])
    source = tmp_path / "three_duplicates.csv"  # the uniqueness check's exact path runs only on duplicates
    header = "country,workers_covered,wage_paid_monthly_eur,living_wage_benchmark_eur,benchmark_source\n"
    source.write_text(header + "BD,5,119.5,256.6,anker\n" * 3, encoding="utf-8")
    world.seal(source, template="living_wage", check=False)


QUARANTINES = {
    "content": (_invalid_wage, {}),
    "period": (lambda world, tmp_path: world.seal(MATERIALS, period="2025-06"), {}),
    "period-expected": (lambda world, tmp_path: world.seal(MATERIALS), {"expected_period": "2025-02"}),
    "clock": (lambda world, tmp_path: world.seal(MATERIALS, created="2025-03-01T09:00:00Z"), {}),
    "replay": (_replayed, {}),
    "address": (lambda world, tmp_path: world.seal(MATERIALS, template="nope", check=False), {}),
    "unreadable": (_wrong_recipient, {}),
    "limits": (_internal_error, {}),
}


@pytest.mark.parametrize("case", sorted(QUARANTINES))
def test_every_quarantined_receipt_says_why_in_one_word(world: World, tmp_path: Path, monkeypatch, case: str):
    """A quarantined file's receipt tells the company the kind of problem (not the secretariat's full reason,
    and no data value), whichever check refused it."""
    prepare, intake_args = QUARANTINES[case]
    if prepare is _internal_error:
        prepare(world, tmp_path, monkeypatch)
    else:
        prepare(world, tmp_path)
    outcome = world.intake(**intake_args).outcomes[-1]
    assert outcome.state == "quarantined" and outcome.receipt is not None
    raw = (world.ws.root / outcome.receipt).read_bytes()
    receipt = envelope.verify_receipt(raw, world.signing_public_key())
    assert (receipt["state"], receipt["reason_category"]) == ("quarantined", case.split("-")[0])
    assert receipt["reason_category"] in CATEGORY_MEANING
    assert PLAINTEXT_MARKER not in raw and b"17175" not in raw and outcome.reason.encode() not in raw


def test_accepted_duplicate_and_replaced_receipts_say_why_too(world: World, tmp_path: Path):
    world.seal(MATERIALS)
    first = only(world.intake())
    world.seal(MATERIALS, created="2025-02-11T09:00:00Z")  # the same content sealed again
    again = only(world.intake())
    world.seal(edited(tmp_path, MATERIALS, "1337629.5", "1337630"), created="2025-02-12T09:00:00Z")
    correction = only(world.intake())

    def category(outcome) -> tuple[str, str]:
        receipt = envelope.verify_receipt((world.ws.root / outcome.receipt).read_bytes(), world.signing_public_key())
        return receipt["state"], receipt["reason_category"]

    assert category(again) == ("duplicate", "duplicate")
    assert category(correction) == ("accepted", "valid")
    assert category(first) == ("superseded", "replaced")  # its receipt was renewed when the correction came


def test_the_company_tool_explains_every_category_the_intake_gives():
    assert set(CATEGORY_MEANING) == {str(reason) for reason in Reason}
