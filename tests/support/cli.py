"""Reading the one JSON document every command prints with --json (docs/json.md)."""

from __future__ import annotations

import json

from click.testing import Result


def json_result(done: Result) -> object:
    """The document's `result`, after checking its frame: ok and exit_code agree with the exit code, no error."""
    doc = json.loads(done.stdout)
    assert set(doc) == {"command", "version", "format", "ok", "exit_code", "result", "error"}, doc
    assert (doc["ok"], doc["exit_code"], doc["error"]) == (done.exit_code == 0, done.exit_code, None), doc
    assert doc["command"].split()[0] in ("aggregator", "imvo-submit") and doc["format"] == 1
    return doc["result"]


def json_error(done: Result) -> dict:
    """The document's `error` ({message, hint}) of a failed command."""
    doc = json.loads(done.stdout)
    assert doc["ok"] is False and doc["exit_code"] == done.exit_code != 0 and doc["result"] is None, doc
    return doc["error"]
