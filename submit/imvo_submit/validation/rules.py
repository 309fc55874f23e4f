"""Submission templates as data: one TOML file per template in rules/<covenant>/<template>.toml.

Loading checks the rules file itself (unknown keys, wrong types, unknown checks, unknown columns) and fails
with a ConfigError naming the file and the key, so a typo in a rules file never silently weakens validation.
The file format is documented in rules/README.md.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from imvo_submit.errors import AggregatorError, ConfigError
from imvo_submit.text import did_you_mean, printable

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"  # the rules this copy ships (the repository's rules/)
# The rules in force for this thread of work: a company's installed rules bundle replaces the shipped covenants.
REFERENCE_FOLDER = "reference"  # lists every covenant uses (M49 regions, labels): not a covenant
_ACTIVE_RULES: ContextVar[Path | None] = ContextVar("active_rules", default=None)

COLUMN_TYPES = ("string", "integer", "number", "boolean", "country", "enum", "date")
SENSITIVITY_CLASSES = ("A", "B", "C", "X")
# Registered cross-column checks: name -> the column types each side must have.
CHECK_KINDS: dict[str, tuple[str, ...]] = {
    "implies": ("boolean",),  # left true -> right true
    "not_greater": ("integer", "number"),  # left <= right
}
# The largest magnitude a value of each numeric type may have, so the store holds it and the batch adds it up
# exactly: integers are summed as doubles (exact up to 2**53), numbers as DECIMAL(38, 6) (up to 10**32).
STORE_LIMITS = {"integer": 2**53, "number": 10.0**15}
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_IDENTIFIER_LENGTH = 63  # DuckDB and most SQL engines accept this; keeps table names readable

_TEMPLATE_KEYS = {"name", "covenant", "title_en", "title_nl", "description_en", "description_nl", "unique"}
_COLUMN_KEYS = {
    "name",
    "type",
    "required",
    "unit",
    "allowed",
    "range",
    "pattern",
    "sensitivity",
    "description_en",
    "description_nl",
}
_RANGE_KEYS = {"min", "max", "min_inclusive", "max_inclusive"}
_CHECK_KEYS = {"name", "kind", "left", "right", "message_en", "message_nl"}


@dataclass(frozen=True)
class Range:
    """Allowed numeric interval; a bound of None is open."""

    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True

    def describe(self, language: str = "en") -> str:
        """Plain text such as '>= 0' or '>= 1 and <= 4' ('en' in Dutch)."""
        lo = None if self.min is None else f"{'>=' if self.min_inclusive else '>'} {_num(self.min)}"
        hi = None if self.max is None else f"{'<=' if self.max_inclusive else '<'} {_num(self.max)}"
        joiner = " en " if language == "nl" else " and "
        return joiner.join(part for part in (lo, hi) if part)


@dataclass(frozen=True)
class Column:
    """One column of a submission template."""

    name: str
    type: str
    required: bool
    sensitivity: str
    unit: str = ""
    allowed: tuple[str, ...] = ()
    range: Range | None = None
    pattern: str | None = None
    description_en: str = ""
    description_nl: str = ""

    def description(self, language: str = "en") -> str:
        return self.description_nl if language == "nl" else self.description_en


@dataclass(frozen=True)
class CrossCheck:
    """A registered check between two columns of one row, e.g. implies: risk_prioritised -> risk_identified"""

    name: str
    kind: str
    left: str
    right: str
    message_en: str = ""
    message_nl: str = ""

    def describe(self) -> str:
        symbol = "->" if self.kind == "implies" else "<="
        return f"{self.left} {symbol} {self.right}"


@dataclass(frozen=True)
class Template:
    """A submission template: its columns, uniqueness keys and cross-column checks."""

    covenant: str
    name: str
    columns: list[Column]
    unique: list[list[str]] = field(default_factory=list)
    checks: list[CrossCheck] = field(default_factory=list)
    title_en: str = ""
    title_nl: str = ""
    description_en: str = ""
    description_nl: str = ""
    source: Path | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def title(self, language: str = "en") -> str:
        return (self.title_nl if language == "nl" else self.title_en) or self.name

    def description(self, language: str = "en") -> str:
        return self.description_nl if language == "nl" else self.description_en


@contextmanager
def using_rules(rules_dir: Path | None) -> Iterator[None]:
    """Check, template and list with the covenant folders in `rules_dir` (None: the shipped rules) inside the
    block; the company tool uses the rules bundle the secretariat sent (imvo_submit.bundle)."""
    token = _ACTIVE_RULES.set(None if rules_dir is None else Path(rules_dir))
    try:
        yield
    finally:
        _ACTIVE_RULES.reset(token)


def rules_home(rules_dir: Path | None = None) -> Path:
    """The folder the covenants' templates are read from: `rules_dir`, else the one in force, else the shipped."""
    return Path(rules_dir) if rules_dir is not None else (_ACTIVE_RULES.get() or RULES_DIR)


def rule_files(rules_dir: Path | None = None) -> dict[str, bytes]:
    """Every file of every covenant folder, by its path below the rules folder (`textile/materials.toml`): what a
    rules bundle carries and what the rules version is a digest of. Reference lists ship with the tool."""
    base = rules_home(rules_dir)
    return {
        path.relative_to(base).as_posix(): path.read_bytes()
        for covenant in covenants(base)
        for path in sorted((base / covenant).iterdir())
        if path.is_file() and not path.name.startswith(".")
    }


def rules_version(rules_dir: Path | None = None) -> str:
    """12 hex digits of a SHA-256 over the rule files: the same rules give the same version on both sides,
    whichever copy they came from, so the secretariat can tell what a file was checked against."""
    digest = hashlib.sha256()
    for name, content in sorted(rule_files(rules_dir).items()):
        for part in (name.encode("utf-8"), content):
            digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:12]


def load_template(covenant: str, template: str, rules_dir: Path | None = None) -> Template:
    """Load and check rules/<covenant>/<template>.toml; raise ConfigError naming the file and key."""
    base = rules_home(rules_dir)
    _check_name_part(covenant, "covenant")
    _check_name_part(template, "template")
    path = base / covenant / f"{template}.toml"
    if not path.is_file():
        known = ", ".join(templates_for(covenant, base)) or "none"
        raise ConfigError(
            f"there is no template '{template}' for covenant '{covenant}' ({path} does not exist)",
            hint=f"templates of {covenant}: {known}",
        )
    return _load_cached(path.resolve(), path.stat().st_mtime_ns, covenant, template)


def templates_for(covenant: str, rules_dir: Path | None = None) -> list[str]:
    """Names of the covenant's templates, sorted; an unknown covenant has none."""
    base = rules_home(rules_dir)
    folder = base / covenant
    if not IDENTIFIER.match(covenant) or covenant == REFERENCE_FOLDER or not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.toml") if p.stem != "covenant")


def covenants(rules_dir: Path | None = None) -> list[str]:
    """Names of the covenants whose rules are in force (a folder with covenant.toml and templates), sorted."""
    base = rules_home(rules_dir)
    found = (p.parent.name for p in base.glob("*/covenant.toml"))
    return sorted(name for name in found if templates_for(name, base))


def check_covenant(covenant: str, rules_dir: Path | None = None) -> str:
    """`covenant` when this copy has its rules; else an error listing the known ones, with a did-you-mean."""
    known = covenants(rules_dir)
    if covenant in known:
        return covenant
    raise AggregatorError(
        f"'{printable(covenant)}' is not a covenant this tool knows{did_you_mean(covenant, known)}",
        hint=f"use the covenant's short name: {', '.join(known) or 'none'}",
    )


def check_template(covenant: str, template: str, rules_dir: Path | None = None) -> str:
    """`template` when it is one of the covenant's templates; else an error listing them, with a did-you-mean."""
    known = templates_for(check_covenant(covenant, rules_dir), rules_dir)
    if template in known:
        return template
    raise AggregatorError(
        f"'{printable(template)}' is not a template of covenant '{covenant}'{did_you_mean(template, known)}",
        hint=f"templates of {covenant}: {', '.join(known)}",
    )


def covenant_info(covenant: str, rules_dir: Path | None = None) -> dict[str, str]:
    """The covenant's display names from rules/<covenant>/covenant.toml (name_en, name_nl)."""
    base = rules_home(rules_dir)
    path = base / covenant / "covenant.toml"
    if not path.is_file():
        return {"name_en": covenant, "name_nl": covenant}
    data = _read_toml(path)
    unknown = set(data) - {"name_en", "name_nl"}
    if unknown:
        raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}'", hint="allowed keys: name_en, name_nl")
    return {"name_en": str(data.get("name_en", covenant)), "name_nl": str(data.get("name_nl", covenant))}


@lru_cache(maxsize=64)
def _load_cached(path: Path, _mtime: int, covenant: str, template: str) -> Template:
    # Keyed on the file's mtime so an edited rules file is re-read within one long-running process.
    return parse_template(_read_toml(path), path, covenant, template)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="check quotes and brackets") from exc


def parse_template(data: dict[str, Any], path: Path, covenant: str, template: str) -> Template:
    """Turn a parsed TOML document into a Template, checking every key."""
    where = _Where(path)
    _no_unknown(data, {"template", "columns", "checks"}, where, "")
    head = data.get("template", {})
    where.expect(head, dict, "template")
    _no_unknown(head, _TEMPLATE_KEYS, where, "template")
    for key, expected in (("name", template), ("covenant", covenant)):
        if key in head and head[key] != expected:
            raise ConfigError(f"{path}: key 'template.{key}' is '{head[key]}' but the file says '{expected}'")
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise ConfigError(f"{path}: key 'columns' must be a non-empty list of [[columns]] tables")
    columns = [_parse_column(raw, where, f"columns[{i}]") for i, raw in enumerate(raw_columns)]
    _no_duplicates([c.name for c in columns], where, "columns")
    by_name = {c.name: c for c in columns}
    unique = _parse_unique(head.get("unique", []), by_name, where)
    raw_checks = data.get("checks", [])
    where.expect(raw_checks, list, "checks")
    checks = [_parse_check(raw, by_name, where, f"checks[{i}]") for i, raw in enumerate(raw_checks)]
    _no_duplicates([c.name for c in checks], where, "checks")
    texts = {k: where.text(head, k, "template") for k in ("title_en", "title_nl", "description_en")}
    return Template(
        covenant=covenant,
        name=template,
        columns=columns,
        unique=unique,
        checks=checks,
        description_nl=where.text(head, "description_nl", "template"),
        source=path,
        **texts,
    )


class _Where:
    """Helpers that raise ConfigErrors naming the rules file and the key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.path}: key '{key}' {problem}", hint=hint)

    def expect(self, value: Any, kind: type | tuple[type, ...], key: str) -> None:
        # bool is an int in Python; a rules file saying `min = true` is a mistake, not the number 1.
        bad_bool = isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind)
        if not isinstance(value, kind) or bad_bool:
            names = " or ".join(k.__name__ for k in _as_tuple(kind))
            raise self.fail(key, f"must be of type {names}, not {type(value).__name__} ({value!r})")

    def text(self, table: dict[str, Any], key: str, prefix: str) -> str:
        value = table.get(key, "")
        self.expect(value, str, f"{prefix}.{key}")
        return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _no_unknown(table: dict[str, Any], allowed: set[str], where: _Where, prefix: str) -> None:
    for key in sorted(table):
        if key not in allowed:
            full = f"{prefix}.{key}" if prefix else key
            raise where.fail(full, "is not a known key", hint=f"allowed here: {', '.join(sorted(allowed))}")


def _no_duplicates(names: list[str], where: _Where, key: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise where.fail(key, f"names '{name}' twice; names must be unique")
        seen.add(name)


def _check_name_part(value: str, what: str) -> None:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ConfigError(
            f"'{value}' is not a valid {what} name",
            hint="use lower-case letters, digits and underscores, starting with a letter",
        )


def _check_identifier(value: Any, where: _Where, key: str) -> str:
    where.expect(value, str, key)
    if not IDENTIFIER.match(value) or len(value) > MAX_IDENTIFIER_LENGTH:
        raise where.fail(
            key,
            f"is '{value}', which is not a valid SQL identifier",
            hint="use lower-case letters, digits and underscores (at most 63), starting with a letter or _",
        )
    return value


def _parse_column(raw: Any, where: _Where, key: str) -> Column:
    where.expect(raw, dict, key)
    _no_unknown(raw, _COLUMN_KEYS, where, key)
    for needed in ("name", "type", "required", "sensitivity"):
        if needed not in raw:
            raise where.fail(f"{key}.{needed}", "is missing")
    name = _check_identifier(raw["name"], where, f"{key}.name")
    kind = raw["type"]
    where.expect(kind, str, f"{key}.type")
    if kind not in COLUMN_TYPES:
        raise where.fail(f"{key}.type", f"is '{kind}', not a known type", hint=f"use one of {COLUMN_TYPES}")
    where.expect(raw["required"], bool, f"{key}.required")
    sensitivity = raw["sensitivity"]
    if sensitivity not in SENSITIVITY_CLASSES:
        raise where.fail(f"{key}.sensitivity", f"is {sensitivity!r}; use one of A, B, C, X")
    allowed = _parse_allowed(raw, kind, where, key)
    value_range = _parse_range(raw.get("range"), kind, where, f"{key}.range")
    pattern = _parse_pattern(raw.get("pattern"), kind, where, f"{key}.pattern")
    unit = where.text(raw, "unit", key)
    if kind in STORE_LIMITS:
        _check_numeric_bounds(value_range, unit, kind, where, key)
    return Column(
        name=name,
        type=kind,
        required=raw["required"],
        sensitivity=sensitivity,
        unit=unit,
        allowed=allowed,
        range=value_range,
        pattern=pattern,
        description_en=where.text(raw, "description_en", key),
        description_nl=where.text(raw, "description_nl", key),
    )


def _parse_allowed(raw: dict[str, Any], kind: str, where: _Where, key: str) -> tuple[str, ...]:
    if kind != "enum":
        if "allowed" in raw:
            raise where.fail(f"{key}.allowed", f"only applies to enum columns, not to type '{kind}'")
        return ()
    values = raw.get("allowed")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise where.fail(f"{key}.allowed", "must be a non-empty list of non-empty strings")
    if len({v.casefold() for v in values}) != len(values):
        raise where.fail(f"{key}.allowed", "lists a value twice (ignoring case)")
    return tuple(values)


def _parse_range(raw: Any, kind: str, where: _Where, key: str) -> Range | None:
    if raw is None:
        return None
    if kind not in ("integer", "number"):
        raise where.fail(key, f"only applies to integer and number columns, not to type '{kind}'")
    where.expect(raw, dict, key)
    _no_unknown(raw, _RANGE_KEYS, where, key)
    for bound in ("min", "max"):
        if bound in raw:
            where.expect(raw[bound], (int, float), f"{key}.{bound}")
    for flag in ("min_inclusive", "max_inclusive"):
        if flag in raw:
            where.expect(raw[flag], bool, f"{key}.{flag}")
    result = Range(raw.get("min"), raw.get("max"), raw.get("min_inclusive", True), raw.get("max_inclusive", True))
    if result.min is None and result.max is None:
        raise where.fail(key, "needs at least one of min and max")
    if result.min is not None and result.max is not None and result.min > result.max:
        raise where.fail(key, f"has min {result.min} above max {result.max}")
    return result


def _check_numeric_bounds(value_range: Range | None, unit: str, kind: str, where: _Where, key: str) -> None:
    """Every number column says what it counts and how large it may be, within what the store can add up: a
    value without a maximum (1e308 kg) passes validation and then stops every release."""
    if not unit:
        raise where.fail(f"{key}.unit", 'is missing; a number column must name its unit, e.g. unit = "kg"')
    limit = STORE_LIMITS[kind]
    if value_range is None or value_range.min is None or value_range.max is None:
        raise where.fail(
            f"{key}.range",
            "must give both min and max for a number column",
            hint=f"e.g. range = {{ min = 0, max = 1000000 }}; the store holds at most {limit:.3g} for type '{kind}'",
        )
    if max(abs(value_range.min), abs(value_range.max)) > limit:
        raise where.fail(
            f"{key}.range",
            f"allows values beyond {limit:.3g}, the largest the store adds up exactly for type '{kind}'",
        )


def _parse_pattern(raw: Any, kind: str, where: _Where, key: str) -> str | None:
    if raw is None:
        return None
    if kind != "string":
        raise where.fail(key, f"only applies to string columns, not to type '{kind}'")
    where.expect(raw, str, key)
    try:
        re.compile(raw)
    except re.error as exc:
        raise where.fail(key, f"is not a valid regular expression: {exc}") from exc
    return raw


def _parse_unique(raw: Any, by_name: dict[str, Column], where: _Where) -> list[list[str]]:
    key = "template.unique"
    where.expect(raw, list, key)
    result = []
    for i, keyset in enumerate(raw):
        if not isinstance(keyset, list) or not keyset or not all(isinstance(c, str) for c in keyset):
            raise where.fail(f"{key}[{i}]", "must be a non-empty list of column names")
        for col in keyset:
            if col not in by_name:
                raise where.fail(f"{key}[{i}]", f"names the unknown column '{col}'")
        result.append(list(keyset))
    return result


def _parse_check(raw: Any, by_name: dict[str, Column], where: _Where, key: str) -> CrossCheck:
    where.expect(raw, dict, key)
    _no_unknown(raw, _CHECK_KEYS, where, key)
    for needed in ("kind", "left", "right"):
        if needed not in raw:
            raise where.fail(f"{key}.{needed}", "is missing")
    kind = raw["kind"]
    if kind not in CHECK_KINDS:
        raise where.fail(
            f"{key}.kind", f"is '{kind}', not a registered check", hint=f"use one of {sorted(CHECK_KINDS)}"
        )
    for side in ("left", "right"):
        col = raw[side]
        where.expect(col, str, f"{key}.{side}")
        if col not in by_name:
            raise where.fail(f"{key}.{side}", f"names the unknown column '{col}'")
        if by_name[col].type not in CHECK_KINDS[kind]:
            raise where.fail(
                f"{key}.{side}",
                f"column '{col}' has type '{by_name[col].type}'; {kind} needs {CHECK_KINDS[kind]}",
            )
    name = raw.get("name", f"{raw['left']}_{kind}_{raw['right']}")
    _check_identifier(name, where, f"{key}.name")
    return CrossCheck(
        name=name,
        kind=kind,
        left=raw["left"],
        right=raw["right"],
        message_en=where.text(raw, "message_en", key),
        message_nl=where.text(raw, "message_nl", key),
    )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
