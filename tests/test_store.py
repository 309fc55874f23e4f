from pathlib import Path

import duckdb
import pytest

from aggregator import log as action_log
from aggregator.errors import AggregatorError
from aggregator.store import Store, rows_table

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
NOW = "2025-02-28T09:00:00Z"


def test_store_is_unreadable_without_its_key(tmp_path: Path):
    path = tmp_path / "store.duckdb"
    with Store(path, KEY) as store:
        store.con.execute(
            "INSERT INTO companies VALUES ('T042', 'Secret Garments BV', 'T042', ['textile'], 'active', NULL, 'x')"
        )
        store.con.execute("CHECKPOINT")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"Secret Garments" not in raw
    with pytest.raises(AggregatorError, match="cannot open the store"):
        Store(path, "ff" * 32)
    with Store(path, KEY) as store:
        assert store.con.execute("SELECT name FROM companies").fetchall() == [("Secret Garments BV",)]


def test_rows_table_names_refuse_anything_but_identifiers():
    assert rows_table("textile", "living_wage") == "rows_textile_living_wage"
    with pytest.raises(AggregatorError, match="not a valid table or column name"):
        rows_table("textile", "x; DROP TABLE companies")


def test_log_entries_appended_together_chain_exactly_as_one_by_one(tmp_path: Path):
    # intake records a whole transaction's decisions with one append_many; the chain must not tell the difference
    actions = [("intake.decision", {"file": f"f{i}.imvo", "state": "accepted"}) for i in range(5)]
    with Store(tmp_path / "one.duckdb", None) as one, Store(tmp_path / "many.duckdb", None) as many:
        action_log.append(one, "company.register", {"company": "T001"}, NOW)
        action_log.append(many, "company.register", {"company": "T001"}, NOW)
        for action, details in actions:
            action_log.append(one, action, details, NOW)
        written = action_log.append_many(many, actions, NOW)
        assert [e.seq for e in written] == [2, 3, 4, 5, 6]
        assert action_log.entries(one) == action_log.entries(many)
        assert action_log.verify_log(many) == []
        assert action_log.append_many(many, [], NOW) == []
        with pytest.raises(AggregatorError, match="not a log action name"):
            action_log.append_many(many, [("intake.decision", {}), ("Bad Name", {})], NOW)
        assert action_log.head(many).count == 6  # a bad entry writes none of the batch


def test_a_store_from_before_envelope_format_2_gets_its_content_hash_column_renamed(tmp_path: Path):
    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    old.execute("CREATE TABLE submissions (submission_id VARCHAR PRIMARY KEY, plaintext_sha256 VARCHAR)")
    old.execute("INSERT INTO submissions VALUES ('s1', ?)", ["ab" * 32])
    old.close()
    with Store(path, None) as store:
        assert store.con.execute("SELECT plaintext_blake3 FROM submissions").fetchall() == [("ab" * 32,)]
    with Store(path, None) as store:  # opening again changes nothing
        assert store.con.execute("SELECT count(*) FROM submissions").fetchone() == (1,)


def test_store_queries_print_nothing_even_when_they_run_long(tmp_path: Path, capfd):
    # DuckDB draws a progress bar on stdout for queries over 2 s (10,000 companies), which would corrupt the
    # CLI's --json output. progress_bar_time = 0 makes any query "long".
    query = "SELECT count(*) FROM range(50000000) t(i) WHERE i % 7 = 3"
    plain = duckdb.connect()
    plain.execute("SET progress_bar_time = 0")
    plain.execute(query).fetchall()
    assert "%" in capfd.readouterr().out  # a plain connection draws its bar: the check below can fail
    with Store(tmp_path / "store.duckdb", "ab" * 32) as store:
        store.con.execute("SET progress_bar_time = 0")
        store.con.execute(query).fetchall()
    assert capfd.readouterr().out == ""
