import base64
import hashlib
import inspect
import io
import json
import os
import stat
import struct
import time
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imvo_submit.envelope.format as format_module
import imvo_submit.envelope.pipeline as pipeline_module
import imvo_submit.envelope.seal as seal_module
import imvo_submit.envelope.unseal as unseal_module
from aggregator.errors import EnvelopeError
from imvo_submit.envelope import (
    CHUNK_SIZE,
    REASONS,
    SUITES,
    EnvelopeRejected,
    LegacyHeader,
    ReceiptInvalid,
    file_sha256,
    generate_encryption_key,
    generate_signing_key,
    make_receipt,
    open_file,
    read_header,
    sanitise_file_name,
    seal_file,
    size_class,
    verify_receipt,
)
from imvo_submit.envelope.format import (
    SIGNATURE_SIZE,
    TAG_SIZE,
    encode_encapsulation,
    encode_preamble,
    frame_plaintext,
    seal_file_key,
    signature_message,
)
from imvo_submit.envelope.keys import legacy_fingerprint, private_key_from_bytes
from imvo_submit.envelope.receipts import RECEIPT_PREFIX, canonical_json
from support.legacy_envelope import legacy_header, seal_v2

VECTORS = Path(__file__).parent / "vectors" / "envelope"
CREATED = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

RECIPIENT = {
    "x25519": generate_encryption_key("x25519"),
    "mlkem768-x25519": generate_encryption_key("mlkem768-x25519"),
}
COMPANY = generate_signing_key()
OTHER_COMPANY = generate_signing_key()
STEP = CHUNK_SIZE + TAG_SIZE


def seal(src: Path, dst: Path, *, suite=None, signer=COMPANY, **fields) -> object:
    kem = (suite or "x25519").split("/")[0]
    header_fields = dict(covenant="textile", template="living_wage", company_id="C0042", period="2026-10")
    header_fields |= fields
    return seal_file(
        src, dst, recipient_public_key=RECIPIENT[kem].public_key(), signing_private_key=signer, suite=suite,
        created=CREATED, **header_fields,
    )  # fmt: skip


def open_env(path: Path, kem: str = "x25519", signer=COMPANY, sink=None):
    return open_file(path, RECIPIENT[kem], signer.public_key(), sink=sink)


def sealed_bytes(tmp_path: Path, data: bytes, **kw) -> bytes:
    src, dst = tmp_path / "data.csv", tmp_path / "data.imvo"
    src.write_bytes(data)
    seal(src, dst, **kw)
    return dst.read_bytes()


def reject_reason(tmp_path: Path, data: bytes, name: str = "probe.imvo") -> str | None:
    path = tmp_path / name
    path.write_bytes(data)
    try:
        open_env(path)
    except EnvelopeRejected as exc:
        assert exc.reason in REASONS and exc.message
        return exc.reason
    return None


PAYLOAD = bytes(range(256)) * 2 + b"tail"  # 516 bytes: framed into the 64 KiB class, two chunks


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_suite_round_trips(tmp_path, suite):
    src, dst = tmp_path / "in.csv", tmp_path / "out.imvo"
    src.write_bytes(PAYLOAD)
    header = seal(src, dst, suite=suite)
    opened = open_env(dst, kem=SUITES[suite].kem)
    assert opened.plaintext == PAYLOAD
    assert opened.header == header == read_header(dst)
    assert header.suite == suite and header.format_version == 3 and header.size_class == 64 * 1024
    assert header.created == "2026-11-01T09:30:00Z" and header.file_name == "in.csv"


@pytest.mark.parametrize(
    ("size", "klass"),
    [
        (0, 2**16),
        (1, 2**16),
        (2**16 - 1, 2**16),
        (2**16, 2**16),
        (2**16 + 1, 2**17),
        (2**17, 2**17),
        (2**17 + 1, 2**18),
    ],
)
def test_the_file_length_follows_the_size_class_only(tmp_path, size, klass):
    """The stream is size (8) | plaintext | zeros to the class | BLAKE3 (32), in 64 KiB chunks."""
    data = os.urandom(size)
    blob = sealed_bytes(tmp_path, data)
    header = read_header(tmp_path / "data.imvo")
    assert header.size_class == size_class(size) == klass
    stream = klass + 40
    chunks = -(-stream // CHUNK_SIZE)
    prefix = len(encode_preamble(header)) + 2 + SUITES[header.suite].encapsulation_size
    assert len(blob) == prefix + stream + TAG_SIZE * chunks + SIGNATURE_SIZE
    assert open_env(tmp_path / "data.imvo").plaintext == data


def test_the_cleartext_header_and_length_show_nothing_derived_from_the_plaintext(tmp_path):
    """Item 2 of issue 22: format 2 showed the plaintext's BLAKE3 and exact size (an oracle for guesses, and
    each company's number of locations within 10%). Submissions of 1,234 and 60,001 bytes now look the same."""
    blobs, headers = [], []
    for size in (1234, 60_001):
        data = os.urandom(size)
        blobs.append(sealed_bytes(tmp_path, data, file_name="locations.csv"))
        headers.append(read_header(tmp_path / "data.imvo"))
        text = headers[-1].to_bytes()
        assert blake3.blake3(data).hexdigest().encode() not in text and f":{size}".encode() not in text
        assert b"plaintext" not in text and b"chunk_size" not in text
    assert headers[0] == headers[1] and len(blobs[0]) == len(blobs[1])


def test_sink_receives_the_plaintext_and_nothing_is_returned(tmp_path):
    sealed_bytes(tmp_path, PAYLOAD)
    sink = io.BytesIO()
    opened = open_env(tmp_path / "data.imvo", sink=sink)
    assert opened.plaintext is None and sink.getvalue() == PAYLOAD
    header, plaintext = open_env(tmp_path / "data.imvo")  # unpacks like a tuple (intake relies on it)
    assert plaintext == PAYLOAD and header.company_id == "C0042"


@HYPOTHESIS
@given(data=st.binary(max_size=700))
def test_random_payloads_round_trip(tmp_path, data):
    sealed_bytes(tmp_path, data)
    assert open_env(tmp_path / "data.imvo").plaintext == data


@pytest.mark.parametrize(
    ("given_name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\csr\\lw.xlsx", "lw.xlsx"),
        ("a\x00b\nc.csv", "abc.csv"),
        ("..", "submission"),
    ],
)
def test_file_name_is_reduced_to_a_safe_base_name(tmp_path, given_name, stored):
    src = tmp_path / "x.csv"
    src.write_bytes(b"1")
    assert seal(src, tmp_path / "x.imvo", file_name=given_name).file_name == stored


# ---------------------------------------------------------------- tampering


@pytest.fixture(scope="module")
def valid_blob(tmp_path_factory):
    return sealed_bytes(tmp_path_factory.mktemp("valid"), PAYLOAD)


@HYPOTHESIS
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_flipping_any_bit_is_rejected(tmp_path, valid_blob, position, bit):
    position %= len(valid_blob)
    corrupt = bytearray(valid_blob)
    corrupt[position] ^= 1 << bit
    assert reject_reason(tmp_path, bytes(corrupt)) is not None


@HYPOTHESIS
@given(length=st.integers(min_value=0))
def test_truncation_at_any_position_is_rejected(tmp_path, valid_blob, length):
    length %= len(valid_blob)
    assert reject_reason(tmp_path, valid_blob[:length]) in {"not_an_envelope", "truncated"}


def test_every_truncation_of_a_small_envelope_is_rejected(tmp_path):
    blob = sealed_bytes(tmp_path, b"abc")
    prefix = len(blob) - 65576 - 2 * TAG_SIZE - SIGNATURE_SIZE
    lengths = [*range(prefix + 2), *range(prefix, len(blob), 997), *range(len(blob) - 200, len(blob))]
    reasons = {reject_reason(tmp_path, blob[:n]) for n in lengths}
    assert reasons == {"not_an_envelope", "truncated"}


def test_appended_bytes_are_rejected(tmp_path, valid_blob):
    assert reject_reason(tmp_path, valid_blob + b"\x00") == "trailing_data"
    assert reject_reason(tmp_path, valid_blob + valid_blob[-200:]) == "trailing_data"


def _split(blob: bytes, tmp_path: Path) -> tuple[bytes, list[bytes]]:
    (tmp_path / "s.imvo").write_bytes(blob)
    header = read_header(tmp_path / "s.imvo")
    prefix_len = len(encode_preamble(header)) + 2 + SUITES[header.suite].encapsulation_size
    payload = blob[prefix_len:-SIGNATURE_SIZE]
    return blob[:prefix_len], [payload[i : i + STEP] for i in range(0, len(payload), STEP)]


def _resign(prefix: bytes, chunks: list[bytes]) -> bytes:
    payload = b"".join(chunks)
    return prefix + payload + COMPANY.sign(signature_message(prefix, blake3.blake3(payload).digest()))


def test_reordered_chunks_are_rejected_even_when_the_signer_resigns(tmp_path, valid_blob):
    prefix, chunks = _split(valid_blob, tmp_path)
    swapped = [chunks[1], chunks[0]]
    assert reject_reason(tmp_path, prefix + b"".join(swapped) + valid_blob[-64:]) == "bad_signature"
    assert reject_reason(tmp_path, _resign(prefix, swapped)) == "tampered"
    assert reject_reason(tmp_path, _resign(prefix, chunks)) is None  # the re-signing helper itself is sound


def test_opening_with_another_companys_key_is_rejected(tmp_path):
    sealed_bytes(tmp_path, PAYLOAD)
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "data.imvo", signer=OTHER_COMPANY)
    assert err.value.reason == "wrong_signer" and "C0042" in err.value.message
    header = read_header(tmp_path / "data.imvo")
    expected = header.fingerprint_of(OTHER_COMPANY.public_key())
    assert f"(signed by {header.signer_fingerprint}, registered {expected})" in err.value.message


def test_file_sealed_by_another_company_in_our_name_is_rejected(tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "forged.imvo"
    src.write_bytes(PAYLOAD)
    seal(src, dst, signer=OTHER_COMPANY)
    with pytest.raises(EnvelopeRejected) as err:
        open_env(dst, signer=COMPANY)
    assert err.value.reason == "wrong_signer"


def test_other_recipient_cannot_open(tmp_path):
    sealed_bytes(tmp_path, PAYLOAD)
    with pytest.raises(EnvelopeRejected) as err:
        open_file(tmp_path / "data.imvo", generate_encryption_key(), COMPANY.public_key())
    assert err.value.reason == "wrong_recipient"


def test_gigantic_header_length_is_refused_without_reading_it(tmp_path, valid_blob):
    blob = valid_blob[:10] + struct.pack(">I", 2**32 - 1) + valid_blob[14:]
    (tmp_path / "big.imvo").write_bytes(blob)
    with pytest.raises(EnvelopeRejected) as err:
        read_header(tmp_path / "big.imvo")
    assert err.value.reason == "header_too_large"


def test_missing_file_is_reported_as_unreadable(tmp_path):
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "nope.imvo")
    assert err.value.reason == "unreadable"


# ---------------------------------------------------------------- format versions


def test_a_version_1_file_is_refused_with_a_re_seal_hint():
    """v2/v1_valid.imvo is a genuine format-1 file (SHA-256 hashes), sealed before BLAKE3."""
    keys = _vector_keys()
    for read in (read_header, lambda p: open_file(p, keys["recipient"], keys["signer"].public_key())):
        with pytest.raises(EnvelopeRejected) as err:
            read(VECTORS / "v2" / "v1_valid.imvo")
        assert err.value.reason == "unsupported_version"
        assert err.value.message == (
            "v1_valid.imvo was sealed by an older imvo-submit (envelope format version 1), "
            "which this aggregator no longer opens"
        )
        assert err.value.hint == "ask the company to re-seal the file with the current imvo-submit and send it again"


@pytest.mark.parametrize("version", [0, 4, 65535])
def test_a_version_we_never_wrote_asks_to_update_the_aggregator(tmp_path, valid_blob, version):
    (tmp_path / "other.imvo").write_bytes(valid_blob[:8] + struct.pack(">H", version) + valid_blob[10:])
    with pytest.raises(EnvelopeRejected) as err:
        read_header(tmp_path / "other.imvo")
    assert err.value.reason == "unsupported_version" and f"version {version}," in err.value.message
    assert "older" not in err.value.message and err.value.hint.startswith("update the aggregator")


@pytest.mark.parametrize(
    ("name", "plaintext"),
    [
        ("v2_valid.imvo", (VECTORS / "v2" / "plaintext.csv").read_bytes()),
        ("v2_valid_three_chunks.imvo", bytes((i * 7) % 251 for i in range(150_000))),
    ],
)
def test_format_2_files_still_open_with_a_deprecation_notice(name, plaintext):
    """Genuine files of the format-2 sealer (tests/vectors/envelope/v2/README.md)."""
    keys = _vector_keys()
    for sink in (None, io.BytesIO()):
        opened = open_file(VECTORS / "v2" / name, keys["recipient"], keys["signer"].public_key(), sink=sink)
        assert (opened.plaintext if sink is None else sink.getvalue()) == plaintext
    header = read_header(VECTORS / "v2" / name)
    assert isinstance(header, LegacyHeader) and header.format_version == 2
    assert header.deprecation.startswith("sealed with envelope format 2, whose readable header shows the data")
    assert read_header(VECTORS / "valid.imvo").deprecation is None


def test_a_format_2_file_with_sender_chosen_small_chunks_is_refused():
    """Item 3 of issue 22: format 2 let the sender choose chunks down to 16 bytes (~80x the CPU to open).
    Format 3 has no chunk_size field; format 2 is opened only with the 64 KiB every imvo-submit wrote."""
    keys = _vector_keys()
    with pytest.raises(EnvelopeRejected) as err:
        open_file(VECTORS / "v2" / "v2_small_chunks.imvo", keys["recipient"], keys["signer"].public_key())
    assert err.value.reason == "malformed_header"
    assert err.value.message.endswith("chunk_size 64 is not 65536, the only one imvo-submit wrote")
    assert "chunk_size" not in inspect.signature(seal_file).parameters


def test_header_and_signature_use_blake3_and_the_v3_labels(tmp_path):
    blob = sealed_bytes(tmp_path, PAYLOAD)
    assert read_header(tmp_path / "data.imvo").format_version == 3
    prefix, chunks = _split(blob, tmp_path)
    message = signature_message(prefix, blake3.blake3(b"".join(chunks)).digest())
    assert message.startswith(b"imvo-envelope/v3 signature\n")
    assert message[-64:] == blake3.blake3(prefix).digest() + blake3.blake3(b"".join(chunks)).digest()
    COMPANY.public_key().verify(blob[-SIGNATURE_SIZE:], message)  # raises if the digests were SHA-256


# ---------------------------------------------------------------- many batches through the thread pipeline


BIG = 3 * 1024 * 1024 + 12345  # 49 full 64 KiB chunks and a partial one
SMALL_BATCH = 256 * 1024  # so BIG spans 13 batches and every ring slot is reused several times


def _small_batches(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(seal_module, "SEAL_BATCH_BYTES", SMALL_BATCH)
    patch.setattr(unseal_module, "BATCH_BYTES", SMALL_BATCH)


@pytest.fixture
def small_batches(monkeypatch):
    _small_batches(monkeypatch)


@pytest.fixture(scope="module")
def big_sealed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    data = os.urandom(BIG)
    (folder / "big.bin").write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        _small_batches(patch)
        seal(folder / "big.bin", folder / "big.imvo")
    return data, folder / "big.imvo"


@pytest.mark.parametrize("batches", ["small", "default"])
def test_large_file_round_trips_with_and_without_sink(big_sealed, monkeypatch, batches):
    if batches == "small":
        _small_batches(monkeypatch)
    data, path = big_sealed
    assert open_env(path).plaintext == data
    sink = io.BytesIO()
    open_env(path, sink=sink)
    assert sink.getvalue() == data
    assert read_header(path).size_class == 4 * 1024 * 1024


def test_damage_in_a_late_batch_names_its_chunk_and_sink_output_must_be_discarded(tmp_path, big_sealed, small_batches):
    _, path = big_sealed
    prefix, chunks = _split(path.read_bytes(), tmp_path)
    chunks[43] = chunks[43][:5] + bytes([chunks[43][5] ^ 1]) + chunks[43][6:]
    (tmp_path / "bad.imvo").write_bytes(_resign(prefix, chunks))
    sink = io.BytesIO()
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "bad.imvo", sink=sink)
    assert err.value.reason == "tampered" and "part 44 " in err.value.message
    # the sink got the batches before the damaged one, and nothing of the damaged batch
    per_batch = SMALL_BATCH // (64 * 1024)
    assert len(sink.getvalue()) == (43 // per_batch) * per_batch * 64 * 1024 - 8 > 0  # less the size field


@pytest.mark.parametrize("size", [BIG, 5000], ids=["threaded", "inline"])
@pytest.mark.parametrize("change", ["shrinks", "grows"])
def test_source_changing_while_sealing_is_refused_and_leaves_no_file(
    tmp_path, monkeypatch, small_batches, change, size
):
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(size))
    real_new_header = seal_module.new_header

    def header_then_change_source(**values):
        header = real_new_header(**values)  # the size is fixed now; change the file under the reader
        with open(src, "r+b") as fh:
            fh.truncate(size // 2) if change == "shrinks" else (fh.seek(0, 2), fh.write(b"more"))
        return header

    monkeypatch.setattr(seal_module, "new_header", header_then_change_source)
    with pytest.raises(EnvelopeError, match="changed while it was being sealed") as err:
        seal(src, tmp_path / "out.imvo")
    assert err.value.hint == "close the file in other programs and seal again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]


# ---------------------------------------------------------------- small files: the inline path


def _force_threaded(patch: pytest.MonkeyPatch) -> None:
    """Send every file, however small, through the threaded pipeline (the only path before inline existed)."""
    patch.setattr(format_module, "INLINE_MAX_BYTES", -1)


def _repeatable_randomness(patch: pytest.MonkeyPatch) -> None:
    """Fix the file key, and give the same HPKE encapsulation (a real one, made once) for the same inputs:
    HPKE's ephemeral key cannot be injected, and Ed25519 signatures are deterministic already."""
    real_seal_file_key, made = seal_module.seal_file_key, {}

    def same_encapsulation(spec, file_key, recipient, preamble):
        key = (spec.name, file_key, preamble)
        if key not in made:
            made[key] = real_seal_file_key(spec, file_key, recipient, preamble)
        return made[key]

    patch.setattr(seal_module, "seal_file_key", same_encapsulation)
    patch.setattr(seal_module, "_new_file_key", lambda: bytes(range(32)))


def _outcome(path: Path, sink: io.BytesIO | None = None) -> tuple:
    """Everything a caller can observe from opening: the plaintext, or the rejection's reason, message and
    hint; plus what a sink received."""
    try:
        result = ("opened", open_env(path, sink=sink).plaintext)
    except EnvelopeRejected as exc:
        result = (exc.reason, exc.message, exc.hint)
    return result if sink is None else (*result, sink.getvalue())


def _outcome_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch, sink: bool = False) -> tuple[tuple, tuple]:
    inline = _outcome(path, io.BytesIO() if sink else None)
    with monkeypatch.context() as patch:
        _force_threaded(patch)
        threaded = _outcome(path, io.BytesIO() if sink else None)
    return inline, threaded


@pytest.mark.parametrize("size", [0, 1, 516, 65536, 70_000, 300_000])
@pytest.mark.parametrize("seal_batch", [None, 65536], ids=["one-batch", "many-batches"])
def test_inline_and_threaded_sealing_write_identical_bytes(tmp_path, monkeypatch, size, seal_batch):
    _repeatable_randomness(monkeypatch)
    data = os.urandom(size)
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    inline_header = seal(src, tmp_path / "inline.imvo")
    with monkeypatch.context() as patch:
        _force_threaded(patch)
        if seal_batch:
            patch.setattr(seal_module, "SEAL_BATCH_BYTES", seal_batch)
        threaded_header = seal(src, tmp_path / "threaded.imvo")
    assert inline_header == threaded_header
    assert (tmp_path / "inline.imvo").read_bytes() == (tmp_path / "threaded.imvo").read_bytes()
    assert _outcome_both_ways(tmp_path / "inline.imvo", monkeypatch, sink=True) == (
        ("opened", None, data),
        ("opened", None, data),
    )


def test_each_path_opens_the_others_files_with_real_randomness(tmp_path, monkeypatch):
    src = tmp_path / "in.csv"
    src.write_bytes(PAYLOAD)
    inline_header = seal(src, tmp_path / "inline.imvo")
    with monkeypatch.context() as patch:
        _force_threaded(patch)
        threaded_header = seal(src, tmp_path / "threaded.imvo")
        assert open_env(tmp_path / "inline.imvo") == (inline_header, PAYLOAD)
    assert open_env(tmp_path / "threaded.imvo") == (threaded_header, PAYLOAD)
    assert inline_header == threaded_header  # same header; the bytes differ only by HPKE's random ephemeral key


def test_small_files_are_sealed_and_opened_without_starting_threads(tmp_path, monkeypatch):
    def no_threads(*args, **kwargs):
        raise AssertionError("a worker thread was started for a small file")

    monkeypatch.setattr(pipeline_module, "ThreadPoolExecutor", no_threads)
    src = tmp_path / "in.csv"
    src.write_bytes(os.urandom(4096))
    header = seal(src, tmp_path / "out.imvo")
    assert open_env(tmp_path / "out.imvo") == (header, src.read_bytes())
    _force_threaded(monkeypatch)  # the guard itself works: the threaded path trips it
    with pytest.raises(AssertionError, match="worker thread"):
        open_env(tmp_path / "out.imvo")


@pytest.mark.parametrize(("limit", "inline"), [(65577, True), (65576, True), (65575, False)])
def test_the_inline_limit_is_inclusive(tmp_path, monkeypatch, limit, inline):
    monkeypatch.setattr(format_module, "INLINE_MAX_BYTES", limit)  # the 64 KiB class: a 65,576-byte stream
    calls = []
    for module, name in (
        (seal_module, "_seal_payload"),
        (seal_module, "_seal_payload_inline"),
        (unseal_module, "_verify_signature"),
        (unseal_module, "_verify_signature_inline"),
    ):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    data = os.urandom(99)
    sealed_bytes(tmp_path, data)
    assert open_env(tmp_path / "data.imvo").plaintext == data
    suffix = "_inline" if inline else ""
    assert calls == ["_seal_payload" + suffix, "_verify_signature" + suffix]


def test_every_corruption_of_a_small_file_is_refused_the_same_way_by_both_paths(tmp_path, monkeypatch):
    """The threaded path is how every file was opened before: same reason, message, hint and sink output."""
    blob = sealed_bytes(tmp_path, bytes(range(40)))  # two chunks, the last of 40 bytes
    header_end = (
        len(blob) - (65576 + 2 * TAG_SIZE) - SIGNATURE_SIZE - 2 - SUITES["x25519/chacha20-poly1305"].encapsulation_size
    )
    positions = [*range(0, header_end, 5), *range(header_end, header_end + 200)]  # the encapsulation
    positions += [*range(header_end + 200, len(blob) - 200, 1013), *range(len(blob) - 200, len(blob))]
    corrupt_files = [blob[:p] + bytes([blob[p] ^ 1]) + blob[p + 1 :] for p in positions]
    corrupt_files += [blob[:n] for n in (13, header_end, len(blob) - 100, len(blob) - 1)] + [blob + b"\x00"]
    seen = set()
    for number, corrupt in enumerate(corrupt_files):
        path = tmp_path / f"c{number}.imvo"
        path.write_bytes(corrupt)
        inline, threaded = _outcome_both_ways(path, monkeypatch, sink=True)
        assert inline == threaded, number
        assert inline[0] != "opened" and inline[-1] == b""  # refused, and the sink got nothing
        seen.add(inline[0])
    assert seen >= {"not_an_envelope", "malformed_header", "bad_signature", "truncated", "trailing_data"}


def test_chunk_damage_behind_a_valid_signature_is_refused_the_same_way_by_both_paths(tmp_path, monkeypatch):
    prefix, chunks = _split(sealed_bytes(tmp_path, PAYLOAD), tmp_path)
    cases = {
        "swapped": [chunks[1], chunks[0]],
        "flipped": [chunks[0], chunks[1][:3] + bytes([chunks[1][3] ^ 1]) + chunks[1][4:]],
    }
    for name, changed in cases.items():
        (tmp_path / f"{name}.imvo").write_bytes(_resign(prefix, changed))
        inline, threaded = _outcome_both_ways(tmp_path / f"{name}.imvo", monkeypatch, sink=True)
        assert inline == threaded and inline[0] == "tampered" and inline[-1] == b""
    assert "part 2 " in inline[1]


# ---------------------------------------------------------------- committed vectors


def _vector_keys() -> dict:
    doc = json.loads((VECTORS / "keys.json").read_text())
    return {name: private_key_from_bytes(v["type"], bytes.fromhex(v["private_hex"])) for name, v in doc.items()}


EXPECTED = json.loads((VECTORS / "expected.json").read_text())


@pytest.mark.parametrize(("name", "reason"), sorted(EXPECTED.items()))
def test_committed_vector(name, reason):
    keys = _vector_keys()
    recipient = keys["recipient_hybrid" if "mlkem" in name else "recipient"]
    if reason is None:
        opened = open_file(VECTORS / name, recipient, keys["signer"].public_key())
        expected = b"" if name == "valid_empty.imvo" else (VECTORS / "plaintext.csv").read_bytes()
        assert opened.plaintext == expected
        return
    with pytest.raises(EnvelopeRejected) as err:
        open_file(VECTORS / name, recipient, keys["signer"].public_key())
    assert err.value.reason == reason


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_vector_gives_the_same_outcome_on_both_paths(name):
    keys = _vector_keys()
    recipient = keys["recipient_hybrid" if "mlkem" in name else "recipient"]

    def outcome() -> tuple:
        sink = io.BytesIO()
        try:
            open_file(VECTORS / name, recipient, keys["signer"].public_key(), sink=sink)
            return ("opened", sink.getvalue())
        except EnvelopeRejected as exc:
            return (exc.reason, exc.message, exc.hint, sink.getvalue())

    inline = outcome()
    with pytest.MonkeyPatch.context() as patch:
        _force_threaded(patch)
        assert outcome() == inline
    assert inline[0] == (EXPECTED[name] or "opened")


def test_vectors_cover_every_rejection_reason_that_a_file_can_cause():
    assert set(EXPECTED.values()) == (set(REASONS) - {"unreadable"}) | {None}


# ---------------------------------------------------------------- sealing failures leave nothing


@pytest.mark.parametrize(
    "bad",
    [{"period": "2026-13"}, {"company_id": "../C1"}, {"covenant": "Textile!"},
     {"suite": "mlkem768-x25519/aes-256-gcm"}, {"suite": "x25519/rot13"}],
)  # fmt: skip
def test_bad_seal_input_raises_and_leaves_no_file(tmp_path, bad):
    src = tmp_path / "in.csv"
    src.write_bytes(PAYLOAD)
    kw = dict(covenant="textile", template="living_wage", company_id="C0042", period="2026-10")
    kw |= bad
    with pytest.raises(EnvelopeError):
        seal_file(src, tmp_path / "out.imvo", recipient_public_key=RECIPIENT["x25519"].public_key(),
                  signing_private_key=COMPANY, created=CREATED, **kw)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_failure_midway_removes_the_temp_file(tmp_path, monkeypatch):
    src = tmp_path / "in.csv"
    src.write_bytes(PAYLOAD)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("imvo_submit.envelope.seal.seal_file_key", broken)
    with pytest.raises(OSError):
        seal(src, tmp_path / "out.imvo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_missing_source_is_a_plain_error(tmp_path):
    with pytest.raises(EnvelopeError, match="does not exist"):
        seal(tmp_path / "missing.csv", tmp_path / "out.imvo")


def test_naive_creation_time_is_refused(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(b"x")
    with pytest.raises(EnvelopeError, match="time zone"):
        seal_file(
            src, tmp_path / "o.imvo", covenant="textile", template="t", company_id="C1", period="2026-01",
            recipient_public_key=RECIPIENT["x25519"].public_key(), signing_private_key=COMPANY,
            created=datetime(2026, 1, 1),
        )  # fmt: skip


# ---------------------------------------------------------------- bounded memory


def test_opening_into_a_sink_keeps_memory_bounded(tmp_path):
    size = 40 * 1024 * 1024
    src, dst = tmp_path / "big.bin", tmp_path / "big.imvo"
    src.write_bytes(os.urandom(size))
    seal(src, dst)

    class Counter:
        total = 0

        def write(self, data: bytes) -> None:
            self.total += len(data)

    sink = Counter()
    tracemalloc.start()
    try:
        open_env(dst, sink=sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.total == size
    assert peak < 10 * 1024 * 1024  # two batches of sealed and plain buffers (2 MiB each), not the 40 MiB file


def _peak_while_refusing(path: Path, recipient, signer) -> tuple[str, int]:
    tracemalloc.start()
    try:
        with pytest.raises(EnvelopeRejected) as err:
            open_file(path, recipient, signer.public_key())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return err.value.reason, peak


def test_a_signed_file_declaring_a_large_size_allocates_only_what_authenticated(tmp_path):
    """Item 3 of issue 22: a company's signed file declaring 1.5 GB made the reader allocate 1.5 GB before its
    first chunk failed. The plaintext now grows only with chunks that authenticated (format 2 as format 3)."""
    size = 48 * 1024 * 1024
    plaintext = bytes(size)
    legacy = seal_v2(plaintext, tmp_path / "v2.imvo", RECIPIENT["x25519"].public_key(), COMPANY, damage_chunk=16)
    reason, peak = _peak_while_refusing(legacy, RECIPIENT["x25519"], COMPANY)
    assert reason == "tampered" and peak < 12 * 1024 * 1024  # ~1 MiB decrypted + the 2 MiB batch buffers

    (tmp_path / "big.bin").write_bytes(plaintext)
    seal(tmp_path / "big.bin", tmp_path / "v3.imvo")
    prefix, chunks = _split((tmp_path / "v3.imvo").read_bytes(), tmp_path)
    chunks[16] = bytes([chunks[16][0] ^ 1]) + chunks[16][1:]
    (tmp_path / "v3.imvo").write_bytes(_resign(prefix, chunks))
    reason, peak = _peak_while_refusing(tmp_path / "v3.imvo", RECIPIENT["x25519"], COMPANY)
    assert reason == "tampered" and peak < 12 * 1024 * 1024


def test_an_unauthenticated_file_is_refused_before_its_payload_is_read(tmp_path, monkeypatch):
    """Header and signer come first; a file whose signer is not the registered key is never read further."""
    src = tmp_path / "in.bin"
    src.write_bytes(bytes(5 * 1024 * 1024))
    seal(src, tmp_path / "big.imvo", signer=OTHER_COMPANY)
    reads = []
    monkeypatch.setattr(unseal_module, "read_into", lambda fh, view: reads.append(len(view)) or 0)
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "big.imvo")
    assert err.value.reason == "wrong_signer" and reads == []


# ---------------------------------------------------------------- receipts


def test_receipt_round_trip_and_forgery(tmp_path):
    sealed_bytes(tmp_path, PAYLOAD)
    header = read_header(tmp_path / "data.imvo")
    secretariat = generate_signing_key()
    digest = file_sha256(tmp_path / "data.imvo")
    receipt = make_receipt(header, digest, CREATED, "accepted", secretariat, log_head="7:" + "ab" * 32)
    fields = verify_receipt(receipt, secretariat.public_key())
    assert fields["state"] == "accepted" and fields["file_sha256"] == digest
    assert fields["company_id"] == "C0042" and fields["received_at"] == "2026-11-01T09:30:00Z"
    assert fields["log_head"] == "7:" + "ab" * 32

    forged = receipt.replace(b'"accepted"', b'"quarantined"')
    with pytest.raises(ReceiptInvalid, match="forged or was changed"):
        verify_receipt(forged, secretariat.public_key())
    with pytest.raises(ReceiptInvalid, match="signed by key"):
        verify_receipt(receipt, generate_signing_key().public_key())
    with pytest.raises(ReceiptInvalid):
        verify_receipt(b"not a receipt", secretariat.public_key())
    with pytest.raises(EnvelopeError, match="unknown receipt state"):
        make_receipt(header, digest, CREATED, "lost", secretariat)


def test_receipts_carry_nothing_derived_from_the_plaintext_and_older_receipts_still_verify(tmp_path):
    """Item 2 of issue 22: receipts of version 2 repeated the plaintext's BLAKE3 and size from the header."""
    sealed_bytes(tmp_path, PAYLOAD)
    header = read_header(tmp_path / "data.imvo")
    secretariat = generate_signing_key()
    receipt = make_receipt(header, file_sha256(tmp_path / "data.imvo"), CREATED, "accepted", secretariat)
    doc = json.loads(receipt)
    assert doc["version"] == 3 and not [k for k in doc["receipt"] if k.startswith("plaintext")]
    assert blake3.blake3(PAYLOAD).hexdigest().encode() not in receipt and b"516" not in receipt

    # receipts issued before: the same signature scheme over a body naming the plaintext's hash, with the
    # secretariat key's 80-bit fingerprint
    for version, name in ((1, "plaintext_sha256"), (2, "plaintext_blake3")):
        old_body = doc["receipt"] | {name: "ab" * 32, "plaintext_size": 516}
        old = doc | {"version": version, "receipt": old_body}
        old["signature"] = doc["signature"] | {
            "key_fingerprint": legacy_fingerprint(secretariat.public_key()),
            "value": base64.b64encode(secretariat.sign(RECEIPT_PREFIX + canonical_json(old_body))).decode(),
        }
        assert verify_receipt(json.dumps(old).encode(), secretariat.public_key())[name] == "ab" * 32
    for version in (4, True, "3"):
        with pytest.raises(ReceiptInvalid, match="is not supported"):
            verify_receipt(json.dumps(doc | {"version": version}).encode(), secretariat.public_key())


# ---------------------------------------------------------------- what the clerk reads (found by mutation testing)


def _header_doc(tmp_path) -> dict:
    sealed_bytes(tmp_path, PAYLOAD)
    return read_header(tmp_path / "data.imvo").to_dict()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("covenant", "Textile!", "covenant 'Textile!' is not a lower-case name such as 'textile'"),
        ("template", "Living", "template 'Living' is not a lower-case name such as 'living_wage'"),
        ("company_id", "../C1", "company_id '../C1' is not letters, digits, '_', '.' or '-'"),
        ("period", "2026-13", "period '2026-13' is not a month written YYYY-MM"),
        ("created", "2026-11-01 09:30", "created '2026-11-01 09:30' is not a UTC time written YYYY-MM-DDTHH:MM:SSZ"),
        ("suite", "x25519/rot13", "suite 'x25519/rot13' is unknown"),
        ("recipient_fingerprint", "ABCD", "recipient_fingerprint 'ABCD' is not a key fingerprint"),
        ("signer_fingerprint", 7, "signer_fingerprint 7 is not a key fingerprint"),
        ("file_name", "a/b.csv", "file_name must be a plain base name"),
        ("format_version", 2, "format_version 2 is not a whole number from 3 to 3"),
        ("size_class", 1024, "size_class 1024 is not a whole number from 65536 to 1099511627776"),
        ("size_class", True, "size_class True is not a whole number from 65536 to 1099511627776"),
        ("size_class", 3 * 65536, "size_class 196608 is not a power of two"),
        ("rules_version", "BCCB2A5C004A", "rules_version 'BCCB2A5C004A' is not 12 lower-case hex digits"),
        ("rules_version", "bccb2a5c004", "rules_version 'bccb2a5c004' is not 12 lower-case hex digits"),
        ("rules_version", 12, "rules_version 12 is not 12 lower-case hex digits"),
    ],
)
def test_a_bad_header_field_is_named_with_what_it_should_be(tmp_path, field, value, message):
    doc = _header_doc(tmp_path) | {field: value}
    with pytest.raises(ValueError) as err:
        type(read_header(tmp_path / "data.imvo")).from_dict(doc)
    assert str(err.value) == message


def test_a_header_with_missing_or_extra_fields_names_them(tmp_path):
    doc = _header_doc(tmp_path)
    header_type = type(read_header(tmp_path / "data.imvo"))
    with pytest.raises(ValueError, match="^fields missing: period, suite; unexpected fields: none$"):
        header_type.from_dict({k: v for k, v in doc.items() if k not in ("suite", "period")})
    with pytest.raises(ValueError, match="^fields missing: none; unexpected fields: colour, size$"):
        header_type.from_dict(doc | {"colour": "red", "size": 3})
    with pytest.raises(ValueError, match="^fields missing: created; unexpected fields: colour$"):
        header_type.from_dict({k: v for k, v in doc.items() if k != "created"} | {"colour": "red"})


def test_the_rules_version_is_written_when_known_and_left_out_when_not(tmp_path):
    """A file sealed without a rules version keeps exactly the header of before (no null field), so a reader of
    an earlier version, and the signature over the canonical header, see the same bytes."""
    doc = _header_doc(tmp_path)
    assert "rules_version" not in doc
    header_type = type(read_header(tmp_path / "data.imvo"))
    without = header_type.from_dict(doc)
    assert without.rules_version is None and without.to_dict() == doc
    with_version = header_type.from_dict(doc | {"rules_version": "bccb2a5c004a"})
    assert with_version.to_dict() == doc | {"rules_version": "bccb2a5c004a"}
    assert b'"rules_version":"bccb2a5c004a"' in with_version.to_bytes()
    assert LegacyHeader.from_dict(_legacy_doc()).to_dict() == _legacy_doc()  # format 2 never had one
    with pytest.raises(ValueError, match="^fields missing: none; unexpected fields: rules_version$"):
        LegacyHeader.from_dict(_legacy_doc() | {"rules_version": "bccb2a5c004a"})


def _legacy_doc() -> dict:
    return legacy_header(b"legacy", RECIPIENT["x25519"].public_key(), COMPANY).to_dict()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format_version", 3, "format_version 3 is not a whole number from 2 to 2"),
        ("plaintext_blake3", "AB" * 32, f"plaintext_blake3 '{'AB' * 32}' is not 64 lower-case hex digits"),
        ("plaintext_size", -1, "plaintext_size -1 is not a whole number from 0 to 4611686018427387904"),
        ("plaintext_size", 2**62 + 1, f"plaintext_size {2**62 + 1} is not a whole number from 0 to {2**62}"),
        ("plaintext_size", True, "plaintext_size True is not a whole number from 0 to 4611686018427387904"),
        ("chunk_size", 15, "chunk_size 15 is not a whole number from 16 to 1048576"),
        ("chunk_size", 16, "chunk_size 16 is not 65536, the only one imvo-submit wrote"),
        ("chunk_size", 1024 * 1024 + 1, "chunk_size 1048577 is not a whole number from 16 to 1048576"),
        ("recipient_fingerprint", "ABCD-ABCD", "recipient_fingerprint 'ABCD-ABCD' is not a key fingerprint"),
    ],
)  # fmt: skip
def test_a_bad_format_2_header_field_is_named(field, value, message):
    with pytest.raises(ValueError) as err:
        LegacyHeader.from_dict(_legacy_doc() | {field: value})
    assert str(err.value) == message


def test_format_2_headers_accept_the_extreme_sizes_and_name_missing_fields():
    for size in (0, 2**62):
        assert LegacyHeader.from_dict(_legacy_doc() | {"plaintext_size": size}).plaintext_size == size
    doc = {k: v for k, v in _legacy_doc().items() if k != "chunk_size"} | {"size_class": 65536}
    with pytest.raises(ValueError, match="^fields missing: chunk_size; unexpected fields: size_class$"):
        LegacyHeader.from_dict(doc)
    doc = {k: v for k, v in _legacy_doc().items() if k not in ("chunk_size", "period")}
    with pytest.raises(ValueError, match="^fields missing: chunk_size, period; unexpected fields: none$"):
        LegacyHeader.from_dict(doc)
    with pytest.raises(ValueError, match="^fields missing: none; unexpected fields: a, size_class$"):
        LegacyHeader.from_dict(_legacy_doc() | {"size_class": 65536, "a": 1})


def test_a_file_name_outside_ascii_is_sealed_escaped_and_opens(tmp_path):
    src = tmp_path / "données 2026.csv"
    src.write_bytes(PAYLOAD)
    header = seal(src, tmp_path / "out.imvo")
    assert header.file_name == "données 2026.csv"
    assert read_header(tmp_path / "out.imvo").file_name == "données 2026.csv"
    assert b"donn\\u00e9es" in (tmp_path / "out.imvo").read_bytes()[:2000]
    assert open_env(tmp_path / "out.imvo").plaintext == PAYLOAD


def test_file_names_are_cut_to_255_characters_and_never_empty():
    assert sanitise_file_name("x" * 300 + ".csv") == "x" * 255
    assert sanitise_file_name("  " + "y" * 255 + " ") == "y" * 255
    for name in ("", ".", "..", "dir/", "\x00\x01", "a/.."):
        assert sanitise_file_name(name) == "submission"
    assert sanitise_file_name("XX") == "XX" and sanitise_file_name("X.X") == "X.X"


def test_an_unreadable_path_is_reported_with_the_reason_and_a_hint(tmp_path):
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "nope.imvo")
    assert err.value.message == f"cannot read {tmp_path / 'nope.imvo'}: No such file or directory"
    assert err.value.hint == "check the path"


def test_rejections_name_the_sizes_and_keys_involved(tmp_path, valid_blob):
    (tmp_path / "long.imvo").write_bytes(valid_blob + b"\x00" * 5)
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "long.imvo")
    assert "long.imvo has 5 unexpected bytes after its end" in err.value.message
    blob = valid_blob[:10] + struct.pack(">I", 16 * 1024 + 1) + valid_blob[14:]
    (tmp_path / "big.imvo").write_bytes(blob)
    with pytest.raises(EnvelopeRejected) as err:
        read_header(tmp_path / "big.imvo")
    assert err.value.reason == "header_too_large" and "declares a header of 16385 bytes" in err.value.message
    blob = valid_blob[:10] + struct.pack(">I", 16 * 1024) + valid_blob[14:]
    (tmp_path / "edge.imvo").write_bytes(blob)
    with pytest.raises(EnvelopeRejected) as err:
        read_header(tmp_path / "edge.imvo")
    assert err.value.reason != "header_too_large"  # 16 KiB is still allowed; this one fails further on

    (tmp_path / "data.imvo").write_bytes(valid_blob)
    other = generate_encryption_key()
    with pytest.raises(EnvelopeRejected) as err:
        open_file(tmp_path / "data.imvo", other, COMPANY.public_key())
    header = read_header(tmp_path / "data.imvo")
    ours = header.fingerprint_of(other.public_key())
    assert f"sealed for another key ({header.recipient_fingerprint})" in err.value.message
    assert f"with this secretariat key ({ours})" in err.value.message


def _file_with_file_key(tmp_path, file_key: bytes, recipient=None) -> Path:
    """A genuine signed file whose encapsulated file key is replaced (the payload stays as sealed)."""
    blob = sealed_bytes(tmp_path, PAYLOAD)
    header = read_header(tmp_path / "data.imvo")
    spec = SUITES[header.suite]
    preamble = encode_preamble(header)
    recipient = recipient or RECIPIENT["x25519"].public_key()
    prefix = preamble + encode_encapsulation(seal_file_key(spec, file_key, recipient, preamble))
    _, chunks = _split(blob, tmp_path)
    (tmp_path / "key.imvo").write_bytes(_resign(prefix, chunks))
    return tmp_path / "key.imvo"


def test_a_file_key_of_the_wrong_size_is_refused_before_the_signature(tmp_path):
    """The encapsulation's size is fixed per suite, which fixes the file key at 32 bytes: another size cannot
    reach decryption (unseal's own "tampered" check of the key size stays as a second line)."""
    for size in (16, 31, 33):
        with pytest.raises(EnvelopeRejected) as err:
            open_env(_file_with_file_key(tmp_path, bytes(range(size))))
        assert err.value.reason == "malformed_header" and not err.value.signer_verified
        expected = f"key encapsulation of {32 + size + 16} bytes for x25519/chacha20-poly1305"
        assert err.value.message == f"key.imvo has a damaged header: {expected}"


def test_a_file_key_sealed_to_another_key_under_our_name_cannot_be_unlocked(tmp_path):
    path = _file_with_file_key(tmp_path, bytes(32), recipient=generate_encryption_key().public_key())
    with pytest.raises(EnvelopeRejected) as err:
        open_env(path)
    ours = read_header(path).fingerprint_of(RECIPIENT["x25519"].public_key())
    assert err.value.reason == "wrong_recipient"
    assert err.value.message.endswith(
        f"names this secretariat key ({ours}) but cannot be unlocked with it: it was sealed for another key"
    )


class _ShrinkingReads:
    """read_into as if the file were cut short while it is read: after `keep` bytes, nothing more comes."""

    def __init__(self, keep: int):
        self.left = keep
        self.real = unseal_module.read_into

    def __call__(self, fh, view):
        got = self.real(fh, view[: max(0, min(len(view), self.left))])
        self.left -= got
        return got


@pytest.mark.parametrize(("size", "keep"), [(516, 100), (5 * 1024 * 1024, 1024), (5 * 1024 * 1024, 3 * 1024 * 1024)])
def test_a_file_cut_short_while_it_is_read_is_truncated(tmp_path, monkeypatch, size, keep):
    """The size check comes first; a file that shrinks after it (a transfer still being written) is still refused
    as truncated when the cut falls in the signature pass, of a small file (inline) or a large one (streaming)."""
    src = tmp_path / "in.bin"
    src.write_bytes(bytes(size))
    seal(src, tmp_path / "cut.imvo")
    reads = _ShrinkingReads(keep)
    monkeypatch.setattr(unseal_module, "read_into", reads)
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "cut.imvo")
    assert err.value.reason == "truncated"
    assert (
        err.value.message
        == "cut.imvo is incomplete: it ends before its declared end (the transfer was probably cut off)"
    )


def test_a_large_file_cut_short_between_the_signature_and_the_decryption_is_truncated(tmp_path, monkeypatch):
    src = tmp_path / "in.bin"
    src.write_bytes(bytes(5 * 1024 * 1024))
    seal(src, tmp_path / "cut.imvo")
    payload = read_header(tmp_path / "cut.imvo").layout.payload_size
    reads = _ShrinkingReads(payload + 3 * 1024 * 1024)  # the whole signature pass, then part of the decryption
    monkeypatch.setattr(unseal_module, "read_into", reads)
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "cut.imvo")
    assert err.value.reason == "truncated"


def test_read_into_fills_the_view_from_short_reads():
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes):
            self.data = data

        def readinto(self, view) -> int:
            n = min(3, len(view), len(self.data))
            view[:n], self.data = self.data[:n], self.data[n:]
            return n

    view = memoryview(bytearray(10))
    assert pipeline_module.read_into(Trickle(b"abcdefghijklmnop"), view) == 10 and bytes(view) == b"abcdefghij"
    view = memoryview(bytearray(10))
    assert pipeline_module.read_into(Trickle(b"abcd"), view) == 4 and bytes(view[:4]) == b"abcd"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[1, 2]", "the header is not a JSON object"),
        (b'{"a": 1}', "the header is not in canonical form"),
        (b'{"a":1,"a":2}', "the header repeats a field"),
        (b"[" * 5000 + b"]" * 5000, "it is nested too deeply to be a header"),
    ],
)
def test_a_damaged_header_says_what_is_wrong(tmp_path, valid_blob, body, detail):
    blob = valid_blob[:10] + struct.pack(">I", len(body)) + body
    (tmp_path / "h.imvo").write_bytes(blob)
    with pytest.raises(EnvelopeRejected) as err:
        read_header(tmp_path / "h.imvo")
    assert err.value.reason == "malformed_header"
    assert err.value.message == f"h.imvo has a damaged header: {detail}"


def test_a_header_naming_an_unknown_suite_or_another_version_says_so(tmp_path, valid_blob):
    length = struct.unpack(">I", valid_blob[10:14])[0]
    doc = json.loads(valid_blob[14 : 14 + length])
    damaged = "h.imvo has a damaged header: "
    long_covenant = f"covenant {'C' * 300!r} is not a lower-case name such as 'textile'"
    cases = [
        ({"suite": "s" * 100}, "unsupported_suite", f"h.imvo is sealed with an unknown encryption suite {'s' * 80!r}"),
        ({"format_version": 2}, "malformed_header", f"{damaged}format_version 2 is not the file's version 3"),
        ({"covenant": "C" * 300}, "malformed_header", f"{damaged}{long_covenant[:200]}"),
    ]  # fmt: skip
    for changes, reason, message in cases:
        body = canonical_json(doc | changes)
        (tmp_path / "h.imvo").write_bytes(valid_blob[:10] + struct.pack(">I", len(body)) + body)
        with pytest.raises(EnvelopeRejected) as err:
            read_header(tmp_path / "h.imvo")
        assert (err.value.reason, err.value.message) == (reason, message)


def test_a_format_2_file_whose_contents_do_not_match_its_header_is_refused(tmp_path):
    plaintext = b"a,b\n1,2\n"
    recipient = RECIPIENT["x25519"].public_key()
    seal_v2(plaintext, tmp_path / "v2.imvo", recipient, COMPANY, plaintext_blake3="00" * 32)
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "v2.imvo")
    assert err.value.reason == "plaintext_mismatch" and err.value.signer_verified
    assert err.value.message.startswith("the decrypted contents of v2.imvo do not match")


@pytest.mark.parametrize(("size", "filler"), [(1000, b"\x01"), (3 * 1024 * 1024 + 5, b"\x01"), (1000, b"\x00")])
def test_a_signed_file_whose_padding_is_not_zeros_is_refused(tmp_path, monkeypatch, size, filler):
    # The padding up to the size class is part of the signed, encrypted stream; a sender that fills it with
    # anything but zeros (room for a hidden message) is refused, near the plaintext or megabytes after it, and
    # for a single byte: the first of the padding (the filler fills the rest).
    length = len(format_module.ZEROS)
    monkeypatch.setattr(seal_module, "ZEROS", memoryview(b"\x01" + filler * (length - 1)))
    sealed_bytes(tmp_path, os.urandom(size))
    monkeypatch.undo()
    with pytest.raises(EnvelopeRejected) as err:
        open_env(tmp_path / "data.imvo")
    assert err.value.reason == "plaintext_mismatch" and err.value.signer_verified


def test_a_large_format_2_file_opens_across_batches(tmp_path):
    plaintext = bytes((i * 13) % 251 for i in range(5 * 1024 * 1024 + 17))
    seal_v2(plaintext, tmp_path / "v2.imvo", RECIPIENT["x25519"].public_key(), COMPANY)
    assert open_env(tmp_path / "v2.imvo").plaintext == plaintext


def _receipt(tmp_path, secretariat, **kw) -> tuple[object, str, bytes]:
    sealed_bytes(tmp_path, PAYLOAD)
    header, digest = read_header(tmp_path / "data.imvo"), file_sha256(tmp_path / "data.imvo")
    return header, digest, make_receipt(header, digest, CREATED, "accepted", secretariat, **kw)


def test_receipt_mistakes_in_making_one_are_named(tmp_path):
    secretariat = generate_signing_key()
    header, digest, _ = _receipt(tmp_path, secretariat)
    with pytest.raises(EnvelopeError) as err:
        make_receipt(header, digest, CREATED, "lost", secretariat)
    assert err.value.hint == "use one of received, accepted, duplicate, superseded, quarantined"
    for bad in ("AB" * 32, "ab" * 31, 7):
        with pytest.raises(EnvelopeError) as err:
            make_receipt(header, bad, CREATED, "accepted", secretariat)
        assert err.value.message == "file_sha256 must be 64 lower-case hex digits"
    with pytest.raises(EnvelopeError) as err:
        make_receipt(header, digest, CREATED, "accepted", secretariat, log_head="7-abc")
    assert err.value.message == "log_head '7-abc' is not COUNT:HASH"
    with pytest.raises(EnvelopeError) as err:
        make_receipt(header, digest, "2026-11-01 09:30", "accepted", secretariat)
    assert err.value.message == "received_at '2026-11-01 09:30' is not written YYYY-MM-DDTHH:MM:SSZ"
    with pytest.raises(EnvelopeError) as err:
        make_receipt(header, digest, datetime(2026, 11, 1, 9, 30), "accepted", secretariat)
    assert (err.value.message, err.value.hint) == ("received_at must include a time zone", "pass datetime.now(UTC)")


def test_times_in_other_zones_are_written_in_utc_whatever_the_local_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        amsterdam = timezone(timedelta(hours=1))
        secretariat = generate_signing_key()
        header, digest, _ = _receipt(tmp_path, secretariat)
        received = datetime(2026, 11, 1, 10, 30, tzinfo=amsterdam)
        receipt = make_receipt(header, digest, received, "accepted", secretariat)
        assert verify_receipt(receipt, secretariat.public_key())["received_at"] == "2026-11-01T09:30:00Z"
        src = tmp_path / "in.csv"
        src.write_bytes(PAYLOAD)
        kw = dict(covenant="textile", template="living_wage", company_id="C0042", period="2026-10")
        sealed = seal_file(src, tmp_path / "tz.imvo", recipient_public_key=RECIPIENT["x25519"].public_key(),
                           signing_private_key=COMPANY, created=received, **kw)  # fmt: skip
        assert sealed.created == "2026-11-01T09:30:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_receipt_is_stable_indented_json_with_sorted_keys(tmp_path):
    secretariat = generate_signing_key()
    _, _, receipt = _receipt(tmp_path, secretariat, log_head="7:" + "ab" * 32)
    doc = json.loads(receipt)
    assert receipt == (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def test_a_receipt_up_to_64_kib_is_read_and_one_byte_more_is_not(tmp_path):
    secretariat = generate_signing_key()
    _, _, receipt = _receipt(tmp_path, secretariat)
    padded = receipt + b" " * (64 * 1024 - len(receipt))
    assert verify_receipt(padded, secretariat.public_key())["state"] == "accepted"
    with pytest.raises(ReceiptInvalid) as err:
        verify_receipt(padded + b" ", secretariat.public_key())
    assert err.value.message == "this file is far too large to be a receipt"


def test_documents_that_are_not_receipts_are_named_so(tmp_path):
    secretariat = generate_signing_key()
    _, _, receipt = _receipt(tmp_path, secretariat)
    doc = json.loads(receipt)
    cases = [
        (b"\xff\xfe not text", "this file is not a receipt (it is not JSON)"),
        (b"{not json", "this file is not a receipt (it is not JSON)"),
        (b"[1, 2]", "this file is not an IMVO receipt"),
        (json.dumps(doc | {"format": "other"}).encode(), "this file is not an IMVO receipt"),
        (json.dumps(doc | {"receipt": []}).encode(), "this file is not an IMVO receipt"),
        (json.dumps(doc | {"signature": "abc"}).encode(), "this file is not an IMVO receipt"),
        (json.dumps(doc | {"version": 9}).encode(), "receipt version 9 is not supported"),
        (json.dumps(doc | {"version": "3"}).encode(), "receipt version '3' is not supported"),
    ]
    for data, message in cases:
        with pytest.raises(ReceiptInvalid) as err:
            verify_receipt(data, secretariat.public_key())
        assert err.value.message == message, data[:40]


def test_a_receipt_signed_by_another_key_or_changed_says_what_to_do(tmp_path):
    secretariat, other = generate_signing_key(), generate_signing_key()
    _, _, receipt = _receipt(tmp_path, other)
    with pytest.raises(ReceiptInvalid) as err:
        verify_receipt(receipt, secretariat.public_key())
    found = json.loads(receipt)["signature"]["key_fingerprint"]
    assert err.value.message.startswith(f"this receipt was signed by key {found!r}, not by the secretariat key")
    assert err.value.hint == "check that you use the secretariat's current public key"
    doc = json.loads(receipt)
    value = doc["signature"]["value"]
    for changed in (value[:10] + "!" + value[10:], None):
        signature = {k: v for k, v in doc["signature"].items() if k != "value" or changed is not None}
        if changed is not None:
            signature["value"] = changed
        with pytest.raises(ReceiptInvalid) as err:
            verify_receipt(json.dumps(doc | {"signature": signature}).encode(), other.public_key())
        assert err.value.message == (
            "this receipt is forged or was changed: its signature does not match the secretariat key"
        )
        assert err.value.hint == "ask the secretariat for a new receipt"


def test_sealing_mistakes_say_what_to_do(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(PAYLOAD)
    x25519 = RECIPIENT["x25519"].public_key()
    kw = dict(covenant="textile", template="living_wage", company_id="C0042", period="2026-10", created=CREATED)

    def refused(source=src, **more) -> EnvelopeError:
        args = kw | dict(recipient_public_key=x25519, signing_private_key=COMPANY) | more
        with pytest.raises(EnvelopeError) as err:
            seal_file(source, tmp_path / "out.imvo", **args)
        return err.value

    err = refused(suite="x25519/rot13")
    assert err.message == "unknown suite 'x25519/rot13'" and err.hint == f"choose one of {', '.join(SUITES)}"
    err = refused(suite="mlkem768-x25519/chacha20-poly1305")
    assert err.message == (
        "suite mlkem768-x25519/chacha20-poly1305 needs a mlkem768-x25519 secretariat key, but the key given is x25519"
    )
    assert err.hint == "leave the suite out to use the one that fits the secretariat key"
    err = refused(tmp_path / "missing.csv")
    assert err.message == f"{tmp_path / 'missing.csv'} does not exist" and err.hint == "check the file name"
    err = refused(tmp_path)
    assert err.message == f"cannot read {tmp_path}: Is a directory"
    err = refused(Path(os.devnull))
    assert err.message == f"{os.devnull} is not a regular file"
    assert err.hint == "seal a saved file, not a folder or a device"
    err = refused(created=datetime(2026, 11, 1, 9, 30))
    assert (err.message, err.hint) == ("the creation time must include a time zone", "pass datetime.now(UTC)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_bad_header_values_name_the_field_and_the_sealed_file_is_readable_by_all(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(PAYLOAD)
    with pytest.raises(EnvelopeError) as err:
        seal(src, tmp_path / "out.imvo", period="2026-13")
    assert err.value.message == "cannot seal: period '2026-13' is not a month written YYYY-MM"
    assert err.value.hint == "check the covenant, template, company and period"
    seal(src, tmp_path / "out.imvo")
    assert stat.S_IMODE((tmp_path / "out.imvo").stat().st_mode) == 0o644  # sealed: safe to hand to a mailer


def test_a_rejection_reason_outside_the_list_is_a_programming_error():
    with pytest.raises(ValueError, match="^unknown envelope rejection reason 'lost'$"):
        EnvelopeRejected("lost", "message")


def test_hashing_a_large_file_reads_it_in_blocks(tmp_path):
    data = os.urandom(24 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    tracemalloc.start()
    try:
        digest = file_sha256(tmp_path / "big.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == hashlib.sha256(data).hexdigest()
    assert peak < 4 * 1024 * 1024  # a 1 MiB block at a time, not the 24 MiB file


def test_the_framed_stream_is_size_plaintext_zero_padding_and_blake3():
    """docs/envelope.md: what the test vectors encrypt (make_vectors.py) and sealing streams."""
    for plaintext in (b"", b"abc", bytes(range(256)) * 300):
        padded = size_class(len(plaintext))
        expected = struct.pack(">Q", len(plaintext)) + plaintext + bytes(padded - len(plaintext))
        assert frame_plaintext(plaintext) == expected + blake3.blake3(plaintext).digest()


def test_a_receipt_carries_its_reason_category_signed_and_refuses_a_malformed_one(tmp_path):
    secretariat = generate_signing_key()
    _, _, receipt = _receipt(tmp_path, secretariat, reason_category="valid")
    assert verify_receipt(receipt, secretariat.public_key())["reason_category"] == "valid"
    assert "reason_category" not in verify_receipt(_receipt(tmp_path, secretariat)[2], secretariat.public_key())
    header, digest, _ = _receipt(tmp_path, secretariat)
    with pytest.raises(EnvelopeError) as err:
        make_receipt(header, digest, CREATED, "accepted", secretariat, reason_category="Not Valid")
    assert err.value.message == "reason_category 'Not Valid' is not one lower-case word"
