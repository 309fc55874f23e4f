"""Operator mistakes at intake (issue 21, item 6): none moves a file it should not, reads what it should not,
or loses a file for good.

Before: `aggregator intake <workspace>` moved store.duckdb and workspace.toml into quarantine; a wrong --period
quarantined valid files for good (a rerun said "already received"); a sealing time in 2099 was accepted and
outranked every later correction; escape codes in a file name reached the terminal; symlinks were followed;
dotfiles and subfolders were skipped silently; the registry took Cyrillic and full-width ids that envelopes
refuse.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aggregator import log as action_log
from aggregator.errors import AggregatorError
from aggregator.intake import files as files_mod
from aggregator.intake import redecide, run_intake
from aggregator.registry import Registry
from support.cli import json_error, json_result
from support.intake_world import LIVING_WAGE, MATERIALS, NOW, World, build_world, edited, only


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- the workspace is never an inbox


@pytest.mark.parametrize("where", [".", "received/accepted", "outbox", "..", "keys/.."])
def test_an_inbox_that_is_inside_or_holds_the_workspace_is_refused_and_nothing_moves(world: World, where: str):
    world.seal(MATERIALS)
    world.intake()
    folder = world.ws.root / where
    before = tree(world.ws.root.parent)
    result = world.cli("intake", str(folder))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: the inbox {folder} ")
    assert "the workspace" in result.stderr and "nothing was touched" in result.stderr
    assert "hint: give the folder the sealed .imvo files were saved to, outside the workspace" in result.stderr
    assert tree(world.ws.root.parent) == before


def test_the_library_refuses_the_workspace_as_inbox_too(world: World):
    with pytest.raises(AggregatorError, match="is the workspace"):
        run_intake(world.ws, world.ws.root, now=NOW)
    assert (world.ws.root / "store.duckdb").is_file() and (world.ws.root / "workspace.toml").is_file()


# ---------------------------------------------------------------- what the intake does not read


def test_a_symlink_is_never_followed_and_is_reported(world: World, tmp_path: Path):
    outside = tmp_path / "secret.imvo"
    world.seal(MATERIALS, name="real.imvo")
    outside.write_bytes((world.inbox / "real.imvo").read_bytes())
    (world.inbox / "link.imvo").symlink_to(outside)
    (world.inbox / "dangling.imvo").symlink_to(tmp_path / "nowhere")
    report = world.intake()
    assert [o.file for o in report.outcomes] == ["real.imvo"]
    assert {(s.name, s.kind) for s in report.skipped} == {("link.imvo", "link"), ("dangling.imvo", "link")}
    assert report.has_problems
    assert outside.read_bytes() and (world.inbox / "link.imvo").is_symlink()  # left where they were
    assert [r["original_name"] for r in world.records()] == ["real.imvo"]


def test_hidden_files_folders_and_special_files_are_reported_not_silently_skipped(world: World):
    world.seal(MATERIALS, name="a.imvo")
    (world.inbox / ".DS_Store").write_bytes(b"\x00\x01")
    (world.inbox / "march").mkdir()
    world.seal(LIVING_WAGE, template="living_wage", name="march/b.imvo")
    os.mkfifo(world.inbox / "pipe")
    report = world.intake()
    assert [o.file for o in report.outcomes] == ["a.imvo"]
    kinds = {s.name: s.kind for s in report.skipped}
    assert kinds == {".DS_Store": "hidden", "march": "folder", "pipe": "special"}
    assert (world.inbox / "march" / "b.imvo").is_file()
    result = world.cli("intake", str(world.inbox))
    lines = result.output.splitlines()
    assert "skipped: .DS_Store: a hidden file: not read" in "\n".join(lines)
    assert any(line.startswith("skipped: march: a folder: files inside folders are not read") for line in lines)
    assert result.exit_code == 1  # a folder may hold submissions: a problem to look at


def test_hidden_files_alone_are_no_problem(world: World):
    world.seal(MATERIALS)
    (world.inbox / ".DS_Store").write_bytes(b"x")
    report = world.intake()
    assert not report.has_problems and [s.kind for s in report.skipped] == ["hidden"]


def test_an_unreadable_file_is_left_in_the_inbox_and_reported(world: World):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    sealed = world.seal(MATERIALS)
    sealed.chmod(0)
    report = world.intake()
    assert report.outcomes == [] and [s.kind for s in report.skipped] == ["unreadable"]
    assert sealed.exists()


# ---------------------------------------------------------------- names reach the terminal escaped


def test_escape_codes_in_a_file_name_never_reach_the_terminal(world: World):
    name = "evil\x1b]0;owned\x07\x1b[2J\u202etxt.imvo"
    world.seal(MATERIALS, name=name)
    result = world.cli("intake", str(world.inbox))
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\x07" not in result.output and "\u202e" not in result.output
    assert "evil\\x1b]0;owned\\x07\\x1b[2J\\u202etxt.imvo" in result.output
    status = world.cli("status", "2025-01", "--json")
    assert "\x1b" not in status.output and "\\u001b" in status.output
    (row,) = [r for r in json_result(status)["rows"] if r["state"] == "accepted"]
    assert row["file"] == name  # the JSON decodes to the exact name


# ---------------------------------------------------------------- sealing times from a wrong clock


def test_a_sealing_time_in_the_future_is_quarantined_and_blocks_no_correction(world: World, tmp_path: Path):
    world.seal(MATERIALS, created="2099-01-01T00:00:00Z", name="from_2099.imvo")
    outcome = only(world.intake())
    assert outcome.state == "quarantined" and outcome.category == "clock"
    assert outcome.reason.startswith("the file says it was sealed at 2099-01-01T00:00:00Z, more than 10 minutes")
    corrected = edited(tmp_path, MATERIALS, "1082606.4", "1082000.0")
    world.seal(corrected, created="2025-02-27T09:00:00Z", name="correction.imvo")
    assert only(world.intake()).state == "accepted"


def test_a_sealing_time_a_few_minutes_ahead_is_clock_skew_and_accepted(world: World):
    world.seal(MATERIALS, created="2025-02-28T09:09:59Z")
    assert only(world.intake(now=NOW)).state == "accepted"


# ---------------------------------------------------------------- deciding quarantined files again


def _wrong_period(world: World) -> None:
    world.seal(MATERIALS, name="t1.imvo")
    world.seal(MATERIALS, company="T002", name="t2.imvo")
    report = world.intake(expected_period="2024-12")  # meant 2025-01
    assert [o.state for o in report.outcomes] == ["quarantined", "quarantined"]
    assert world.intake(expected_period="2025-01").outcomes == []  # a rerun finds nothing left to decide


def test_files_quarantined_by_a_wrong_period_are_decided_again_and_logged(world: World):
    _wrong_period(world)
    report = redecide(world.ws, now=NOW, period="2025-01", expected_period="2025-01")
    assert [(o.file, o.state, o.category) for o in report.outcomes] == [
        ("t1.imvo", "accepted", "valid"),
        ("t2.imvo", "accepted", "valid"),
    ]
    assert world.count_rows("materials") == 4
    records = world.records()
    assert [r["state"] for r in records] == ["accepted", "accepted"]
    for record in records:  # one record, one file, in the folder its state names
        assert record["raw_path"].startswith("received/accepted/") and (world.ws.root / record["raw_path"]).is_file()
    assert world.received_files()["quarantined"] == []
    with world.ws.open_store() as store:
        logged = action_log.entries(store, action="intake.redecision")
    assert [(e.details["previous_state"], e.details["state"]) for e in logged] == [("quarantined", "accepted")] * 2
    assert "this intake is for 2024-12" in logged[0].details["previous_reason"]


def test_a_redecided_file_gets_a_new_receipt_for_its_new_state(world: World):
    from imvo_submit import envelope

    _wrong_period(world)
    (receipt_before,) = [p for p in (world.ws.outbox_dir / "T001").iterdir()]
    assert envelope.verify_receipt(receipt_before.read_bytes(), world.signing_public_key())["state"] == "quarantined"
    redecide(world.ws, now=NOW, names=["t1.imvo"])
    receipt = envelope.verify_receipt(receipt_before.read_bytes(), world.signing_public_key())
    assert (receipt["state"], receipt["reason_category"], receipt["received_at"]) == ("accepted", "valid", NOW)


def test_redecide_from_the_command_line_by_name_and_by_submission_id(world: World):
    _wrong_period(world)
    result = world.cli("intake", "--redecide", "t1.imvo", "--period", "2025-01")
    assert result.exit_code == 0, result.output
    assert "t1.imvo\tT001\tmaterials\t2025-01\taccepted\tvalid" in result.output
    t2 = world.record("t2.imvo")["submission_id"]
    again = world.cli("intake", "--redecide", t2[:12], "--json")
    assert [f["state"] for f in json_result(again)["files"]] == ["accepted"]
    assert world.received_files()["quarantined"] == []


def test_a_file_still_invalid_stays_quarantined_with_the_new_reason(world: World, tmp_path: Path):
    broken = edited(tmp_path, LIVING_WAGE, "BD,17175,", "BD,-17175,")
    world.seal(broken, template="living_wage", check=False, name="bad.imvo")
    first = only(world.intake())
    assert first.category == "content"
    again = only(redecide(world.ws, now=NOW, names=["bad.imvo"]))
    assert (again.state, again.category, again.reason) == ("quarantined", "content", first.reason)
    assert len(world.received_files()["quarantined"]) == 1 and len(world.records()) == 1


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["nope.imvo"], "no quarantined file is named 'nope.imvo'"),
        (["good.imvo"], "'good.imvo' is not quarantined (it is accepted); only quarantined files are decided again"),
        (["same.imvo"], "'same.imvo' names 2 quarantined files (submissions "),
        ([], "name the quarantined files to decide again, or a period"),
    ],
)
def test_redecide_mistakes_are_refused_before_anything_changes(world: World, names, message):
    world.seal(MATERIALS, name="good.imvo")
    world.intake()
    world.seal(MATERIALS, company="T002", name="same.imvo")
    world.intake(expected_period="2024-12")
    world.seal(LIVING_WAGE, company="T002", template="living_wage", name="same.imvo")
    world.intake(expected_period="2024-12")
    before = (world.records(), tree(world.ws.root / "received"))
    with pytest.raises(AggregatorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        redecide(world.ws, now=NOW, names=names)
    assert (world.records(), tree(world.ws.root / "received")) == before


def test_redecide_cli_needs_either_an_inbox_or_files_to_redecide(world: World):
    both = world.cli("intake", str(world.inbox), "--redecide", "x.imvo")
    assert both.exit_code == 2 and "not both" in both.stderr
    neither = world.cli("intake")
    assert neither.exit_code == 2 and "give the INBOX folder to take in" in neither.stderr


def test_a_redecision_interrupted_before_the_move_is_finished_by_the_next_command(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    _wrong_period(world)
    real = files_mod.file_away

    def power_cut(src: Path, dst: Path) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(files_mod, "file_away", power_cut)
    with pytest.raises(KeyboardInterrupt):
        redecide(world.ws, now=NOW, names=["t1.imvo"])
    monkeypatch.setattr(files_mod, "file_away", real)
    assert world.record("t1.imvo")["state"] == "accepted"  # committed ...
    assert len(world.received_files()["quarantined"]) == 2  # ... but not moved yet
    world.intake()  # any later session finishes the move
    for record in world.records():
        assert (world.ws.root / record["raw_path"]).is_file()
    assert len(world.received_files()["quarantined"]) == 1 and len(world.received_files()["accepted"]) == 1


# ---------------------------------------------------------------- the registry takes only ids envelopes take


@pytest.mark.parametrize("company_id", ["Т001", "ＴＯＯ１", "T00１", "T001\u200b", "-T001", "T.001"])
def test_the_registry_refuses_ids_an_envelope_would_refuse(world: World, company_id: str):
    from imvo_submit.envelope import keys

    raw = keys.public_key_bytes(keys.generate_signing_key().public_key())
    with world.ws.open_store() as store, pytest.raises(AggregatorError, match="is not a valid company id"):
        Registry(store).add(company_id, "Lookalike BV", ["textile"], raw, now=NOW)


def test_a_lookalike_id_is_named_in_the_message(world: World, tmp_path: Path):
    from imvo_submit.envelope import keys

    pub = tmp_path / "x.pub"
    keys.save_public_key(keys.generate_signing_key().public_key(), pub)
    result = world.cli("companies", "add", "Т001", "--name", "x", "--covenant", "textile", "--key", str(pub), "--json")
    assert result.exit_code == 2
    error = json_error(result)
    assert "'Т' (U+0422 CYRILLIC CAPITAL LETTER TE) is not a plain letter or digit" in error["message"]


def test_a_redecided_file_is_named_as_it_arrived_in_its_new_reason(world: World):
    sealed = world.seal(MATERIALS, name="flipped.imvo")
    data = bytearray(sealed.read_bytes())
    data[-100] ^= 1
    sealed.write_bytes(bytes(data))
    world.intake()
    again = only(redecide(world.ws, now=NOW, names=["flipped.imvo"]))
    assert again.state == "quarantined" and again.reason.startswith("flipped.imvo: ")
