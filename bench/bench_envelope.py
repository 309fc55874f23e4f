"""Seal and open a file of a given size; compare with raw ChaCha20-Poly1305 throughput in the same run.

    .venv/bin/python -m bench.bench_envelope --size-mb 1024 [--repeat 3] [--suite x25519/aes-256-gcm] [--csv]
    .venv/bin/python -m bench.bench_envelope --small 256 [--repeat 3]     # per-file cost of ~4 KB files

Set BENCH_TMP=/dev/shm to keep the disk (and fsync of the sealed file) out of the measurement.
Peak memory is the growth of the process's maximum RSS during each step (ru_maxrss is a high-water mark,
so each step is measured in a fresh child process to get its own peak). `cpu s` is the step's user + system
time over all its threads: on a shared machine, wall time well above cpu / 2 means the step waited for a core.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from imvo_submit.envelope import (
    SUITES,
    generate_encryption_key,
    generate_signing_key,
    open_file,
    read_header,
    seal_file,
)
from imvo_submit.envelope.format import LABELS, chunk_nonce
from imvo_submit.envelope.keys import private_key_from_bytes

_BLOCK = 64 * 1024
RESULTS_DIR = Path(__file__).parent / "results"


class _NullSink:
    """Counts bytes instead of storing them, so the measurement is the envelope, not the disk."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _make_source(path: Path, size: int) -> None:
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as fh:
        for offset in range(0, size, len(block)):
            fh.write(block[: min(len(block), size - offset)])


def _raw_aead(path: Path, size: int) -> float:
    """ChaCha20-Poly1305 encrypt of the same bytes in 64 KiB chunks, read from the same file."""
    aead = ChaCha20Poly1305(os.urandom(32))
    start = time.perf_counter()
    with open(path, "rb") as fh:
        index = 0
        while chunk := fh.read(_BLOCK):
            aead.encrypt(index.to_bytes(12, "big"), chunk, None)
            index += 1
    return time.perf_counter() - start


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return usage.ru_utime + usage.ru_stime


def _step(name: str, src: str, dst: str, size: int, suite: str | None, keys: tuple, queue: mp.Queue) -> None:
    kem, recipient_raw, signer_raw = keys
    recipient = private_key_from_bytes(kem, recipient_raw)
    signer = private_key_from_bytes("ed25519", signer_raw)
    before, cpu_before = _max_rss_mb(), _cpu_seconds()
    start = time.perf_counter()
    if name == "raw aead":
        seconds = _raw_aead(Path(src), size)
    elif name == "seal":
        seal_file(
            src, dst, covenant="textile", template="materials", company_id="C0001", period="2026-10",
            recipient_public_key=recipient.public_key(), signing_private_key=signer, suite=suite,
            created=datetime(2026, 11, 1, tzinfo=UTC),
        )  # fmt: skip
        seconds = time.perf_counter() - start
    else:
        sink = _NullSink()
        open_file(dst, recipient, signer.public_key(), sink=sink)
        assert sink.size == size
        seconds = time.perf_counter() - start
    queue.put((name, seconds, _cpu_seconds() - cpu_before, _max_rss_mb() - before))


def run(size_mb: int, suite: str | None) -> list[dict]:
    size = size_mb * 1024 * 1024
    kem = (suite or "x25519").split("/")[0]
    recipient, signer = generate_encryption_key(kem), generate_signing_key()
    keys = (kem, recipient.raw, signer.private_bytes_raw())
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        src, dst = Path(tmp) / "source.bin", Path(tmp) / "source.imvo"
        _make_source(src, size)
        ctx = mp.get_context("fork")
        for name in ("raw aead", "seal", "open"):
            queue = ctx.Queue()
            proc = ctx.Process(target=_step, args=(name, str(src), str(dst), size, suite, keys, queue))
            proc.start()
            result = queue.get()
            proc.join()
            step, seconds, cpu, peak = result
            rows.append({"step": step, "size_mb": size_mb, "seconds": round(seconds, 3), "cpu_s": round(cpu, 3),
                         "mb_per_s": round(size_mb / seconds, 1), "peak_rss_mb": round(peak, 1)})  # fmt: skip
    raw = rows[0]["mb_per_s"]
    for row in rows:
        row["vs_raw_aead"] = round(row["mb_per_s"] / raw, 2)
    return rows


def _print_table(rows: list[dict]) -> None:
    print(f"{'step':<10}{'MB':>8}{'seconds':>10}{'cpu s':>8}{'MB/s':>10}{'x raw':>8}{'peak MB':>10}")
    for r in rows:
        print(
            f"{r['step']:<10}{r['size_mb']:>8}{r['seconds']:>10.3f}{r['cpu_s']:>8.3f}{r['mb_per_s']:>10.1f}"
            f"{r['vs_raw_aead']:>8.2f}{r['peak_rss_mb']:>10.1f}"
        )


# ---------------------------------------------------------------- many small files (intake's monthly batch)

SMALL_FILE_BYTES = 4096
_SMALL_HEADER = dict(covenant="textile", template="living_wage", company_id="C0001", period="2026-10")


def _per_file(step: str, count: int, work) -> dict:
    """Run `work(i)` for i in range(count); wall and CPU milliseconds per file."""
    cpu_before, start = _cpu_seconds(), time.perf_counter()
    for i in range(count):
        work(i)
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_before
    return {"step": step, "files": count, "ms_per_file": round(1000 * seconds / count, 3),
            "cpu_ms_per_file": round(1000 * cpu / count, 3)}  # fmt: skip


def _raw_small(count: int, sources: list[bytes], suite: str, recipient, signer) -> tuple[dict, dict]:
    """The cryptography an envelope cannot avoid, per file: one HPKE setup, one Ed25519 signature and the AEAD
    of the bytes in 64 KiB chunks (sealing), and their inverses (opening)."""
    spec = SUITES[suite]
    hpke, info = spec.hpke(), LABELS[3].hpke_info + b"x" * 400  # about the size of a real preamble
    aead, public = spec.payload_aead(os.urandom(32)), recipient.public_key().hpke_key()
    sealed: list[tuple[bytes, bytes, list[bytes]]] = []

    def raw_seal(i: int) -> None:
        data = sources[i]
        encapsulation = hpke.encrypt(os.urandom(32), public, info=info)
        pieces = [aead.encrypt(chunk_nonce(n, True), data[o : o + _BLOCK], None)
                  for n, o in enumerate(range(0, max(1, len(data)), _BLOCK))]  # fmt: skip
        sealed.append((encapsulation, signer.sign(encapsulation + pieces[0][:32]), pieces))

    def raw_open(i: int) -> None:
        encapsulation, signature, pieces = sealed[i]
        signer.public_key().verify(signature, encapsulation + pieces[0][:32])
        hpke.decrypt(encapsulation, recipient.hpke_key(), info=info)
        for n, piece in enumerate(pieces):
            aead.decrypt(chunk_nonce(n, True), piece, None)

    return _per_file("raw seal", count, raw_seal), _per_file("raw open", count, raw_open)


def run_small(count: int, suite: str | None, size: int = SMALL_FILE_BYTES) -> list[dict]:
    """Seal `count` files of `size` bytes, then read_header + open_file each (as intake does), against the raw
    cryptography of the same files. Sealing includes the atomic write and its fsync: use BENCH_TMP=/dev/shm."""
    kem = (suite or "x25519").split("/")[0]
    suite = suite or f"{kem}/chacha20-poly1305"
    recipient, signer = generate_encryption_key(kem), generate_signing_key()
    public = recipient.public_key()
    sources = [os.urandom(size) for _ in range(count)]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)
        for i, data in enumerate(sources):
            (folder / f"{i:05d}.csv").write_bytes(data)

        def seal_one(i: int) -> None:
            seal_file(folder / f"{i:05d}.csv", folder / f"{i:05d}.imvo", recipient_public_key=public,
                      signing_private_key=signer, suite=suite, **_SMALL_HEADER)  # fmt: skip

        def open_one(i: int) -> None:
            path = folder / f"{i:05d}.imvo"
            read_header(path)
            assert open_file(path, recipient, signer.public_key()).plaintext == sources[i]

        raw_seal, raw_open = _raw_small(count, sources, suite, recipient, signer)
        rows = [raw_seal, _per_file("seal", count, seal_one), raw_open, _per_file("open", count, open_one)]
    for raw, row in ((rows[0], rows[0]), (rows[0], rows[1]), (rows[2], rows[2]), (rows[2], rows[3])):
        row["x_raw"] = round(row["ms_per_file"] / raw["ms_per_file"], 2)
        row["cpu_x_raw"] = round(row["cpu_ms_per_file"] / raw["cpu_ms_per_file"], 2)
    return [{"size_bytes": size} | row for row in rows]


def _print_small_table(rows: list[dict]) -> None:
    print(f"{'step':<10}{'files':>7}{'bytes':>8}{'ms/file':>10}{'x raw':>8}{'cpu ms/file':>13}{'cpu x raw':>11}")
    for r in rows:
        print(
            f"{r['step']:<10}{r['files']:>7}{r['size_bytes']:>8}{r['ms_per_file']:>10.3f}{r['x_raw']:>8.2f}"
            f"{r['cpu_ms_per_file']:>13.3f}{r['cpu_x_raw']:>11.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--suite", default=None, help="e.g. x25519/aes-256-gcm (default: x25519/chacha20)")
    parser.add_argument("--repeat", type=int, default=1, help="run the three steps this many times, one table each")
    parser.add_argument("--small", type=int, metavar="N", help="instead: seal and open N files of ~4 KB each")
    parser.add_argument("--csv", action="store_true", help="also write bench/results/envelope-<time>.csv")
    args = parser.parse_args()
    rows = []
    for run_number in range(1, args.repeat + 1):
        if args.small:
            batch = [{"run": run_number} | row for row in run_small(args.small, args.suite)]
        else:
            batch = [{"run": run_number} | row for row in run(args.size_mb, args.suite)]
        if args.repeat > 1:
            print(f"run {run_number} of {args.repeat}")
        (_print_small_table if args.small else _print_table)(batch)
        rows += batch
    if args.csv:
        RESULTS_DIR.mkdir(exist_ok=True)
        out = RESULTS_DIR / f"envelope-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"
        with open(out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
