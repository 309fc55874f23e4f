from pathlib import Path

import pytest

from aggregator.errors import AggregatorError
from aggregator.store import Store, rows_table

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


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
