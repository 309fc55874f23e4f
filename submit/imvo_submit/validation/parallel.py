"""Column work split into contiguous row ranges and run on a small shared thread pool.

Arrow compute kernels and numpy's vectorised loops release the GIL, so checking a 1M-row column as two halves
on two threads takes about half the wall-clock time on an idle two-core machine, and the same CPU time on a busy
one. Results come back in row order, so every caller gets exactly the single-threaded answer.

Only leaf work runs on the pool (a task never waits for another task), so callers on several threads cannot
deadlock it. `in_background` has a thread of its own for GIL-bound work that overlaps Arrow kernels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from itertools import pairwise
from typing import Any, TypeVar

import pyarrow as pa

MIN_ROWS_PER_PART = 100_000  # below this the hand-off costs more than the second core saves
MAX_WORKERS = 4

Result = TypeVar("Result")


def workers() -> int:
    """Threads the pool uses: the machine's cores, capped (checks are memory-bound beyond a few)."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="imvo-validation")


def row_parts(values: pa.Array | pa.ChunkedArray) -> list[pa.Array | pa.ChunkedArray]:
    """Contiguous zero-copy slices of `values`, in row order, one per worker when the column is large enough."""
    count = min(workers(), len(values) // MIN_ROWS_PER_PART)
    if count <= 1:
        return [values]
    bounds = [len(values) * i // count for i in range(count + 1)]
    return [values.slice(start, stop - start) for start, stop in pairwise(bounds)]


def map_rows(work: Callable[[pa.Array | pa.ChunkedArray], Result], values: pa.Array | pa.ChunkedArray) -> list[Result]:
    """`work` applied to each row part of `values` (see row_parts), results in row order.

    An exception raised by `work` on any part is raised here, as it would be without threads."""
    parts = row_parts(values)
    later = [_pool().submit(work, part) for part in parts[1:]]
    first = work(parts[0])  # the calling thread takes a part too instead of only waiting
    return [first, *(future.result() for future in later)]


def in_background(work: Callable[..., Result], *args: Any) -> Future[Result]:
    """Start `work(*args)` on a thread of its own, for GIL-bound work that can overlap Arrow kernels that release
    the GIL (see schema.uniqueness_in_background). A separate thread, so it never delays map_rows' parts."""
    return _background().submit(work, *args)


@lru_cache(maxsize=1)
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="imvo-validation-bg")


def chunks_of(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    """The Arrow arrays that make up `values` (a plain array is its own single chunk)."""
    return list(values.chunks) if isinstance(values, pa.ChunkedArray) else [values]


def _forget_pools_in_child() -> None:
    # A forked child inherits the executors but not their threads: work handed to them would never run.
    _pool.cache_clear()
    _background.cache_clear()


os.register_at_fork(after_in_child=_forget_pools_in_child)
