"""Wall time and peak memory of one piece of work inside the current (fresh) process.

Peak memory: `ru_maxrss` is the process's high-water mark, exact but only useful when the work raised it;
a background thread also samples the current RSS (/proc/self/statm) every few milliseconds, which catches
the peak of work that stays below an earlier high-water mark (for instance after an untimed setup step).
The reported peak is the exact figure when the high-water mark moved during the work, else the sampled one.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
_SAMPLE_SECONDS = 0.005


def current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE_MB


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float  # the process's largest RSS while the work ran (baseline included)
    growth_mb: float  # peak_rss_mb minus the RSS just before the work started
    result: Any = None


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = current_rss_mb()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(_SAMPLE_SECONDS):
            self.peak = max(self.peak, current_rss_mb())

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return max(self.peak, current_rss_mb())


def measure(work: Callable[[], Any]) -> Measured:
    """Run `work` once; return its wall time, the peak RSS while it ran and the growth over the start."""
    start_rss, start_high = current_rss_mb(), max_rss_mb()
    sampler = _Sampler()
    sampler.start()
    started = time.perf_counter()
    try:
        result = work()
    finally:
        seconds = time.perf_counter() - started
        sampled = sampler.stop()
    high = max_rss_mb()
    peak = high if high > start_high else sampled
    return Measured(seconds, peak, max(0.0, peak - start_rss), result)
