"""The process that reads and validates submissions for the intake: `python -m aggregator.intake.worker`.

No file may stop the secretariat. Reading a hostile file can exhaust memory (a 1.6 KB spreadsheet whose one
cell sits at XFD1048576 makes the reader ask for 512 GiB and abort), loop for hours, or crash a native reader;
in this process that costs one file, never the intake. The child runs under a memory limit (RLIMIT_DATA: heap
and private mappings) and every request under a wall-clock limit; a file whose check ends any other way than
with a verdict gets a `Failed` with a plain reason, and the intake quarantines it.

The intake opens each file itself (the secretariat's key never leaves its process) and hands the plaintexts
over a pipe. A plain child process, not multiprocessing: spawning through multiprocessing re-runs the caller's
main script, which a program using the library need not guard, and forking would copy the secretariat's key
into the process that parses hostile bytes. Requests and answers are length-prefixed pickles on the child's
stdin and stdout; both ends are this module. Starting the child costs about a second of imports, so an idle
child is kept for the next intake of the same program (`acquire` / `release`).
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, BinaryIO

from imvo_submit.validation.validate import CheckResult, check_files

PACKAGE_HOME = Path(__file__).resolve().parents[2]  # the folder that holds the `aggregator` package
Work = list[tuple[str, str, list[bytes]]]  # (covenant, template, plaintexts of its files)


class Stop(StrEnum):
    """How a check ended without a verdict."""

    MEMORY = "memory"  # the file needed more memory than the limit
    TIME = "time"  # the file took longer than the limit
    CRASH = "crash"  # the checking process died (a native reader aborted, the system killed it)
    INTERNAL = "internal"  # an unexpected error inside the checks (a bug, or input no check foresaw)


@dataclass(frozen=True)
class Limits:
    """What checking may cost. A file that needs more is quarantined; the intake goes on."""

    memory_bytes: int = 4 * 1024**3  # heap and private mappings checking may add to the idle process
    seconds: float = 300.0  # wall-clock time for one request: a file, or a chunk of small files checked together
    start_seconds: float = 120.0  # time the process may take to start (imports, on a busy machine)

    def describe(self, stop: Stop) -> str:
        """The plain reason a clerk reads in `aggregator status` for a file that ended with `stop`."""
        if stop is Stop.MEMORY:
            gigabytes = f"{self.memory_bytes / 1024**3:.3g}"
            return (
                f"checking the file needed more than the {gigabytes} GB of memory allowed, so it was stopped; "
                "the file is kept for inspection (a genuine file this large must be split into smaller ones)"
            )
        if stop is Stop.TIME:
            return (
                f"checking the file took longer than {self.seconds:g} seconds, so it was stopped; "
                "the file is kept for inspection"
            )
        if stop is Stop.CRASH:
            return "the file made the checking program stop unexpectedly; the file is kept for inspection"
        return (
            "internal check error: a check failed unexpectedly on this file, so it was not accepted; "
            "the file is kept for inspection and the details are in the action log"
        )


@dataclass(frozen=True)
class Failed:
    """A request (or one group of it) that ended without a verdict."""

    stop: Stop
    detail: str = ""  # a traceback or the process's last words, for the secretariat's log only


Answer = list[list[CheckResult] | Failed]


def check_groups(work: Work) -> Answer:
    """check_files of each group. A group whose check raises gets a Failed (its files are then checked one by
    one, which finds the one); MemoryError is told apart, because the memory limit raises it."""
    answer: Answer = []
    for covenant, template, plaintexts in work:
        try:
            answer.append(check_files(plaintexts, covenant, template))
        except BaseException as exc:  # noqa: BLE001 - fail closed: a reader's panic is a BaseException too
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            stop = Stop.MEMORY if _ran_out_of_memory(exc) else Stop.INTERNAL
            answer.append(Failed(stop, traceback.format_exc(limit=20)))
    return answer


# What the libraries raise when the memory limit refuses an allocation (or the thread stack it needs).
_OUT_OF_MEMORY_WORDS = (
    "unable to allocate",
    "out of memory",
    "cannot allocate memory",
    "bad_alloc",
    "failed to allocate",
    "can't start new thread",
    "failed to launch worker thread",
    "resource temporarily unavailable",
)


def _ran_out_of_memory(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, MemoryError) or "memoryerror" in text or any(w in text for w in _OUT_OF_MEMORY_WORDS)


# ---------------------------------------------------------------- the pipe


def _pack(value: object) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(8, "big") + data


def _send(stream: BinaryIO, value: object) -> None:
    stream.write(_pack(value))
    stream.flush()


def _receive(stream: BinaryIO) -> object:
    size = stream.read(8)
    if len(size) < 8:
        raise EOFError("the other process ended")
    data = stream.read(int.from_bytes(size, "big"))
    if len(data) < int.from_bytes(size, "big"):
        raise EOFError("the other process ended")
    return pickle.loads(data)  # noqa: S301 - written by this module in the process at the other end


class _TimedOut(Exception):
    pass


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        _wait(fd, deadline, write=True)
        view = view[os.write(fd, view[: 1 << 20]) :]


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    parts, left = [], size
    while left:
        _wait(fd, deadline, write=False)
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            raise EOFError("the checking process ended")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _wait(fd: int, deadline: float, *, write: bool) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _TimedOut
    ready = select.select([], [fd], [], remaining) if write else select.select([fd], [], [], remaining)
    if not any(ready):
        raise _TimedOut


def _read_message(fd: int, deadline: float) -> object:
    size = int.from_bytes(_read_exact(fd, 8, deadline), "big")
    return pickle.loads(_read_exact(fd, size, deadline))  # noqa: S301 - written by this module in the child


# ---------------------------------------------------------------- the parent's end


class Worker:
    """One checking process. `submit` sends a request and returns a function that waits for its answer.

    One request is in flight at a time: `submit` first reads the answer still owed, so that neither end can
    block on a full pipe. When the process dies or runs out of memory or time, every group of the request in
    flight gets a Failed and the process is ended; the next request starts a new one."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.child: subprocess.Popen | None = None
        self.isolated = True  # False when no interpreter can be started: the caller's process checks instead
        self._stderr: IO[bytes] | None = None
        self._ready_at: float | None = None  # when the child said it is ready
        self._started = 0.0
        self._owed: _Owed | None = None
        self._stash: dict[int, Answer] = {}
        self._tickets = 0
        self._start()

    def _start(self) -> None:
        command = [sys.executable, "-m", "aggregator.intake.worker", str(self.limits.memory_bytes)]
        self._stderr = tempfile.TemporaryFile()  # the child's last words tell an out-of-memory abort apart
        try:
            self.child = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                cwd=PACKAGE_HOME,  # `-m` looks here first: the child runs this very copy of the package
            )
        except OSError:  # no interpreter to start (a frozen program): the caller checks every file itself
            self.child, self.isolated = None, False
            self._stderr.close()
        self._ready_at = None
        self._started = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.poll() is None

    @property
    def waiting(self) -> bool:
        """A request was sent whose answer has not been read."""
        return self._owed is not None

    def submit(self, work: Work) -> Callable[[], Answer]:
        """Send one request; the returned function reads its answer (after any answer still owed)."""
        if not self.isolated:
            return lambda: check_groups(work)
        if self._owed is not None:
            owed = self._owed.ticket  # read first: collecting the answer clears _owed
            self._stash[owed] = self._collect()
        if self.child is None:
            self._start()
            if not self.isolated:
                return lambda: check_groups(work)
        self._tickets += 1
        ticket = self._tickets
        self._send(ticket, work)
        return lambda: self._answer(ticket)

    def check(self, covenant: str, template: str, plaintext: bytes) -> CheckResult | Failed:
        """One file checked alone, waiting for the verdict."""
        (answer,) = self.submit([(covenant, template, [plaintext])])()
        return answer if isinstance(answer, Failed) else answer[0]

    def _answer(self, ticket: int) -> Answer:
        if ticket in self._stash:
            return self._stash.pop(ticket)
        assert self._owed is not None and self._owed.ticket == ticket, "an answer is read once"
        return self._collect()

    def _send(self, ticket: int, work: Work) -> None:
        assert self.child is not None and self.child.stdin is not None
        self._owed = _Owed(ticket, work, time.monotonic())
        try:
            _write_all(self.child.stdin.fileno(), _pack(work), self._deadline(self._owed.sent))
        except _TimedOut:
            self._stash[ticket] = self._fail(Stop.TIME)
        except OSError:
            self._stash[ticket] = self._fail(self._stop_of_dead_child())

    def _collect(self) -> Answer:
        assert self._owed is not None and self.child is not None and self.child.stdout is not None
        fd = self.child.stdout.fileno()
        try:
            if self._ready_at is None:
                _read_message(fd, self._started + self.limits.start_seconds)  # the child says it is ready
                self._ready_at = time.monotonic()
            answer: Answer = _read_message(fd, self._deadline(self._owed.sent))  # type: ignore[assignment]
        except _TimedOut:
            return self._fail(Stop.TIME)
        except Exception:  # noqa: BLE001 - a dead child, or an answer this process cannot read
            return self._fail(self._stop_of_dead_child())
        self._owed = None
        if any(isinstance(a, Failed) and a.stop is Stop.MEMORY for a in answer):
            self.close()  # the child ends after running out of memory; the next request starts a fresh one
        return answer

    def _deadline(self, sent: float) -> float:
        # a request first waits for the child's imports; its own time starts once the child is ready
        ready = self._ready_at if self._ready_at is not None else self._started + self.limits.start_seconds
        return max(sent, ready) + self.limits.seconds

    def _fail(self, stop: Stop) -> Answer:
        """Every group of the request in flight ends with `stop`; the process is ended."""
        assert self._owed is not None
        work, detail = self._owed.work, self._last_words()
        self.close(kill=True)
        return [Failed(stop, detail) for _ in work]

    def _stop_of_dead_child(self) -> Stop:
        """An abort whose last words are an allocation failure ran out of memory; anything else crashed."""
        if self.child is not None:
            try:
                self.child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        words = self._last_words().lower()
        out_of_memory = ("memory allocation of", "memoryerror", "bad_alloc", "cannot allocate memory")
        return Stop.MEMORY if any(w in words for w in out_of_memory) else Stop.CRASH

    def _last_words(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - 4096))
        return self._stderr.read().decode("utf-8", "replace")

    def close(self, *, kill: bool = False) -> None:
        """End the child: at once when an answer is still owed or `kill`, else after it read the end of input."""
        child, self.child = self.child, None
        if child is not None:
            if kill or self._owed is not None:
                child.kill()
            try:
                child.stdin.close()  # fails if the child died with input unread
            except OSError:
                child.kill()
            child.wait()
            child.stdout.close()
        self._owed = None
        if self._stderr is not None and not self._stderr.closed:
            self._stderr.close()


@dataclass(frozen=True)
class _Owed:
    ticket: int
    work: Work
    sent: float


# ---------------------------------------------------------------- one idle worker kept between intakes

_idle: list[Worker] = []


def acquire(limits: Limits | None = None) -> Worker:
    """A worker with `limits`: the idle one kept from an earlier intake when it is alive, else a new one."""
    limits = limits or Limits()
    while _idle:
        worker = _idle.pop()
        if worker.alive and worker.limits == limits and not worker.waiting:
            return worker
        worker.close()
    return Worker(limits)


def release(worker: Worker) -> None:
    """Keep a healthy worker for the next intake; end one that is busy or dead."""
    if worker.alive and not worker.waiting and not _idle:
        _idle.append(worker)
    else:
        worker.close(kill=worker.waiting)


@atexit.register
def _close_idle() -> None:
    while _idle:
        _idle.pop().close()


# ---------------------------------------------------------------- the child's end


def _warm_up() -> None:
    """Start the thread pools the checks use, so that the limit measures what a file costs, not their stacks."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from imvo_submit.validation import parallel

    for _ in range(parallel.workers()):
        parallel._pool().submit(time.sleep, 0.01)
    parallel.in_background(time.sleep, 0.01).result()
    rows = b"a,b\n" + b"1,2\n" * 200_000
    pa_csv.read_csv(pa.BufferReader(rows), read_options=pa_csv.ReadOptions(block_size=1 << 16))


def _limit_memory(budget: int) -> None:
    """Heap and private mappings may grow by `budget` beyond what the idle, warmed-up process holds."""
    import resource

    with open("/proc/self/status", encoding="ascii") as status:
        held = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))
    resource.setrlimit(resource.RLIMIT_DATA, (held + budget, held + budget))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort leaves no core file with plaintext in it


def main() -> None:
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the answers
    if len(sys.argv) > 1:
        _warm_up()
        _limit_memory(int(sys.argv[1]))
    _send(answers, "ready")
    while True:
        try:
            work = _receive(requests)
        except EOFError:
            return
        answer = check_groups(work)  # type: ignore[arg-type]
        _send(answers, answer)
        if any(isinstance(a, Failed) and a.stop is Stop.MEMORY for a in answer):
            return  # the parent starts a fresh process for the next file


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy: answers must pickle as
    # aggregator.intake.worker.Failed, which the parent can load.
    from aggregator.intake.worker import main as _main

    _main()
