"""Validate a raw frame against its template and report every problem at once, in English and Dutch.

`check_file` is the single entry point for both the company's `imvo-submit check` and the secretariat's
intake, so a file that passes on the company's laptop passes at intake with the same warnings.
"""

from __future__ import annotations

import traceback
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow as pa
import pyarrow.compute as pc
from pandera.errors import SchemaErrorReason

from imvo_submit.errors import ValidationFailed
from imvo_submit.text import character_name
from imvo_submit.validation import parallel, readers
from imvo_submit.validation.report import PROBLEM_COLUMNS, Problem, ValidationReport
from imvo_submit.validation.rules import Column, Template, check_template, load_template, templates_for
from imvo_submit.validation.schema import CROSS_PREFIX, DTYPES, UNIQUE_PREFIX, build_schema, uniqueness_in_background

_INT64_LIMIT = 2**63 - 1024  # floats this large no longer hold whole numbers exactly


@dataclass
class ValidationResult:
    """`frame` is the typed clean frame (template columns, index = spreadsheet row) when ok, else None."""

    ok: bool
    frame: pd.DataFrame | None
    report: ValidationReport
    template: Template


@dataclass
class CheckResult:
    """The outcome of checking one file: the same for the company's check and the secretariat's intake."""

    ok: bool
    template: str | None  # the template's name, e.g. 'production_locations' (None when undetectable)
    frame: pd.DataFrame | None
    warnings: list[readers.ReadWarning]
    report: ValidationReport
    covenant: str = ""
    spec: Template | None = field(default=None, repr=False)  # the loaded template, when known


def validate(df: pd.DataFrame, template: Template | str) -> ValidationResult:
    """Type-convert and check `df` (index = spreadsheet rows); collects every problem (pandera lazy mode).

    Fails closed: a check that raises instead of answering (pandera reports it without a row) makes the file
    fail with an internal check error; the details go to `report.internal_errors`, for the secretariat."""
    tpl = readers.resolve_template(template)
    missing = [c.name for c in tpl.columns if c.required and c.name not in df.columns]
    typed, type_problems, bad_cells = _typed_frame(df, tpl)
    parts = [_missing_column_problems(missing), *type_problems]
    problems, broken = _schema_problems(typed, tpl, bad_cells, set(missing))
    parts.append(problems)
    if broken:
        parts.append(pd.DataFrame([vars(_internal_error())], columns=PROBLEM_COLUMNS))
    report = ValidationReport.from_parts(parts, rows_checked=len(df))
    report.internal_errors = broken
    return ValidationResult(report.ok, typed if report.ok else None, report, tpl)


def _internal_error() -> Problem:
    return _file_level(
        "internal_error",
        "internal check error: a check could not be completed on this file, so it cannot be accepted as it is; "
        "please tell the secretariat (this is a fault of the checking program, not necessarily of your file)",
        "interne controlefout: een controle kon op dit bestand niet worden afgerond, dus het kan zo niet worden "
        "aanvaard; meld dit aan het secretariaat (dit is een fout van het controleprogramma, niet per se van uw "
        "bestand)",
    )


def _failed_closed(raw: pd.DataFrame, tpl: Template) -> ValidationResult:
    """validate(), with any unexpected exception turned into an internal check error instead of a crash."""
    try:
        return validate(raw, tpl)
    except MemoryError:
        raise  # the worker tells the clerk the file needs more memory than allowed
    except BaseException as exc:  # noqa: BLE001 - fail closed; a native reader's panic is a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        report = ValidationReport.from_problems([_internal_error()], rows_checked=len(raw))
        report.internal_errors = [traceback.format_exc(limit=20)]
        return ValidationResult(False, None, report, tpl)


def validate_many(frames: Sequence[pd.DataFrame], template: Template | str) -> list[ValidationResult]:
    """validate() of each frame, the small ones checked together.

    A small file spends nearly all of its check in per-call overhead (about 8 ms for 30 rows), so frames of up
    to TOGETHER_ROWS rows with the same columns are typed and checked as one frame, unique keys within each
    frame. A frame with any problem there is validated again on its own, so its report is exactly validate()'s;
    the others pass with the rows the combined check typed. Either way each result equals validate(frame)'s."""
    tpl = readers.resolve_template(template)
    results: list[ValidationResult | None] = [None] * len(frames)
    shapes: dict[tuple, list[int]] = {}
    for n, frame in enumerate(frames):
        if len(frame) <= TOGETHER_ROWS and all(c.name in frame.columns for c in tpl.columns if c.required):
            shapes.setdefault((tuple(frame.columns), tuple(map(str, frame.dtypes))), []).append(n)
    for members in (m for m in shapes.values() if len(m) > 1):
        passed = _passing_together([frames[n] for n in members], tpl)
        for n, typed in zip(members, passed, strict=True):
            if typed is not None:
                results[n] = ValidationResult(True, typed, ValidationReport(rows_checked=len(typed)), tpl)
    return [result or validate(frame, tpl) for result, frame in zip(results, frames, strict=True)]


TOGETHER_ROWS = 10_000  # larger frames are checked alone: their per-call overhead is small beside the work
_FILE = "#file"  # the column that tells validate_many's frames apart (template column names cannot hold '#')


def _passing_together(frames: list[pd.DataFrame], tpl: Template) -> list[pd.DataFrame | None]:
    """Per frame, its typed rows when it has no problem in the frames' combined check, else None."""
    together = pd.concat(frames, ignore_index=True)
    sizes = np.array([len(frame) for frame in frames])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    nobody = [None] * len(frames)  # no frame is known to pass: each is validated alone
    if not _numbers_convert_alike(together, tpl):
        return nobody
    try:
        typed, _, bad_cells = _typed_frame(together, tpl)
    except (ValueError, TypeError):  # e.g. dates with and without a time zone in different frames
        return nobody
    failing = np.logical_or.reduce([np.zeros(len(together), dtype=bool), *bad_cells.values()])
    try:
        checked = typed.assign(**{_FILE: np.repeat(np.arange(len(frames)), sizes)})
        build_schema(tpl, within=_FILE).validate(checked, lazy=True, inplace=True)
    except pandera.errors.SchemaErrors as exc:
        rows = exc.failure_cases["index"]
        if rows.isna().any():  # a failure of the whole frame (e.g. a dtype)
            return nobody
        failing[rows.astype("int64").to_numpy()] = True
    return [
        None if failing[a:b].any() else typed.iloc[a:b].set_axis(frame.index)
        for frame, a, b in zip(frames, starts[:-1], starts[1:], strict=True)
    ]


def _numbers_convert_alike(together: pd.DataFrame, tpl: Template) -> bool:
    """Whether each frame's number columns convert as the combined ones do. Text takes the exact route
    (_cast_text) only when every value of the column parses; one frame's odd value would send every frame down
    the general route, which holds integers above 2**53 inexactly."""
    for col in tpl.columns:
        raw = together.get(col.name)
        if col.type in ("integer", "number") and raw is not None and raw.dtype != object:
            if pd.api.types.is_string_dtype(raw.dtype) and _cast_text(raw, col.type == "integer") is None:
                return False
    return True


def check_file(path: str | Path | bytes, covenant: str, template: str | None = None) -> CheckResult:
    """Read, detect the template (if not given) and validate one submission file."""
    return check_files([path], covenant, template)[0]


@dataclass
class _Read:
    template: Template
    raw: pd.DataFrame
    warnings: list[readers.ReadWarning]


def check_files(sources: Sequence[str | Path | bytes], covenant: str, template: str | None = None) -> list[CheckResult]:
    """check_file of each file; those of one template are validated together (validate_many).

    Never raises for a file's content (MemoryError aside): an unexpected exception fails that file with an
    internal check error, never passes it. An unknown covenant or template name (a typo in a command) raises."""
    if template is not None:
        check_template(covenant, template)
    results: list[CheckResult | _Read] = [_read_failing_closed(source, covenant, template) for source in sources]
    by_template: dict[str, list[int]] = {}
    for n, item in enumerate(results):
        if isinstance(item, _Read):
            by_template.setdefault(item.template.name, []).append(n)
    for members in by_template.values():
        read = [results[n] for n in members]
        tpl = read[0].template
        try:
            validated = validate_many([r.raw for r in read], tpl)
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - each file alone, so the exception costs only the file that raises it
            validated = [_failed_closed(r.raw, tpl) for r in read]
        for n, one, result in zip(members, read, validated, strict=True):
            results[n] = CheckResult(result.ok, tpl.name, result.frame, one.warnings, result.report, covenant, tpl)
    return results  # type: ignore[return-value]  # every _Read was replaced by its CheckResult


def _read_failing_closed(source: str | Path | bytes, covenant: str, template: str | None) -> _Read | CheckResult:
    try:
        return _read(source, covenant, template)
    except MemoryError:
        raise
    except BaseException as exc:  # noqa: BLE001 - fail closed; a native reader's panic is a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        report = ValidationReport.from_problems([_internal_error()])
        report.internal_errors = [traceback.format_exc(limit=20)]
        return CheckResult(False, template, None, [], report, covenant)


def _read(source: str | Path | bytes, covenant: str, template: str | None) -> _Read | CheckResult:
    """The file read for its template (detected when not given), or the failed check of an unreadable file."""
    data, name = readers.load_bytes(source)
    warnings: list[readers.ReadWarning] = []
    try:
        tpl = load_template(covenant, template) if template else _detect_template(data, name, covenant)
        raw, warnings = readers.read_table(data, tpl, filename=name)
    except ValidationFailed as exc:
        report = exc.report or ValidationReport.from_problems([_file_level("unreadable", exc.message, exc.message)])
        return CheckResult(False, template, None, warnings, report, covenant)
    return _Read(tpl, raw, warnings)


# ---------------------------------------------------------------- template detection


def _detect_template(data: bytes, name: str, covenant: str) -> Template:
    names = templates_for(covenant)
    if not names:
        raise _detection_failed(
            f"covenant '{covenant}' has no templates", f"convenant '{covenant}' heeft geen sjablonen"
        )
    templates = [load_template(covenant, n) for n in names]
    fmt = readers.detect_format(data, name)
    known = {c.name for t in templates for c in t.columns}
    headers = readers.file_headers(data, fmt, known)
    if fmt == "xlsx":
        return _template_from_sheets(headers, templates)
    return _template_from_columns(headers.get("", []), templates)


def filled_template_sheets(source: str | Path | bytes, covenant: str) -> list[str]:
    """The templates whose sheet holds data in a workbook (the covenant's template workbook, filled in), sorted;
    an empty list for another kind of file, or a workbook that cannot be read (its check says why)."""
    try:
        data, name = readers.load_bytes(source)
        if readers.detect_format(data, name) != "xlsx":
            return []
        names = templates_for(covenant)
        known = {c.name for t in names for c in load_template(covenant, t).columns}
        headers = readers.file_headers(data, "xlsx", known)
    except ValidationFailed:
        return []
    return sorted({sheet.strip().casefold() for sheet in headers} & set(names))


def _template_from_sheets(headers: dict[str, list[str]], templates: list[Template]) -> Template:
    by_name = {t.name: t for t in templates}
    filled = sorted({s.strip().casefold() for s in headers} & set(by_name))
    if len(filled) == 1:
        return by_name[filled[0]]
    if not filled:
        if len(headers) == 1:  # a single filled sheet with another name: fall back to its columns
            return _template_from_columns(next(iter(headers.values())), templates)
        return _no_template_sheet(templates)
    listed = ", ".join(filled)
    raise _detection_failed(
        f"the workbook has data in several template sheets ({listed}); send one template per file or name the template",
        f"de werkmap heeft gegevens in meerdere sjabloonbladen ({listed}); stuur één sjabloon per bestand "
        "of noem het sjabloon",
    )


def _no_template_sheet(templates: list[Template]) -> Template:
    listed = ", ".join(t.name for t in templates)
    raise _detection_failed(
        f"no sheet of the workbook has data in a template sheet ({listed})",
        f"geen blad van de werkmap heeft gegevens in een sjabloonblad ({listed})",
    )


def _template_from_columns(header: list[str], templates: list[Template]) -> Template:
    present = set(header)
    exact = [t for t in templates if set(t.column_names) == present]
    fits = exact or [t for t in templates if set(t.required_columns) <= present]
    if len(fits) == 1:
        return fits[0]
    if len(fits) > 1:
        fits = sorted(fits, key=lambda t: (-len(present & set(t.column_names)), t.name))
        if len(present & set(fits[0].column_names)) > len(present & set(fits[1].column_names)):
            return fits[0]
    listed = ", ".join(t.name for t in (fits or templates))
    raise _detection_failed(
        f"cannot tell which template this file is for from its columns (candidates: {listed})",
        f"uit de kolommen blijkt niet voor welk sjabloon dit bestand is (mogelijk: {listed})",
    )


def _detection_failed(en: str, nl: str) -> ValidationFailed:
    report = ValidationReport.from_problems([_file_level("template_unknown", en, nl)])
    return ValidationFailed(en, report=report, hint="name the template explicitly, e.g. --template living_wage")


def _file_level(rule: str, en: str, nl: str, column: str | None = None) -> Problem:
    return Problem(None, column, None, rule, en, nl)


# ---------------------------------------------------------------- type conversion


def _typed_frame(df: pd.DataFrame, tpl: Template) -> tuple[pd.DataFrame, list[pd.DataFrame], dict[str, Any]]:
    """Typed columns, a problem frame per column with unconvertible cells, and those cells' masks."""
    typed: dict[str, pd.Series] = {}
    problems: list[pd.DataFrame] = []
    bad_cells: dict[str, np.ndarray] = {}
    for col in tpl.columns:
        if col.name not in df.columns:
            # None, not pd.NA: a float64 column cannot hold pd.NA (pandas 3 raises TypeError)
            typed[col.name] = pd.Series(None, index=df.index, dtype=DTYPES[col.type])
            continue
        raw = df[col.name]
        values, bad = _convert(raw, col)
        typed[col.name] = values
        if bad.any():
            bad_cells[col.name] = bad
            problems.append(_type_problems(raw[bad], col))
            if col.type == "integer":  # a whole number too large for the store is out of range, not "not a number"
                problems[-1] = _beyond_the_store(problems[-1], col)
    return pd.DataFrame(typed, index=df.index), problems, bad_cells


def _convert(raw: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    """(typed values, mask of cells that had a value that could not be converted)."""
    if col.type in ("integer", "number"):
        return _to_number(raw, integer=col.type == "integer")
    if col.type == "boolean":
        return _to_boolean(raw)
    if col.type == "date":
        return _to_date(raw)
    text = _text(raw)
    return text, np.zeros(len(raw), dtype=bool)


def _text(raw: pd.Series) -> pd.Series:
    if raw.dtype == object:
        raw = raw.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else v)
    return raw.astype("str").where(raw.notna(), None).astype("str")


def _to_number(raw: pd.Series, integer: bool) -> tuple[pd.Series, np.ndarray]:
    fast = _cast_text(raw, integer)
    if fast is not None:
        return fast, np.zeros(len(raw), dtype=bool)
    if raw.dtype == bool or str(raw.dtype) == "boolean":
        numbers = pd.Series(np.nan, index=raw.index)
        bad = raw.notna().to_numpy()
    else:
        source = raw.map(lambda v: np.nan if isinstance(v, bool) else v) if raw.dtype == object else raw
        numbers = pd.to_numeric(source, errors="coerce").astype("float64")
        bad = (raw.notna() & numbers.isna()).to_numpy()
    finite = np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))
    bad = bad | (raw.notna().to_numpy() & ~finite & numbers.notna().to_numpy())
    if integer:
        values = numbers.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = bad | (~np.isnan(values) & ((np.abs(values) > _INT64_LIMIT) | (np.mod(values, 1) != 0)))
        numbers = numbers.mask(bad)
        return numbers.astype("Int64"), bad
    return numbers.mask(bad), bad


def _cast_text(raw: pd.Series, integer: bool) -> pd.Series | None:
    """Fast path: a text column whose every value parses (pyarrow cast); None when any value does not."""
    if raw.dtype == object or not pd.api.types.is_string_dtype(raw.dtype):
        if pd.api.types.is_integer_dtype(raw.dtype) and integer:
            return raw.astype("Int64")
        if pd.api.types.is_float_dtype(raw.dtype) and not integer:
            values = raw.astype("float64")
            return values if np.isfinite(values.dropna().to_numpy()).all() else None
        return None
    target = pa.int64() if integer else pa.float64()
    try:
        arrow = pa.array(raw, from_pandas=True)
        # Arrow's cast also reads '0x10' as 16 and 'nan' as a number, which the general route refuses: a value
        # must not pass or fail depending on the others in its column, so those take the general route
        if integer and pc.any(pc.or_(pc.starts_with(arrow, "0x"), pc.starts_with(arrow, "0X"))).as_py():
            return None
        # Arrow's cast on row parts in parallel; a value that does not parse in any part raises here.
        parts = parallel.map_rows(lambda part: part.cast(target), arrow)
        numbers = pa.chunked_array([c for part in parts for c in parallel.chunks_of(part)], type=target)
        if integer:
            whole = numbers.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
            return whole.set_axis(raw.index)
        if pc.all(pc.is_finite(numbers)).as_py() is False:  # 'inf' or 'nan' as text (an empty cell is null)
            return None
        return pd.Series(numbers.to_numpy(), index=raw.index)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return None


def _to_boolean(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if raw.dtype == bool or str(raw.dtype) == "boolean":
        return raw.astype("boolean"), np.zeros(len(raw), dtype=bool)
    words = {**dict.fromkeys(readers.TRUE_WORDS, True), **dict.fromkeys(readers.FALSE_WORDS, False)}

    def word(v: Any) -> Any:
        if isinstance(v, bool | np.bool_):
            return bool(v)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        return words.get(str(v).strip().casefold(), None)

    uniques = pd.unique(raw.dropna())
    lookup = {u: word(u) for u in uniques}
    values = raw.map(lookup).astype("boolean")
    bad = (raw.notna() & values.isna()).to_numpy()
    return values, bad


def _to_date(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    text = _text(raw)
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    bad = (text.notna() & parsed.isna()).to_numpy()
    return parsed.astype(DTYPES["date"]), bad


# ---------------------------------------------------------------- problems and messages


def _missing_column_problems(missing: list[str]) -> pd.DataFrame:
    rows = [
        _file_level(
            "missing_column",
            f"required column '{name}' is missing; add it to the header row (row 1)",
            f"verplichte kolom '{name}' ontbreekt; voeg hem toe aan de kopregel (regel 1)",
            name,
        )
        for name in missing
    ]
    return pd.DataFrame([vars(p) for p in rows], columns=PROBLEM_COLUMNS)


_TYPE_MESSAGES = {
    "integer": (
        "type_integer",
        "{c} '{v}' is not a whole number; write digits only, e.g. 1200",
        "{c} '{v}' is geen geheel getal; schrijf alleen cijfers, bijv. 1200",
    ),
    "number": (
        "type_number",
        "{c} '{v}' is not a number; write e.g. 1234.5 or 1234,5",
        "{c} '{v}' is geen getal; schrijf bijv. 1234,5 of 1234.5",
    ),
    "boolean": (
        "type_boolean",
        "{c} '{v}' is not true or false; use true or false (ja/nee also works)",
        "{c} '{v}' is geen true of false; gebruik true of false (ja/nee mag ook)",
    ),
    "date": (
        "type_date",
        "{c} '{v}' is not a date; use YYYY-MM-DD, e.g. 2026-03-31",
        "{c} '{v}' is geen datum; gebruik JJJJ-MM-DD, bijv. 2026-03-31",
    ),
}


def _beyond_the_store(problems: pd.DataFrame, col: Column) -> pd.DataFrame:
    """Rewrite the type problems of values that are whole numbers, only too large to store, as range problems."""
    numbers = pd.to_numeric(problems["value"], errors="coerce")
    with np.errstate(invalid="ignore"):
        large = (numbers.abs() > _INT64_LIMIT) & np.isfinite(numbers) & (np.mod(numbers, 1) == 0)
    if not large.any():
        return problems
    allowed_en = col.range.describe("en") if col.range else f"<= {_INT64_LIMIT}"
    allowed_nl = col.range.describe("nl") if col.range else f"<= {_INT64_LIMIT}"
    problems = problems.copy()
    problems.loc[large, "rule"] = "range"
    problems.loc[large, "message_en"] = [
        f"{col.name} {v} is out of range; it must be {allowed_en}" for v in problems.loc[large, "value"]
    ]
    problems.loc[large, "message_nl"] = [
        f"{col.name} {v} valt buiten het bereik; het moet {allowed_nl} zijn" for v in problems.loc[large, "value"]
    ]
    return problems


def _type_problems(bad: pd.Series, col: Column) -> pd.DataFrame:
    rule, en, nl = _TYPE_MESSAGES[col.type]
    raw = bad.tolist()
    values = [_show(v) for v in raw]
    notes = [_odd_character(v, numeric=col.type in ("integer", "number")) for v in raw]
    return pd.DataFrame(
        {
            "row": bad.index.to_numpy(),
            "column": col.name,
            "value": values,
            "rule": rule,
            "message_en": [en.format(c=col.name, v=v) + note[0] for v, note in zip(values, notes, strict=True)],
            "message_nl": [nl.format(c=col.name, v=v) + note[1] for v, note in zip(values, notes, strict=True)],
        }
    )


# Characters that look like plain ones but are not: Excel's AutoCorrect turns "-" into an en dash, web pages and
# Word give non-breaking spaces and curly quotes, Asian input methods full-width letters and digits.
_LOOKALIKES = {
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63", "-"),
    **dict.fromkeys("\u00a0\u2007\u2009\u202f\u3000", " "),
    **dict.fromkeys("\u2018\u2019\u201b\u2032\u00b4", "'"),
    **dict.fromkeys("\u201c\u201d\u201f\u2033", '"'),
    "\u201a": ",",
}
_SCAN_MAX = 1000  # characters of a failing value searched for one of them


def _odd_character(value: Any, numeric: bool = False) -> tuple[str, str]:
    """For a value that failed its check: the first character in it that only looks like a plain one, named with
    its code point and what to type instead (English, Dutch); empty strings when it holds none. In a number a
    space of any kind is deleted, not retyped."""
    if not isinstance(value, str):
        return "", ""
    for char in value[:_SCAN_MAX]:
        instead = _LOOKALIKES.get(char)
        if numeric and instead == " ":
            name = character_name(char)
            return f" (it holds {name}, a space inside a number: delete it)", (
                f" (het bevat {name}, een spatie in een getal: verwijder het)"
            )
        if instead is None and "\uff01" <= char <= "\uff5e":  # full-width forms of ASCII
            instead = chr(ord(char) - 0xFEE0)
        if instead is None and char.isdigit() and not char.isascii():
            instead = str(unicodedata.digit(char, "")) or None
        if instead is not None:
            name, shown = character_name(char), "a space" if instead == " " else f"'{instead}'"
            shown_nl = "een spatie" if instead == " " else f"'{instead}'"
            return (
                f" (it holds {name}, which looks like {shown} but is another character: type {shown} instead)",
                f" (het bevat {name}, dat lijkt op {shown_nl} maar een ander teken is: typ {shown_nl})",
            )
        if unicodedata.category(char) in ("Cf", "Cc", "Zs") and char not in " \t":
            name = character_name(char)
            return f" (it holds {name}, an invisible character: delete it)", (
                f" (het bevat {name}, een onzichtbaar teken: verwijder het)"
            )
    return "", ""


_SHOW_MAX = 80  # a report names the value; a 10 MB cell must not become a 10 MB message


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)  # 1e+308, not 309 digits
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    text = str(value)
    return text if len(text) <= _SHOW_MAX else f"{text[:_SHOW_MAX]}… ({len(text):,} characters)"


def _schema_problems(
    typed: pd.DataFrame, tpl: Template, bad_cells: dict[str, np.ndarray], missing: set[str]
) -> tuple[pd.DataFrame, list[str]]:
    """The report rows of the schema's failures, and the details of every failure that names no row.

    A failure without a row is a check that raised instead of answering (pandera catches the exception and
    reports it so), or a whole-column failure that cannot occur for frames typed above: neither may pass."""
    try:
        # inplace: the schema never coerces (types are converted above), so pandera's defensive copy of a
        # frame we built ourselves costs time (about a tenth of a small file's check) and buys nothing.
        with uniqueness_in_background(typed, tpl):
            build_schema(tpl).validate(typed, lazy=True, inplace=True)
    except pandera.errors.SchemaErrors as exc:
        broken = [str(e) for e in exc.schema_errors if e.reason_code is SchemaErrorReason.CHECK_ERROR]
        if any("MemoryError" in text for text in broken):
            raise MemoryError("a check ran out of memory") from exc  # the worker reports the memory limit
        cases = exc.failure_cases
        if not broken:  # no check raised, but some failure names no row: not one the report can explain
            rowless = cases[cases["index"].isna()]
            broken = [f"{c.check} on {c.column}: {c.failure_case}" for c in rowless.itertuples()]
        return _translate(cases[cases["index"].notna()], typed, tpl, bad_cells, missing), broken
    return pd.DataFrame(columns=PROBLEM_COLUMNS), []


def _translate(
    cases: pd.DataFrame,
    typed: pd.DataFrame,
    tpl: Template,
    bad_cells: dict[str, np.ndarray],
    missing: set[str],
) -> pd.DataFrame:
    """pandera failure cases (each with a row) -> report rows; whole-row checks come once per column: keep one
    per row."""
    is_row_check = cases["check"].astype(str).str.startswith((UNIQUE_PREFIX, CROSS_PREFIX))
    parts = [
        _row_check_problems(str(check), group, typed, tpl)
        for check, group in cases[is_row_check].groupby("check", sort=True)
    ]
    for (column, check), group in cases[~is_row_check].groupby(["column", "check"], sort=True):
        if column not in missing:
            parts.append(_cell_problems(tpl.column(str(column)), str(check), group, typed, bad_cells))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=PROBLEM_COLUMNS)


def _cell_problems(
    col: Column, check: str, group: pd.DataFrame, typed: pd.DataFrame, bad_cells: dict[str, np.ndarray]
) -> pd.DataFrame:
    rows = group["index"].astype("int64").to_numpy()
    if check == "not_nullable" and col.name in bad_cells:
        # A cell that failed type conversion is already reported with its text; do not call it empty too.
        already = typed.index[bad_cells[col.name]]
        rows = rows[~np.isin(rows, already)]
    if not len(rows):
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    raw = typed.loc[rows, col.name].tolist()
    values = [_show(v) for v in raw]
    rule, en, nl = _cell_message(col, check)
    notes = [_odd_character(v) for v in raw] if rule in ("enum", "country", "pattern") else [("", "")] * len(raw)
    return pd.DataFrame(
        {
            "row": rows,
            "column": col.name,
            "value": [None if rule == "missing_value" else v for v in values],
            "rule": rule,
            "message_en": [en.format(c=col.name, v=v) + note[0] for v, note in zip(values, notes, strict=True)],
            "message_nl": [nl.format(c=col.name, v=v) + note[1] for v, note in zip(values, notes, strict=True)],
        }
    )


def _cell_message(col: Column, check: str) -> tuple[str, str, str]:
    if check == "not_nullable":
        return "missing_value", "{c} is empty; fill in a value", "{c} is leeg; vul een waarde in"
    if check == "enum":
        allowed = ", ".join(col.allowed).replace("{", "{{").replace("}", "}}")
        return (
            "enum",
            "{c} '{v}' is not allowed; use one of: " + allowed,
            "{c} '{v}' is niet toegestaan; gebruik een van: " + allowed,
        )
    if check == "country":
        return (
            "country",
            "{c} '{v}' is not an ISO 3166 country code; use the two-letter code, e.g. NL",
            "{c} '{v}' is geen ISO 3166-landcode; gebruik de tweeletterige code, bijv. NL",
        )
    if check == "range":
        assert col.range is not None  # a range failure only comes from a column with a range
        return (
            "range",
            "{c} {v} is out of range; it must be " + col.range.describe("en"),
            "{c} {v} valt buiten het bereik; het moet " + col.range.describe("nl") + " zijn",
        )
    if check == "pattern":
        return (
            "pattern",
            "{c} '{v}' does not have the expected form; " + _braces(col.description_en or col.pattern or ""),
            "{c} '{v}' heeft niet de verwachte vorm; " + _braces(col.description_nl or col.pattern or ""),
        )
    return check, "{c} '{v}' fails check " + _braces(check), "{c} '{v}' voldoet niet aan " + _braces(check)


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _row_check_problems(check: str, group: pd.DataFrame, typed: pd.DataFrame, tpl: Template) -> pd.DataFrame:
    rows = np.unique(group["index"].astype("int64").to_numpy())
    if check.startswith(UNIQUE_PREFIX):
        keys = check.removeprefix(UNIQUE_PREFIX).split(",")
        return _unique_problems(keys, rows, typed)
    cross = next(c for c in tpl.checks if c.name == check.removeprefix(CROSS_PREFIX))
    lefts = typed.loc[rows, cross.left].tolist()
    rights = typed.loc[rows, cross.right].tolist()
    en = cross.message_en or f"{cross.describe()} does not hold"
    nl = cross.message_nl or f"{cross.describe()} klopt niet"
    return pd.DataFrame(
        {
            "row": rows,
            "column": f"{cross.left}, {cross.right}",
            "value": [f"{_show(a)}, {_show(b)}" for a, b in zip(lefts, rights, strict=True)],
            "rule": cross.kind,
            "message_en": en,
            "message_nl": nl,
        }
    )


def _unique_problems(keys: list[str], rows: np.ndarray, typed: pd.DataFrame) -> pd.DataFrame:
    values = typed.loc[rows, keys]
    if len(keys) == 1:
        shown = [f"'{_show(v)}'" for v in values[keys[0]].tolist()]
        en = [f"{keys[0]} {s} appears in more than one row; each {keys[0]} may appear only once" for s in shown]
        nl = [
            f"{keys[0]} {s} komt in meer dan één regel voor; elke {keys[0]} mag maar één keer voorkomen" for s in shown
        ]
        plain = [s.strip("'") for s in shown]
    else:
        plain = [
            ", ".join(f"{k}='{_show(v)}'" for k, v in zip(keys, rec, strict=True))
            for rec in values.itertuples(index=False)
        ]
        names = ", ".join(keys)
        en = [
            f"the combination {p} appears in more than one row; each combination of {names} may appear only once"
            for p in plain
        ]
        nl = [
            f"de combinatie {p} komt in meer dan één regel voor; "
            f"elke combinatie van {names} mag maar één keer voorkomen"
            for p in plain
        ]
    return pd.DataFrame(
        {
            "row": rows,
            "column": ", ".join(keys),
            "value": plain,
            "rule": "unique",
            "message_en": en,
            "message_nl": nl,
        }
    )
