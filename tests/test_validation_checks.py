"""The checks behind validate: fast paths that must agree with the exact checks, and checks that fail closed
(issue 21, item 4: an exception inside a check fails the file, never passes it)."""

from __future__ import annotations

import importlib

import pandas as pd
import pandera.pandas as pandera
from hypothesis import given, settings
from hypothesis import strategies as st

from imvo_submit.validation import check_file, check_files, load_template, validate
from support.validation_rows import frame, pl_row

validate_module = importlib.import_module("imvo_submit.validation.validate")  # the package's `validate` is the function

PL = load_template("textile", "production_locations")
WAGE = load_template("textile", "living_wage")


# ---------------------------------------------------------------- fast paths agree with the exact checks

# Short ids, values that differ only past the first 8-byte word or only in length, empty text, non-ASCII,
# NUL bytes and values longer than the fingerprint limit: every case the word-wise fingerprint handles.
TEXT = st.one_of(
    st.sampled_from(["", "a", "a\x00", "ABCDEFGH", "ABCDEFGH1", "ABCDEFGH2", "ABCDEFGH12", "F00000001", "é", "e"]),
    st.text(max_size=20),
    st.text(alphabet="xy", min_size=60, max_size=70),
)


def arrow_text(values: list[str | None], chunk: int) -> pd.Series:
    """A str column backed by a chunked Arrow array, as the CSV reader produces it."""
    import pyarrow as pa

    parts = [values[i : i + chunk] for i in range(0, len(values), chunk)] or [[]]
    arrays = [pa.array(part, pa.large_string()) for part in parts]
    return pd.Series(pa.chunked_array(arrays, pa.large_string()).to_pandas(), dtype="str")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT), max_size=40), st.integers(1, 7))
def test_uniqueness_fast_path_agrees_with_the_exact_check(values, chunk):
    from imvo_submit.validation.schema import distinct_fingerprints, no_duplicates

    series = arrow_text(values, chunk)
    present = [v for v in values if v is not None]
    exact = len(set(present)) == len(present)
    assert no_duplicates(series) == exact
    if not exact:
        assert not distinct_fingerprints(series)  # a sufficient test may never call duplicates distinct


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT, st.sampled_from(["Têxteis Barcelos", "Ä!", "x y", "ß"])), max_size=40))
def test_pattern_check_agrees_with_python_regular_expressions_on_mixed_text(values):
    # RE2 decides the ASCII values, Python the others (\w differs between them beyond ASCII)
    import re

    from imvo_submit.validation.schema import fullmatch

    pattern = PL.column("facility_id").pattern
    mask = fullmatch(pattern)(arrow_text(values, 3))
    expected = [v is not None and re.fullmatch(pattern, v) is not None for v in values]
    assert mask.tolist() == expected
    assert mask.index.equals(pd.RangeIndex(len(values)))


def test_duplicates_past_the_first_eight_bytes_are_found_and_near_misses_pass():
    ids = ["ABCDEFGH-1", "ABCDEFGH-2", "ABCDEFGH-1", "ABCDEFGH", "ABCDEFGH-10"]
    df = frame([pl_row(facility_id=i) for i in ids])
    problems = validate(df, PL).report.to_frame()
    assert list(problems["row"]) == [2, 4] and set(problems["rule"]) == {"unique"}
    assert set(problems["value"]) == {"ABCDEFGH-1"}
    assert validate(frame([pl_row(facility_id=i) for i in ids[1:]]), PL).ok


# ---------------------------------------------------------------- fail closed (issue 21: item 4)

THREE_DUPLICATES = (
    b"country,workers_covered,wage_paid_monthly_eur,living_wage_benchmark_eur,benchmark_source\n"
    + b"BD,5,119.5,256.6,anker\n" * 3
)


def test_a_check_that_raises_fails_the_file_instead_of_passing_it(monkeypatch):
    # pandera catches an exception inside a check and reports it without a row; such failures were dropped,
    # so three identical rows came out ok=True when the uniqueness check raised.
    schema_module = importlib.import_module("imvo_submit.validation.schema")

    def broken(values):
        raise KeyError("a check that raises")

    monkeypatch.setattr(schema_module, "no_duplicates", broken)
    result = check_file(THREE_DUPLICATES, "textile", "living_wage")
    assert not result.ok and result.frame is None
    problems = result.report.to_frame()
    assert problems["rule"].tolist() == ["internal_error"]
    assert problems["message_en"].iloc[0].startswith("internal check error: a check could not be completed")
    (detail,) = result.report.internal_errors
    assert "KeyError" in detail and "a check that raises" in detail  # the traceback, for the secretariat only
    assert "Traceback" not in result.report.render_text()


def test_a_checked_together_file_whose_check_raises_fails_alone(monkeypatch):
    real = validate_module.validate_many

    def broken(frames, template):
        raise TypeError("unexpected")

    monkeypatch.setattr(validate_module, "validate_many", broken)
    good = THREE_DUPLICATES.split(b"\n", 2)[0] + b"\nBD,5,119.5,256.6,anker\n"
    results = check_files([good, good], "textile", "living_wage")
    assert [r.ok for r in results] == [True, True]  # checked again one by one, where nothing raises
    monkeypatch.setattr(validate_module, "validate", lambda *a: (_ for _ in ()).throw(TypeError("still")))
    results = check_files([good, good], "textile", "living_wage")
    assert [r.report.to_frame()["rule"].tolist() for r in results] == [["internal_error"]] * 2
    monkeypatch.setattr(validate_module, "validate_many", real)


def test_a_failure_without_a_row_is_never_dropped(monkeypatch):
    # A whole-column failure cannot occur for frames typed before the schema runs; if one ever does, the file
    # fails (with an internal check error) instead of passing.
    real = validate_module.build_schema

    def with_a_whole_frame_verdict(template, within=None):
        schema = real(template, within)
        return schema.add_checks([pandera.Check(lambda frame: False, name="whole_file")])  # a verdict, no row

    monkeypatch.setattr(validate_module, "build_schema", with_a_whole_frame_verdict)
    good = THREE_DUPLICATES.split(b"\n", 2)[0] + b"\nBD,5,119.5,256.6,anker\n"
    result = check_file(good, "textile", "living_wage")
    assert not result.ok
    assert result.report.to_frame()["rule"].tolist() == ["internal_error"]
    assert "whole_file" in result.report.internal_errors[0]


def test_values_beyond_the_declared_range_are_refused_at_validation():
    # issue 21 item 2: 1e308 kg and 2**63 - 1 workers passed (no maximum) and then stopped every release
    data = (
        b"country,workers_covered,wage_paid_monthly_eur,living_wage_benchmark_eur,benchmark_source\n"
        b"BD,9223372036854775807,1e308,256.6,anker\n"
    )
    problems = check_file(data, "textile", "living_wage").report.to_frame()
    assert problems["message_en"].tolist() == [
        "wage_paid_monthly_eur 1e+308 is out of range; it must be > 0 and <= 1000000",
        "workers_covered 9223372036854775807 is out of range; it must be >= 0 and <= 100000000",
    ]
    weight = b"material,certification,weight_kg\ncotton,none,1e308\n"
    (message,) = check_file(weight, "textile", "materials").report.to_frame()["message_en"]
    assert message == "weight_kg 1e+308 is out of range; it must be >= 0 and <= 100000000000"
