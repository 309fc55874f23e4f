"""validate / check_file / reports: exact messages, typed output, template detection, safe report files."""

from __future__ import annotations

import csv
import importlib
import io
import warnings

import openpyxl
import pandas as pd
import pandera.pandas as pandera
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imvo_submit.validation.readers as validation_readers
from imvo_submit.errors import ValidationFailed
from imvo_submit.validation import (
    Column,
    Template,
    ValidationReport,
    check_file,
    check_files,
    filled_template_sheets,
    load_template,
    using_rules,
    validate,
    validate_many,
    write_report_csv,
    write_report_xlsx,
)
from imvo_submit.validation.report import Problem
from support.validation_rows import frame, pl_row

validate_module = importlib.import_module("imvo_submit.validation.validate")  # the package's `validate` is the function

PL = load_template("textile", "production_locations")
RISK = load_template("textile", "risk_assessment")
WAGE = load_template("textile", "living_wage")


def risk_row(**changes) -> dict:
    row = dict(
        country="BD",
        theme="child_labour",
        risk_identified="true",
        risk_prioritised="true",
        severity="high",
        action_status="planned",
        locations_affected="2",
        grievances_received="3",
        grievances_resolved="1",
        planned_actions_next_year="4",
    )
    return {**row, **changes}


def only_problem(result) -> dict:
    problems = result.report.to_frame()
    assert len(problems) == 1, problems
    return problems.iloc[0].to_dict()


def test_valid_frame_gives_typed_clean_frame():
    result = validate(frame([pl_row(), pl_row(facility_id="F2", order_value_eur="0")]), PL)
    assert result.ok and result.report.ok
    assert list(result.frame.columns) == PL.column_names
    assert list(result.frame.index) == [2, 3]
    dtypes = result.frame.dtypes.astype(str).to_dict()
    assert dtypes["tier"] == "Int64" and dtypes["order_value_eur"] == "float64" and dtypes["country"] == "str"
    assert result.frame.loc[2, "order_value_eur"] == 2.5


def test_optional_columns_may_be_absent():
    row = risk_row()
    del row["severity"], row["planned_actions_next_year"]
    result = validate(frame([row]), RISK)
    assert result.ok
    assert result.frame["severity"].isna().all() and str(result.frame["planned_actions_next_year"].dtype) == "Int64"
    assert str(result.frame["risk_identified"].dtype) == "boolean"


@pytest.mark.parametrize(
    ("template", "row", "expected"),
    [
        (
            PL,
            pl_row(country="XX"),
            (
                "country",
                "XX",
                "country",
                "country 'XX' is not an ISO 3166 country code; use the two-letter code, e.g. NL",
                "country 'XX' is geen ISO 3166-landcode; gebruik de tweeletterige code, bijv. NL",
            ),
        ),
        (
            PL,
            pl_row(facility_type="sewing"),
            (
                "facility_type",
                "sewing",
                "enum",
                "facility_type 'sewing' is not allowed; use one of: cut_make_trim, fabric_mill, "
                "dyeing_finishing, "
                "spinning, trims_accessories, laundry",
                "facility_type 'sewing' is niet toegestaan; gebruik een van: cut_make_trim, fabric_mill, "
                "dyeing_finishing, spinning, trims_accessories, laundry",
            ),
        ),
        (
            PL,
            pl_row(tier="5"),
            (
                "tier",
                "5",
                "range",
                "tier 5 is out of range; it must be >= 1 and <= 4",
                "tier 5 valt buiten het bereik; het moet >= 1 en <= 4 zijn",
            ),
        ),
        (
            PL,
            pl_row(tier="two"),
            (
                "tier",
                "two",
                "type_integer",
                "tier 'two' is not a whole number; write digits only, e.g. 1200",
                "tier 'two' is geen geheel getal; schrijf alleen cijfers, bijv. 1200",
            ),
        ),
        (
            PL,
            pl_row(order_value_eur="12 euro"),
            (
                "order_value_eur",
                "12 euro",
                "type_number",
                "order_value_eur '12 euro' is not a number; write e.g. 1234.5 or 1234,5",
                "order_value_eur '12 euro' is geen getal; schrijf bijv. 1234,5 of 1234.5",
            ),
        ),
        (
            PL,
            pl_row(workers_band=None),
            (
                "workers_band",
                None,
                "missing_value",
                "workers_band is empty; fill in a value",
                "workers_band is leeg; vul een waarde in",
            ),
        ),
        (
            RISK,
            risk_row(risk_identified="maybe"),
            (
                "risk_identified",
                "maybe",
                "type_boolean",
                "risk_identified 'maybe' is not true or false; use true or false (ja/nee also works)",
                "risk_identified 'maybe' is geen true of false; gebruik true of false (ja/nee mag ook)",
            ),
        ),
        (
            RISK,
            risk_row(risk_identified="false"),
            (
                "risk_prioritised, risk_identified",
                "true, false",
                "implies",
                "a risk can only be prioritised when it was identified: "
                "risk_prioritised is true but risk_identified is "
                "false",
                "een risico kan alleen prioriteit krijgen als het is vastgesteld: "
                "risk_prioritised is true maar "
                "risk_identified is false",
            ),
        ),
        (
            RISK,
            risk_row(grievances_resolved="4"),
            (
                "grievances_resolved, grievances_received",
                "4, 3",
                "not_greater",
                "grievances_resolved is larger than grievances_received; "
                "you cannot resolve more grievances than you "
                "received",
                "grievances_resolved is groter dan grievances_received; "
                "u kunt niet meer klachten oplossen dan u "
                "ontving",
            ),
        ),
        (
            WAGE,
            dict(
                country="IN",
                workers_covered="5",
                wage_paid_monthly_eur="0",
                living_wage_benchmark_eur="200",
                benchmark_source="anker",
            ),
            (
                "wage_paid_monthly_eur",
                "0",
                "range",
                "wage_paid_monthly_eur 0 is out of range; it must be > 0 and <= 1000000",
                "wage_paid_monthly_eur 0 valt buiten het bereik; het moet > 0 en <= 1000000 zijn",
            ),
        ),
    ],
)
def test_exact_messages(template, row, expected):
    result = validate(frame([row], first_row=7), template)
    assert not result.ok and result.frame is None
    problem = only_problem(result)
    assert problem["row"] == 7
    got = (problem["column"], problem["value"], problem["rule"], problem["message_en"], problem["message_nl"])
    assert got == expected


def test_pattern_message_uses_the_column_description():
    refiners = load_template("gold", "refiners")
    row = dict(smelter_id="CID12", refiner_country="CH", certification="lbma", volume_g="10")
    problem = only_problem(validate(frame([row]), refiners))
    assert problem["rule"] == "pattern"
    assert problem["message_en"] == (
        "smelter_id 'CID12' does not have the expected form; "
        "RMI smelter identifier: CID followed by six digits, e.g. CID001234."
    )


@pytest.mark.parametrize(
    ("changes", "column", "en", "nl"),
    [
        (  # Excel's AutoCorrect made "51-250" into "51–250"
            {"workers_band": "51\u2013250"},
            "workers_band",
            "workers_band '51–250' is not allowed; use one of: 1-50, 51-250, 251-1000, 1001+ (it holds '–' (U+2013 "
            "EN DASH), which looks like '-' but is another character: type '-' instead)",
            "workers_band '51–250' is niet toegestaan; gebruik een van: 1-50, 51-250, 251-1000, 1001+ (het bevat "
            "'–' (U+2013 EN DASH), dat lijkt op '-' maar een ander teken is: typ '-')",
        ),
        (
            {"order_value_eur": "\u20132.5"},
            "order_value_eur",
            "order_value_eur '–2.5' is not a number; write e.g. 1234.5 or 1234,5 (it holds '–' (U+2013 EN DASH), "
            "which looks like '-' but is another character: type '-' instead)",
            "order_value_eur '–2.5' is geen getal; schrijf bijv. 1234,5 of 1234.5 (het bevat '–' (U+2013 EN DASH), "
            "dat lijkt op '-' maar een ander teken is: typ '-')",
        ),
        (
            {"facility_id": "T001\u2013F1"},
            "facility_id",
            "facility_id 'T001–F1' does not have the expected form; Your own identifier or name for the facility "
            "(letters, digits, spaces, - _ . / & ( ); at most 64 characters). Each facility once. (it holds '–' "
            "(U+2013 EN DASH), which looks like '-' but is another character: type '-' instead)",
            "facility_id 'T001–F1' heeft niet de verwachte vorm; Uw eigen code of naam voor de locatie (letters, "
            "cijfers, spaties, - _ . / & ( ); hoogstens 64 tekens). Elke locatie één keer. (het bevat '–' (U+2013 "
            "EN DASH), dat lijkt op '-' maar een ander teken is: typ '-')",
        ),
        (
            {"order_volume_pieces": "35\u00a0435"},
            "order_volume_pieces",
            "order_volume_pieces '35\u00a0435' is not a whole number; write digits only, e.g. 1200 (it holds '\u00a0' "
            "(U+00A0 NO-BREAK SPACE), a space inside a number: delete it)",
            "order_volume_pieces '35\u00a0435' is geen geheel getal; schrijf alleen cijfers, bijv. 1200 (het bevat "
            "'\u00a0' (U+00A0 NO-BREAK SPACE), een spatie in een getal: verwijder het)",
        ),
        (  # a thousands separator pasted from a web page, in a column of decimal numbers
            {"order_value_eur": "1\u00a0234.5"},
            "order_value_eur",
            "order_value_eur '1\u00a0234.5' is not a number; write e.g. 1234.5 or 1234,5 (it holds '\u00a0' "
            "(U+00A0 NO-BREAK SPACE), a space inside a number: delete it)",
            "order_value_eur '1\u00a0234.5' is geen getal; schrijf bijv. 1234,5 of 1234.5 (het bevat '\u00a0' "
            "(U+00A0 NO-BREAK SPACE), een spatie in een getal: verwijder het)",
        ),
        (  # outside a number a non-breaking space is retyped as a space, not deleted
            {"country": "N\u00a0L"},
            "country",
            "country 'N\u00a0L' is not an ISO 3166 country code; use the two-letter code, e.g. NL (it holds '\u00a0' "
            "(U+00A0 NO-BREAK SPACE), which looks like a space but is another character: type a space instead)",
            "country 'N\u00a0L' is geen ISO 3166-landcode; gebruik de tweeletterige code, bijv. NL (het bevat '\u00a0' "
            "(U+00A0 NO-BREAK SPACE), dat lijkt op een spatie maar een ander teken is: typ een spatie)",
        ),
        (
            {"country": "N\u200bL"},
            "country",
            "country 'N\u200bL' is not an ISO 3166 country code; use the two-letter code, e.g. NL (it holds '\\u200b' "
            "(U+200B ZERO WIDTH SPACE), an invisible character: delete it)",
            "country 'N\u200bL' is geen ISO 3166-landcode; gebruik de tweeletterige code, bijv. NL (het bevat "
            "'\\u200b' (U+200B ZERO WIDTH SPACE), een onzichtbaar teken: verwijder het)",
        ),
    ],
)
def test_a_lookalike_character_is_named_with_its_code_point(changes, column, en, nl):
    """An en dash from Excel's AutoCorrect was refused without a word about it: the value looked right."""
    problem = only_problem(validate(frame([pl_row(**changes)]), PL))
    assert (problem["column"], problem["message_en"], problem["message_nl"]) == (column, en, nl)


@pytest.mark.parametrize(("tier", "ok"), [("0", False), ("1", True), ("4", True), ("5", False)])
def test_inclusive_range_boundaries(tier, ok):
    assert validate(frame([pl_row(tier=tier)]), PL).ok is ok


def test_duplicates_are_reported_on_every_row_and_compound_keys_are_named():
    result = validate(frame([pl_row(), pl_row(facility_id="F2"), pl_row()]), PL)
    problems = result.report.to_frame()
    assert list(problems["row"]) == [2, 4] and set(problems["rule"]) == {"unique"}
    assert problems["message_en"].iloc[0] == (
        "facility_id 'F1' appears in more than one row; each facility_id may appear only once"
    )
    risk = validate(frame([risk_row(), risk_row()]), RISK).report.to_frame()
    assert list(risk["row"]) == [2, 3]
    assert risk["message_en"].iloc[0] == (
        "the combination country='BD', theme='child_labour' appears in more than one row; "
        "each combination of country, theme may appear only once"
    )
    assert risk.iloc[0][["column", "value", "message_nl"]].tolist() == [
        "country, theme",
        "country='BD', theme='child_labour'",
        "de combinatie country='BD', theme='child_labour' komt in meer dan één regel voor; "
        "elke combinatie van country, theme mag maar één keer voorkomen",
    ]
    # the value is the identifier as written, even one that ends in a letter like X or a quote-like character
    twice = validate(frame([pl_row(facility_id="NLX"), pl_row(facility_id="NLX")]), PL).report.to_frame()
    assert twice.iloc[0][["column", "value", "message_nl"]].tolist() == [
        "facility_id",
        "NLX",
        "facility_id 'NLX' komt in meer dan één regel voor; elke facility_id mag maar één keer voorkomen",
    ]


def test_missing_required_column_is_reported_once_at_file_level():
    rows = [pl_row(), pl_row(facility_id="F2")]
    for row in rows:
        del row["tier"]
    problems = validate(frame(rows), PL).report.to_frame()
    assert len(problems) == 1
    problem = problems.iloc[0]
    assert pd.isna(problem["row"]) and problem["column"] == "tier" and problem["rule"] == "missing_column"
    assert problem["message_en"] == "required column 'tier' is missing; add it to the header row (row 1)"
    assert problem["message_nl"] == "verplichte kolom 'tier' ontbreekt; voeg hem toe aan de kopregel (regel 1)"


def test_a_bad_value_is_not_also_reported_as_empty():
    problems = validate(frame([pl_row(tier="x", order_value_eur="-1")]), PL).report.to_frame()
    assert sorted(problems["rule"]) == ["range", "type_integer"]


def test_report_summary_and_text():
    result = validate(frame([pl_row(country="XX"), pl_row(facility_id="F2", tier="9")]), PL)
    report = result.report
    assert report.summary() == {
        "rows_checked": 2,
        "problems": 2,
        "rows_with_problems": 2,
        "file_level_problems": 0,
        "by_rule": {"country": 1, "range": 1},
        "left_out": 0,
    }
    assert report.render_text("en").splitlines() == [
        "2 problems found in 2 rows",
        "  row 2, country: country 'XX' is not an ISO 3166 country code; use the two-letter code, e.g. NL",
        "  row 3, tier: tier 9 is out of range; it must be >= 1 and <= 4",
    ]
    assert report.render_text("nl", limit=1).splitlines()[-1] == "  nog 1 problemen; zie het rapportbestand"
    assert report.to_dict()["problems"][0]["row"] == 2


def test_very_repetitive_problems_are_capped_but_counted():
    rows = [pl_row(facility_id=f"F{i}", country="XX") for i in range(1500)]
    report = validate(frame(rows), PL).report
    assert report.counts == {"country": 1500}
    assert len(report.to_frame()) == 1000 and report.left_out == 500


# ---------------------------------------------------------------- report files


def dangerous_report() -> ValidationReport:
    return ValidationReport.from_problems(
        [
            Problem(2, "facility_id", '=HYPERLINK("http://x")', "pattern", "=1+1", "@SUM(A1)"),
            Problem(3, "tier", "-5", "range", "tier -5 is out of range", "\tx"),
            Problem(None, "tier", None, "missing_column", "plain", "gewoon"),
        ],
        rows_checked=2,
    )


def test_csv_report_neutralises_formulas(tmp_path):
    path = write_report_csv(dangerous_report(), tmp_path / "report.csv")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "column", "value", "rule", "message_en", "message_nl"]
    assert rows[1] == ["", "tier", "", "missing_column", "plain", "gewoon"]  # file level first
    assert rows[2][2:] == ['\'=HYPERLINK("http://x")', "pattern", "'=1+1", "'@SUM(A1)"]
    assert rows[3][2] == "'-5" and rows[3][5] == "'\tx"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_xlsx_report_neutralises_formulas(tmp_path):
    path = write_report_xlsx(dangerous_report(), tmp_path / "report.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["summary", "problems"]
    sheet = book["problems"]
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert values[1][2] == '\'=HYPERLINK("http://x")' and values[1][4] == "'=1+1"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_failed_report_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import xlsxwriter

    def broken_close(self):
        raise OSError("disk full")

    monkeypatch.setattr(xlsxwriter.Workbook, "close", broken_close)
    with pytest.raises(OSError):
        write_report_xlsx(dangerous_report(), tmp_path / "report.xlsx")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- check_file


HEADER = ",".join(PL.column_names)


def test_check_file_detects_the_template_from_csv_columns(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(HEADER + "\nF1,China,laundry,1,1-50,10,2.5\n", encoding="utf-8")
    result = check_file(path, "textile")
    assert result.ok and result.template == "production_locations" and result.spec is PL
    assert result.frame.loc[2, "country"] == "CN"
    assert [w.code for w in result.warnings] == ["normalised_country"]


def test_check_file_with_explicit_template_and_failures(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(HEADER + "\nF1,XX,laundry,1,1-50,10,2.5\n", encoding="utf-8")
    result = check_file(path, "textile", template="production_locations")
    assert not result.ok and result.frame is None and result.template == "production_locations"
    assert result.report.counts == {"country": 1}


def test_check_file_reports_unreadable_and_undetectable_files_without_raising(tmp_path):
    garbage = check_file(b"\x00\x01\x02binary", "textile")
    assert not garbage.ok and garbage.report.counts == {"unreadable": 1}
    unknown = check_file(b"a,b\n1,2\n", "textile")
    assert not unknown.ok and unknown.template is None
    problem = unknown.report.to_frame().iloc[0]
    assert problem["rule"] == "template_unknown"
    assert problem["message_en"].startswith("cannot tell which template this file is for from its columns")


def test_check_file_detects_the_filled_sheet_of_a_workbook():
    book = openpyxl.Workbook()
    book.active.title = "instructions"
    book.create_sheet("living_wage").append(WAGE.column_names)
    filled = book.create_sheet("production_locations")
    filled.append(PL.column_names)
    filled.append(["F1", "NL", "laundry", 1, "1-50", 10, 2.5])
    buffer = io.BytesIO()
    book.save(buffer)
    result = check_file(buffer.getvalue(), "textile")
    assert result.ok and result.template == "production_locations"
    book["living_wage"].append(["IN", 3, 100, 200, "anker"])
    buffer = io.BytesIO()
    book.save(buffer)
    both = check_file(buffer.getvalue(), "textile")
    assert not both.ok and both.report.counts == {"template_unknown": 1}
    assert "several template sheets (living_wage, production_locations)" in both.report.to_frame()["message_en"][0]


# ---------------------------------------------------------------- property tests


ROW = st.fixed_dictionaries(
    {
        "country": st.sampled_from(["NL", "BD", "CN", "TR", "IN"]),
        "facility_type": st.sampled_from(PL.column("facility_type").allowed),
        "tier": st.integers(1, 4).map(str),
        "workers_band": st.sampled_from(PL.column("workers_band").allowed),
        "order_volume_pieces": st.integers(0, 10**9).map(str),
        "order_value_eur": st.floats(0, 1e9, allow_nan=False).map(lambda v: f"{v:.2f}"),
    }
)
FAULTS = {
    "facility_type": ("bogus", "enum"),
    "tier": ("7", "range"),
    "country": ("XX", "country"),
    "workers_band": (None, "missing_value"),
    "order_value_eur": ("-0.5", "range"),
    "order_volume_pieces": ("1.5", "type_integer"),
}


def valid_frame(rows: list[dict]) -> pd.DataFrame:
    return frame([{"facility_id": f"F{i}", **row} for i, row in enumerate(rows)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, min_size=1, max_size=30))
def test_random_valid_frames_pass(rows):
    result = validate(valid_frame(rows), PL)
    assert result.ok, result.report.render_text()
    assert len(result.frame) == len(rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, min_size=1, max_size=30), st.data())
def test_an_injected_fault_is_reported_at_its_row_and_column(rows, data):
    position = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from(sorted(FAULTS)))
    value, rule = FAULTS[column]
    df = valid_frame(rows)
    df.iloc[position, df.columns.get_loc(column)] = value
    problems = validate(df, PL).report.to_frame()
    assert len(problems) == 1
    assert (problems["row"][0], problems["column"][0], problems["rule"][0]) == (position + 2, column, rule)


def assert_same_result(together, alone) -> None:
    assert together.ok == alone.ok
    assert together.report.counts == alone.report.counts and together.report.rows_checked == alone.report.rows_checked
    pd.testing.assert_frame_equal(together.report.to_frame(), alone.report.to_frame())
    if alone.frame is None:
        assert together.frame is None
    else:
        pd.testing.assert_frame_equal(together.frame, alone.frame, check_exact=True)


def as_workbook_values(df: pd.DataFrame) -> pd.DataFrame:
    """The frame as a workbook gives it: numbers as numbers (object columns), the rest as text."""
    out = df.astype(object)
    for column in ("tier", "order_volume_pieces", "order_value_eur", "locations_affected", "grievances_received"):
        if column in out:
            out[column] = [as_number(v) for v in out[column]]
    return out


def as_number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in value else number


PL_FILE = st.tuples(
    st.lists(st.tuples(st.sampled_from(["F1", "F2", "F3", "F4"]), ROW), min_size=1, max_size=6),
    st.one_of(st.none(), st.sampled_from(sorted(FAULTS))),  # a fault in the file's first row
    st.sampled_from(["all", "no order_value_eur", "no country", "workbook"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PL_FILE, min_size=1, max_size=6))
def test_frames_checked_together_give_each_the_result_it_gets_alone(files):
    # validate_many checks small frames as one (unique keys within each frame); a frame with a problem is
    # validated again alone. Facility ids repeat within and across frames, and frames differ in columns and
    # types: every result must still be exactly validate()'s (report, typed rows, verdict).
    frames = []
    for rows, fault, shape in files:
        df = frame([{"facility_id": facility, **row} for facility, row in rows])
        if fault is not None:
            df.iloc[0, df.columns.get_loc(fault)] = FAULTS[fault][0]
        if shape.startswith("no "):
            df = df.drop(columns=shape.removeprefix("no "))
        frames.append(as_workbook_values(df) if shape == "workbook" else df)
    for together, df in zip(validate_many(frames, PL), frames, strict=True):
        assert_same_result(together, validate(df, PL))


RISK_ROW = st.fixed_dictionaries(
    {
        "risk_identified": st.sampled_from(["true", "false"]),
        "risk_prioritised": st.sampled_from(["true", "false"]),
        "grievances_received": st.integers(0, 3).map(str),
        "grievances_resolved": st.integers(0, 4).map(str),
        "theme": st.sampled_from(["child_labour", "forced_labour"]),  # a theme twice in a file: a duplicate
        "planned_actions_next_year": st.sampled_from(["2", "", "1.5", "many"]),  # optional: a bad value still fails
        "severity": st.sampled_from(["high", "", "huge"]),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(RISK_ROW, min_size=1, max_size=4), min_size=2, max_size=5))
def test_cross_column_checks_hold_per_row_when_frames_are_checked_together(files):
    frames = [frame([risk_row(**row) for row in rows]) for rows in files]
    for together, df in zip(validate_many(frames, RISK), frames, strict=True):
        assert_same_result(together, validate(df, RISK))


def test_check_files_equals_check_file_per_file(tmp_path, monkeypatch):
    good = "facility_id,country,facility_type,tier,workers_band,order_volume_pieces,order_value_eur\n"
    good += "F1,NL,laundry,1,1-50,10,2.5\nF2,BD,laundry,2,1-50,20,3.5\n"
    paths = {
        "good.csv": good,
        "duplicate.csv": good + "F1,CN,laundry,1,1-50,1,1\n",
        "also_good.csv": good,  # the same ids as good.csv: unique within a file, not across files
        "empty.csv": "",
    }
    for name, text in paths.items():
        (tmp_path / name).write_text(text)
    sources = [tmp_path / name for name in paths]
    alone = []
    monkeypatch.setattr(validate_module, "validate", lambda df, tpl: alone.append(len(df)) or validate(df, tpl))
    results = check_files(sources, "textile", "production_locations")
    monkeypatch.undo()
    assert [r.ok for r in results] == [True, False, True, False]
    assert alone == [3]  # only the file with a problem is validated again on its own
    for together, source in zip(results, sources, strict=True):
        alone = check_file(source, "textile", "production_locations")
        assert_same_result(together, alone)
        assert (together.template, together.warnings) == (alone.template, alone.warnings)


def test_a_long_bad_value_is_clipped_in_the_report():
    data = (
        "country,workers_covered,wage_paid_monthly_eur,living_wage_benchmark_eur,benchmark_source\n"
        f"BD,5,100,200,{'z' * 5000}\n"
    ).encode()
    result = check_file(data, "textile", "living_wage")
    message = result.report.to_frame()["message_en"].iloc[0]
    assert not result.ok and "zzz" in message and "(5,000 characters)" in message and len(message) < 400
    # up to 80 characters a value is shown whole
    for length, shown in ((80, "q" * 80), (81, "q" * 80 + "… (81 characters)")):
        problem = only_problem(validate(frame([pl_row(facility_type="q" * length)]), PL))
        assert problem["value"] == shown and problem["message_en"].startswith(f"facility_type '{shown}' is not allowed")


# ---------------------------------------------------------------- row parts on threads give the serial answer


def _many_rows(count: int) -> pd.DataFrame:
    rows = [
        pl_row(
            facility_id=f"F{i:05d}",
            country=("BD", "CN", "TR")[i % 3],
            facility_type=PL.column("facility_type").allowed[i % 6],
            tier=str(1 + i % 4),
            order_volume_pieces=str(i * 7),
            order_value_eur=f"{i * 1.25:.2f}",
        )
        for i in range(count)
    ]
    return frame(rows)


@pytest.fixture
def small_parts(monkeypatch):
    """Split columns of a few thousand rows into four parts, as 1M-row columns are on a large machine."""
    from imvo_submit.validation import parallel

    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PART", 500)
    monkeypatch.setattr(parallel, "workers", lambda: 4)


def test_row_parts_cover_every_row_once_in_order(small_parts):
    import pyarrow as pa

    from imvo_submit.validation import parallel

    values = pa.chunked_array([pa.array(range(0, 1500)), pa.array(range(1500, 2001))])
    parts = parallel.row_parts(values)
    assert len(parts) == 4
    assert [v for part in parts for v in part.to_pylist()] == list(range(2001))
    assert parallel.map_rows(lambda part: len(part), values) == [len(p) for p in parts]
    with pytest.raises(ZeroDivisionError):
        parallel.map_rows(lambda part: 1 // 0, values)


def test_checks_on_row_parts_report_exactly_what_one_thread_reports(small_parts, monkeypatch):
    from imvo_submit.validation import parallel

    df = _many_rows(2400)
    # faults on both sides of the part boundaries (600, 1200, 1800) and at the ends
    faults = {
        ("facility_id", 601): "-bad start",
        ("country", 599): "XX",
        ("facility_type", 1201): "bogus",
        ("tier", 1799): "1.5",  # not a whole number: the cast of its part fails, the careful path reports it
        ("order_value_eur", 2): "-1",
        ("facility_id", 2401): "F00003",  # a duplicate of row 5, in another part
    }
    for (column, row), value in faults.items():
        df.loc[row, column] = value
    in_parts = validate(df, PL).report.to_frame()
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PART", 10**9)
    one_thread = validate(df, PL).report.to_frame()
    pd.testing.assert_frame_equal(in_parts, one_thread)
    assert sorted(zip(in_parts["row"], in_parts["rule"], strict=True)) == [
        (2, "range"),
        (5, "unique"),
        (599, "country"),
        (601, "pattern"),
        (1201, "enum"),
        (1799, "type_integer"),
        (2401, "unique"),
    ]


def test_typed_frame_from_row_parts_equals_the_one_thread_frame(small_parts, monkeypatch):
    from imvo_submit.validation import parallel

    df = _many_rows(2400)
    in_parts = validate(df, PL)
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PART", 10**9)
    one_thread = validate(df, PL)
    assert in_parts.ok and one_thread.ok
    pd.testing.assert_frame_equal(in_parts.frame, one_thread.frame)


def test_uniqueness_verdict_is_only_borrowed_for_the_frame_it_was_computed_for():

    from imvo_submit.validation.schema import build_schema, uniqueness_in_background

    typed = validate(frame([pl_row(facility_id="F1"), pl_row(facility_id="F2")]), PL).frame
    duplicated = typed.assign(facility_id=["F1", "F1"])
    with uniqueness_in_background(typed, PL):  # verdict "unique" for `typed` only
        with pytest.raises(pandera.errors.SchemaErrors) as err:
            build_schema(PL).validate(duplicated, lazy=True)
        build_schema(PL).validate(typed, lazy=True)
    assert set(err.value.failure_cases["check"]) == {"unique:facility_id"}
    assert set(err.value.failure_cases["index"]) == {2, 3}  # (one failure row per column: whole-row check)


def test_a_forked_child_validates_with_fresh_threads(small_parts):
    import multiprocessing

    df = _many_rows(2400)
    assert validate(df, PL).ok  # the parent's pools now exist
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_validates_ok, (df,)).get(timeout=60) is True  # a stale pool would hang


def _validates_ok(df: pd.DataFrame) -> bool:
    return validate(df, PL).ok


@pytest.mark.parametrize("volume", ["9007199254740993", "18014398509481985", "1e3", "+5"])
def test_one_files_odd_number_does_not_change_how_another_files_numbers_are_read(volume):
    # Text numbers take the exact route only when every value of the column parses; checked together, a bad
    # value in one file must not send the other file's integers down the route that rounds them above 2**53.
    header = "facility_id,country,facility_type,tier,workers_band,order_volume_pieces,order_value_eur\n"
    good = (header + f"F1,NL,laundry,1,1-50,{volume},2.5\n").encode()
    bad = (header + "F1,NL,laundry,1,1-50,x,2.5\n").encode()
    together = check_files([good, bad, good], "textile", "production_locations")
    alone = check_file(good, "textile", "production_locations")
    # (above 2**53 the value is beyond the column's range: the result must still be the same either way)
    assert [r.ok for r in together] == [alone.ok, False, alone.ok]
    for result in (together[0], together[2]):
        assert_same_result(result, alone)


# ---------------------------------------------------------------- template detection edges (found by mutation testing)


def _one_row_csv(columns: list[str]) -> bytes:
    """A header (each column once, in this order) and one row of 1s: wrong values, but the template is named."""
    header = list(dict.fromkeys(columns))
    return (",".join(header) + "\n" + ",".join(["1"] * len(header)) + "\n").encode("utf-8")


def test_when_several_templates_fit_the_columns_the_one_matching_most_columns_wins():
    materials = load_template("textile", "materials").column_names
    cases = [
        (materials + WAGE.column_names, "living_wage"),  # 5 of living_wage's columns against 3 of materials'
        (WAGE.column_names + PL.column_names, "production_locations"),  # 7 against 5 (country is in both)
        (RISK.required_columns + PL.column_names, "risk_assessment"),  # 8 against 7
        (list(reversed(materials + WAGE.column_names)), "living_wage"),  # column order does not matter
    ]
    for columns, expected in cases:
        assert check_file(_one_row_csv(columns), "textile").template == expected, columns


def test_a_workbook_whose_one_filled_sheet_has_another_name_is_detected_by_its_columns():
    book = openpyxl.Workbook()
    book.active.title = "Blad1"
    book.active.append(PL.column_names)
    book.active.append(["F1", "NL", "laundry", 1, "1-50", 10, 2.5])
    buffer = io.BytesIO()
    book.save(buffer)
    one = check_file(buffer.getvalue(), "textile").report.to_frame().iloc[0]
    assert one["rule"] == "sheet_not_found"  # detected as production_locations, whose sheet it then asks for
    assert one["message_en"].startswith("the workbook has no sheet named 'production_locations' (sheets: Blad1)")
    blad2 = book.create_sheet("Blad2")
    blad2.append(WAGE.column_names)
    blad2.append(["IN", 3, 100, 200, "anker"])
    buffer = io.BytesIO()
    book.save(buffer)
    two = check_file(buffer.getvalue(), "textile")
    assert not two.ok and two.report.counts == {"template_unknown": 1}
    assert two.report.to_frame()["message_en"][0] == (
        "no sheet of the workbook has data in a template sheet "
        "(living_wage, materials, production_locations, risk_assessment)"
    )
    assert two.report.to_frame()["message_nl"][0] == (
        "geen blad van de werkmap heeft gegevens in een sjabloonblad "
        "(living_wage, materials, production_locations, risk_assessment)"
    )


# ---------------------------------------------------------------- failing closed (found by mutation testing)

INTERNAL_EN = (
    "internal check error: a check could not be completed on this file, so it cannot be accepted as it is; "
    "please tell the secretariat (this is a fault of the checking program, not necessarily of your file)"
)
INTERNAL_NL = (
    "interne controlefout: een controle kon op dit bestand niet worden afgerond, dus het kan zo niet worden "
    "aanvaard; meld dit aan het secretariaat (dit is een fout van het controleprogramma, niet per se van uw "
    "bestand)"
)
PL_FILE = (HEADER + "\nF1,NL,laundry,1,1-50,10,2.5\n").encode("utf-8")


def _internal_error_only(result, template: str | None, rows: int) -> None:
    assert result.ok is False and result.frame is None and result.template == template
    assert result.covenant == "textile" and result.warnings == []
    problem = only_problem(result)
    assert (problem["rule"], problem["message_en"], problem["message_nl"]) == (
        "internal_error",
        INTERNAL_EN,
        INTERNAL_NL,
    )
    assert result.report.rows_checked == rows
    assert len(result.report.internal_errors) == 1 and "RuntimeError: reader broke" in result.report.internal_errors[0]


def test_a_reader_that_raises_fails_the_file_closed_and_keeps_the_traceback(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("reader broke")

    monkeypatch.setattr(validation_readers, "read_table", broken)
    _internal_error_only(check_file(PL_FILE, "textile", template="production_locations"), "production_locations", 0)


def test_checks_that_raise_fail_each_file_closed_with_its_rows_counted(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("reader broke")

    monkeypatch.setattr(validate_module, "validate_many", broken)
    monkeypatch.setattr(validate_module, "validate", broken)
    two_rows = PL_FILE + b"F2,NL,laundry,1,1-50,10,2.5\n"
    first, second = check_files([PL_FILE, two_rows], "textile")
    for result, rows in ((first, 1), (second, 2)):
        assert result.spec is PL and only_problem(result)["rule"] == "internal_error"
        assert result.ok is False and result.template == "production_locations" and result.covenant == "textile"
        assert result.report.rows_checked == rows and "RuntimeError" in result.report.internal_errors[0]


def test_files_of_several_templates_are_checked_each_against_its_own():
    wage = (",".join(WAGE.column_names) + "\nIN,3,100,200,anker\n").encode("utf-8")
    results = check_files([PL_FILE, wage, PL_FILE], "textile")
    assert [r.template for r in results] == ["production_locations", "living_wage", "production_locations"]
    assert all(r.ok and r.covenant == "textile" for r in results)
    assert results[1].frame is not None and list(results[1].frame.columns)[:1] == ["country"]


def test_an_explicit_template_is_used_even_when_the_columns_say_otherwise():
    result = check_file(PL_FILE, "textile", template="living_wage")
    assert result.template == "living_wage" and not result.ok


def test_detection_failures_are_explained_in_both_languages():
    def problem(data: bytes, covenant: str = "textile") -> tuple[str, str]:
        found = only_problem(check_file(data, covenant))
        assert found["rule"] == "template_unknown"
        return found["message_en"], found["message_nl"]

    assert problem(b"a,b\n1,2\n", "nope") == (
        "covenant 'nope' has no templates",
        "convenant 'nope' heeft geen sjablonen",
    )
    candidates = "living_wage, materials, production_locations, risk_assessment"
    assert problem(b"a,b\n1,2\n") == (
        f"cannot tell which template this file is for from its columns (candidates: {candidates})",
        f"uit de kolommen blijkt niet voor welk sjabloon dit bestand is (mogelijk: {candidates})",
    )
    book = openpyxl.Workbook()
    for name, columns, row in [
        ("living_wage", WAGE.column_names, ["IN", 3, 100, 200, "anker"]),
        ("production_locations", PL.column_names, ["F1", "NL", "laundry", 1, "1-50", 10, 2.5]),
    ]:
        sheet = book.create_sheet(name)
        sheet.append(columns)
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    assert problem(buffer.getvalue())[1] == (
        "de werkmap heeft gegevens in meerdere sjabloonbladen (living_wage, production_locations); stuur één "
        "sjabloon per bestand of noem het sjabloon"
    )


def test_a_file_with_only_the_required_columns_is_detected():
    row = {k: v for k, v in risk_row().items() if k in RISK.required_columns}
    data = (",".join(row) + "\n" + ",".join(row.values()) + "\n").encode("utf-8")
    result = check_file(data, "textile")
    assert result.template == "risk_assessment" and result.ok


def test_true_and_false_cells_of_a_workbook_are_read_as_booleans():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "risk_assessment"
    row = risk_row()
    sheet.append(list(row))
    sheet.append([{"true": True, "false": False}.get(v, v) for v in row.values()])
    buffer = io.BytesIO()
    book.save(buffer)
    result = check_file(buffer.getvalue(), "textile")
    assert result.ok, result.report.to_frame()
    assert str(result.frame["risk_identified"].dtype) == "boolean" and bool(result.frame["risk_identified"].iloc[0])


# ---------------------------------------------------------------- dates, bounds, detection (found by mutation testing)


def _rules(tmp_path, covenant: str, templates: dict[str, str]):
    """A rules folder holding one covenant with these templates (name -> the TOML of its columns)."""
    folder = tmp_path / "rules" / covenant
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "covenant.toml").write_text(f'name_en = "{covenant}"\nname_nl = "{covenant}"\n', encoding="utf-8")
    for name, text in templates.items():
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path / "rules"


def _column(name: str, kind: str = "string", required: bool = True, extra: str = "") -> str:
    flag = str(required).lower()
    return f'[[columns]]\nname = "{name}"\ntype = "{kind}"\nrequired = {flag}\nsensitivity = "A"\n{extra}\n'


EVENTS = _column("code") + _column("day", "date", required=False)


def test_dates_are_read_in_iso_form_and_other_forms_are_refused(tmp_path):
    events = load_template("demo", "events", _rules(tmp_path, "demo", {"events": EVENTS}))
    days = frame([{"code": "A", "day": "2026-03-31"}, {"code": "B", "day": "2026-04-01T10:30"}, {"code": "C"}])
    result = validate(days, events)
    assert result.ok, result.report.to_frame()
    assert str(result.frame["day"].dtype) == "datetime64[us]"
    assert result.frame["day"].tolist()[:2] == [pd.Timestamp("2026-03-31"), pd.Timestamp("2026-04-01 10:30")]
    assert pd.isna(result.frame.loc[4, "day"])  # an empty cell of an optional date column is no problem
    for written in ("31/03/2026", "March 31, 2026"):  # pandas would guess these; the template asks for ISO dates
        problem = only_problem(validate(frame([{"code": "A", "day": written}]), events))
        assert (problem["row"], problem["column"], problem["rule"]) == (2, "day", "type_date")
        assert problem["message_en"] == f"day '{written}' is not a date; use YYYY-MM-DD, e.g. 2026-03-31"
        assert problem["message_nl"] == f"day '{written}' is geen datum; gebruik JJJJ-MM-DD, bijv. 2026-03-31"


def test_a_pattern_with_braces_is_shown_as_written_when_the_column_has_no_description(tmp_path):
    codes = _column("code", extra="pattern = '^CID\\d{6}$'")
    tpl = load_template("demo", "codes", _rules(tmp_path, "demo", {"codes": codes}))
    problem = only_problem(validate(frame([{"code": "CID12"}]), tpl))
    assert problem["rule"] == "pattern"
    assert problem["message_en"] == "code 'CID12' does not have the expected form; ^CID\\d{6}$"
    assert problem["message_nl"] == "code 'CID12' heeft niet de verwachte vorm; ^CID\\d{6}$"
    levels = _column("level", "enum", extra='allowed = ["low", "{other}"]')  # allowed values are shown as written
    tpl = load_template("demo", "levels", _rules(tmp_path, "demo", {"levels": levels}))
    problem = only_problem(validate(frame([{"level": "high"}]), tpl))
    assert problem["message_en"] == "level 'high' is not allowed; use one of: low, {other}"
    assert problem["message_nl"] == "level 'high' is niet toegestaan; gebruik een van: low, {other}"


@pytest.mark.parametrize(
    ("value", "column", "rule"),
    [
        ("0x10", "order_volume_pieces", "type_integer"),
        ("0X10", "order_volume_pieces", "type_integer"),
        ("nan", "order_value_eur", "type_number"),
        ("inf", "order_value_eur", "type_number"),
        (float("inf"), "order_value_eur", "type_number"),  # a number column read as numbers (CSV, Parquet)
    ],
)
def test_a_value_gets_the_same_verdict_whatever_else_is_in_its_column(value, column, rule):
    # Arrow's fast cast read '0x10' as 16 and 'nan' as an empty cell when every other value of the column
    # parsed, while the general route (taken when any value fails) refuses both: a company's figure must not
    # pass or fail depending on its neighbours.
    rows = frame([pl_row(**{column: value}), pl_row(facility_id="F2")])
    if isinstance(value, float):
        rows[column] = rows[column].astype("float64")
    alone = validate(rows, PL).report.to_frame()
    with_a_bad_one = [pl_row(**{column: value}), pl_row(facility_id="F2", **{column: "lots"})]
    beside = validate(frame(with_a_bad_one), PL).report.to_frame()
    assert alone[["row", "column", "rule"]].values.tolist() == [[2, column, rule]]
    assert beside[beside["row"] == 2][["row", "column", "rule"]].values.tolist() == [[2, column, rule]]


def test_a_whole_number_too_large_to_store_is_out_of_range_not_a_type_error():
    huge = "9300000000000000000"  # a whole number, beyond what the store's 64-bit integers hold
    result = validate(
        frame([pl_row(order_volume_pieces=huge), pl_row(facility_id="F2", order_volume_pieces="1.5")]), PL
    )
    problems = result.report.to_frame().set_index("row")
    assert problems.loc[2, "rule"] == "range" and problems.loc[3, "rule"] == "type_integer"
    assert (
        problems.loc[2, "message_en"]
        == f"order_volume_pieces {huge} is out of range; it must be >= 0 and <= 10000000000"
    )
    assert problems.loc[2, "message_nl"] == (
        f"order_volume_pieces {huge} valt buiten het bereik; het moet >= 0 en <= 10000000000 zijn"
    )
    assert (
        problems.loc[3, "message_en"] == "order_volume_pieces '1.5' is not a whole number; write digits only, e.g. 1200"
    )
    # a template built in code (the standalone aggregator's) may leave out the range: the bound is then the store's
    tpl = Template("demo", "counts", [Column("code", "string", True, "A"), Column("count", "integer", True, "A")])
    rows = [{"code": "A", "count": huge}, {"code": "B", "count": "-" + huge}, {"code": "C", "count": "inf"}]
    rows.append({"code": "D", "count": "lots"})
    with warnings.catch_warnings():  # nothing but the report: no numpy warning on the company's console
        warnings.simplefilter("error", RuntimeWarning)
        problems = validate(frame(rows), tpl).report.to_frame()
    assert problems["rule"].tolist() == ["range", "range", "type_integer", "type_integer"]
    assert problems["message_en"].tolist() == [
        f"count {huge} is out of range; it must be <= 9223372036854774784",
        f"count -{huge} is out of range; it must be <= 9223372036854774784",
        "count 'inf' is not a whole number; write digits only, e.g. 1200",
        "count 'lots' is not a whole number; write digits only, e.g. 1200",
    ]
    assert (
        problems["message_nl"].tolist()[0]
        == f"count {huge} valt buiten het bereik; het moet <= 9223372036854774784 zijn"
    )


def test_booleans_as_pandas_holds_them_are_accepted_like_the_words(tmp_path):
    flags = _column("code") + _column("flag", "boolean", required=False)
    tpl = load_template("demo", "flags", _rules(tmp_path, "demo", {"flags": flags}))
    expected = [True, False, None]
    for column in (
        pd.Series([True, False, None], dtype="boolean"),  # a nullable boolean column
        pd.Series([True, False, None], dtype=object),  # Python booleans with a gap
        pd.Series(["ja", "False", None], dtype=object),
        pd.Series([1.0, 0.0, None], dtype="float64"),  # ones and zeros from a number column
    ):
        df = pd.DataFrame({"code": ["A", "B", "C"], "flag": column}).set_axis(pd.RangeIndex(2, 5))
        result = validate(df, tpl)
        assert result.ok, (column, result.report.to_frame())
        assert str(result.frame["flag"].dtype) == "boolean"
        assert [None if pd.isna(v) else bool(v) for v in result.frame["flag"]] == expected
    df = pd.DataFrame({"code": ["A", "B"], "flag": pd.Series([True, False], dtype=bool)}).set_axis(pd.RangeIndex(2, 4))
    result = validate(df, tpl)
    assert result.ok and str(result.frame["flag"].dtype) == "boolean" and result.frame["flag"].tolist() == [True, False]
    problem = only_problem(validate(pd.DataFrame({"code": ["A"], "flag": ["maybe"]}, index=[2]), tpl))
    assert (problem["rule"], problem["value"]) == ("type_boolean", "maybe")


NESTED = {"short": _column("a") + _column("b"), "long": _column("a") + _column("b") + _column("c", required=False)}
TWINS = {
    "alpha": _column("a") + _column("b") + _column("x", required=False),
    "beta": _column("a") + _column("b") + _column("y", required=False),
    "gamma": _column("a") + _column("z"),
}


def test_a_header_that_is_exactly_one_template_picks_it_over_a_wider_one(tmp_path):
    with using_rules(_rules(tmp_path, "nested", NESTED)):
        assert check_file(b"a,b\n1,2\n", "nested").template == "short"  # 'long' fits too, with c left out
        assert check_file(b"a,b,c\n1,2,3\n", "nested").template == "long"


def test_templates_that_fit_a_header_equally_well_are_named_not_guessed(tmp_path):
    with using_rules(_rules(tmp_path, "twins", TWINS)):
        result = check_file(b"a,b\n1,2\n", "twins")
    assert not result.ok and result.template is None and result.covenant == "twins" and result.warnings == []
    problem = only_problem(result)
    assert (problem["rule"], problem["message_en"], problem["message_nl"]) == (
        "template_unknown",
        "cannot tell which template this file is for from its columns (candidates: alpha, beta)",
        "uit de kolommen blijkt niet voor welk sjabloon dit bestand is (mogelijk: alpha, beta)",
    )


def test_an_unreadable_file_keeps_the_template_and_covenant_it_was_checked_for():
    result = check_file(b"\x00\x01\x02binary", "textile", template="living_wage")
    assert (result.ok, result.template, result.covenant, result.warnings) == (False, "living_wage", "textile", [])
    assert result.report.counts == {"unreadable": 1}


def test_a_reader_refusal_without_a_report_is_reported_in_its_own_words(monkeypatch):
    def refuses(*args, **kwargs):
        raise ValidationFailed("the file uses a layout this reader does not know")

    monkeypatch.setattr(validation_readers, "read_table", refuses)
    result = check_file(PL_FILE, "textile", template="production_locations")
    assert (result.ok, result.template, result.covenant, result.warnings) == (
        False,
        "production_locations",
        "textile",
        [],
    )
    problem = only_problem(result)
    assert pd.isna(problem["row"]) and problem["rule"] == "unreadable"
    assert problem["message_en"] == problem["message_nl"] == "the file uses a layout this reader does not know"


def _deep_fault(depth: int):
    """A fault 2 x depth calls down, through two functions in turn (so Python does not fold the frames)."""
    if depth == 0:
        raise RuntimeError("deep fault")
    _deeper_fault(depth)


def _deeper_fault(depth: int):
    _deep_fault(depth - 1)


def _frames_per_traceback(detail: str) -> list[int]:
    return [part.count('  File "') for part in detail.split("Traceback (most recent call last):")[1:]]


def test_the_traceback_kept_for_the_secretariat_is_bounded(monkeypatch):
    # at most 20 frames per exception, and the error itself: enough to find the fault, not pages per file
    monkeypatch.setattr(validation_readers, "read_table", lambda *a, **k: _deep_fault(50))
    (detail,) = check_file(PL_FILE, "textile").report.internal_errors
    assert _frames_per_traceback(detail) == [20] and detail.rstrip().endswith("RuntimeError: deep fault")
    monkeypatch.undo()
    # checked together and then alone: both faults are kept (the second raised while handling the first)
    monkeypatch.setattr(validate_module, "validate_many", lambda *a: _deep_fault(50))
    monkeypatch.setattr(validate_module, "validate", lambda *a: _deep_fault(50))
    (detail,) = check_file(PL_FILE, "textile").report.internal_errors
    assert _frames_per_traceback(detail) == [20, 20] and detail.rstrip().endswith("RuntimeError: deep fault")


def test_the_filled_template_sheets_of_a_workbook_are_listed():
    book = openpyxl.Workbook()
    book.active.title = "instructions"
    book.active.append(["Fill in one sheet per table"])
    book.active.append(["then send the file"])
    book.create_sheet("living_wage").append(WAGE.column_names)
    book["living_wage"].append(["IN", 3, 100, 200, "anker"])
    filled = book.create_sheet(" Production_Locations ")  # sheet names are matched without case or edge spaces
    filled.append(PL.column_names)
    filled.append(["F1", "NL", "laundry", 1, "1-50", 10, 2.5])
    book.create_sheet("materials").append(load_template("textile", "materials").column_names)  # header only
    buffer = io.BytesIO()
    book.save(buffer)
    assert filled_template_sheets(buffer.getvalue(), "textile") == ["living_wage", "production_locations"]
    assert filled_template_sheets(buffer.getvalue(), "gold") == []  # another covenant's templates
    assert filled_template_sheets(PL_FILE, "textile") == []  # a CSV file holds one table
    assert filled_template_sheets(b"PK\x03\x04 not really a workbook", "textile") == []  # its check says why


# ---------------------------------------------------------------- frames checked together (found by mutation testing)

# A template built in code (as the standalone aggregator builds one) may have an integer column without a range,
# so whole numbers above 2**53, which a float cannot hold exactly, pass and must keep every digit.
COUNTS = Template("demo", "counts", [Column("code", "string", True, "A"), Column("count", "integer", True, "A")])
ABOVE_2_53 = 2**53 + 1


def test_frames_checked_together_keep_whole_numbers_above_2_53_exact():
    good = frame([{"code": "A", "count": str(ABOVE_2_53)}])
    together = validate_many([good, frame([{"code": "B", "count": "7"}])], COUNTS)
    assert [(r.ok, r.frame["count"].tolist(), r.template) for r in together] == [
        (True, [ABOVE_2_53], COUNTS),
        (True, [7], COUNTS),
    ]
    for odd in ("x", "1e3"):  # one value that is no number, one whole number only the general route reads
        other = frame([{"code": "B", "count": odd}])
        results = validate_many([good, other, good], COUNTS)
        assert [r.ok for r in results] == [True, odd == "1e3", True]
        for result in (results[0], results[2]):
            assert result.frame["count"].tolist() == [ABOVE_2_53] and result.template is COUNTS
    # the same column as numbers in one file (a workbook or Parquet file) and as text in another
    numbers = pd.DataFrame({"code": ["A"], "count": [ABOVE_2_53]}).set_axis([2])
    text = frame([{"code": "B", "count": "5"}])
    first, second = validate_many([numbers, text], COUNTS)
    assert first.ok and first.frame["count"].tolist() == [ABOVE_2_53]
    assert second.ok and second.frame["count"].tolist() == [5]


def test_empty_frames_checked_together_still_need_their_required_columns():
    empty = frame([pl_row()]).iloc[:0].drop(columns="tier")
    for result in validate_many([empty, empty], PL):
        assert not result.ok and result.report.counts == {"missing_column": 1}
        assert result.template is PL


def test_a_text_column_holding_numbers_is_read_as_their_text():
    # values "as stored in the file" (a frame of cells): a whole number in a text column is 123, not 123.0, and an
    # empty cell stays empty
    raw = frame([pl_row(), pl_row(), pl_row()])
    raw["facility_id"] = pd.Series([123.0, "F-2", None], dtype=object, index=raw.index)
    result = validate(raw, PL)
    problem = only_problem(result)
    assert (problem["row"], problem["column"], problem["rule"]) == (4, "facility_id", "missing_value")
    raw.loc[4, "facility_id"] = 7.5
    result = validate(raw, PL)
    assert result.ok and result.frame["facility_id"].tolist() == ["123", "F-2", "7.5"]


def test_a_number_that_is_not_whole_is_reported_without_a_note():
    # a workbook hands over numbers as numbers: 1.5 in a column of whole numbers holds no look-alike character
    raw = frame([pl_row()])
    raw["order_volume_pieces"] = pd.Series([1.5], index=raw.index)
    problem = only_problem(validate(raw, PL))
    assert problem["message_en"] == "order_volume_pieces '1.5' is not a whole number; write digits only, e.g. 1200"
    assert problem["message_nl"] == "order_volume_pieces '1.5' is geen geheel getal; schrijf alleen cijfers, bijv. 1200"


def test_a_check_without_a_message_of_its_own_is_reported_by_its_name(monkeypatch):
    real = validate_module.build_schema

    def with_an_extra_check(template, within=None):
        schema = real(template, within)
        checks = [*schema.columns["facility_id"].checks, pandera.Check(lambda s: s != "F0", name="not_{F0}")]
        return schema.update_column("facility_id", checks=checks)

    monkeypatch.setattr(validate_module, "build_schema", with_an_extra_check)
    problem = only_problem(validate(frame([pl_row(facility_id="F0"), pl_row()]), PL))
    assert (problem["row"], problem["rule"], problem["value"]) == (2, "not_{F0}", "F0")
    assert problem["message_en"] == "facility_id 'F0' fails check not_{F0}"
    assert problem["message_nl"] == "facility_id 'F0' voldoet niet aan not_{F0}"


@pytest.mark.parametrize(
    ("changes", "held", "plain"),
    [
        ({"country": "\uff2e\uff2c"}, "'Ｎ' (U+FF2E FULLWIDTH LATIN CAPITAL LETTER N)", "N"),  # an Asian input method
        ({"facility_id": "F1\uff01"}, "'！' (U+FF01 FULLWIDTH EXCLAMATION MARK)", "!"),  # the first full-width form
        ({"facility_id": "F1\uff5e"}, "'～' (U+FF5E FULLWIDTH TILDE)", "~"),  # the last one
        ({"order_volume_pieces": "\u0661\u0662"}, "'١' (U+0661 ARABIC-INDIC DIGIT ONE)", "1"),  # another script's digit
    ],
)
def test_full_width_characters_and_other_digits_are_named_with_what_to_type(changes, held, plain):
    problem = only_problem(validate(frame([pl_row(**changes)]), PL))
    assert problem["message_en"].endswith(
        f" (it holds {held}, which looks like '{plain}' but is another character: type '{plain}' instead)"
    )
    assert problem["message_nl"].endswith(
        f" (het bevat {held}, dat lijkt op '{plain}' maar een ander teken is: typ '{plain}')"
    )
