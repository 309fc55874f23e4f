"""Hostile and broken input: every file must end in a clear, plain-language refusal within seconds.

The matrix runs each case through the same door the secretariat's intake and `imvo-submit check` use
(`imvo_submit.validation.check_file`), and sealed-file cases through `envelope.read_header` / `open_file`.
A message is "plain" when it names no exception type and contains no traceback or Python repr.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aggregator.errors import AggregatorError, EnvelopeError
from aggregator.intake import run_intake
from aggregator.registry import Registry
from aggregator.release.texts import neutralise as release_neutralise
from aggregator.workspace import create_workspace
from imvo_submit import envelope
from imvo_submit.envelope.format import MAGIC, canonical_json
from imvo_submit.validation import check_file, write_report_csv, write_report_xlsx
from support.workbooks import xlsx

SECONDS = 5.0
GOOD_HEADER = "country,workers_covered,wage_paid_monthly_eur,living_wage_benchmark_eur,benchmark_source\n"
GOOD_ROW = "BD,17175,119.73,256.6,anker\n"
TECHNICAL = re.compile(r"Traceback|\b\w*(Error|Exception)\b|<class|0x[0-9a-f]{6,}|errno", re.IGNORECASE)


def assert_plain(message: str) -> None:
    assert message and message[0].isalpha(), message
    assert not TECHNICAL.search(message), f"technical words leak into: {message[:300]}"
    assert len(message) < 600, f"message of {len(message)} characters"


def csv_bytes(*rows: str, header: str = GOOD_HEADER) -> bytes:
    return (header + "".join(rows)).encode()


# ---------------------------------------------------------------- XLSX builders


SHEET_OPEN = (
    b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>country</t></is></c></row>'
)
SHEET_CLOSE = b"</sheetData></worksheet>"


def zip_bomb(megabytes: int) -> Iterator[bytes]:
    yield SHEET_OPEN
    block = b" " * 1024**2
    for _ in range(megabytes):
        yield block
    yield SHEET_CLOSE


def billion_laughs() -> list[bytes]:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    doctype = f"<!DOCTYPE worksheet [{entities}]>"
    return [
        b'<?xml version="1.0"?>' + doctype.encode(),
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>',
        SHEET_CLOSE,
    ]


def deep_nesting(depth: int = 100_000) -> list[bytes]:
    return [SHEET_OPEN, b"<x>" * depth, b"</x>" * depth, SHEET_CLOSE]


def parquet(columns: int) -> bytes:
    table = pa.table({f"c{i}": [1] for i in range(columns)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def valid_xlsx_truncated() -> bytes:
    frame = pd.DataFrame([["BD", 1, 2.0, 3.0, "anker"]], columns=GOOD_HEADER.strip().split(","))
    buf = io.BytesIO()
    frame.to_excel(buf, sheet_name="living_wage", index=False)
    data = buf.getvalue()
    return data[: len(data) // 2]


# ---------------------------------------------------------------- the check_file matrix

# (case id, bytes factory, template, fragment the first problem's message must contain)
REFUSED: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("zero_bytes", lambda: b"", "living_wage", "the file is empty"),
    ("bom_only", lambda: b"\xef\xbb\xbf", "living_wage", "empty"),
    ("whitespace_only", lambda: b" \r\n\t\n" * 1000, "living_wage", "empty"),
    ("header_only", lambda: csv_bytes(), "living_wage", "no data rows"),
    ("truncated_mid_row", lambda: csv_bytes(GOOD_ROW, "CN,4028,66"), "living_wage", "benchmark_source is empty"),
    ("nul_bytes", lambda: csv_bytes(GOOD_ROW, "IN,1\x00\x00,2,3,anker\n"), "living_wage", "binary data"),
    ("random_binary", lambda: bytes(range(256)) * 64, "living_wage", "binary data"),
    ("utf16_without_bom", lambda: csv_bytes(GOOD_ROW).decode().encode("utf-16-le"), "living_wage", "binary"),
    ("utf16_cut_off", lambda: csv_bytes(GOOD_ROW).decode().encode("utf-16")[:-1], "living_wage", "cut off"),
    ("bare_carriage_return", lambda: b"\r!", "living_wage", "the first row is empty"),
    ("blank_header_cells", lambda: b"\xd2,,\nBD,1,2\n", "living_wage", "no data rows"),
    ("blank_first_line", lambda: b"\n\xad\n\xad", "living_wage", "the first row is empty"),
    ("control_characters", lambda: csv_bytes("BD\x1b[31m,1,2,3,anker\n"), "living_wage", "binary data"),
    ("undecodable_bytes", lambda: csv_bytes(GOOD_ROW) + b"IN,\x81\x8d\x8f\x90,2,3,anker\n", "living_wage", "binary"),
    ("million_column_header", lambda: ("a," * 1_000_000 + "\n").encode(), "living_wage", "columns, more than"),
    ("million_column_row", lambda: csv_bytes("BD" + ",1" * 1_000_000 + "\n"), "living_wage", "cells but the header"),
    ("duplicate_rows", lambda: csv_bytes(GOOD_ROW, GOOD_ROW), "living_wage", "appears in more than one row"),
    (
        "duplicate_columns",
        lambda: csv_bytes(GOOD_ROW, header=GOOD_HEADER.strip() + ",country\n"),
        "living_wage",
        "appears twice",
    ),
    ("negative_count", lambda: csv_bytes("BD,-5,119.73,256.6,anker\n"), "living_wage", "workers_covered"),
    ("nan_text", lambda: csv_bytes("BD,5,NaN,256.6,anker\n"), "living_wage", "wage_paid_monthly_eur"),
    ("infinity", lambda: csv_bytes("BD,5,inf,256.6,anker\n"), "living_wage", "wage_paid_monthly_eur"),
    ("overflowing_float", lambda: csv_bytes("BD,5,1e999,256.6,anker\n"), "living_wage", "wage_paid_monthly_eur"),
    ("huge_integer", lambda: csv_bytes("BD,99999999999999999999999999,1,2,anker\n"), "living_wage", "workers_covered"),
    ("sql_in_value", lambda: csv_bytes("'; DROP TABLE companies; --,1,2,3,anker\n"), "living_wage", "country"),
    ("unclosed_quote", lambda: csv_bytes('"BD,1,2,3,anker\n' + GOOD_ROW * 1000), "living_wage", "never closed"),
    ("million_blank_lines", lambda: csv_bytes("\n" * 1_000_000), "living_wage", "no data rows"),
    ("single_column_blob", lambda: b"a;b|c\n" + b"x" * 100_000, "living_wage", "no data rows"),
    ("old_xls", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "living_wage", "old Excel file"),
    ("xlsx_garbage", lambda: b"PK\x03\x04" + os.urandom(500), "living_wage", "cannot be read"),
    ("xlsx_truncated", valid_xlsx_truncated, "living_wage", "cannot be read"),
    ("xlsx_zip_bomb", lambda: xlsx(zip_bomb(300)), "living_wage", "zip bomb"),
    ("xlsx_ratio_bomb", lambda: xlsx(zip_bomb(64)), "living_wage", "zip bomb"),
    ("xlsx_many_members", lambda: xlsx([SHEET_OPEN, SHEET_CLOSE], extra=10_001), "living_wage", "10006 parts"),
    ("xlsx_entity_expansion", lambda: xlsx(billion_laughs()), "living_wage", "cannot be read"),
    ("xlsx_deep_nesting", lambda: xlsx(deep_nesting()), "living_wage", "no data rows"),
    ("xlsx_wrong_sheet", lambda: xlsx([SHEET_OPEN, SHEET_CLOSE], sheet="Blad1"), "living_wage", "no sheet named"),
    ("parquet_garbage", lambda: b"PAR1" + os.urandom(300), "living_wage", "Parquet file cannot be read"),
    ("parquet_too_wide", lambda: parquet(600), "living_wage", "columns, more than"),
]

MISSING_NUMBER_COLUMN = pytest.param(
    lambda: b"country,workers_covered\nBD,5\n",
    "living_wage",
    "wage_paid_monthly_eur",
    id="missing_number_column",
)


TEN_MEGABYTE_CELL = pytest.param(
    lambda: csv_bytes("X" * 10_000_000 + ",1,2,3,anker\n"),
    "living_wage",
    "very long cell",
    id="ten_megabyte_cell",
)


@pytest.mark.parametrize(
    ("data", "template", "fragment"),
    [pytest.param(f, t, m, id=i) for i, f, t, m in REFUSED] + [MISSING_NUMBER_COLUMN, TEN_MEGABYTE_CELL],
)
def test_hostile_file_is_refused_plainly_and_quickly(data, template, fragment):
    payload = data()
    started = time.perf_counter()
    result = check_file(payload, "textile", template)
    elapsed = time.perf_counter() - started
    assert not result.ok
    messages = [str(m) for m in result.report.to_frame()["message_en"]]
    for message in messages[:20]:
        assert_plain(message)
    assert fragment in messages[0] or any(fragment in m for m in messages), messages[:3]
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"


def test_matrix_has_at_least_thirty_cases():
    assert len(REFUSED) + len(ENVELOPE_CASES) >= 30


# ---------------------------------------------------------------- accepted, but neutralised in outputs

FORMULAS = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "=1+1"]


def production_locations(facility_ids: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["facility_id", "country", "facility_type", "tier", "workers_band", "order_volume_pieces", "order_value_eur"]
    )
    writer.writerows([fid, "BD", "cut_make_trim", 1, "1-50", 10, 100.5] for fid in facility_ids)
    return out.getvalue().encode()


def test_formula_values_cannot_enter_the_store_and_come_back_neutralised(tmp_path: Path):
    # Every text column of every template has an enum, country list or pattern, and no pattern lets a text
    # start with = + - @: so formulas are refused, and only echoed back in the company's error report.
    result = check_file(production_locations(FORMULAS), "textile", "production_locations")
    assert not result.ok
    problems = result.report.to_frame()
    assert sorted(problems["value"]) == sorted(FORMULAS)
    assert set(problems["rule"]) == {"pattern"}
    book = openpyxl.load_workbook(write_report_xlsx(result.report, tmp_path / "report.xlsx"))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]
    assert cells and not [c.coordinate for c in cells if c.data_type == "f"]
    echoed = [str(c.value) for c in cells if str(c.value).lstrip("'") in FORMULAS]
    assert len(echoed) == len(FORMULAS) and all(v.startswith("'") for v in echoed)
    csv_text = write_report_csv(result.report, tmp_path / "report.csv").read_text(encoding="utf-8-sig")
    for formula in FORMULAS:
        assert f"'{formula}" in csv_text.replace('""', '"')


@pytest.mark.parametrize("value", FORMULAS)
def test_release_texts_neutralise_formulas(value):
    assert release_neutralise(value).startswith("'")


# ---------------------------------------------------------------- sealed files (envelope)


@pytest.fixture(scope="module")
def keys_and_blob(tmp_path_factory):
    folder = tmp_path_factory.mktemp("env")
    recipient, signer = envelope.generate_encryption_key("x25519"), envelope.generate_signing_key()
    src, dst = folder / "data.csv", folder / "data.imvo"
    src.write_bytes(csv_bytes(GOOD_ROW))
    envelope.seal_file(
        src, dst, covenant="textile", template="living_wage", company_id="T001", period="2025-01",
        recipient_public_key=recipient.public_key(), signing_private_key=signer,
        created="2025-02-01T10:00:00Z",
    )  # fmt: skip
    return recipient, signer, dst.read_bytes()


def preamble(header: bytes, version: int = 3, length: int | None = None) -> bytes:
    return MAGIC + struct.pack(">HI", version, len(header) if length is None else length) + header


def header_doc(blob: bytes) -> dict:
    (length,) = struct.unpack(">I", blob[10:14])
    return json.loads(blob[14 : 14 + length])


def with_header(blob: bytes, **changes) -> bytes:
    doc = header_doc(blob) | changes
    old_length = struct.unpack(">I", blob[10:14])[0]
    return preamble(canonical_json(doc)) + blob[14 + old_length :]


ENVELOPE_CASES: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("zero_bytes", lambda b: b"", "not_an_envelope"),
    ("magic_only", lambda b: MAGIC, "truncated"),
    ("csv_instead_of_envelope", lambda b: csv_bytes(GOOD_ROW), "not_an_envelope"),
    ("gigantic_header_length", lambda b: preamble(b"{}", length=0xFFFFFFFF), "header_too_large"),
    ("header_cut_short", lambda b: b[:40], "truncated"),
    ("header_not_json", lambda b: preamble(b"\x00\xff not json"), "malformed_header"),
    ("header_is_a_list", lambda b: preamble(b"[1,2,3]"), "malformed_header"),
    ("header_repeats_a_field", lambda b: preamble(b'{"a":1,"a":2}'), "malformed_header"),
    ("header_not_canonical", lambda b: preamble(json.dumps(header_doc(b), indent=1).encode()), "malformed_header"),
    ("future_version", lambda b: MAGIC + struct.pack(">HI", 4, 2) + b"{}", "unsupported_version"),
    ("path_traversal_file_name", lambda b: with_header(b, file_name="../../etc/passwd"), "malformed_header"),
    ("windows_traversal_file_name", lambda b: with_header(b, file_name="..\\..\\boot.ini"), "malformed_header"),
    ("control_chars_in_file_name", lambda b: with_header(b, file_name="a\x00b.csv"), "malformed_header"),
    ("unknown_suite", lambda b: with_header(b, suite="rot13"), "unsupported_suite"),
    ("a_chunk_size_field", lambda b: with_header(b, chunk_size=16), "malformed_header"),
    ("size_class_not_a_power_of_two", lambda b: with_header(b, size_class=65537), "malformed_header"),
    ("boolean_size_class", lambda b: with_header(b, size_class=True), "malformed_header"),
    ("absurd_size_class", lambda b: with_header(b, size_class=2**40), "truncated"),
    ("company_id_injection", lambda b: with_header(b, company_id="T001'; DROP TABLE x"), "malformed_header"),
    ("period_out_of_range", lambda b: with_header(b, period="2025-13"), "malformed_header"),
    ("impossible_date", lambda b: with_header(b, created="2025-02-30T10:00:00Z"), "malformed_header"),
    ("truncated_payload", lambda b: b[:-100], "truncated"),
    ("appended_bytes", lambda b: b + b"\x00" * 10, "trailing_data"),
    ("flipped_payload_bit", lambda b: b[:-80] + bytes([b[-80] ^ 1]) + b[-79:], "bad_signature"),
]


DEEPLY_NESTED_HEADER = pytest.param(
    lambda b: preamble(b"[" * 8000 + b"]" * 8000),
    "malformed_header",
    id="header_deeply_nested",
)


@pytest.mark.parametrize(
    ("make", "reason"), [pytest.param(m, r, id=i) for i, m, r in ENVELOPE_CASES] + [DEEPLY_NESTED_HEADER]
)
def test_hostile_envelope_is_refused_plainly_and_quickly(tmp_path, keys_and_blob, make, reason):
    recipient, signer, blob = keys_and_blob
    path = tmp_path / "hostile.imvo"
    path.write_bytes(make(blob))
    started = time.perf_counter()
    with pytest.raises(envelope.EnvelopeRejected) as caught:
        envelope.read_header(path)
        envelope.open_file(path, recipient, signer.public_key())
    assert caught.value.reason == reason, caught.value.message
    assert_plain(caught.value.message)
    assert time.perf_counter() - started < SECONDS


def test_sealing_reduces_a_traversal_file_name_to_its_base_name(tmp_path, keys_and_blob):
    recipient, signer, _ = keys_and_blob
    src = tmp_path / "data.csv"
    src.write_bytes(csv_bytes(GOOD_ROW))
    header = envelope.seal_file(
        src, tmp_path / "out.imvo", covenant="textile", template="living_wage", company_id="T001",
        period="2025-01", recipient_public_key=recipient.public_key(), signing_private_key=signer,
        file_name="../../../etc/cron.d/evil",
    )  # fmt: skip
    assert header.file_name == "evil"
    assert envelope.read_header(tmp_path / "out.imvo").file_name == "evil"


def test_envelope_errors_are_aggregator_errors():
    assert issubclass(envelope.EnvelopeRejected, EnvelopeError)
    assert issubclass(EnvelopeError, AggregatorError)


# ---------------------------------------------------------------- data at rest

PASSPHRASE = "a long secretariat passphrase"
PROTOCOL = Path(__file__).parents[1] / "protocols" / "textile.toml"
SECRET_NAME = "Geheime Kledingfabriek Zeventien BV"
SECRET_FACILITIES = ["ZZSECRETFAC0001", "ZZSECRETFAC0002"]
SECRET_VALUE = 987654.321


def test_a_copied_workspace_reveals_no_company_data(tmp_path):
    ws = create_workspace(tmp_path / "ws", PASSPHRASE, [PROTOCOL])
    signer = envelope.generate_signing_key()
    with ws.open_store() as store:
        Registry(store).add("T917", SECRET_NAME, ["textile"], envelope.public_key_bytes(signer.public_key()),
                            now="2025-02-01T00:00:00Z")  # fmt: skip
        assert store.con.execute("SELECT current_setting('temp_file_encryption')").fetchone()[0] is True
    source = tmp_path / "locations.csv"
    rows = "".join(f"{fid},BD,cut_make_trim,1,1-50,10,{SECRET_VALUE}\n" for fid in SECRET_FACILITIES)
    source.write_text("facility_id,country,facility_type,tier,workers_band,order_volume_pieces,order_value_eur\n"
                      + rows)  # fmt: skip
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    encryption_public = envelope.load_public_key(ws.keys_dir / "secretariat_encryption.pub")
    envelope.seal_file(
        source, inbox / "T917.imvo", covenant="textile", template="production_locations", company_id="T917",
        period="2025-01", recipient_public_key=encryption_public, signing_private_key=signer,
        created="2025-02-01T10:00:00Z",
    )  # fmt: skip
    report = run_intake(ws, inbox, now="2025-02-02T00:00:00Z")
    assert [o.state for o in report.outcomes] == ["accepted"], [o.reason for o in report.outcomes]
    with ws.open_store() as store:  # the data is really there, so the absence below means something
        found = store.con.execute("SELECT facility_id FROM rows_textile_production_locations ORDER BY 1").fetchall()
        assert [r[0] for r in found] == SECRET_FACILITIES
    needles = [SECRET_NAME.encode(), *(f.encode() for f in SECRET_FACILITIES), str(SECRET_VALUE).encode(),
               struct.pack("<d", SECRET_VALUE), PASSPHRASE.encode()]  # fmt: skip
    files = [p for p in ws.root.rglob("*") if p.is_file()]
    assert any(p.name == "store.duckdb" for p in files)
    for path in files:
        raw = path.read_bytes()
        for needle in needles:
            assert needle not in raw, f"{needle[:20]!r} readable in {path.relative_to(ws.root)}"
