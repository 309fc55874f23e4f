"""The secretariat's store: one DuckDB database per workspace, encrypted at rest.

Everything that must survive a run lives here: the company registry, every submission's state, the validated
rows per template, waivers, overrides and the release ledger. Table and column names of the row tables come from
the rules files (checked identifiers), never from submissions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from .errors import AggregatorError, StoreDamaged

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# DuckDB's file: three 4 KiB headers, then the blocks its metadata lists (storage format of DuckDB 1.x).
FILE_HEADERS_BYTES = 3 * 4096
# How DuckDB words a store that is damaged, cut off or not a database at all (as opposed to a wrong key).
DAMAGE_SIGNS = (
    "not a valid duckdb database file",
    "could not read enough bytes",
    "corrupt database file",
    "checksum",
    "aes tag",
    "failed to deserialize",
    "serialization error",
)
INDEX_PROBES = 2000  # keys looked up through each primary key's index by Store.unreadable_parts
RESTORE_HINT = (
    "restore store.duckdb (and store.duckdb.wal, if there is one) from the latest backup, then run "
    "`aggregator log verify --anchor` with your newest release manifest or receipt; sealed files received since "
    "that backup are kept in received/: put them back in an inbox and run the intake again"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS companies (
    company_id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    group_id VARCHAR NOT NULL,
    covenants VARCHAR[] NOT NULL,
    status VARCHAR NOT NULL,            -- active | revoked
    status_reason VARCHAR,
    registered_at VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS company_keys (
    company_id VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    public_key BLOB NOT NULL,
    valid_from VARCHAR NOT NULL,
    retired_at VARCHAR,                 -- set when the key is rotated out or the company revoked
    PRIMARY KEY (company_id, fingerprint)
);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id VARCHAR PRIMARY KEY,  -- sha256 of the sealed file as received
    company_id VARCHAR,
    covenant VARCHAR,
    template VARCHAR,
    period VARCHAR,
    sealed_at VARCHAR,
    received_at VARCHAR NOT NULL,
    original_name VARCHAR NOT NULL,
    state VARCHAR NOT NULL,             -- accepted | duplicate | superseded | quarantined
    reason VARCHAR NOT NULL,
    plaintext_blake3 VARCHAR,           -- BLAKE3-256 of the decrypted content (envelope header)
    raw_path VARCHAR NOT NULL,
    report_json VARCHAR,
    warnings_json VARCHAR,
    superseded_by VARCHAR,
    receipt BLOB,
    reason_category VARCHAR             -- the reason in one word (imvo_submit.states.Reason), as in the receipt
);
CREATE TABLE IF NOT EXISTS waivers (
    company_id VARCHAR NOT NULL,
    covenant VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,             -- a table id, or '*' for every table
    granted_at VARCHAR NOT NULL,
    revoked_at VARCHAR
);
CREATE TABLE IF NOT EXISTS overrides (
    covenant VARCHAR NOT NULL,
    table_id VARCHAR NOT NULL,
    cell_key VARCHAR NOT NULL,
    action VARCHAR NOT NULL,            -- unsafe | safe
    reason VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    release_id VARCHAR PRIMARY KEY,
    covenant VARCHAR NOT NULL,
    protocol_version VARCHAR NOT NULL,
    protocol_sha256 VARCHAR NOT NULL,
    period VARCHAR NOT NULL,
    audience VARCHAR NOT NULL,
    released_at VARCHAR NOT NULL,
    is_revision BOOLEAN NOT NULL,
    tables VARCHAR[] NOT NULL,
    manifest_json VARCHAR NOT NULL,
    audit_json VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS released_cells (
    release_id VARCHAR NOT NULL,
    table_id VARCHAR NOT NULL,
    component VARCHAR NOT NULL,
    cell_key VARCHAR NOT NULL,
    value DOUBLE,
    status VARCHAR NOT NULL             -- published | primary | secondary
);
CREATE TABLE IF NOT EXISTS ledger_cells (  -- each release's snapshot: aggregator/history/ledger.py
    release_id VARCHAR NOT NULL,
    cell INTEGER NOT NULL,              -- position in the release's protection problem
    cell_key VARCHAR NOT NULL,
    base_key VARCHAR NOT NULL,          -- the key of one month's cell (cumulative marker left out)
    table_id VARCHAR NOT NULL,
    span VARCHAR NOT NULL,              -- months the cell covers, comma-separated
    additive BOOLEAN NOT NULL,          -- a sum over months equals the cumulative cell
    value DOUBLE NOT NULL,              -- the true value, also of hidden cells (the store is encrypted)
    lo_bound DOUBLE NOT NULL,
    hi_bound DOUBLE NOT NULL,
    upl DOUBLE NOT NULL,
    lpl DOUBLE NOT NULL,
    is_primary BOOLEAN NOT NULL,
    hidden BOOLEAN NOT NULL,
    PRIMARY KEY (release_id, cell)
);
CREATE TABLE IF NOT EXISTS ledger_relations (
    release_id VARCHAR NOT NULL,
    relation INTEGER NOT NULL,
    total INTEGER NOT NULL,
    part INTEGER                        -- one row per part; NULL for a relation without parts
);
CREATE TABLE IF NOT EXISTS ledger_contributions (
    release_id VARCHAR NOT NULL,
    contributor VARCHAR NOT NULL,
    cell INTEGER NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS action_log (  -- hash-chained, append-only by convention: aggregator/log.py
    seq BIGINT PRIMARY KEY,
    logged_at VARCHAR NOT NULL,
    actor VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    details_json VARCHAR NOT NULL,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
);
"""


def checked_identifier(name: str) -> str:
    """Return `name` if it is safe to use as an SQL identifier; the rules loader guarantees it for valid files."""
    if not IDENTIFIER.match(name):
        raise AggregatorError(f"'{name}' is not a valid table or column name (use lower case, digits and _)")
    return name


def rows_table(covenant: str, template: str) -> str:
    return f"rows_{checked_identifier(covenant)}_{checked_identifier(template)}"


@dataclass(frozen=True)
class RowSource:
    """Where aggregation reads: per template, a relation of the rows that count (company_id, period and the
    template's columns), and one relation of every company with its group (company_id, group_id).

    The store gives views over its own tables (`row_source`); standalone protection registers its input file
    under these names. Aggregation never reads the intake's tables itself."""

    con: duckdb.DuckDBPyConnection
    rows: Mapping[str, str]  # template -> relation
    companies: str
    # template -> the table the relation reads, when that is cheaper to scan (a hint for sizing sums only)
    stored: Mapping[str, str] = field(default_factory=dict)

    def rows_of(self, template: str) -> str | None:
        """The relation of the template's rows, or None when nothing was ever accepted for it."""
        return self.rows.get(template)

    def stored_of(self, template: str) -> str | None:
        """The stored table behind the template's rows: every row ever stored, whatever its file's state."""
        return self.stored.get(template, self.rows.get(template))


def row_source(con: duckdb.DuckDBPyConnection, covenant: str, *, carry_forward: bool = False) -> RowSource:
    """Views over a store's tables (on `con`, which holds them): the rows of accepted submissions of each of
    the covenant's templates, and the companies with their groups. Temporary: nothing is written.

    `carry_forward` (the protocol's non_response = "carry_forward"): an active company without an accepted
    file of a template for a month in which others have one counts with the rows of its latest earlier
    accepted file of that template, as if it had sent them again."""
    rows, tables = {}, _rows_tables(con, covenant)
    for template, table in tables.items():
        view = checked_identifier(f"accepted_{table}")
        accepted = _accepted_sql(table)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {_carried(table) if carry_forward else accepted}")
        rows[template] = view
    con.execute("CREATE OR REPLACE TEMP VIEW contributor_groups AS SELECT company_id, group_id FROM companies")
    return RowSource(con, rows, "contributor_groups", tables)


def is_damage(exc: BaseException) -> bool:
    """True when DuckDB's error says the store's bytes are damaged or missing (not a wrong key or a busy file)."""
    text = str(exc).lower()
    return any(sign in text for sign in DAMAGE_SIGNS)


def damaged(path: Path, exc: BaseException) -> StoreDamaged:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreDamaged(f"the store {path} is damaged and cannot be read ({first}); nothing was changed", RESTORE_HINT)


def _carried(table: str) -> str:
    """The accepted rows plus, for every month with accepted rows and every active company without any in that
    month, the rows of the company's latest earlier month, relabelled to the month (_carried_forward_sql).

    The accepted rows are written out twice rather than shared as a CTE: DuckDB then reads only the columns
    a query needs from each (a shared CTE materialised every column of every row: three times slower)."""
    accepted = _accepted_sql(table)
    return f"WITH {_carried_forward_sql(table)} SELECT * FROM ({accepted}) UNION ALL BY NAME " + (
        f"SELECT a.* REPLACE (c.target AS period) FROM ({accepted}) a JOIN carried c "
        "ON a.company_id = c.company_id AND a.period = c.source"
    )


def _carried_forward_sql(table: str) -> str:
    """Per month and active company missing that month among the template's accepted rows, its latest earlier
    month with rows (target, company_id, source).

    Who filed when is read from the accepted submissions with rows in the table, whose company and period
    the rows carry: a DISTINCT over a few thousand submissions instead of over every row."""
    filed = (
        "SELECT DISTINCT company_id, period FROM submissions WHERE state = 'accepted' "
        f"AND submission_id IN (SELECT submission_id FROM {checked_identifier(table)})"
    )
    return (
        f"filed AS ({filed}), "
        "months AS (SELECT DISTINCT period FROM filed), "
        "carried AS (SELECT m.period AS target, f.company_id, max(f.period) AS source "
        "FROM months m JOIN filed f ON f.period < m.period "
        "JOIN companies k ON k.company_id = f.company_id AND k.status = 'active' "
        "WHERE NOT EXISTS (SELECT 1 FROM filed g WHERE g.company_id = f.company_id AND g.period = m.period) "
        "GROUP BY ALL)"
    )


def carried_forward(con: duckdb.DuckDBPyConnection, covenant: str, periods: list[str]) -> dict[str, int]:
    """Per template of the covenant, how many (company, month) figures of these months a carry-forward
    source fills in from an earlier month (templates without any left out)."""
    counts = {}
    for template, table in _rows_tables(con, covenant).items():
        sql = f"WITH {_carried_forward_sql(table)} SELECT count(*) FROM carried "
        (count,) = con.execute(sql + "WHERE list_contains(?, target)", [list(periods)]).fetchone()
        if count:
            counts[template] = int(count)
    return counts


def _rows_tables(con: duckdb.DuckDBPyConnection, covenant: str) -> dict[str, str]:
    """template -> the store's rows table of the covenant's template, for every template with one."""
    prefix = f"rows_{checked_identifier(covenant)}_"
    names = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND starts_with(table_name, ?) ORDER BY 1",
        [prefix],
    ).fetchall()
    return {name[len(prefix) :]: name for (name,) in names}


def _accepted_sql(table: str) -> str:
    return (
        f"SELECT r.* FROM {checked_identifier(table)} r "
        "WHERE r.submission_id IN (SELECT submission_id FROM submissions WHERE state = 'accepted')"
    )


def _quoted(path: Path) -> str:
    """An SQL string literal for a path of ours (ATTACH and SET take no bind parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def _hex(key: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", key):
        raise AggregatorError("internal: the store key must be 64 hex characters")
    return key


def _httpfs_extension_path() -> str:
    import duckdb_extension_httpfs

    ext_dir = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    found = sorted(ext_dir.glob("*/httpfs.duckdb_extension"))
    if not found:
        raise AggregatorError(
            "the DuckDB httpfs extension that encryption needs is missing",
            hint="reinstall the project: make clean && make demo",
        )
    return str(found[-1])


def quiet_connection() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that never prints: its progress bar (queries over 2 s, e.g. at 10,000 companies)
    goes to stdout, where it would corrupt `--json` output."""
    con = duckdb.connect(config={"threads": 2})
    con.execute("SET enable_progress_bar = false")
    con.execute("SET enable_progress_bar_print = false")
    return con


class Store:
    """An open store. Use as a context manager; `con` is the DuckDB connection with the store attached as default."""

    def __init__(self, path: Path, encryption_key: str | None):
        self.path = Path(path)
        self.con = quiet_connection()
        if encryption_key is not None:
            # The built-in crypto fallback is read-only; httpfs provides the OpenSSL module that can write.
            self.con.execute(f"LOAD '{_httpfs_extension_path()}'")
            self.con.execute("SET temp_file_encryption = true")
        # Spill files go next to the store (encrypted above), not into whatever folder the user started in.
        self.con.execute(f"SET temp_directory = {_quoted(self.path.parent / '.duckdb_tmp')}")
        logged = self.path.with_name(self.path.name + ".wal").exists()  # replayed at ATTACH, not yet in the file
        self._attach(encryption_key)
        try:
            if not logged:
                self._check_complete()
            self._rename_legacy_columns()
            self.con.execute(SCHEMA)
            self.con.execute("ALTER TABLE submissions ADD COLUMN IF NOT EXISTS reason_category VARCHAR")
            self._upgrade_fingerprints()
        except duckdb.Error as exc:
            self.con.close()
            if is_damage(exc):
                raise damaged(self.path, exc) from exc
            raise
        except StoreDamaged:
            self.con.close()
            raise
        for owned in (self.path, self.path.with_name(self.path.name + ".wal")):
            if owned.exists():
                os.chmod(owned, 0o600)

    def _check_complete(self) -> None:
        """Refuse a store file that ends before a block its tables' data lies in: it was cut off (a copy that
        did not finish, a full disk), and its newest data would otherwise be read as missing. Only without a
        write-ahead log (blocks it replays at ATTACH are counted before they reach the file)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        block = self.con.execute(
            "SELECT block_size FROM pragma_database_size() WHERE database_name = 'store'"
        ).fetchone()
        tables = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
        last = -1
        for (table,) in tables:
            found = self.con.execute(
                "SELECT max(greatest(block_id, coalesce(list_max(additional_block_ids), -1))) "
                f"FROM pragma_storage_info('{checked_identifier(table)}') WHERE persistent"
            ).fetchone()
            last = max(last, -1 if found is None or found[0] is None else int(found[0]))
        needed = FILE_HEADERS_BYTES + (last + 1) * int(block[0]) if block and last >= 0 else 0
        if size < needed:
            raise StoreDamaged(
                f"the store {self.path} is incomplete: the file ends at byte {size}, but its tables' data "
                f"reaches byte {needed}; it was cut off, and nothing was changed",
                RESTORE_HINT,
            )

    def unreadable_parts(self) -> list[str]:
        """Every table that cannot be read in full, in plain words (an empty list: all of it reads). Reads every
        column of every row, and looks up keys through each primary key's index (every key of a small table, an
        even spread of INDEX_PROBES keys of a large one), so a damaged block is found here rather than by the
        next batch. Slow for a large store: `log verify` only."""
        problems = []
        tables = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1"
        ).fetchall()
        keys = dict(
            self.con.execute(
                "SELECT table_name, constraint_column_names[1] FROM duckdb_constraints() "
                "WHERE database_name = current_database() AND constraint_type = 'PRIMARY KEY'"
            ).fetchall()
        )
        for (table,) in tables:
            try:
                self._read_in_full(checked_identifier(table), keys.get(table))
            except duckdb.Error as exc:
                first = str(exc).strip().splitlines()[0]
                problems.append(f"the store is damaged: table {table} cannot be read in full ({first})")
        return problems

    def _read_in_full(self, table: str, key: str | None) -> None:
        self.con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {table}").fetchall()
        if key is None:
            return
        key = checked_identifier(key)
        probes = self.con.execute(
            f"SELECT {key} FROM (SELECT {key}, row_number() OVER (ORDER BY {key}) AS n, count(*) OVER () AS total "
            f"FROM {table}) WHERE total <= ? OR n % (total // ? + 1) = 0 OR n = total",
            [INDEX_PROBES, INDEX_PROBES],
        ).fetchall()
        for (value,) in probes:  # an equality filter on the key is answered through its index
            self.con.execute(f"SELECT * FROM {table} WHERE {key} = ?", [value]).fetchall()

    def _rename_legacy_columns(self) -> None:
        """Stores made before envelope format 2 named the content hash after SHA-256 (those rows keep it)."""
        legacy = self.con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
            "AND table_name = 'submissions' AND column_name = 'plaintext_sha256'"
        ).fetchone()[0]
        if legacy:
            self.con.execute("ALTER TABLE submissions RENAME COLUMN plaintext_sha256 TO plaintext_blake3")

    def _upgrade_fingerprints(self) -> None:
        """Stores made before 160-bit fingerprints list keys by their 80-bit ones: show the current ones."""
        from imvo_submit.envelope.keys import fingerprint

        rows = self.con.execute(
            "SELECT company_id, fingerprint, public_key FROM company_keys WHERE length(fingerprint) < 39"
        ).fetchall()
        for company_id, old, public_key in rows:
            self.con.execute(
                "UPDATE company_keys SET fingerprint = ? WHERE company_id = ? AND fingerprint = ?",
                [fingerprint(bytes(public_key)), company_id, old],
            )

    def _attach(self, encryption_key: str | None) -> None:
        # ATTACH takes no bind parameters: quote the path, and the key is hex from our own KDF.
        target = _quoted(self.path)
        options = "" if encryption_key is None else f" (ENCRYPTION_KEY '{_hex(encryption_key)}')"
        try:
            self.con.execute(f"ATTACH {target} AS store{options}")
        except duckdb.Error as exc:
            self.con.close()
            if is_damage(exc) and "wrong encryption key" not in str(exc).lower():
                raise damaged(self.path, exc) from exc
            raise AggregatorError(
                f"cannot open the store {self.path}: {exc}",
                hint="check the passphrase (AGGREGATOR_PASSPHRASE) and that no other batch is running",
            ) from exc
        self.con.execute("USE store")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def append_rows(self, table: str, columns: list[str], source: str) -> None:
        """INSERT INTO table (columns) SELECT * FROM source (a registered frame), in any physical order.

        Rows tables are only ever aggregated (every row carries its source_row), so DuckDB need not keep the
        insertion order: it then writes whole row groups once instead of writing them and rewriting them at
        the checkpoint (10.8M rows: 6.8 s -> 4.1 s, and a store 40% smaller)."""
        names = ", ".join(checked_identifier(c) for c in columns)
        self.con.execute("SET preserve_insertion_order = false")
        try:
            self.con.execute(
                f"INSERT INTO {checked_identifier(table)} ({names}) SELECT * FROM {checked_identifier(source)}"
            )
        finally:
            self.con.execute("RESET preserve_insertion_order")

    def row_source(self, covenant: str, *, carry_forward: bool = False) -> RowSource:
        return row_source(self.con, covenant, carry_forward=carry_forward)

    def query_df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    def ensure_rows_table(self, covenant: str, template: str, columns: dict[str, str]) -> str:
        """Create the rows table of a template if needed; `columns` maps column name -> DuckDB type."""
        name = rows_table(covenant, template)
        cols = ", ".join(f"{checked_identifier(c)} {t}" for c, t in columns.items())
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {name} (submission_id VARCHAR NOT NULL, company_id VARCHAR NOT NULL, "
            f"period VARCHAR NOT NULL, source_row INTEGER NOT NULL, {cols})"
        )
        return name
