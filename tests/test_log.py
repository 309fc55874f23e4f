import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import log
from aggregator.cli.secretariat import main
from aggregator.errors import AggregatorError
from aggregator.security import check_permissions
from aggregator.store import Store
from aggregator.workspace import create_workspace
from support.cli import json_result

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
NOW = "2026-11-01T09:00:00Z"
PROTOCOL = Path(__file__).parents[1] / "protocols" / "textile.toml"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "store.duckdb", KEY) as opened:
        yield opened


def fill(store: Store, n: int = 5) -> list[log.LogEntry]:
    return [log.append(store, "intake.decision", {"file": f"f{i}.imvo", "state": "accepted"}, NOW) for i in range(n)]


def test_entries_form_a_chain_with_the_documented_hash(store):
    first, second = fill(store, 2)
    body = {
        "action": "intake.decision",
        "actor": "secretariat",
        "details": {"file": "f0.imvo", "state": "accepted"},
        "prev_hash": "0" * 64,
        "seq": 1,
        "time": NOW,
    }
    expected = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert first.hash == expected
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert log.head(store) == log.LogHead(2, second.hash)
    assert log.verify_log(store) == []


def test_empty_log_verifies_and_has_the_genesis_head(store):
    assert log.verify_log(store) == []
    assert log.head(store) == log.LogHead(0, log.GENESIS_HASH)


def test_an_entry_written_in_a_rolled_back_transaction_disappears_with_it(store):
    fill(store, 1)
    with pytest.raises(RuntimeError), store.transaction() as con:
        log.append(con, "company.register", {"company_id": "T001"}, NOW)
        raise RuntimeError("the registration failed")
    assert log.head(store).count == 1
    assert log.verify_log(store) == []


def test_edited_details_are_named_by_entry(store):
    fill(store)
    store.con.execute(
        """UPDATE action_log SET details_json = '{"file":"f2.imvo","state":"quarantined"}' WHERE seq = 3"""
    )
    assert log.verify_log(store) == ["entry 3 (intake.decision) was changed after it was written"]


def test_edited_time_or_actor_is_detected(store):
    fill(store)
    store.con.execute("UPDATE action_log SET actor = 'someone else' WHERE seq = 2")
    store.con.execute("UPDATE action_log SET logged_at = '2020-01-01T00:00:00Z' WHERE seq = 4")
    problems = log.verify_log(store)
    assert any("entry 2 " in p for p in problems) and any("entry 4 " in p for p in problems)


def test_deleting_an_entry_in_the_middle_is_detected(store):
    fill(store)
    store.con.execute("DELETE FROM action_log WHERE seq = 3")
    problems = log.verify_log(store)
    assert "entries 3 to 3 are missing: they were deleted" in problems
    assert any(p.startswith("entry 4 does not follow entry 2") for p in problems)


def test_renumbering_after_a_deletion_is_still_detected(store):
    fill(store)
    store.con.execute("DELETE FROM action_log WHERE seq = 3")
    store.con.execute("UPDATE action_log SET seq = seq - 1 WHERE seq > 3")
    problems = log.verify_log(store)
    assert any("entry 3 " in p for p in problems)


def test_swapping_two_entries_is_detected(store):
    fill(store)
    store.con.execute(
        "UPDATE action_log SET seq = CASE seq WHEN 2 THEN 4 WHEN 4 THEN 2 ELSE seq END WHERE seq IN (2, 4)"
    )
    assert len(log.verify_log(store)) >= 2


def test_removing_the_newest_entries_needs_the_checkpoint(store, tmp_path):
    fill(store)
    key = log.checkpoint_key(KEY)
    log.write_checkpoint(tmp_path / "log_head.json", log.head(store), key, NOW)
    store.con.execute("DELETE FROM action_log WHERE seq >= 4")
    assert log.verify_log(store) == []  # the documented limit of the chain alone
    checkpoint = log.read_checkpoint(tmp_path / "log_head.json", key)
    problems = log.verify_log(store, checkpoint=checkpoint)
    assert problems == [
        "the checkpoint says the log had 5 entries, but it ends at entry 3: the newest entries were deleted "
        "or the store was replaced by an older copy"
    ]


def test_a_consistently_rewritten_chain_is_caught_by_an_anchor(store):
    fill(store)
    anchor = log.head(store)
    store.con.execute("DELETE FROM action_log")
    for i in range(5):  # an insider with the passphrase rebuilds a valid chain with other content
        log.append(store, "intake.decision", {"file": f"f{i}.imvo", "state": "quarantined"}, NOW)
    assert log.verify_log(store) == []
    assert log.verify_log(store, anchors=[anchor]) == [
        f"entry 5 is not the one the anchor 5:{anchor.hash[:12]} recorded: the log was rewritten"
    ]


def test_new_entries_after_a_checkpoint_are_fine(store, tmp_path):
    fill(store, 2)
    checkpoint = log.head(store)
    fill(store, 3)
    assert log.verify_log(store, checkpoint=checkpoint) == []


def test_an_altered_checkpoint_file_is_refused(store, tmp_path):
    fill(store)
    path, key = tmp_path / "log_head.json", log.checkpoint_key(KEY)
    log.write_checkpoint(path, log.head(store), key, NOW)
    assert os.stat(path).st_mode & 0o077 == 0
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "count": 2}))
    with pytest.raises(AggregatorError, match="was altered or belongs to another store"):
        log.read_checkpoint(path, key)
    log.write_checkpoint(path, log.head(store), key, NOW)
    with pytest.raises(AggregatorError, match="seal does not match"):
        log.read_checkpoint(path, log.checkpoint_key("ff" * 32))
    path.write_text("not json")
    with pytest.raises(AggregatorError, match="was altered"):
        log.read_checkpoint(path, key)


def test_missing_checkpoint_reads_as_none(tmp_path):
    assert log.read_checkpoint(tmp_path / "log_head.json", b"k" * 32) is None


@pytest.mark.parametrize(
    ("action", "details", "message"),
    [
        ("Intake Decision", {}, "is not a log action name"),
        ("intake.", {}, "is not a log action name"),
        ("batch.run", {"gap": float("nan")}, "no NaN"),
        ("batch.run", {"when": object()}, "must be plain JSON"),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_written(store, action, details, message):
    with pytest.raises(AggregatorError, match=message):
        log.append(store, action, details, NOW)
    assert log.head(store).count == 0


def test_show_filters_by_action_prefix_and_keeps_the_newest(store):
    log.append(store, "company.register", {"company_id": "T001"}, NOW)
    fill(store, 3)
    log.append(store, "company.revoke", {"company_id": "T001", "reason": "left"}, NOW)
    assert [e.seq for e in log.entries(store, action="company")] == [1, 5]
    assert [e.seq for e in log.entries(store, last=2)] == [4, 5]
    assert log.entries(store, action="comp") == []


def test_log_head_parses_what_it_prints():
    head = log.LogHead(7, "ab" * 32)
    assert log.LogHead.parse(str(head)) == head
    with pytest.raises(AggregatorError, match="is not a log head"):
        log.LogHead.parse("7:xyz")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=1, max_value=8),
    victim=st.integers(min_value=1, max_value=8),
    column=st.sampled_from(["logged_at", "actor", "action", "details_json", "prev_hash", "hash"]),
    text=st.text(alphabet="abcdef0123456789.:{}", min_size=1, max_size=20),
)
def test_any_single_field_change_is_detected(store, n, victim, column, text):
    store.con.execute("DELETE FROM action_log")
    fill(store, n)
    victim = min(victim, n)
    before = store.con.execute(f"SELECT {column} FROM action_log WHERE seq = ?", [victim]).fetchone()[0]
    if before == text:
        return
    store.con.execute(f"UPDATE action_log SET {column} = ? WHERE seq = ?", [text, victim])
    problems = log.verify_log(store)
    assert problems, f"a change of {column} in entry {victim} went unnoticed"


# ---------------------------------------------------------------- workspace level and CLI


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws") / "workspace"
    return create_workspace(root, PASSPHRASE, [PROTOCOL])


def reset(workspace, store) -> None:
    """The workspace is shared by the tests of this module: start each from an empty log and its checkpoint."""
    store.con.execute("DELETE FROM action_log")
    key = log.checkpoint_key(workspace.store_key())
    log.write_checkpoint(workspace.root / log.CHECKPOINT_NAME, log.head(store), key, NOW)


def test_checkpoint_moves_forward_and_refuses_to_hide_a_deletion(workspace):
    with workspace.open_store() as store:
        reset(workspace, store)
        fill(store, 3)
        assert log.save_checkpoint(workspace, store, NOW).count == 3
        fill(store, 1)
        assert log.save_checkpoint(workspace, store, NOW).count == 4
        store.con.execute("DELETE FROM action_log WHERE seq = 4")
        with pytest.raises(AggregatorError, match="checkpoint was not moved"):
            log.save_checkpoint(workspace, store, NOW)
    current, problems = log.verify_workspace_log(workspace)
    assert current.count == 3 and len(problems) == 1 and "had 4 entries" in problems[0]


def run_cli(workspace, *args):
    env = {"AGGREGATOR_PASSPHRASE": PASSPHRASE, "AGGREGATOR_WORKSPACE": str(workspace.root)}
    return CliRunner().invoke(main, list(args), env=env)


def test_cli_verify_prints_the_head_and_show_lists_entries(workspace):
    with workspace.open_store() as store:
        reset(workspace, store)
        log.append(store, "company.register", {"company_id": "T001"}, NOW)
        log.append(store, "company.revoke", {"company_id": "T001", "reason": "left the covenant"}, NOW)
        current = log.save_checkpoint(workspace, store, NOW)
        first = log.entries(store)[0]
    result = run_cli(workspace, "log", "verify", "--anchor", f"1:{first.hash}")
    assert result.exit_code == 0, result.output
    assert f"the action log is intact: 2 entries; head {current}" in result.output
    shown = run_cli(workspace, "log", "show", "--json", "--action", "company.revoke")
    assert [e["details"]["reason"] for e in json_result(shown)["entries"]] == ["left the covenant"]


def test_cli_verify_reports_problems_with_exit_code_1(workspace):
    with workspace.open_store() as store:
        reset(workspace, store)
        fill(store, 3)
        log.save_checkpoint(workspace, store, NOW)
        store.con.execute("UPDATE action_log SET actor = 'mallory' WHERE seq = 2")
    result = run_cli(workspace, "log", "verify")
    assert result.exit_code == 1
    assert "problem: entry 2 (intake.decision) was changed after it was written" in result.output
    bad_anchor = run_cli(workspace, "log", "verify", "--anchor", "nonsense")
    assert bad_anchor.exit_code == 2 and "is not a log head" in bad_anchor.output


# ---------------------------------------------------------------- permissions


def test_a_fresh_workspace_passes_the_permission_check_once_the_store_is_private(workspace):
    os.chmod(workspace.root / "store.duckdb", 0o600)
    assert check_permissions(workspace.root) == []


def test_readable_folder_and_key_are_reported_with_the_fix(workspace):
    key = workspace.keys_dir / "secretariat_signing.key"
    os.chmod(workspace.root, 0o755)
    os.chmod(key, 0o644)
    try:
        warnings = check_permissions(workspace.root)
    finally:
        os.chmod(workspace.root, 0o700)
        os.chmod(key, 0o600)
    assert (
        f"the folder {workspace.root} can be opened by other users (mode 755); run: chmod 700 {workspace.root}"
        in warnings
    )
    assert f"{key} can be read by other users (mode 644); run: chmod 600 {key}" in warnings
    assert check_permissions(workspace.root / "missing") == []


# ---------------------------------------------------------------- rollback (issue 22, item 4)


@pytest.fixture
def fresh(tmp_path):
    return create_workspace(tmp_path / "ws", PASSPHRASE, [PROTOCOL])


def cli(ws, *args):
    env = {"AGGREGATOR_PASSPHRASE": PASSPHRASE, "AGGREGATOR_WORKSPACE": str(ws.root), "AGGREGATOR_NOW": NOW}
    return CliRunner().invoke(main, list(args), env=env)


def add_company(ws, company="T001"):
    from aggregator.registry import Registry
    from imvo_submit.envelope import keys

    raw = keys.public_key_bytes(keys.generate_signing_key().public_key())
    with ws.session(NOW) as store:
        Registry(store).add(company, company, ["textile"], raw, now=NOW)


def checkpoint_count(ws) -> int:
    return log.read_checkpoint(ws.root / log.CHECKPOINT_NAME, log.checkpoint_key(ws.store_key())).count


def test_waivers_move_the_checkpoint(fresh):
    """`waivers add/revoke` changed the store without moving the checkpoint: their entries could be cut off."""
    add_company(fresh)
    for command in ("add", "revoke"):
        result = cli(fresh, "waivers", command, "T001", "--covenant", "textile")
        assert result.exit_code == 0, result.output
        with fresh.open_store() as store:
            assert checkpoint_count(fresh) == log.head(store).count
            assert log.entries(store)[-1].action == "waiver.set"


def test_a_rolled_back_store_with_its_checkpoint_deleted_is_refused_not_restarted(fresh):
    """Deleting log_head.json used to hide a rolled-back store: the next command wrote a fresh checkpoint and
    `log verify` said intact."""
    add_company(fresh)
    old_store = (fresh.root / "store.duckdb").read_bytes()
    assert cli(fresh, "waivers", "add", "T001", "--covenant", "textile").exit_code == 0
    (fresh.root / "store.duckdb").write_bytes(old_store)  # the waiver's entry is gone...
    (fresh.root / log.CHECKPOINT_NAME).unlink()  # ...and so is the checkpoint that would show it
    result = cli(fresh, "waivers", "add", "T001", "--covenant", "textile", "--scope", "materials_by_certification")
    assert result.exit_code == 2
    assert "error: the action log failed its check, so nothing was changed: the log checkpoint log_head.json is " \
        "missing although the log has entries" in result.output  # fmt: skip
    assert not (fresh.root / log.CHECKPOINT_NAME).exists()
    verified = cli(fresh, "log", "verify")
    assert verified.exit_code == 1 and "log_head.json is missing" in verified.output


def test_anchors_from_a_manifest_or_a_receipt_catch_a_rollback_the_insider_resealed(fresh, tmp_path):
    add_company(fresh)
    with fresh.open_store() as store:
        kept = log.head(store)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format": "imvo-release/1", "log_head": str(kept)}))
    receipt = tmp_path / "x.receipt"
    receipt.write_text(json.dumps({"format": "imvo-receipt", "receipt": {"log_head": str(kept)}}))
    assert log.read_anchor(str(manifest)) == log.read_anchor(str(receipt)) == kept
    assert cli(fresh, "log", "verify", "--anchor", str(manifest), "--anchor", str(receipt)).exit_code == 0
    with fresh.open_store() as store:  # an insider with the passphrase cuts the log and reseals the checkpoint
        store.con.execute("DELETE FROM action_log WHERE seq >= 2")
        log.write_checkpoint(
            fresh.root / log.CHECKPOINT_NAME, log.head(store), log.checkpoint_key(fresh.store_key()), NOW
        )
    result = cli(fresh, "log", "verify", "--anchor", str(manifest))
    assert result.exit_code == 1
    assert f"the anchor {kept.count}:{kept.hash[:12]} says the log had {kept.count} entries" in result.output
    nothing = tmp_path / "other.json"
    nothing.write_text("{}")
    assert "records no log head" in cli(fresh, "log", "verify", "--anchor", str(nothing)).output


def test_a_lost_checkpoint_is_replaced_only_against_an_anchor(fresh, tmp_path):
    add_company(fresh)
    with fresh.open_store() as store:
        kept = log.head(store)
    (fresh.root / log.CHECKPOINT_NAME).unlink()
    wrong = cli(fresh, "log", "reset-checkpoint", "--anchor", f"{kept.count}:{'0' * 64}")
    assert wrong.exit_code == 2 and "the checkpoint was not reset" in wrong.output
    assert not (fresh.root / log.CHECKPOINT_NAME).exists()
    done = cli(fresh, "log", "reset-checkpoint", "--anchor", str(kept))
    assert done.exit_code == 0, done.output
    with fresh.open_store() as store:
        assert log.entries(store)[-1].action == "log.checkpoint_reset"
        assert checkpoint_count(fresh) == log.head(store).count == kept.count + 1
    assert cli(fresh, "log", "verify").exit_code == 0
