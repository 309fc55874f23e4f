"""The streaming machinery that sealing and opening share: a ring of fixed buffers, read-ahead, in-order
hashing and the framed stream's unframing, so memory stays bounded whatever the file size."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, NamedTuple

import blake3

from imvo_submit.envelope.format import (
    DIGEST_FIELD,
    RING_DEPTH,
    SIZE_FIELD,
    SIZE_STRUCT,
    TAG_SIZE,
    BinarySink,
    EnvelopeHeader,
    Layout,
    LegacyHeader,
    reject,
    size_class,
)

_ZERO_PIECE = bytes(64 * 1024)  # what the padding of a framed stream is compared with, piece by piece


class InOrder:
    """Calls run on one worker thread, one at a time in submission order.

    BLAKE3 and file reads and writes release the GIL, the AEAD does not (cryptography 50, measured): so the
    AEAD gets the calling thread to itself while workers read, hash and write on the other core. Each call
    returns a future: the caller must not reuse a buffer before the futures using it are done."""

    def __init__(self, name: str) -> None:
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imvo-{name}")

    def submit(self, func: Callable[..., object], *args: object) -> Future:
        return self._worker.submit(func, *args)

    def drain(self) -> None:
        """Wait for every submitted call; the first failure is re-raised by the caller's futures."""
        self._worker.shutdown(wait=True)

    def __enter__(self) -> InOrder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)


class BackgroundHash(InOrder):
    """BLAKE3-256 computed on a worker thread from buffers handed over in order."""

    def __init__(self) -> None:
        super().__init__("blake3")
        self._hash = blake3.blake3()

    def update(self, data: memoryview) -> Future:
        return self.submit(self._hash.update, data)

    def digest(self) -> bytes:
        self.drain()
        return self._hash.digest()


class Slot:
    """One batch's buffers (plaintext and sealed chunks) and the background work still using them."""

    def __init__(self, plain_size: int, sealed_size: int) -> None:
        self.plain = memoryview(bytearray(plain_size))
        self.sealed = memoryview(bytearray(sealed_size))
        self.pending: list[Future] = []

    def claim(self) -> Slot:
        """Wait until the background work is done with this slot's buffers (re-raising its errors)."""
        for future in self.pending:
            future.result()
        self.pending.clear()
        return self


class Batch(NamedTuple):
    """Chunks first..first+count-1 of the payload: `plain` stream bytes, `plain + 16 * count` sealed."""

    first: int
    count: int
    plain: int

    @property
    def sealed(self) -> int:
        return self.plain + TAG_SIZE * self.count


def batches(layout: Layout, batch_bytes: int) -> Iterator[Batch]:
    per_batch = max(1, batch_bytes // layout.chunk)
    size, step, total = layout.stream, layout.chunk, layout.chunk_count
    for first in range(0, total, per_batch):
        count = min(per_batch, total - first)
        yield Batch(first, count, min(count * step, size - first * step))


def buffer_ring(layout: Layout, batch_bytes: int) -> list[Slot]:
    per_batch = max(1, batch_bytes // layout.chunk)
    plain = min(per_batch * layout.chunk, layout.stream)
    return [Slot(plain, plain + TAG_SIZE * per_batch) for _ in range(RING_DEPTH)]


class _Scheduled(NamedTuple):
    slot: Slot
    batch: Batch
    read: Future


def read_ahead(
    ring: list[Slot], batches: Iterator[Batch], reader: InOrder, read: Callable[[Slot, Batch], object]
) -> Iterator[_Scheduled]:
    """Yield the batches in order, each with its slot and its read already submitted to `reader`.

    Up to len(ring) reads are in flight; batch n + len(ring) is read into the slot of batch n once the caller
    asks for the next batch, so the caller must be done with that slot's input buffer by then."""
    queue: deque[_Scheduled] = deque()
    for number, batch in enumerate(batches):
        slot = ring[number % len(ring)]
        if len(queue) == len(ring):
            yield queue.popleft()
        queue.append(_Scheduled(slot, batch, reader.submit(read, slot, batch)))
    while queue:
        yield queue.popleft()


def read_into(fh: BinaryIO, view: memoryview) -> int:
    """Fill `view` from `fh`; fewer bytes only at the end of the file."""
    got = 0
    while got < len(view):
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    return got


class InlineHash:
    """BackgroundHash's interface on the calling thread."""

    def __init__(self) -> None:
        self._hash = blake3.blake3()

    def update(self, data: memoryview) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


class Collect:
    """A sink that keeps the plaintext, growing only as authenticated batches arrive."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: memoryview) -> None:
        self.data += data

    def value(self) -> bytes:
        return bytes(self.data)


class Unframe:
    """Takes the decrypted stream in order and hands the plaintext to the sink, hashing it.

    Format 3: the stream is size | plaintext | zero padding | BLAKE3; the size must fit the size class, the
    padding must be zeros, the hash must match. Format 2: the stream is the plaintext, whose size and hash
    are in the header."""

    def __init__(self, path: Path, header: EnvelopeHeader, sink: BinarySink):
        self.path, self.header, self.sink = path, header, sink
        self.hasher: BackgroundHash | InlineHash | None = None
        self.position = 0
        self.size: int | None = None
        self.digest = bytearray()

    @classmethod
    def of(cls, path: Path, header: EnvelopeHeader, sink: BinarySink) -> Unframe:
        return LegacyUnframe(path, header, sink) if isinstance(header, LegacyHeader) else cls(path, header, sink)

    def feed(self, data: memoryview) -> list[Future]:
        """Consume the next stream bytes; returns the hashing work still using `data`."""
        start, self.position = self.position, self.position + len(data)
        if start == 0:
            self._read_size(data)
        plain_end, digest_start = SIZE_FIELD + self.size, self.header.layout.stream - DIGEST_FIELD
        futures = self._plaintext(data, start, max(start, SIZE_FIELD), min(self.position, plain_end))
        self._check_zeros(data[max(0, plain_end - start) : max(0, min(len(data), digest_start - start))])
        self.digest += data[max(0, digest_start - start) :]
        return futures

    def _read_size(self, data: memoryview) -> None:
        (self.size,) = SIZE_STRUCT.unpack_from(data)
        if self.size > self.header.size_class or size_class(self.size) != self.header.size_class:
            raise reject(self.path, "plaintext_mismatch")

    def _plaintext(self, data: memoryview, start: int, low: int, high: int) -> list[Future]:
        if high <= low:
            return []
        piece = data[low - start : high - start]
        self.sink.write(piece)
        future = self.hasher.update(piece)
        return [] if future is None else [future]

    def _check_zeros(self, padding: memoryview) -> None:
        # compared as bytes (a memcmp) in small pieces: memoryviews compare item by item, 30 times slower on the
        # megabytes of padding of a large file, and a piece is copied to compare it
        for at in range(0, len(padding), len(_ZERO_PIECE)):
            piece = padding[at : at + len(_ZERO_PIECE)]
            if piece.tobytes() != _ZERO_PIECE[: len(piece)]:
                raise reject(self.path, "plaintext_mismatch")

    def finish(self, plain_digest: bytes) -> None:
        if self.position != self.header.layout.stream or bytes(self.digest) != plain_digest:
            raise reject(self.path, "plaintext_mismatch")


class LegacyUnframe(Unframe):
    def feed(self, data: memoryview) -> list[Future]:
        self.position += len(data)
        self.sink.write(data)
        future = self.hasher.update(data)
        return [] if future is None else [future]

    def finish(self, plain_digest: bytes) -> None:
        if self.position != self.header.plaintext_size or plain_digest.hex() != self.header.plaintext_blake3:
            raise reject(self.path, "plaintext_mismatch")
