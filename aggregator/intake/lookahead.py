"""Small files opened and checked ahead of their turn, by the worker process, while the chunk before is decided."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aggregator.errors import HOSTILE_INPUT_ERRORS
from aggregator.workspace import Workspace
from imvo_submit.states import Reason
from imvo_submit.validation import CheckResult

from . import worker
from .model import Opened, Quarantine
from .opening import RegistryLookups, check_header, open_sealed

# Files opened and checked ahead of their decisions, together (check_files): a small file's check is nearly all
# per-call overhead. Only sealed files up to AHEAD_BYTES take part, so a chunk holds at most ~256 MB.
AHEAD_FILES = 256
AHEAD_BYTES = 1024**2


@dataclass
class Ahead:
    """Small files opened and checked before their turn, those of one template together (check_files).

    Only what depends on the file alone is done ahead; every decision is still taken in turn, which finds here
    the very result it would compute. A file that fails to open or read is left out: its turn raises the same
    refusal."""

    opened: dict[Path, tuple[tuple[int, ...] | None, Opened]]  # with the file's stamp when it was opened
    groups: list[list[Path]]  # the opened files by covenant and template, in the order of the checks
    answer: Callable[[], worker.Answer]
    checked: dict[Path, CheckResult] = field(default_factory=dict)

    @classmethod
    def nothing(cls) -> Ahead:
        return cls({}, [], lambda: [])

    def finish(self) -> Ahead:
        for group, checked in zip(self.groups, self.answer(), strict=True):
            if not isinstance(checked, worker.Failed):  # a failed group's files are checked alone in turn
                self.checked.update(zip(group, checked, strict=True))
        return self

    def of(self, path: Path) -> tuple[Opened | None, CheckResult | None]:
        """What was done ahead for `path`, if the file is still the one opened then (an inbox can change)."""
        stamp, opened = self.opened.get(path, (None, None))
        if opened is None or stamp is None or stamp_of(path) != stamp:
            return None, None
        return opened, self.checked.get(path)


def stamp_of(path: Path) -> tuple[int, ...] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


class Lookahead:
    """Opens each chunk's small files and has the worker process check them while this process decides the
    chunk before; `check` has one file checked alone (a large one, or one whose chunk failed)."""

    def __init__(
        self,
        workspace: Workspace,
        registry: RegistryLookups,
        now: str,
        expected_period: str | None,
        limits: worker.Limits | None,
    ):
        self.workspace, self.registry, self.now, self.expected_period = workspace, registry, now, expected_period
        self.worker = worker.acquire(limits)

    def __enter__(self) -> Lookahead:
        return self

    def __exit__(self, *exc: object) -> None:
        worker.release(self.worker)

    def check(self, opened: Opened) -> CheckResult:
        """The verdict on one file, checked alone; raises Quarantine when the check ended without one."""
        header = opened.header
        result = self.worker.check(header.covenant, header.template, opened.plaintext)
        if isinstance(result, worker.Failed):
            reason = self.worker.limits.describe(result.stop)
            raise Quarantine(reason, category=Reason.LIMITS, detail=result.detail)
        return result

    def start(self, paths: list[Path]) -> Ahead:
        opened: dict[Path, tuple[tuple[int, ...] | None, Opened]] = {}
        for path in paths:
            stamp = stamp_of(path)
            if stamp is None or stamp[0] > AHEAD_BYTES:
                continue
            try:
                one = open_sealed(self.workspace, self.registry, path)
                check_header(self.workspace, self.registry, one.header, self.now, self.expected_period)
            except (Quarantine, OSError, *HOSTILE_INPUT_ERRORS):
                continue
            opened[path] = (stamp, one)
        by_template: dict[tuple[str, str], list[Path]] = {}
        for path, (_, one) in opened.items():
            by_template.setdefault((one.header.covenant, one.header.template), []).append(path)
        keys = sorted(by_template)
        groups = [by_template[key] for key in keys]
        work = [(*key, [opened[path][1].plaintext for path in group]) for key, group in zip(keys, groups, strict=True)]
        return Ahead(opened, groups, self.worker.submit(work))
