"""Reading one TOML table with errors that name the file and the dotted key."""

from __future__ import annotations

from typing import Any

from aggregator.errors import ConfigError
from aggregator.protocol.model import IDENTIFIER, Text

_REQUIRED = object()

# ------------------------------------------------------------------------------------------------ reader


class Section:
    """One TOML table being read: remembers the file, the dotted path and which keys were used."""

    def __init__(self, file: str, path: str, data: Any):
        self.file, self.path = file, path
        if not isinstance(data, dict):
            raise self._error_at(path, f"expected a table, got {describe_value(data)}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _error_at(self, dotted: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{self.file}: {dotted}: {message}", hint=hint)

    def error(self, key: str, message: str, hint: str | None = None) -> ConfigError:
        return self._error_at(self.key(key), message, hint)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = _REQUIRED) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                raise self.error(key, "missing")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python, but `min_contributors = true` is a mistake
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(key, f"expected {kind_name(kinds)}, got {describe_value(value)}")
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            raise self.error(key, f"expected {kind_name(kinds)}, got {describe_value(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _REQUIRED) -> Any:
        value = self.get(key, str, default)
        if value is not default and value not in choices:
            raise self.error(key, f"'{value}' is not one of {', '.join(choices)}")
        return value

    def identifier(self, key: str) -> str:
        value = self.get(key, str)
        if not IDENTIFIER.match(value):
            raise self.error(key, f"'{value}' is not a valid id (lower-case letters, digits and _)")
        return value

    def number(self, key: str, default: Any = _REQUIRED, *, low: float, high: float | None = None) -> Any:
        value = self.get(key, float, default)
        if value is not default and (value < low or (high is not None and value > high)):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise self.error(key, f"must be {bounds}, got {value:g}")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, *, low: int) -> Any:
        value = self.get(key, int, default)
        if value is not default and value < low:
            raise self.error(key, f"must be at least {low}, got {value}")
        return value

    def strings(self, key: str, default: Any = _REQUIRED) -> tuple[str, ...]:
        values = self.get(key, list, default)
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise self._error_at(f"{self.key(key)}[{i}]", f"expected a string, got {describe_value(value)}")
        return tuple(values)

    def text(self, key: str, default: Any = _REQUIRED) -> Text | None:
        if key not in self.data and default is not _REQUIRED:
            self.used.add(key)
            return default
        section = self.section(key)
        text = Text(en=section.get("en", str), nl=section.get("nl", str))
        section.done()
        return text

    def section(self, key: str, default: Any = _REQUIRED) -> Section:
        return Section(self.file, self.key(key), self.get(key, dict, default))

    def sections(self, key: str, default: Any = _REQUIRED) -> list[Section]:
        items = self.get(key, list, default)
        return [Section(self.file, f"{self.key(key)}[{i}]", item) for i, item in enumerate(items)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown setting", hint="see docs/protocols.md for the settings")


def kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names |= {list: "a list", dict: "a table"}
    return " or ".join(names[k] for k in kinds)


def describe_value(value: Any) -> str:
    kinds = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    kinds |= {list: "a list", dict: "a table"}
    return kinds.get(type(value), type(value).__name__)
