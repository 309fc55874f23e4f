"""A second process that checks files for a large intake: `python -m aggregator.validation.worker`.

The intake opens each file itself (the secretariat's key never leaves its process) and hands the plaintexts
of a chunk to this process, which runs `check_groups` on them while the intake decides the chunk before. A
plain child process, not multiprocessing: spawning through multiprocessing re-runs the caller's main script,
which a program using the library need not guard. Requests and answers are length-prefixed pickles on the
child's stdin and stdout; both ends are this module.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from aggregator.errors import HOSTILE_INPUT_ERRORS
from aggregator.validation.validate import CheckResult, check_files

PACKAGE_HOME = Path(__file__).resolve().parents[2]  # the folder that holds the `aggregator` package
Work = list[tuple[str, str, list[bytes]]]  # (covenant, template, plaintexts of its files)
Answer = list[list[CheckResult] | None]


def check_groups(work: Work) -> Answer:
    """check_files of each group; None for a group in which some file raises (its files are then checked
    one by one, in their turn, which finds the one)."""
    answer: Answer = []
    for covenant, template, plaintexts in work:
        try:
            answer.append(check_files(plaintexts, covenant, template))
        except HOSTILE_INPUT_ERRORS:
            answer.append(None)
    return answer


def _send(stream: BinaryIO, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def _receive(stream: BinaryIO) -> object:
    size = stream.read(8)
    if len(size) < 8:
        raise EOFError("the other process ended")
    data = stream.read(int.from_bytes(size, "big"))
    if len(data) < int.from_bytes(size, "big"):
        raise EOFError("the other process ended")
    return pickle.loads(data)  # noqa: S301 - written by this module in the process at the other end


class Worker:
    """The child process; `submit` returns a function that waits for the answer. After any failure of the
    child the answers are None for every group, and the caller checks those files itself."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "aggregator.validation.worker"]
        try:
            self.child: subprocess.Popen | None = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=PACKAGE_HOME,  # `-m` looks here first: the child runs this very copy of the package
            )
        except OSError:  # no interpreter to start (a frozen program): the caller checks every file itself
            self.child = None
        self.waiting = False  # a request was sent whose answer has not been read

    def submit(self, work: Work) -> Callable[[], Answer]:
        """Send one request (after the previous answer was read); the returned function reads its answer."""
        failed: Answer = [None] * len(work)
        if self.child is None:
            return lambda: failed
        try:
            _send(self.child.stdin, work)
        except OSError:
            self.close()
            return lambda: failed
        self.waiting = True

        def answer() -> Answer:
            if self.child is None:
                return failed
            try:
                received = _receive(self.child.stdout)
            except Exception:  # a dead child, or an answer this process cannot read: check the files in turn
                self.close()
                return failed
            self.waiting = False
            return received  # type: ignore[return-value]

        return answer

    def close(self) -> None:
        """End the child: at once when an answer is still owed (the intake stopped early), else after it has
        read the end of its input."""
        if self.child is not None:
            child, self.child = self.child, None
            if self.waiting:
                child.kill()
            try:
                child.stdin.close()  # flushes what a failed send left buffered: fails again if the child died
            except OSError:
                child.kill()
            child.wait()


def main() -> None:
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the answers
    while True:
        try:
            work = _receive(requests)
        except EOFError:
            return
        _send(answers, check_groups(work))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
