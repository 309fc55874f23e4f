"""Intake: every file that lands in the inbox ends in exactly one state, with a reason a clerk understands.

One small workspace per test (cheap key derivation), three registered textile companies with in-memory keys,
and small sample files sealed as the companies would.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import intake as intake_mod
from aggregator import log as action_log
from aggregator.errors import AggregatorError
from aggregator.intake import files as files_mod
from aggregator.intake import lookahead as lookahead_mod
from aggregator.intake import recording as recording_mod
from aggregator.intake.worker import Failed, Stop, Worker
from aggregator.registry import Registry
from imvo_submit import envelope
from imvo_submit.envelope import keys
from support.intake_world import (
    LIVING_WAGE,
    MATERIALS,
    NOW,
    PLAINTEXT_MARKER,
    REGISTERED,
    SEALED,
    World,
    build_world,
    edited,
    only,
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


# ---------------------------------------------------------------- accepted, duplicates, corrections


def test_a_valid_file_is_accepted_stored_and_receipted(world: World):
    sealed = world.seal(MATERIALS)
    outcome = only(world.intake(expected_period="2025-01"))
    assert (outcome.state, outcome.reason) == ("accepted", "valid")
    assert (outcome.company_id, outcome.template, outcome.period) == ("T001", "materials", "2025-01")
    assert world.count_rows("materials") == 2
    record = world.record(sealed.name)
    assert record["state"] == "accepted"
    assert (world.ws.root / record["raw_path"]).exists()

    receipt_path = world.ws.root / outcome.receipt
    assert receipt_path == world.ws.outbox_dir / "T001" / (record["submission_id"] + ".receipt")
    receipt = envelope.verify_receipt(receipt_path.read_bytes(), world.signing_public_key())
    assert receipt["state"] == "accepted"
    assert receipt["file_sha256"] == record["submission_id"]
    assert (receipt["company_id"], receipt["period"], receipt["received_at"]) == ("T001", "2025-01", NOW)
    assert PLAINTEXT_MARKER not in receipt_path.read_bytes()
    # only the sealed file's signed header fields, its hash, the time received, the state, the reason's
    # category and the log's head: nothing derived from the plaintext
    assert receipt["reason_category"] == "valid"
    assert set(receipt) == {
        "covenant",
        "template",
        "company_id",
        "period",
        "created",
        "file_name",
        "signer_fingerprint",
        "file_sha256",
        "received_at",
        "state",
        "log_head",
        "reason_category",
    }
    with world.ws.open_store() as store:
        first_head = action_log.entries(store)[-2]  # the log before this intake: its one decision came after
    assert receipt["log_head"] == f"{first_head.seq}:{first_head.hash}"


def test_the_same_file_under_another_name_is_a_duplicate_and_not_counted_twice(world: World):
    sealed = world.seal(MATERIALS)
    shutil.copyfile(sealed, world.inbox / ("again_" + sealed.name))
    report = world.intake()
    states = {o.file: (o.state, o.reason) for o in report.outcomes}
    assert states[sealed.name] == ("accepted", "valid")
    assert states["again_" + sealed.name] == (
        "duplicate",
        "identical to a file received before (accepted); not counted twice",
    )
    assert world.count_rows("materials") == 2
    assert len(world.records()) == 2


def test_the_same_content_sealed_again_is_a_duplicate(world: World):
    world.seal(MATERIALS, name="first.imvo")
    world.intake()
    world.seal(MATERIALS, created="2025-02-11T09:00:00Z", name="second.imvo")
    outcome = only(world.intake())
    assert outcome.state == "duplicate"
    assert outcome.reason.startswith("same content as submission ")
    assert outcome.reason.endswith("(not counted twice)")
    assert world.count_rows("materials") == 2
    receipt = envelope.verify_receipt((world.ws.root / outcome.receipt).read_bytes(), world.signing_public_key())
    assert receipt["state"] == "duplicate"


def test_the_same_content_sealed_again_in_the_same_intake_is_a_duplicate(world: World):
    # the first file's record is not in the store yet when the second is decided (records are inserted at the
    # commit): the open transaction answers for it, as the store would
    world.seal(MATERIALS, name="first.imvo")
    world.seal(MATERIALS, created="2025-02-11T09:00:00Z", name="second.imvo")
    states = {o.file: (o.state, o.reason) for o in world.intake().outcomes}
    assert states["first.imvo"] == ("accepted", "valid")
    assert states["second.imvo"][0] == "duplicate" and states["second.imvo"][1].startswith("same content as ")
    assert world.count_rows("materials") == 2
    assert sorted(r["state"] for r in world.records()) == ["accepted", "duplicate"]


def test_a_newer_correction_supersedes_the_accepted_submission(world: World, tmp_path: Path):
    first = world.seal(MATERIALS, name="first.imvo")
    world.intake()
    first_id = world.record(first.name)["submission_id"]
    corrected = edited(tmp_path, MATERIALS, "1082606.4", "1082000.0")
    second = world.seal(corrected, created="2025-02-20T09:00:00Z", name="second.imvo")
    outcome = only(world.intake())

    second_id = world.record(second.name)["submission_id"]
    assert outcome.state == "accepted"
    assert outcome.reason == f"valid; replaces submission {first_id[:12]}"
    old = world.record(first.name)
    assert (old["state"], old["superseded_by"]) == ("superseded", second_id)
    assert old["reason"] == f"replaced by a newer submission {second_id[:12]}"
    # the superseded raw file moved with its state, and its sender gets a receipt saying so
    assert old["raw_path"].startswith("received/superseded/")
    assert (world.ws.root / old["raw_path"]).exists()
    assert world.received_files()["accepted"] == [Path(world.record(second.name)["raw_path"]).name]
    old_receipt = envelope.verify_receipt(
        (world.ws.outbox_dir / "T001" / f"{first_id}.receipt").read_bytes(), world.signing_public_key()
    )
    assert (old_receipt["state"], old_receipt["file_sha256"]) == ("superseded", first_id)
    with world.ws.open_store() as store:
        stored = store.con.execute(
            "SELECT DISTINCT submission_id FROM rows_textile_materials s JOIN submissions USING (submission_id) "
            "WHERE state = 'accepted'"
        ).fetchall()
    assert stored == [(second_id,)]


def test_a_correction_in_the_same_intake_as_its_original_supersedes_it(world: World, tmp_path: Path):
    # Files share a transaction; the original must still be filed and receipted as superseded.
    world.seal(MATERIALS, name="a_first.imvo")
    corrected = edited(tmp_path, MATERIALS, "1082606.4", "1082000.0")
    world.seal(corrected, created="2025-02-20T09:00:00Z", name="b_second.imvo")
    report = world.intake()

    assert [o.state for o in report.outcomes] == ["accepted", "accepted"]
    old, new = world.record("a_first.imvo"), world.record("b_second.imvo")
    assert (old["state"], old["superseded_by"]) == ("superseded", new["submission_id"])
    assert report.outcomes[1].reason == f"valid; replaces submission {old['submission_id'][:12]}"
    assert (world.ws.root / old["raw_path"]).is_file() and old["raw_path"].startswith("received/superseded/")
    assert world.received_files()["accepted"] == [Path(new["raw_path"]).name]
    old_receipt = envelope.verify_receipt(
        (world.ws.outbox_dir / "T001" / f"{old['submission_id']}.receipt").read_bytes(),
        world.signing_public_key(),
    )
    assert old_receipt["state"] == "superseded"
    assert world.count_rows("materials") == 4  # both files' rows; only the accepted one's are aggregated


def test_a_failure_inside_a_shared_transaction_leaves_its_files_in_the_inbox(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    for company in ("T001", "T002", "T003"):
        world.seal(MATERIALS, company=company, name=f"{company}.imvo")
    real = recording_mod.record
    calls = []

    def fail_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(recording_mod, "record", fail_third)
    with pytest.raises(RuntimeError, match="disk full"):
        world.intake()
    # the two files decided before the failure were rolled back with it: nothing recorded, nothing moved
    assert world.records() == []
    assert sorted(p.name for p in world.inbox.iterdir()) == ["T001.imvo", "T002.imvo", "T003.imvo"]
    assert not list(world.ws.outbox_dir.rglob("*.receipt"))
    monkeypatch.setattr(recording_mod, "record", real)
    assert [o.state for o in world.intake().outcomes] == ["accepted"] * 3
    # the three files' rows went in with one insert: each row keeps its own file's id, company and row number
    with world.ws.open_store() as store:
        stored = store.con.execute(
            "SELECT company_id, submission_id, period, list(source_row ORDER BY source_row) "
            "FROM rows_textile_materials GROUP BY ALL ORDER BY company_id"
        ).fetchall()
    ids = {r["company_id"]: r["submission_id"] for r in world.records()}
    assert stored == [(c, ids[c], "2025-01", [2, 3]) for c in ("T001", "T002", "T003")]


def test_an_intake_that_fails_with_a_worker_busy_ends_the_worker_and_keeps_the_files(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    for n in range(6):
        world.seal(MATERIALS, company=("T001", "T002", "T003")[n % 3], name=f"f{n}.imvo")
    monkeypatch.setattr(lookahead_mod, "AHEAD_FILES", 2)
    started: list[Worker] = []
    child_processes = []

    def worker(limits=None) -> Worker:
        started.append(Worker(limits))
        child_processes.append(started[-1].child)
        return started[-1]

    monkeypatch.setattr(intake_mod.worker, "acquire", worker)

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(recording_mod, "record", fail)  # the first decision fails, the second chunk being checked
    with pytest.raises(RuntimeError, match="disk full"):
        world.intake()
    (child,) = started
    assert child.child is None  # closed ...
    process = child_processes[0]
    assert process.poll() is not None  # ... and its process has ended
    assert world.records() == [] and len(list(world.inbox.iterdir())) == 6


def test_a_file_replaced_in_the_inbox_after_it_was_checked_ahead_is_decided_on_what_is_there(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    world.seal(MATERIALS, company="T001", name="a.imvo")
    world.seal(LIVING_WAGE, company="T002", name="b.imvo")  # valid when the chunk is checked ahead
    broken = edited(tmp_path, LIVING_WAGE, "BD,17175,", "BD,-17175,")
    real = intake_mod.process

    def replace_b_first(pending, path, *args):
        if path.name == "a.imvo":  # b.imvo was opened and checked with a.imvo's chunk; now it changes
            world.seal(broken, company="T002", template="living_wage", check=False, name="b.imvo")
        return real(pending, path, *args)

    monkeypatch.setattr(intake_mod, "process", replace_b_first)
    report = world.intake(expected_period="2025-01")
    assert [o.state for o in report.outcomes] == ["accepted", "quarantined"]
    assert "workers_covered" in world.record("b.imvo")["report_json"]


def test_a_worker_that_died_fails_the_request_in_flight_and_the_next_one_starts_afresh():
    child = Worker()
    assert child.submit([])() == []
    work = [("textile", "materials", [MATERIALS.read_bytes()])]
    pending = child.submit(work)
    child.child.kill()  # e.g. the out-of-memory killer, while the request is in flight
    (failed,) = pending()
    assert isinstance(failed, Failed) and failed.stop is Stop.CRASH
    assert child.child is None
    (answer,) = child.submit(work)()  # a new process takes the next request
    assert answer[0].ok
    child.close()


def test_without_an_interpreter_to_start_the_intake_checks_every_file_itself(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    child = Worker()
    assert not child.isolated
    ((result,),) = child.submit([("textile", "materials", [MATERIALS.read_bytes()])])()
    assert result.ok


def test_an_older_file_sent_after_a_newer_one_is_quarantined(world: World, tmp_path: Path):
    corrected = edited(tmp_path, MATERIALS, "1082606.4", "1082000.0")
    world.seal(corrected, created="2025-02-20T09:00:00Z", name="newer.imvo")
    world.intake()
    world.seal(MATERIALS, created="2025-02-10T09:00:00Z", name="older.imvo")
    outcome = only(world.intake())
    assert outcome.state == "quarantined"
    assert outcome.reason == (
        "the file was sealed at 2025-02-10T09:00:00Z, not after the submission already accepted for this "
        "period (sealed at 2025-02-20T09:00:00Z): an old file sent again"
    )
    assert world.record("newer.imvo")["state"] == "accepted"


# ---------------------------------------------------------------- damaged and forged files


def _payload_offset(path: Path) -> int:
    header = envelope.read_header(path)
    return path.stat().st_size - 64 - header.layout.payload_size


def test_a_truncated_file_is_quarantined(world: World):
    sealed = world.seal(MATERIALS)
    sealed.write_bytes(sealed.read_bytes()[:-10])
    outcome = only(world.intake())
    assert outcome.state == "quarantined"
    assert "is incomplete: it ends before its declared end" in outcome.reason


def test_a_file_with_a_chunk_removed_is_quarantined(world: World):
    key = keys.load_public_key(world.ws.keys_dir / "secretariat_encryption.pub")
    sealed = world.inbox / "chunked.imvo"
    envelope.seal_file(
        LIVING_WAGE,
        sealed,
        covenant="textile",
        template="living_wage",
        company_id="T001",
        period="2025-01",
        created=SEALED,
        recipient_public_key=key,
        signing_private_key=world.keys["T001"],
    )
    data = sealed.read_bytes()
    start = _payload_offset(sealed) + 65552  # the second chunk: 64 KiB + 16-byte tag before it
    sealed.write_bytes(data[:start] + data[start + 56 :])
    outcome = only(world.intake())
    assert outcome.state == "quarantined"
    assert "is incomplete" in outcome.reason
    assert world.received_files()["quarantined"]


@pytest.fixture(scope="module")
def shared_world():
    root = Path(tempfile.mkdtemp(prefix="intake-flip-"))
    patch = pytest.MonkeyPatch()
    try:
        built = build_world(root)
        built.seal(MATERIALS, name="original.imvo")
        original = (built.inbox / "original.imvo").read_bytes()
        (built.inbox / "original.imvo").unlink()
        yield built, original
    finally:
        patch.undo()
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_flipped_byte_anywhere_is_quarantined(shared_world, data):
    world, original = shared_world
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor mask")
    damaged = bytearray(original)
    damaged[position] ^= mask
    world.drop("flipped.imvo", bytes(damaged))
    outcome = only(world.intake())
    # The same damage drawn twice is an exact copy of an already quarantined file.
    assert outcome.state == "quarantined" or outcome.reason.startswith("identical to a file received before (q")
    assert not list(world.inbox.iterdir())


def test_a_file_signed_by_another_registered_company_is_quarantined(world: World):
    world.seal(MATERIALS, company="T001", signer="T002")
    outcome = only(world.intake())
    assert outcome.state == "quarantined"
    assert outcome.reason == (
        "the file claims to come from T001 but is signed with the key of company T002: "
        "a forgery or a mix-up; not opened"
    )


def test_an_unregistered_company_is_quarantined_and_gets_no_receipt(world: World):
    world.seal(MATERIALS, company="X999")
    outcome = only(world.intake())
    assert (outcome.state, outcome.reason) == (
        "quarantined",
        "company X999 is not registered with the secretariat",
    )
    assert outcome.receipt is None
    assert not (world.ws.outbox_dir / "X999").exists()


def test_a_revoked_company_is_quarantined(world: World):
    with world.ws.open_store() as store:
        Registry(store).revoke("T002", "left the covenant", now=REGISTERED)
    world.seal(MATERIALS, company="T002")
    outcome = only(world.intake())
    assert (outcome.state, outcome.reason) == ("quarantined", "company T002 is revoked and may not submit")


def test_a_file_signed_with_a_rotated_out_key_is_quarantined(world: World):
    new_key = keys.generate_signing_key()
    with world.ws.open_store() as store:
        Registry(store).rotate_key("T001", keys.public_key_bytes(new_key.public_key()), now="2025-02-01T00:00:00Z")
    world.seal(MATERIALS)
    outcome = only(world.intake())
    assert (outcome.state, outcome.reason) == (
        "quarantined",
        "the file is signed with an old key of T001 (replaced on 2025-02-01T00:00:00Z); "
        "files signed with a replaced key are refused",
    )
    world.keys["T001"] = new_key
    world.seal(MATERIALS, name="with_new_key.imvo")
    assert only(world.intake()).state == "accepted"


# ---------------------------------------------------------------- plausible header, valid content


def test_a_file_for_another_period_is_quarantined_as_a_replay(world: World):
    world.seal(MATERIALS, period="2024-12")
    outcome = only(world.intake(expected_period="2025-01"))
    assert (outcome.state, outcome.reason) == (
        "quarantined",
        "the file was sealed for period 2024-12, but this intake is for 2025-01 "
        "(a replay or a file sent in the wrong month)",
    )


def test_a_period_in_the_future_is_quarantined(world: World):
    world.seal(MATERIALS, period="2025-03")
    outcome = only(world.intake())
    assert (outcome.state, outcome.reason) == ("quarantined", "the reporting period 2025-03 lies in the future")


def test_a_template_outside_the_covenant_is_quarantined(world: World):
    world.seal(MATERIALS, template="refiners", check=False)
    outcome = only(world.intake())
    assert (outcome.state, outcome.reason) == (
        "quarantined",
        "'refiners' is not a template of covenant 'textile'",
    )


def test_invalid_content_is_quarantined_with_the_full_report_stored(world: World, tmp_path: Path):
    broken = edited(tmp_path, LIVING_WAGE, "BD,17175,", "BD,-17175,")
    sealed = world.seal(broken, template="living_wage", check=False)
    outcome = only(world.intake())
    assert outcome.state == "quarantined"
    assert outcome.reason.startswith("the data does not meet the rules: row 2, column workers_covered: ")
    record = world.record(sealed.name)
    problems = json.loads(record["report_json"])["problems"]
    assert any(p["row"] == 2 and p["column"] == "workers_covered" for p in problems)
    with pytest.raises(Exception, match="does not exist"):
        world.count_rows("living_wage")  # nothing of the invalid file was stored


def test_a_raw_csv_in_the_inbox_is_quarantined(world: World):
    world.drop("locations.csv", b"material,certification,weight_kg\ncotton,none,1\n")
    outcome = only(world.intake())
    assert outcome.state == "quarantined"
    assert outcome.reason == (
        "not a valid sealed submission: locations.csv is not a sealed IMVO submission "
        "(it does not start with the envelope marker)"
    )
    assert outcome.receipt is None


def test_a_header_that_breaks_the_parser_costs_one_file_not_the_intake(world: World):
    body = b"[" * 8000 + b"]" * 8000  # json.loads recurses too deep on this
    world.drop("a_nested.imvo", b"IMVOSEAL" + struct.pack(">HI", 2, len(body)) + body)
    world.seal(MATERIALS, name="b_valid.imvo")
    report = world.intake()
    assert [(o.state, o.reason) for o in report.outcomes] == [
        (
            "quarantined",
            "not a valid sealed submission: a_nested.imvo has a damaged header: it is nested too deeply to be a header",
        ),
        ("accepted", "valid"),
    ]


def test_an_empty_file_is_quarantined(world: World):
    world.drop("empty.imvo", b"")
    outcome = only(world.intake())
    assert (outcome.state, outcome.reason) == ("quarantined", "the file is empty (0 bytes): nothing was sent")


def test_a_quarantined_file_of_a_registered_company_gets_a_receipt(world: World):
    world.seal(MATERIALS, period="2025-03", name="early.imvo")
    outcome = only(world.intake())
    file_sha = world.record("early.imvo")["submission_id"]
    receipt = envelope.verify_receipt(
        (world.ws.outbox_dir / "T001" / f"{file_sha}.receipt").read_bytes(), world.signing_public_key()
    )
    assert outcome.receipt == f"outbox/T001/{file_sha}.receipt"
    assert (receipt["state"], receipt["period"]) == ("quarantined", "2025-03")


# ---------------------------------------------------------------- the whole inbox, reruns, interruptions


def _fill_inbox_with_every_case(world: World, tmp_path: Path) -> None:
    world.seal(MATERIALS, name="a_valid.imvo")
    shutil.copyfile(world.inbox / "a_valid.imvo", world.inbox / "b_copy.imvo")
    world.seal(LIVING_WAGE, company="T002", name="c_valid_t002.imvo")
    world.seal(MATERIALS, company="T003", signer="T002", name="d_forged.imvo")
    world.seal(MATERIALS, company="X999", name="e_stranger.imvo")
    world.seal(MATERIALS, company="T003", period="2024-11", name="f_replay.imvo")
    broken = edited(tmp_path, LIVING_WAGE, "BD,17175,", "BD,-17175,")
    world.seal(broken, company="T003", template="living_wage", check=False, name="g_invalid.imvo")
    world.drop("h_raw.csv", b"material,certification,weight_kg\ncotton,none,1\n")
    world.drop("i_empty.imvo", b"")


def test_every_file_leaves_the_inbox_into_exactly_one_state_folder(world: World, tmp_path: Path):
    _fill_inbox_with_every_case(world, tmp_path)
    report = world.intake(expected_period="2025-01")
    assert [o.state for o in report.outcomes] == [
        "accepted",
        "duplicate",
        "accepted",
        "quarantined",
        "quarantined",
        "quarantined",
        "quarantined",
        "quarantined",
        "quarantined",
    ]
    assert not list(world.inbox.iterdir())
    records = world.records()
    assert len(records) == len(report.outcomes)
    filed = world.received_files()
    assert sum(len(names) for names in filed.values()) == len(records)
    for record in records:
        assert record["raw_path"].startswith(f"received/{record['state']}/")
        assert (world.ws.root / record["raw_path"]).is_file()
    # receipts: one per sealed file whose signature verified with the key of the company it names; none for
    # the exact copy (the receipt of its bytes exists), the forgery, the stranger or unreadable files
    receipts = {p.relative_to(world.ws.outbox_dir).as_posix() for p in world.ws.outbox_dir.rglob("*.receipt")}
    by_name = {r["original_name"]: r for r in records}
    expected = {("a_valid.imvo", "T001"), ("c_valid_t002.imvo", "T002")}
    expected |= {("f_replay.imvo", "T003"), ("g_invalid.imvo", "T003")}
    assert receipts == {f"{company}/{by_name[name]['submission_id']}.receipt" for name, company in expected}


def _decisions(world: World) -> list[tuple]:
    fields = ("original_name", "state", "reason", "report_json", "warnings_json")
    return [tuple(record[f] for f in fields) for record in world.records()]


def test_files_checked_ahead_are_decided_exactly_as_one_by_one(tmp_path: Path, monkeypatch):
    # Small files are opened and checked ahead in chunks, those of one template together, by the worker
    # process. Every decision, reason and report must be what checking each file alone in its turn gives.
    alone = build_world(tmp_path / "alone")
    _fill_inbox_with_every_case(alone, tmp_path / "alone")
    monkeypatch.setattr(lookahead_mod, "AHEAD_BYTES", -1)  # nothing ahead: each file is checked in its turn
    alone.intake(expected_period="2025-01")
    together = build_world(tmp_path / "together")
    _fill_inbox_with_every_case(together, tmp_path / "together")
    monkeypatch.setattr(lookahead_mod, "AHEAD_BYTES", 1024**2)
    monkeypatch.setattr(lookahead_mod, "AHEAD_FILES", 3)  # three chunks, each checked while the one before is decided
    in_turn = []
    by_itself = lookahead_mod.Lookahead.check
    monkeypatch.setattr(lookahead_mod.Lookahead, "check", lambda self, one: in_turn.append(one) or by_itself(self, one))
    together.intake(expected_period="2025-01")
    assert in_turn == []  # every readable file was checked ahead
    assert _decisions(together) == _decisions(alone)
    assert together.count_rows("materials") == alone.count_rows("materials") == 2
    assert together.count_rows("living_wage") == alone.count_rows("living_wage")


def test_nothing_decrypted_reaches_the_disk_outside_the_store(world: World, tmp_path: Path):
    _fill_inbox_with_every_case(world, tmp_path)
    world.intake(expected_period="2025-01")
    assert world.count_rows("materials") == 2  # the marker value is stored (encrypted) ...
    for path in world.ws.root.rglob("*"):
        if path.is_file():
            assert PLAINTEXT_MARKER not in path.read_bytes(), path  # ... but readable nowhere


def _snapshot(world: World) -> tuple:
    files = sorted(
        (p.relative_to(world.ws.root).as_posix(), p.read_bytes())
        for p in world.ws.root.rglob("*")
        if p.is_file() and p.name != "store.duckdb" and not p.name.startswith(".")
    )
    return files, world.records()


def test_rerunning_on_an_empty_inbox_changes_nothing(world: World, tmp_path: Path):
    _fill_inbox_with_every_case(world, tmp_path)
    world.intake(expected_period="2025-01")
    before = _snapshot(world)
    report = world.intake(expected_period="2025-01")
    assert report.outcomes == []
    assert _snapshot(world) == before


def _interrupt_first_move(monkeypatch: pytest.MonkeyPatch) -> None:
    real = files_mod.file_away

    def crash_once(src: Path, dst: Path) -> None:
        monkeypatch.setattr(files_mod, "file_away", real)
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(files_mod, "file_away", crash_once)


@pytest.mark.parametrize("copy", [False, True], ids=["original", "exact-copy"])
def test_a_rerun_after_an_interruption_files_away_without_a_second_record(
    world: World, monkeypatch: pytest.MonkeyPatch, copy: bool
):
    sealed = world.seal(MATERIALS)
    if copy:  # first the original alone, then its copy is the file interrupted
        world.intake()
        shutil.copyfile(world.ws.root / world.record(sealed.name)["raw_path"], world.inbox / "copy.imvo")
    name = "copy.imvo" if copy else sealed.name
    _interrupt_first_move(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        world.intake()
    assert (world.inbox / name).exists()
    assert world.record(name)["state"] == ("duplicate" if copy else "accepted")
    receipt = world.ws.outbox_dir / "T001" / f"{world.record(sealed.name)['submission_id']}.receipt"
    if not copy:  # the receipt of the copy's bytes is the original's, written by the first intake
        receipt.unlink()  # lost with the interruption: the rerun writes it again

    outcome = only(world.intake())
    assert outcome.state == "already-received"
    assert outcome.reason.startswith("this file was processed before (")
    assert not (world.inbox / name).exists()
    assert (world.ws.root / world.record(name)["raw_path"]).is_file()
    assert len(world.records()) == (2 if copy else 1)
    assert world.count_rows("materials") == 2
    assert receipt.exists()


def test_an_interrupted_move_of_a_superseded_file_is_finished_by_the_next_run(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    world.seal(MATERIALS, name="first.imvo")
    world.intake()
    corrected = edited(tmp_path, MATERIALS, "1082606.4", "1082000.0")
    world.seal(corrected, created="2025-02-20T09:00:00Z", name="second.imvo")
    _interrupt_first_move(monkeypatch)  # the first move is the superseded file's
    with pytest.raises(KeyboardInterrupt):
        world.intake()
    assert len(world.received_files()["accepted"]) == 1  # the old file, still under accepted/
    world.intake()  # files away second.imvo and finishes moving first.imvo
    assert not list(world.inbox.iterdir())
    for record in world.records():
        assert record["raw_path"].startswith(f"received/{record['state']}/")
        assert (world.ws.root / record["raw_path"]).is_file()
    assert len(world.received_files()["superseded"]) == 1


def test_a_bad_clock_or_period_is_refused_before_anything_happens(world: World):
    world.seal(MATERIALS)
    with pytest.raises(AggregatorError, match="is not a UTC time"):
        world.intake(now="2025-02-28 09:00")
    with pytest.raises(AggregatorError, match="'2025-13' is not a reporting period"):
        world.intake(expected_period="2025-13")
    assert len(list(world.inbox.iterdir())) == 1
    assert world.records() == []
