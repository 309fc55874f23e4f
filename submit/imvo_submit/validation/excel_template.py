"""The Excel template companies fill in, generated from the rules files so it never drifts from validation.

Layout: an instructions sheet, one sheet per template (header row = column names, input hints, drop-downs
and number checks for MAX_ROWS rows) and a hidden 'lists' sheet holding the drop-down values under named
ranges (inline lists are capped at 255 characters). Output bytes are deterministic: fixed document dates and
fixed zip entry times.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from imvo_submit.fileio import atomic_write_path
from imvo_submit.validation import reference
from imvo_submit.validation.rules import (
    Column,
    Template,
    check_covenant,
    covenant_info,
    load_template,
    templates_for,
)

MAX_ROWS = 5000  # rows prepared with drop-downs and checks; more rows can still be added by the company
LISTS_SHEET = "lists"
_FIXED_TIME = datetime(2026, 1, 1)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
_HEADER_FILL = PatternFill("solid", start_color="DDEBF7")

_TEXT = {
    "en": {
        "instructions": "instructions",
        "intro": (
            "Fill in one table sheet per file: keep the header row (row 1) as it is and start in row 2. "
            "Click a cell to see what it needs; choose from the drop-down lists where there is one. "
            "Then check the file with `imvo-submit check` before you seal and send it."
        ),
        "classes": (
            "Sensitivity classes: A = process facts, B = commercially sensitive amounts, C = prices, costs "
            "and wages, X = plans (stored, never published). Only aggregated, anonymised figures leave the "
            "secretariat."
        ),
        "head": ["column", "required", "type", "unit", "allowed values", "class", "description"],
        "yes": "yes",
        "no": "no (optional)",
        "one_of": "one of: ",
        "country": "two-letter ISO 3166 code (see drop-down)",
        "boolean": "true or false",
        "date": "date YYYY-MM-DD",
        "required": "Required.",
        "optional": "Optional.",
        "unit": "Unit",
        "error": "This value is not allowed here; see the input hint.",
        "error_title": "Not allowed",
    },
    "nl": {
        "instructions": "instructies",
        "intro": (
            "Vul per bestand één tabelblad in: laat de kopregel (regel 1) staan en begin in regel 2. "
            "Klik op een cel om te zien wat erin moet; kies uit de keuzelijst waar die er is. "
            "Controleer het bestand daarna met `imvo-submit check` voordat u het verzegelt en verstuurt."
        ),
        "classes": (
            "Gevoeligheidsklassen: A = procesfeiten, B = commercieel gevoelige hoeveelheden, C = prijzen, "
            "kosten en lonen, X = plannen (bewaard, nooit gepubliceerd). Alleen samengevoegde, anonieme "
            "cijfers verlaten het secretariaat."
        ),
        "head": ["kolom", "verplicht", "soort", "eenheid", "toegestane waarden", "klasse", "omschrijving"],
        "yes": "ja",
        "no": "nee (optioneel)",
        "one_of": "een van: ",
        "country": "tweeletterige ISO 3166-code (zie keuzelijst)",
        "boolean": "true of false",
        "date": "datum JJJJ-MM-DD",
        "required": "Verplicht.",
        "optional": "Optioneel.",
        "unit": "Eenheid",
        "error": "Deze waarde is hier niet toegestaan; zie de invoerhulp.",
        "error_title": "Niet toegestaan",
    },
}


def write_template(
    covenant: str,
    path: str | Path,
    language: str = "en",
    templates: list[str] | None = None,
    rules_dir: Path | None = None,
) -> Path:
    """Write the covenant's Excel template (all its templates, or only `templates`) to `path`; returns it."""
    if language not in _TEXT:
        from imvo_submit.errors import AggregatorError

        raise AggregatorError(f"language '{language}' is not available", hint="use 'en' or 'nl'")
    if templates is None:
        check_covenant(covenant, rules_dir)  # an unknown covenant would give a workbook without tables
    names = templates if templates is not None else templates_for(covenant, rules_dir)
    specs = [load_template(covenant, name, rules_dir) for name in names]
    content = _deterministic_zip(_workbook_bytes(covenant, specs, language, rules_dir))
    return atomic_write_path(Path(path), lambda tmp: tmp.write_bytes(content), mode=0o644)


def _workbook_bytes(covenant: str, specs: list[Template], language: str, rules_dir: Path | None) -> bytes:
    text = _TEXT[language]
    book = Workbook()
    book.properties.created = book.properties.modified = _FIXED_TIME
    book.properties.creator = "imvo-aggregator"
    instructions = book.active
    instructions.title = text["instructions"]
    lists = _ListSheet(book)
    _write_instructions(instructions, covenant, specs, language, rules_dir)
    for spec in specs:
        _write_table_sheet(book.create_sheet(spec.name), spec, language, lists)
    lists.sheet.sheet_state = "hidden"
    book.move_sheet(lists.sheet, offset=len(book.sheetnames) - 1 - book.index(lists.sheet))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _deterministic_zip(content: bytes) -> bytes:
    """Same entries, fixed timestamps: the same rules give the same bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dest,
    ):
        for item in source.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            data = source.read(item.filename)
            if item.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = _MODIFIED.sub(rb"\g<1>2026-01-01T00:00:00Z\g<2>", data)
            dest.writestr(info, data)
    return out.getvalue()


class _ListSheet:
    """The hidden sheet with one column per drop-down list, each under a workbook-level named range."""

    def __init__(self, book: Workbook):
        self.book = book
        self.sheet = book.create_sheet(LISTS_SHEET)
        self.names: dict[tuple[str, ...], str] = {}

    def named_range(self, name: str, values: tuple[str, ...]) -> str:
        if values in self.names:
            return self.names[values]
        column = get_column_letter(len(self.names) + 1)
        self.sheet[f"{column}1"] = name
        for row, value in enumerate(values, start=2):
            self.sheet[f"{column}{row}"] = value
        ref = f"{quote_sheetname(LISTS_SHEET)}!${column}$2:${column}${len(values) + 1}"
        self.book.defined_names[name] = DefinedName(name, attr_text=ref)
        self.names[values] = name
        return name


def _write_instructions(
    sheet: Worksheet, covenant: str, specs: list[Template], language: str, rules_dir: Path | None
) -> None:
    text = _TEXT[language]
    sheet.append([covenant_info(covenant, rules_dir)[f"name_{language}"]])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([text["intro"]])
    sheet.append([text["classes"]])
    for spec in specs:
        sheet.append([])
        sheet.append([f"{spec.title(language)} (sheet '{spec.name}')"])
        sheet.cell(sheet.max_row, 1).font = Font(bold=True, size=12)
        sheet.append([spec.description(language)])
        sheet.append(text["head"])
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
            cell.fill = _HEADER_FILL
        for col in spec.columns:
            required = text["yes"] if col.required else text["no"]
            sheet.append(
                [
                    col.name,
                    required,
                    col.type,
                    col.unit,
                    _allowed_text(col, language),
                    col.sensitivity,
                    col.description(language),
                ]
            )
    for letter, width in zip("ABCDEFG", (28, 16, 10, 14, 40, 7, 90), strict=True):
        sheet.column_dimensions[letter].width = width
    for row in sheet.iter_rows(min_row=2, max_row=3):
        row[0].alignment = Alignment(wrap_text=False)


def _allowed_text(col: Column, language: str) -> str:
    text = _TEXT[language]
    if col.type == "enum":
        return text["one_of"] + ", ".join(col.allowed)
    if col.type == "country":
        return text["country"]
    if col.type == "boolean":
        return text["boolean"]
    if col.type == "date":
        return text["date"]
    if col.range is not None:
        return col.range.describe(language)
    return ""


def _write_table_sheet(sheet: Worksheet, spec: Template, language: str, lists: _ListSheet) -> None:
    sheet.append(spec.column_names)
    for index, col in enumerate(spec.columns, start=1):
        letter = get_column_letter(index)
        header = sheet.cell(1, index)
        header.font = Font(bold=True)
        header.fill = _HEADER_FILL
        sheet.column_dimensions[letter].width = max(14, len(col.name) + 4)
        validation = _validation(spec, col, language, lists)
        validation.add(f"{letter}2:{letter}{MAX_ROWS + 1}")
        sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"


def _validation(spec: Template, col: Column, language: str, lists: _ListSheet) -> DataValidation:
    text = _TEXT[language]
    kind, operator, formula1, formula2 = _rule_for(spec, col, lists)
    validation = DataValidation(type=kind, operator=operator, formula1=formula1, formula2=formula2, allow_blank=True)
    validation.showInputMessage = True
    validation.promptTitle = col.name[:32]
    validation.prompt = _prompt(col, language)
    validation.showErrorMessage = kind is not None
    validation.errorTitle = text["error_title"]
    validation.error = text["error"]
    return validation


def _rule_for(spec: Template, col: Column, lists: _ListSheet) -> tuple[str | None, str | None, str | None, str | None]:
    """(type, operator, formula1, formula2) of the Excel data validation for one column."""
    if col.type == "enum":
        return "list", None, lists.named_range(f"list_{spec.name}_{col.name}", col.allowed), None
    if col.type == "country":
        return "list", None, lists.named_range("list_country", tuple(sorted(reference.country_codes()))), None
    if col.type == "boolean":
        return "list", None, lists.named_range("list_boolean", ("true", "false")), None
    if col.type == "date":
        return "date", "greaterThan", "1", None
    if col.type in ("integer", "number") and col.range is not None:
        kind = "whole" if col.type == "integer" else "decimal"
        return (kind, *_range_formula(col))
    return None, None, None, None


def _range_formula(col: Column) -> tuple[str, str, str | None]:
    r = col.range
    assert r is not None
    if r.min is not None and r.max is not None and r.min_inclusive and r.max_inclusive:
        return "between", _number(r.min), _number(r.max)
    if r.min is not None:
        # Excel has one operator per validation; an upper bound left out here is still checked on intake.
        return ("greaterThanOrEqual" if r.min_inclusive else "greaterThan"), _number(r.min), None
    assert r.max is not None
    return ("lessThanOrEqual" if r.max_inclusive else "lessThan"), _number(r.max), None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _prompt(col: Column, language: str) -> str:
    text = _TEXT[language]
    parts = [col.description(language), text["required"] if col.required else text["optional"]]
    if col.unit:
        parts.append(f"{text['unit']}: {col.unit}.")
    prompt = " ".join(p for p in parts if p)
    return prompt if len(prompt) <= 255 else prompt[:252] + "..."
