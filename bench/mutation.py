"""`make mutation` = `.venv/bin/python -m bench.mutation`: mutation testing of the disclosure core, validation,
the envelope and the history code with mutmut, one module at a time.

Each module runs in its own scratch folder work/mutation/<module>/ holding a copy of the package, the tests and the
data they read, and a pyproject.toml that tells mutmut which files to mutate (`only_mutate`) and which test files
cover them. mutmut mutates every function of those files (all mutants, no sampling: deterministic for a given
source), records once which tests reach which function, then runs only those tests per mutant (pytest `-x`, no
random order). The report goes to bench/results/mutation-<module>.md.

Equivalent mutants (a change no test can tell apart, because the behaviour is the same) are listed in
bench/mutation_equivalent.toml with a one-line reason and the mutated line; an entry whose mutant no longer has
that line is stale and does not count. Score = killed / (mutants - equivalent - not checked); a timeout counts
as killed, a mutant no test reaches as survived.

    python -m bench.mutation                 # every module
    python -m bench.mutation rules envelope  # some
    python -m bench.mutation rules --survivors  # after adding tests: retest only the last run's survivors
    python -m bench.mutation envelope --update  # after the source changed: test only the changed functions' mutants
    python -m bench.mutation rules --report  # rewrite the report from the last run only
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
EQUIVALENT_FILE = Path(__file__).resolve().parent / "mutation_equivalent.toml"
WORK = ROOT / "work" / "mutation"
# What a scratch folder holds, by its name there: both packages side by side, the tests and the data they read.
COPIED = {
    "aggregator": ROOT / "aggregator",
    "imvo_submit": ROOT / "submit" / "imvo_submit",
    "tests": ROOT / "tests",
    "protocols": ROOT / "protocols",
    "rules": ROOT / "rules",
    "sample_data": ROOT / "sample_data",
    "bench": ROOT / "bench",  # tests build suppression problems with bench.problems
}
PACKAGES = ("aggregator", "imvo_submit")


@dataclass(frozen=True)
class Module:
    files: tuple[str, ...]  # what is mutated
    tests: tuple[str, ...]  # the test files that cover it
    target: float  # the score the issue asks for


MODULES = {
    "rules": Module(("aggregator/disclosure/rules.py",), ("tests/test_rules.py",), 0.95),
    "envelope": Module(
        tuple(
            f"imvo_submit/envelope/{name}.py" for name in ("format", "seal", "unseal", "pipeline", "receipts", "signed")
        ),
        ("tests/test_envelope.py", "tests/test_hostile.py"),
        0.95,
    ),
    "audit": Module(
        ("aggregator/disclosure/audit.py",),
        (
            "tests/test_audit.py",
            "tests/test_apriori_bounds.py",
            "tests/test_logical_relations.py",
            "tests/test_prior_knowledge.py",
            "tests/test_suppression.py",
            "tests/test_insider_pruning.py",
            "tests/test_audit_pinned.py",
        ),
        0.95,
    ),
    "suppression": Module(
        ("aggregator/disclosure/suppression/*",),
        ("tests/test_suppression.py", "tests/test_prior_knowledge.py", "tests/test_suppression_pinned.py"),
        0.90,
    ),
    "validation": Module(
        ("imvo_submit/validation/validate.py",),
        (
            "tests/test_validation.py",
            "tests/test_validation_checks.py",
            "tests/test_validation_rules.py",
            "tests/test_validation_template.py",
        ),
        0.90,
    ),
    "history": Module(("aggregator/history/*",), ("tests/test_history.py", "tests/test_series.py"), 0.90),
}

KILLED = {"killed", "timeout", "caught by type check"}
NOT_CHECKED = "not checked"


@dataclass
class Outcome:
    module: str
    status_by_mutant: dict[str, str]
    diffs: dict[str, str]
    equivalent: dict[str, str] = field(default_factory=dict)  # name -> reason
    stale: list[str] = field(default_factory=list)

    @property
    def killed(self) -> list[str]:
        return [m for m, s in self.status_by_mutant.items() if s in KILLED]

    @property
    def survived(self) -> list[str]:
        return [
            m
            for m, s in self.status_by_mutant.items()
            if s not in KILLED and s != NOT_CHECKED and m not in self.equivalent
        ]

    @property
    def not_checked(self) -> list[str]:
        """Mutants an interrupted run did not reach: left out of the score, which then covers only the rest."""
        return [m for m, s in self.status_by_mutant.items() if s == NOT_CHECKED]

    @property
    def score(self) -> float:
        counted = len(self.status_by_mutant) - len(self.equivalent) - len(self.not_checked)
        return len(self.killed) / counted if counted else 1.0


def _mutmut() -> list[str]:
    return [str(Path(sys.executable).parent / "mutmut")]


def prepare(name: str, module: Module) -> Path:
    """A fresh scratch folder: copies of the package, tests and data, and mutmut's settings for this module."""
    workdir = WORK / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "artifacts", "*.pyc")
    for folder, source in COPIED.items():
        shutil.copytree(source, workdir / folder, ignore=ignore)
    settings = {
        "source_paths": list(PACKAGES),
        "only_mutate": list(module.files),
        "pytest_add_cli_args_test_selection": list(module.tests),
        "also_copy": [folder for folder in COPIED if folder not in (*PACKAGES, "tests")],
        "use_git_change_detection": False,
        # mutmut stops a mutant after 2 x multiplier x (its tests' time + 1 s) of CPU; its default (15) gives
        # a mutant that loops in a repair or cut loop half an hour. Six times the tests' time is a failure.
        "timeout_multiplier": 3.0,
    }
    lines = ["[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines += ["", "[tool.pytest.ini_options]", 'testpaths = ["tests"]', 'addopts = "-q"', ""]
    (workdir / "pyproject.toml").write_text("\n".join(lines), encoding="utf-8")
    return workdir


def refresh_source(workdir: Path, module: Module) -> None:
    """The package, tests and data as they are now. mutmut regenerates the mutants of a mutated file newer than
    its mutants and retests only the functions whose source changed; the unmutated copies under mutants/ are
    removed so that mutmut copies them afresh."""
    ignore = shutil.ignore_patterns("__pycache__", "artifacts", "*.pyc")
    for folder, source in COPIED.items():
        shutil.rmtree(workdir / folder)
        shutil.copytree(source, workdir / folder, ignore=ignore)
    copies = [workdir / "mutants" / package for package in PACKAGES]
    for path in sorted(p for package in copies for p in package.rglob("*")):
        relative = str(path.relative_to(workdir / "mutants"))
        source = relative.removesuffix(".meta").removesuffix(".spans")
        if path.is_file() and not any(fnmatch.fnmatch(source, pattern) for pattern in module.files):
            path.unlink()


def refresh_tests(workdir: Path) -> None:
    """The tests as they are now, for a rerun of the survivors (the mutated source stays as it was)."""
    shutil.rmtree(workdir / "tests")
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=shutil.ignore_patterns("__pycache__", "artifacts"))


def run(name: str, workdir: Path, jobs: int, mutants: list[str] | None = None) -> None:
    env = os.environ | {"PYTHONHASHSEED": "0"}
    command = _mutmut() + ["run", "--max-children", str(jobs)] + (mutants or [])
    shown = " ".join(command[:4]) + (f" <{len(mutants)} mutants>" if mutants else "")
    print(f"[{name}] {shown} (in {workdir.relative_to(ROOT)})", flush=True)
    log = workdir / "mutmut.log"
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.call(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"[{name}] mutmut failed with exit code {code}; see {log}")


def collect(name: str, workdir: Path) -> Outcome:
    from mutmut.stats import status_by_exit_code

    status_by_mutant: dict[str, str] = {}
    source_of: dict[str, str] = {}
    for meta in sorted((workdir / "mutants").rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        for mutant, code in data["exit_code_by_key"].items():
            status_by_mutant[mutant] = status_by_exit_code[code]
            source_of[mutant] = str(meta.relative_to(workdir / "mutants"))[: -len(".meta")]
    listed = tomllib.loads(EQUIVALENT_FILE.read_text(encoding="utf-8")).get(name, {})
    wanted = {m for m, s in status_by_mutant.items() if s not in KILLED | {NOT_CHECKED}} | (
        set(listed) & set(source_of)
    )
    diffs = _diffs(workdir, {m: source_of[m] for m in wanted})
    outcome = Outcome(name, dict(sorted(status_by_mutant.items(), key=lambda kv: _order(kv[0]))), diffs)
    for mutant, entry in listed.items():
        if mutant not in diffs or entry["line"].strip() not in _added_lines(diffs[mutant]):
            outcome.stale.append(mutant)  # renumbered or gone: the entry no longer describes this mutant
        elif outcome.status_by_mutant[mutant] not in KILLED | {NOT_CHECKED}:  # a killed one is not equivalent after all
            outcome.equivalent[mutant] = entry["reason"]
    for mutant in outcome.survived:
        if sql_keywords_lowercased(diffs[mutant]):
            outcome.equivalent[mutant] = SQL_CASE_REASON
    return outcome


SQL_KEYWORDS = frozenset(
    "ALL AND AS ASC BETWEEN BY CASE CAST CREATE DELETE DESC DISTINCT ELSE END EXISTS FALSE FILTER FROM GROUP HAVING "
    "IF IN INSERT INTO IS JOIN KEY LEFT LIMIT NOT NULL ON OR ORDER PRIMARY REPLACE SELECT SET TABLE THEN TRUE UNION "
    "UPDATE USING VALUES WHEN WHERE WITH".split()
)
SQL_CLAUSES = frozenset("SELECT FROM WHERE JOIN INSERT UPDATE DELETE CREATE GROUP ORDER VALUES CASE HAVING".split())
SQL_CASE_REASON = (
    "only SQL keywords change to lower case (literals and names as they were): DuckDB reads keywords in any case"
)


def sql_keywords_lowercased(diff: str) -> bool:
    """True for a mutant that only lowercases SQL keywords in a query string (mutmut's case mutation of a
    string): the same query. Names and quoted literals must be untouched, so an alias or a value that changes
    case (which DuckDB keeps) is never taken for one."""
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+")]
    if len(removed) != 1 or len(added) != 1 or removed[0] == added[0] or removed[0].lower() != added[0].lower():
        return False
    before, after = removed[0], added[0]
    if re.findall(r"'[^']*'", before) != re.findall(r"'[^']*'", after):
        return False
    pairs = zip(re.findall(r"\w+", before), re.findall(r"\w+", after), strict=True)
    changed = [(a, b) for a, b in pairs if a != b]
    clause = {a for a, _ in changed} & SQL_CLAUSES  # a query, not a message that happens to say NOT or IF
    return bool(clause) and all(a in SQL_KEYWORDS and b == a.lower() for a, b in changed)


def _order(mutant: str) -> tuple[str, int]:
    stem, _, number = mutant.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def _diffs(workdir: Path, source_of: dict[str, str]) -> dict[str, str]:
    """The changed lines of each mutant (mutmut's own diff, read from its index in the scratch folder)."""
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    before = Path.cwd()
    os.chdir(workdir)
    reset_config()
    try:
        diffs = {m: get_diff_for_mutant(m, path=source) for m, source in source_of.items()}
    finally:
        os.chdir(before)
        reset_config()
    changed = ("-", "+")
    return {
        m: "\n".join(
            line for line in d.splitlines() if line.startswith(changed) and not line.startswith(("---", "+++"))
        )
        for m, d in diffs.items()
    }


def _added_lines(diff: str) -> list[str]:
    return [line[1:].strip() for line in diff.splitlines() if line.startswith("+")]


def report(outcome: Outcome, module: Module, version: str) -> Path:
    n = len(outcome.status_by_mutant)
    statuses: dict[str, int] = {}
    for status in outcome.status_by_mutant.values():
        statuses[status] = statuses.get(status, 0) + 1
    verdict = "meets" if outcome.score >= module.target else "below"
    lines = [
        f"# Mutation testing: {outcome.module}",
        "",
        f"Generated by `make mutation MODULES={outcome.module}` (`python -m bench.mutation {outcome.module}`), "
        f"mutmut {version}, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}. See docs/mutation.md.",
        "",
        f"- mutated: {', '.join(f'`{f}`' for f in module.files)}",
        f"- tests: {', '.join(f'`{t}`' for t in module.tests)}",
        f"- mutants: {n}; " + ", ".join(f"{s}: {c}" for s, c in sorted(statuses.items())),
        f"- killed {len(outcome.killed)}, survived {len(outcome.survived)}, equivalent {len(outcome.equivalent)}"
        + (
            f", **not checked {len(outcome.not_checked)} (partial run: the score covers the rest)**"
            if outcome.not_checked
            else ""
        ),
        f"- **score {outcome.score:.1%}** (killed / (mutants - equivalent - not checked)); "
        f"target {module.target:.0%}: {verdict}",
        "",
    ]
    if outcome.survived:
        lines += ["## Survivors", ""]
        for mutant in outcome.survived:
            title = f"### `{mutant}` ({outcome.status_by_mutant[mutant]})"
            lines += [title, "", "```diff", outcome.diffs[mutant], "```", ""]
    if outcome.equivalent:
        lines += ["## Equivalent mutants (excluded from the score)", "", "| mutant | mutated line | why equivalent |"]
        lines += ["|---|---|---|"]
        listed = tomllib.loads(EQUIVALENT_FILE.read_text(encoding="utf-8")).get(outcome.module, {})
        for mutant, reason in outcome.equivalent.items():
            line = listed[mutant]["line"] if mutant in listed else _added_lines(outcome.diffs[mutant])[0]
            shown = line.strip().replace("|", "\\|")
            lines.append(f"| `{mutant}` | `{shown}` | {reason} |")
        lines.append("")
    if outcome.stale:
        lines += ["## Stale equivalence entries (ignored)", ""] + [f"- `{m}`" for m in outcome.stale] + [""]
    path = RESULTS_DIR / f"mutation-{outcome.module}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules to test (default: all of {', '.join(MODULES)})")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested in parallel (default 1)")
    parser.add_argument("--survivors", action="store_true", help="retest only the last run's survivors")
    parser.add_argument("--update", action="store_true", help="after a source change: retest changed functions")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from the last run")
    args = parser.parse_args(argv)
    unknown = [name for name in args.modules if name not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    from importlib.metadata import version

    mutmut_version = version("mutmut")
    failed = []
    for name in args.modules or list(MODULES):
        module = MODULES[name]
        workdir = WORK / name
        if args.update and workdir.exists():
            refresh_source(workdir, module)
            run(name, workdir, args.jobs)
        elif args.survivors and workdir.exists():
            refresh_tests(workdir)
            survivors = collect(name, workdir).survived
            if survivors:
                run(name, workdir, args.jobs, survivors)
        elif not args.report:
            run(name, prepare(name, module), args.jobs)
        outcome = collect(name, workdir)
        path = report(outcome, module, mutmut_version)
        print(
            f"[{name}] mutants {len(outcome.status_by_mutant)}, killed {len(outcome.killed)}, "
            f"survived {len(outcome.survived)}, equivalent {len(outcome.equivalent)}, "
            f"not checked {len(outcome.not_checked)}, "
            f"score {outcome.score:.1%} (target {module.target:.0%}) -> {path.relative_to(ROOT)}",
            flush=True,
        )
        if outcome.score < module.target:
            failed.append(name)
    if failed:
        print(f"below target: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
