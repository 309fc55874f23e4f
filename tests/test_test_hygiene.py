"""The suite's own layering: shared helpers live in tests/support/, and no test reaches into a private name.

A test that imports another test module couples two files no one reads together; a test that imports a
private name pins an implementation instead of a behaviour (make it public, or test what it does).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0].startswith("test_") or node.module.startswith("tests"):
                found.append(f"{path.name}:{node.lineno} imports the test module {node.module}")
            if node.module.split(".")[0] in ("aggregator", "bench"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.name}:{node.lineno} imports the private name {alias.name}")
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("aggregator")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                found.append(f"{path.name}:{node.lineno} reads the private name {ast.unparse(node)}")
    return found


def test_no_test_imports_another_test_module_or_a_private_name():
    files = [p for p in TESTS.rglob("*.py") if "vectors" not in p.parts]
    assert [v for p in sorted(files) for v in _violations(p)] == []


def test_the_check_sees_both_kinds_of_violation(tmp_path):
    bad = tmp_path / "test_bad.py"
    bad.write_text(
        "from test_history import Lab\nfrom aggregator.batch import _coverage\nimport aggregator.batch as b\nb._x\n"
    )
    assert len(_violations(bad)) == 3
