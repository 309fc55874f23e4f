"""Hypothesis strategies for the binary formats a submission can take: XLSX, ODS and Parquet.

Each builds files the way a hostile or careless sender could: real layouts with generated cells (odd types,
references far out, repeat counts, shared strings that are missing, dates, errors), then optionally byte-mutated.
The workbooks are written by hand (zip + XML), so every attribute a reader trusts is under the generator's
control; Parquet files are written by pyarrow from generated columns of every type a writer may choose.
"""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape, quoteattr

from hypothesis import strategies as st

HEADER = ["country", "workers_covered", "wage_paid_monthly_eur", "living_wage_benchmark_eur", "benchmark_source"]
SHEET = "living_wage"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)
TEXTS = st.one_of(
    st.sampled_from(["BD", "NL", "Bangladesh", "anker", "", " ", "1.234,5", "1,234.5", "=1+1", "ja", "\ufeff"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 17175, 119.73, 1e308, 2**53 + 1, 2**63 - 1, 2**64]),
)
CELL = st.one_of(TEXTS, NUMBERS, st.booleans(), st.none())


# ---------------------------------------------------------------- XLSX


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _xlsx_cell(ref: str, value: object, kind: str) -> str:
    if value is None:
        return f'<c r="{ref}"/>'
    if kind == "inline" or isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'
    if kind == "shared":  # a shared string index the workbook does not have
        return f'<c r="{ref}" t="s"><v>{abs(hash(str(value))) % 7}</v></c>'
    if kind == "bool" or isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(bool(value))}</v></c>'
    if kind == "error":
        return f'<c r="{ref}" t="e"><v>#DIV/0!</v></c>'
    if kind == "date":
        return f'<c r="{ref}" s="1"><v>{value}</v></c>'
    return f'<c r="{ref}"><v>{value}</v></c>'


@st.composite
def xlsx_files(draw) -> bytes:
    """A workbook with the template's sheet (or another name), the header (sometimes altered) and generated
    rows; some cells sit at generated references far out, with odd types."""
    variants = st.lists(st.sampled_from([*HEADER, "notes", "", "Country "]), max_size=7)
    header = draw(st.one_of(st.just(HEADER), variants))
    rows = draw(st.lists(st.lists(CELL, max_size=7), max_size=8))
    kinds = st.sampled_from(["plain", "inline", "shared", "bool", "error", "date"])
    body = ['<row r="1">' + "".join(_xlsx_cell(f"{_column_letters(i)}1", h, "inline") for i, h in enumerate(header))]
    body[0] += "</row>"
    for r, row in enumerate(rows, start=2):
        # mostly in turn; one row in ten far out (a grid of up to a million rows is legal, and slow to read)
        row_ref = draw(st.one_of(*[st.just(r)] * 9, st.integers(1, 1_048_576)))
        cells = []
        for c, value in enumerate(row):
            column = draw(st.one_of(st.just(c), st.integers(0, 16383)))
            cells.append(_xlsx_cell(f"{_column_letters(column)}{row_ref}", value, draw(kinds)))
        body.append(f'<row r="{row_ref}">{"".join(cells)}</row>')
    dimension = draw(st.sampled_from(["", '<dimension ref="A1:XFD1048576"/>', '<dimension ref="A1:E9"/>']))
    sheet = (
        f'<?xml version="1.0"?><worksheet xmlns="{MAIN}">{dimension}<sheetData>{"".join(body)}</sheetData></worksheet>'
    )
    name = draw(st.sampled_from([SHEET, SHEET.upper(), "Blad1", " living_wage "]))
    return _workbook(sheet.encode("utf-8"), name)


def _workbook(sheet: bytes, name: str) -> bytes:
    ns = "http://schemas.openxmlformats.org"
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": f'<?xml version="1.0"?><Types xmlns="{ns}/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{sheet_type}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{sheet_type}.worksheet+xml"/></Types>',
        "_rels/.rels": f'<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0"?><workbook xmlns="{ns}/spreadsheetml/2006/main" '
        f'xmlns:r="{ns}/officeDocument/2006/relationships"><sheets><sheet name={quoteattr(name)} sheetId="1" '
        'r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0"?><Relationships xmlns="{ns}/package/2006/'
        f'relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>',
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        for member, text in parts.items():
            book.writestr(member, text)
        book.writestr("xl/worksheets/sheet1.xml", sheet)
    return buffer.getvalue()


# ---------------------------------------------------------------- ODS


def _ods_cell(value: object, repeat: int) -> str:
    repeated = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    if value is None:
        return f"<table:table-cell{repeated}/>"
    if isinstance(value, bool):
        return (
            f'<table:table-cell{repeated} office:value-type="boolean" office:boolean-value="{str(value).lower()}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    if isinstance(value, int | float):
        return (
            f'<table:table-cell{repeated} office:value-type="float" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    text = escape(str(value))
    return f'<table:table-cell{repeated} office:value-type="string"><text:p>{text}</text:p></table:table-cell>'


@st.composite
def ods_files(draw) -> bytes:
    """An OpenDocument spreadsheet with generated rows, cells and repeat counts (rows and columns)."""
    repeats = st.one_of(st.just(1), st.integers(1, 5), st.integers(1, 2_000_000))
    rows = [[*HEADER]] + draw(st.lists(st.lists(CELL, max_size=7), max_size=8))
    xml = []
    for row in rows:
        cells = "".join(_ods_cell(v, draw(st.one_of(st.just(1), repeats))) for v in row)
        times = draw(st.one_of(st.just(1), repeats))
        repeated = f' table:number-rows-repeated="{times}"' if times > 1 else ""
        xml.append(f"<table:table-row{repeated}>{cells}</table:table-row>")
    name = draw(st.sampled_from([SHEET, "Sheet1"]))
    content = (
        f'<?xml version="1.0"?><office:document-content {ODS_NS}><office:body><office:spreadsheet>'
        f"<table:table table:name={quoteattr(name)}>{''.join(xml)}</table:table></office:spreadsheet></office:body>"
        "</office:document-content>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        book.writestr("content.xml", content)
    return buffer.getvalue()


# ---------------------------------------------------------------- Parquet


def _arrow_types():
    import pyarrow as pa

    return [
        pa.int64(), pa.int32(), pa.uint64(), pa.float64(), pa.float32(), pa.bool_(), pa.string(), pa.large_string(),
        pa.binary(), pa.decimal128(38, 6), pa.date32(), pa.timestamp("us"), pa.timestamp("ns", tz="UTC"),
        pa.time64("us"), pa.duration("s"), pa.null(), pa.list_(pa.int64()), pa.dictionary(pa.int32(), pa.string()),
    ]  # fmt: skip


def _column(draw, arrow_type, rows: int):
    import datetime as dt
    import decimal

    import pyarrow as pa

    if pa.types.is_null(arrow_type):
        return pa.nulls(rows)
    if pa.types.is_dictionary(arrow_type):
        words = draw(st.lists(st.sampled_from(["BD", "NL", "anker", None]), min_size=rows, max_size=rows))
        return pa.array(words, type=pa.string()).dictionary_encode()
    values = {
        "int64": st.integers(-(2**63), 2**63 - 1), "int32": st.integers(-(2**31), 2**31 - 1),
        "uint64": st.integers(0, 2**64 - 1), "double": st.floats(), "float": st.floats(width=32),
        "bool": st.booleans(), "string": TEXTS, "large_string": TEXTS, "binary": st.binary(max_size=8),
        "date32[day]": st.dates(), "time64[us]": st.times(),
        "duration[s]": st.timedeltas(min_value=dt.timedelta(days=-9999), max_value=dt.timedelta(days=9999)),
    }  # fmt: skip
    if pa.types.is_decimal(arrow_type):
        strategy = st.decimals(min_value=-(10**31), max_value=10**31, places=6, allow_nan=False).map(decimal.Decimal)
    elif pa.types.is_timestamp(arrow_type):
        strategy = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
        if arrow_type.tz:
            strategy = strategy.map(lambda d: d.replace(tzinfo=dt.UTC))
    elif pa.types.is_list(arrow_type):
        strategy = st.lists(st.integers(-5, 5), max_size=3)
    else:
        strategy = values[str(arrow_type)]
    return pa.array(draw(st.lists(st.one_of(st.none(), strategy), min_size=rows, max_size=rows)), type=arrow_type)


@st.composite
def parquet_files(draw) -> bytes:
    """A Parquet file whose columns carry the template's names (or others) with any type a writer may use."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = draw(st.integers(0, 12))
    others = st.lists(st.sampled_from([*HEADER, "extra", ""]), max_size=7, unique=True)
    names = draw(st.one_of(st.just(HEADER), others))
    types = _arrow_types()
    columns = {name: _column(draw, draw(st.sampled_from(types)), rows) for name in names}
    table = pa.table(columns) if columns else pa.table({"empty": pa.nulls(rows)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=draw(st.sampled_from([None, 1, 5])))
    return buffer.getvalue()
