"""Intake receipts bound to the sealed file they answer (issue 22, item 5), and format-2 files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imvo_submit import envelope
from support.intake_world import MATERIALS, World, build_world, only


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
