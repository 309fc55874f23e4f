"""Fuzz the two doors hostile bytes go through: envelope parsing and the submission readers (CSV, XLSX, ODS, Parquet).

    .venv/bin/python fuzz/fuzz_inputs.py [--examples 2000] [--engine hypothesis|atheris] [--seconds 60]

Each target feeds generated or mutated files in and accepts exactly one kind of outcome:
- envelope: `read_header` + `open_file` either open an unchanged file or raise EnvelopeRejected;
- readers: `check_file` returns a CheckResult (ok or with a report) and never raises; a check that raised
  inside (fail-closed as an "internal check error", issue 21) counts as a crash too: it is a bug to fix.
  Inputs: generated and mutated CSV, raw bytes, and workbooks (XLSX, ODS) and Parquet files built by
  fuzz/spreadsheets.py (odd cell types, references far out, repeat counts, every Arrow column type).
Anything else is a crash: it is printed with a reproducer (hex of the input, shrunk by hypothesis) and
the script exits with status 1. The number of cases tried per target is printed either way.

The hypothesis engine (default) needs nothing extra. The atheris engine (coverage-guided, libFuzzer) is
used when `pip install atheris` works in the virtualenv; it runs each target for --seconds.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from spreadsheets import ods_files, parquet_files, xlsx_files

# aggregator is imported inside the functions, so the atheris child can import it under instrumentation.

HEADER = ["country", "workers_covered", "wage_paid_monthly_eur", "living_wage_benchmark_eur", "benchmark_source"]
CELLS = st.one_of(
    st.sampled_from(["BD", "NL", "Nederland", "xx", "", " ", "1.234,5", "1,234.5", "-1", "NaN", "inf", "1e999"]),
    st.sampled_from(["anker", "Anker ", "other", "=1+1", "@SUM(A1)", '"', '""', "\x00", "\ufeff", "ja"]),
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@dataclass
class Outcome:
    name: str
    tried: int = 0
    crashes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------- one input, one verdict


class Fixture:
    """A sealed reference file and its keys; mutations of it are what the envelope target opens."""

    def __init__(self, folder: Path):
        from imvo_submit import envelope

        self.folder = folder
        self.recipient = envelope.generate_encryption_key("x25519")
        self.signer = envelope.generate_signing_key()
        source = folder / "source.csv"
        source.write_text(",".join(HEADER) + "\nBD,17175,119.73,256.6,anker\n", encoding="utf-8")
        envelope.seal_file(
            source, folder / "ref.imvo", covenant="textile", template="living_wage", company_id="T001",
            period="2025-01", recipient_public_key=self.recipient.public_key(), signing_private_key=self.signer,
            created="2025-02-01T10:00:00Z",
        )  # fmt: skip
        self.blob = (folder / "ref.imvo").read_bytes()

    def open_envelope(self, data: bytes) -> None:
        """Raise only if the outcome is wrong: anything but success-on-the-original or EnvelopeRejected."""
        from imvo_submit import envelope

        path = self.folder / "probe.imvo"
        path.write_bytes(data)
        try:
            envelope.read_header(path)
            envelope.open_file(path, self.recipient, self.signer.public_key())
        except envelope.EnvelopeRejected:
            return
        if data != self.blob:
            raise AssertionError("a changed sealed file was opened without complaint")


def read_submission(data: bytes) -> None:
    from imvo_submit.validation import check_file

    result = check_file(data, "textile", "living_wage")
    if not result.ok and result.report.n_problems == 0:
        raise AssertionError("refused without saying why")
    if result.report.internal_errors:
        raise AssertionError("a check raised inside (failed closed):\n" + result.report.internal_errors[0][-1500:])


def mutate(blob: bytes, edits: list[tuple[int, int, int]], cut: int | None) -> bytes:
    """Apply (position, kind, byte) edits: 0 flips a bit, 1 inserts a byte, 2 deletes one; then truncate."""
    data = bytearray(blob)
    for position, kind, value in edits:
        if not data:
            break
        at = position % len(data)
        if kind == 0:
            data[at] ^= 1 << (value % 8)
        elif kind == 1:
            data.insert(at, value)
        else:
            del data[at]
    return bytes(data if cut is None else data[: cut % (len(data) + 1)])


def csv_file(rows: list[list[str]], sep: str, encoding: str, bom: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n")
    writer.writerows([HEADER, *rows])
    text = ("\ufeff" if bom else "") + out.getvalue()
    return text.encode(encoding, errors="replace")


# ---------------------------------------------------------------- hypothesis engine


def run_hypothesis(examples: int, fixture: Fixture) -> list[Outcome]:
    edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), st.integers(0, 255)), max_size=6)
    csv_files = st.builds(
        csv_file,
        st.lists(st.lists(CELLS, min_size=0, max_size=7), min_size=0, max_size=6),
        st.sampled_from([",", ";", "\t"]),
        st.sampled_from(["utf-8", "utf-16", "cp1252"]),
        st.booleans(),
    )
    targets: list[tuple[str, st.SearchStrategy[bytes], Callable[[bytes], None]]] = [
        ("envelope: mutated sealed file", st.builds(mutate, st.just(fixture.blob), edits, st.none() | st.integers(0)),
         fixture.open_envelope),
        ("envelope: raw bytes after the magic", st.binary(max_size=400).map(lambda b: b"IMVOSEAL" + b),
         fixture.open_envelope),
        ("readers: generated CSV", csv_files, read_submission),
        ("readers: mutated CSV", st.builds(mutate, csv_files, edits, st.none()), read_submission),
        ("readers: raw bytes", st.binary(max_size=2000), read_submission),
        ("readers: generated XLSX", xlsx_files(), read_submission),
        ("readers: mutated XLSX", st.builds(mutate, xlsx_files(), edits, st.none()), read_submission),
        ("readers: generated ODS", ods_files(), read_submission),
        ("readers: mutated ODS", st.builds(mutate, ods_files(), edits, st.none()), read_submission),
        ("readers: generated Parquet", parquet_files(), read_submission),
        ("readers: mutated Parquet", st.builds(mutate, parquet_files(), edits, st.none()), read_submission),
    ]  # fmt: skip
    return [_run_one(name, strategy, check, examples) for name, strategy, check in targets]


def _run_one(name: str, strategy: st.SearchStrategy[bytes], check: Callable[[bytes], None], examples: int) -> Outcome:
    outcome = Outcome(name)
    started = time.perf_counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @given(strategy)
    def target(data: bytes) -> None:
        outcome.tried += 1
        check(data)

    try:
        target()
    except Exception as exc:  # a crash: report each distinct one with the shrunk input hypothesis noted
        for failure in getattr(exc, "exceptions", [exc]):
            notes = " ".join(n.strip() for n in getattr(failure, "__notes__", []))
            where = traceback.extract_tb(failure.__traceback__)[-1]
            outcome.crashes.append(
                f"{type(failure).__name__}: {str(failure)[:300]}\n  at {where.filename}:{where.lineno}\n  {notes[:800]}"
            )
    outcome.seconds = time.perf_counter() - started
    return outcome


# ---------------------------------------------------------------- atheris engine


def run_atheris(seconds: int, fixture: Fixture) -> list[Outcome]:
    """Coverage-guided, one target per child run (libFuzzer owns the process): only the count is reported."""
    import subprocess

    outcomes = []
    artifacts = Path(tempfile.mkdtemp(prefix="imvo-fuzz-"))  # crash inputs land here, never in the repository
    for name in ("envelope", "readers"):
        started = time.perf_counter()
        options = [f"-max_total_time={seconds}", "-print_final_stats=1", f"-artifact_prefix={artifacts}/{name}-"]
        proc = subprocess.run(
            [sys.executable, __file__, "--atheris-child", name, *options], capture_output=True, text=True
        )
        runs = [line for line in proc.stderr.splitlines() if "stat::number_of_executed_units" in line]
        outcome = Outcome(f"{name} (atheris)", int(runs[-1].split(":")[-1]) if runs else 0)
        if proc.returncode != 0:
            # libFuzzer's report: the Python traceback, then the input (also saved under `artifacts`).
            outcome.crashes.append("\n".join(proc.stderr.splitlines()[-40:]))
        outcome.seconds = time.perf_counter() - started
        outcomes.append(outcome)
    return outcomes


def atheris_child(name: str, argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["aggregator"]):  # coverage feedback from our code only
        import imvo_submit.envelope  # noqa: F401
        import imvo_submit.validation  # noqa: F401
    with tempfile.TemporaryDirectory() as folder:
        fixture = Fixture(Path(folder))
        check = fixture.open_envelope if name == "envelope" else read_submission
        atheris.Setup([sys.argv[0], *argv], lambda data: check(bytes(data)))
        atheris.Fuzz()


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="cases per target (hypothesis)")
    parser.add_argument("--engine", choices=["hypothesis", "atheris"], default="hypothesis")
    parser.add_argument("--seconds", type=int, default=60, help="time per target (atheris)")
    parser.add_argument("--atheris-child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.atheris_child:
        atheris_child(args.atheris_child, rest)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        fixture = Fixture(Path(folder))
        if args.engine == "atheris":
            outcomes = run_atheris(args.seconds, fixture)
        else:
            outcomes = run_hypothesis(args.examples, fixture)
    for outcome in outcomes:
        verdict = f"{len(outcome.crashes)} CRASH" if outcome.crashes else "no crash"
        print(f"{outcome.name:40s} {outcome.tried:7d} cases in {outcome.seconds:6.1f} s: {verdict}")
        for crash in outcome.crashes:
            print("    " + crash.replace("\n", "\n    "))
    print(f"total: {sum(o.tried for o in outcomes)} cases, {sum(len(o.crashes) for o in outcomes)} crashes")
    return 1 if any(o.crashes for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
