"""The Excel template: built from the rules, drop-downs via named ranges, and a filled copy validates."""

from __future__ import annotations

import hashlib

import openpyxl
import pytest

from imvo_submit.validation import check_file, load_template, reference, templates_for, write_template
from imvo_submit.validation.excel_template import LISTS_SHEET, MAX_ROWS


@pytest.fixture(scope="module")
def textile_template(tmp_path_factory):
    return write_template("textile", tmp_path_factory.mktemp("tpl") / "textile.xlsx")


def validations(sheet) -> dict[str, object]:
    """Column letter -> its data validation."""
    found = {}
    for dv in sheet.data_validations.dataValidation:
        for cell_range in dv.sqref.ranges:
            found[cell_range.coord.split(":")[0].rstrip("0123456789")] = dv
    return found


def test_sheets_lists_and_named_ranges(textile_template):
    book = openpyxl.load_workbook(textile_template)
    assert book.sheetnames == ["instructions", *templates_for("textile"), LISTS_SHEET]
    assert book[LISTS_SHEET].sheet_state == "hidden"
    countries = book.defined_names["list_country"].attr_text
    assert countries == f"'{LISTS_SHEET}'!$A$2:$A${len(reference.country_codes()) + 1}"
    lists = book[LISTS_SHEET]
    column_a = [c.value for c in lists["A"][1:]]
    assert column_a == sorted(reference.country_codes())
    theme = load_template("textile", "risk_assessment").column("theme")
    name = book.defined_names["list_risk_assessment_theme"].attr_text
    letter = name.split("!$")[1].split("$")[0]
    assert [c.value for c in lists[letter][1:] if c.value] == list(theme.allowed)


def test_headers_hints_and_checks_follow_the_rules(textile_template):
    book = openpyxl.load_workbook(textile_template)
    tpl = load_template("textile", "production_locations")
    sheet = book["production_locations"]
    assert [c.value for c in sheet[1]] == tpl.column_names
    dv = validations(sheet)
    assert dv["B"].type == "list" and dv["B"].formula1 == "list_country"
    assert dv["C"].type == "list" and dv["C"].formula1 == "list_production_locations_facility_type"
    assert (dv["D"].type, dv["D"].operator, dv["D"].formula1, dv["D"].formula2) == (
        "whole",
        "between",
        "1",
        "4",
    )
    # every number column has a maximum in the rules, so Excel checks both bounds
    assert (dv["G"].type, dv["G"].operator, dv["G"].formula1, dv["G"].formula2) == (
        "decimal",
        "between",
        "0",
        "100000000000",
    )
    assert dv["G"].prompt == "Value of the orders at this facility in euros (0 or more). Required. Unit: EUR."
    assert str(dv["A"].sqref) == f"A2:A{MAX_ROWS + 1}"
    assert all(len(v.prompt) <= 255 and len(v.promptTitle) <= 32 for v in dv.values())
    wage = validations(book["living_wage"])
    assert (wage["C"].type, wage["C"].operator, wage["C"].formula1) == ("decimal", "greaterThan", "0")
    risk = validations(book["risk_assessment"])
    assert risk["C"].formula1 == "list_boolean"


def test_instructions_in_dutch(tmp_path):
    path = write_template("textile", tmp_path / "nl.xlsx", language="nl")
    book = openpyxl.load_workbook(path)
    sheet = book["instructies"]
    assert sheet["A1"].value == "Convenant Duurzame Kleding en Textiel"
    texts = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert "Productielocaties (sheet 'production_locations')" in texts
    assert "Gemiddeld betaald maandloon in euro (meer dan 0)." in texts
    prompt = validations(book["living_wage"])["C"].prompt
    assert prompt == "Gemiddeld betaald maandloon in euro (meer dan 0). Verplicht. Eenheid: EUR per month."


def test_output_bytes_are_deterministic(tmp_path, textile_template):
    again = write_template("textile", tmp_path / "again.xlsx")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (textile_template, again)]
    assert digest[0] == digest[1]


FILLED = {
    "production_locations": [
        ["F-001", "BD", "cut_make_trim", 1, "251-1000", 12000, 45000.5],
        ["F-002", "CN", "fabric_mill", 2, "1001+", 0, 0],
    ],
    "risk_assessment": [
        ["BD", "child_labour", "true", "true", "high", "in_progress", 3, 5, 2, 1],
        ["BD", "living_wage", "false", "false", None, "none", 0, 0, 0, None],
    ],
    "living_wage": [["BD", 1200, 95.5, 180.0, "anker"]],
    "materials": [["cotton", "gots", 1500.25], ["polyester", "none", 20]],
}


@pytest.mark.parametrize("name", sorted(FILLED))
def test_a_file_filled_through_the_template_passes(tmp_path, textile_template, name):
    book = openpyxl.load_workbook(textile_template)
    for row in FILLED[name]:
        book[name].append(row)
    path = tmp_path / f"{name}.xlsx"
    book.save(path)
    result = check_file(path, "textile")
    assert result.ok, result.report.render_text()
    assert result.template == name and len(result.frame) == len(FILLED[name])
    assert result.warnings == []


def test_gold_template_filled_passes(tmp_path):
    book = openpyxl.load_workbook(write_template("gold", tmp_path / "gold.xlsx"))
    book["refiners"].append(["CID001234", "CH", "lbma", 12500.5])
    path = tmp_path / "refiners.xlsx"
    book.save(path)
    result = check_file(path, "gold")
    assert result.ok and result.template == "refiners"


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import imvo_submit.validation.excel_template as module

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(module, "_deterministic_zip", broken)
    with pytest.raises(OSError):
        write_template("gold", tmp_path / "gold.xlsx")
    assert list(tmp_path.iterdir()) == []
