"""No traceback, whatever the disk or the store does (issue 21, item 7).

Before: a full disk during intake or batch, and a damaged or truncated store, ended in a traceback, and
`log verify` called a store with damaged blocks "intact". Now each is an `error:` and a `hint:` line with exit
code 1 (an environment problem, not the clerk's mistake), nothing is lost, and a rerun after the fix finishes.
"""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb
import pytest

from aggregator.errors import StoreDamaged
from aggregator.intake import files as files_mod
from aggregator.intake import recording as recording_mod
from support.intake_world import LIVING_WAGE, MATERIALS, World, build_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    built = build_world(tmp_path)
    built.seal(MATERIALS, name="a.imvo")
    built.seal(LIVING_WAGE, template="living_wage", name="b.imvo")
    return built


# ---------------------------------------------------------------- a full disk


def test_a_full_disk_while_the_intake_commits_is_an_error_and_loses_nothing(world: World, monkeypatch):
    def disk_full(*args, **kwargs):
        raise duckdb.IOException('IO Error: Could not write file "store.duckdb.wal": No space left on device')

    monkeypatch.setattr(recording_mod, "commit", disk_full)
    done = world.cli("intake", str(world.inbox))
    assert done.exit_code == 1
    assert done.stderr.startswith("error: the disk is full: nothing more could be written\nhint: free space")
    assert sorted(p.name for p in world.inbox.iterdir()) == ["a.imvo", "b.imvo"] and world.records() == []
    monkeypatch.undo()
    assert world.cli("intake", str(world.inbox)).exit_code == 0
    assert [r["state"] for r in world.records()] == ["accepted", "accepted"]


def test_a_full_disk_while_receipts_are_written_is_finished_by_the_next_run(world: World, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "outbox/T001/x.receipt")

    monkeypatch.setattr(files_mod, "write_receipt", disk_full)
    done = world.cli("intake", str(world.inbox))
    assert done.exit_code == 1 and done.stderr.startswith("error: the disk is full")
    assert "Traceback" not in done.stderr
    monkeypatch.undo()
    again = world.cli("intake", str(world.inbox))
    assert again.exit_code == 0 and "2 already-received" in again.output
    assert not list(world.inbox.iterdir())
    assert len(list(world.ws.outbox_dir.rglob("*.receipt"))) == 2


def test_a_full_disk_while_a_batch_writes_is_an_error(world: World, monkeypatch, tmp_path: Path):
    from aggregator import batch

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch, "run_batch", disk_full)
    done = world.cli("batch", "textile", "2025-01", "--out", str(tmp_path / "out"))
    assert done.exit_code == 1 and done.stderr.startswith("error: the disk is full")


# ---------------------------------------------------------------- a damaged store


def _store(world: World) -> Path:
    world.intake()
    return world.ws.root / "store.duckdb"


def _block_of(world: World, table: str) -> tuple[int, int]:
    """(first byte, length) of the block holding the table's first column segment."""
    with world.ws.open_store() as store:
        (block,) = store.con.execute(
            f"SELECT min(block_id) FROM pragma_storage_info('{table}') WHERE persistent"
        ).fetchone()
        (size,) = store.con.execute(
            "SELECT block_size FROM pragma_database_size() WHERE database_name = 'store'"
        ).fetchone()
    return 3 * 4096 + block * size, size


@pytest.mark.parametrize("cut", ["half", "headers only", "empty"])
def test_a_cut_off_store_is_refused_at_open_by_every_command(world: World, cut: str):
    store = _store(world)
    data = store.read_bytes()
    store.write_bytes({"half": data[: len(data) // 2], "headers only": data[:12288], "empty": b""}[cut])
    for args in (["status", "2025-01"], ["intake", str(world.inbox)], ["log", "verify"]):
        done = world.cli(*args)
        assert done.exit_code == 1, (args, done.output)
        assert done.stderr.startswith(f"error: the store {store} is "), done.stderr
        assert "hint: restore store.duckdb" in done.stderr


def test_a_damaged_block_of_a_table_fails_log_verify(world: World):
    store = _store(world)
    start, size = _block_of(world, "submissions")
    data = bytearray(store.read_bytes())
    for at in range(start + size // 3, start + size // 3 + 32):
        data[at] ^= 0xFF
    store.write_bytes(bytes(data))
    verified = world.cli("log", "verify")
    assert verified.exit_code == 1
    assert "problem: the store is damaged: table submissions cannot be read in full" in verified.output
    status = world.cli("status", "2025-01")  # a command that meets the damaged block says so, plainly
    assert status.exit_code == 0 or status.stderr.startswith("error: the store is damaged and cannot be read")


def test_opening_a_damaged_store_raises_store_damaged(world: World):
    store = _store(world)
    store.write_bytes(store.read_bytes()[:4096])
    with pytest.raises(StoreDamaged, match="is damaged and cannot be read"):
        world.ws.open_store()


def test_a_wrong_passphrase_is_still_called_a_wrong_passphrase(world: World):
    from aggregator.workspace import WrongWorkspacePassphrase, open_workspace

    _store(world)
    with pytest.raises(WrongWorkspacePassphrase):
        open_workspace(world.ws.root, "another passphrase entirely").open_store()
