"""Write the envelope test vectors (format 3): one valid file per suite family and one-failure-each corruptions.

    .venv/bin/python tests/vectors/envelope/make_vectors.py

Keys, the file key and the creation time are fixed below, but HPKE draws a fresh ephemeral key on every
run, so the .imvo bytes differ between runs: the vectors are generated once and committed. `expected.json`
maps every vector to the `reason` opening must fail with (null: it must open to `plaintext.csv`).
All vectors are opened with `recipient` (keys.json) and the company key `signer`.

The 218-byte plaintext is framed (size, plaintext, zeros to the 64 KiB size class, BLAKE3) into a stream of
65,576 bytes: two chunks, a full one and a final one of 40 bytes. So every valid vector is ~66 KB.

`v2/` holds genuine format-2 files written by the format-2 sealer, which no longer exists (see v2/README.md).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import blake3

from imvo_submit.envelope.format import (
    CHUNK_SIZE,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    SUITES,
    EnvelopeHeader,
    chunk_nonce,
    encode_encapsulation,
    encode_preamble,
    frame_plaintext,
    payload_cipher,
    seal_file_key,
    signature_message,
    size_class,
)
from imvo_submit.envelope.keys import fingerprint, private_key_from_bytes

HERE = Path(__file__).parent
KEYS_HEX = {
    "recipient": ("x25519", "4da96f98ae5acfd3db75f48ff3bbf85bcc980eb8ca8aa246d7179e1cb2ca033c"),
    "other_recipient": ("x25519", "8dcedee8b84896e0c7803fab0c1713e7962b6ae28b494c1f5f5026555fc6c2cc"),
    "recipient_hybrid": (
        "mlkem768-x25519",
        "02111155d356428a52f1487162357e4ddbb921b36d7e37a3df50f8ab9c4ab215bc5e72645b5741f267fe83bafe1e1859"
        "4c8ef972484f3519b4bb5730dc937e4372c85cb1fb6a652692a43e9119f1cb88fb67a0679090051e699e1e6fcd871c97",
    ),
    "signer": ("ed25519", "bb9bb20ab3f3173aa1496fecdfdc8f1fd3964231a87863c700fce94bbff970fb"),
    "other_signer": ("ed25519", "bf01df6a10f29098f188b67bea870f08dbf523f6ad4567f235181e952f2b57b7"),
}
FILE_KEY = bytes.fromhex("812774dbaa21db1c3c30bd5df81965236a42740045d9c8afeca5ec143e41b5a5")
CREATED = "2026-11-01T09:30:00Z"
PLAINTEXT = (
    b"country;workers_covered;wage_paid_monthly_eur;living_wage_benchmark_eur;benchmark_source\n"
    b"BD;1200;118,50;212,00;anker\nIN;840;141,20;230,75;wage_indicator\nTR;310;402,00;515,30;anker\n"
    b"VN;2250;171,00;236,40;asia_floor_wage\n"
)

KEYS = {name: private_key_from_bytes(kind, bytes.fromhex(raw)) for name, (kind, raw) in KEYS_HEX.items()}


def make_header(plaintext: bytes, suite: str = "x25519/chacha20-poly1305", **changes: object) -> EnvelopeHeader:
    recipient = KEYS["recipient_hybrid" if suite.startswith("mlkem") else "recipient"]
    header = EnvelopeHeader(
        format_version=FORMAT_VERSION,
        covenant="textile",
        template="living_wage",
        company_id="C0042",
        period="2026-10",
        created=CREATED,
        suite=suite,
        recipient_fingerprint=fingerprint(recipient.public_key()),
        signer_fingerprint=fingerprint(KEYS["signer"].public_key()),
        file_name="living_wage_2026-10.csv",
        size_class=size_class(len(plaintext)),
    )
    return replace(header, **changes)


def seal_chunks(header: EnvelopeHeader, stream: bytes, flags: Callable[[int, int], bool] | None = None) -> list:
    """STREAM-encrypt a framed stream in 64 KiB pieces; `flags(i, n)` overrides the last-chunk flag."""
    aead = payload_cipher(SUITES[header.suite], FILE_KEY)
    pieces = [stream[i : i + CHUNK_SIZE] for i in range(0, len(stream), CHUNK_SIZE)] or [b""]
    last = flags or (lambda i, n: i == n - 1)
    return [aead.encrypt(chunk_nonce(i, last(i, len(pieces))), p, None) for i, p in enumerate(pieces)]


def assemble(header: EnvelopeHeader, chunks: list, recipient: str | None = None, signer: str = "signer") -> bytes:
    """Preamble, HPKE-sealed FILE_KEY (to `recipient`, default: the header's), chunks, signature."""
    preamble = encode_preamble(header)
    spec = SUITES[header.suite]
    key = KEYS[recipient or ("recipient_hybrid" if spec.kem == "mlkem768-x25519" else "recipient")]
    prefix = preamble + encode_encapsulation(seal_file_key(spec, FILE_KEY, key.public_key(), preamble))
    payload = b"".join(chunks)
    return prefix + payload + sign(prefix, payload, signer)


def sign(prefix: bytes, payload: bytes, signer: str = "signer") -> bytes:
    return KEYS[signer].sign(signature_message(prefix, blake3.blake3(payload).digest()))


def split(data: bytes, header: EnvelopeHeader) -> tuple[bytes, bytes, bytes]:
    prefix_len = len(encode_preamble(header)) + 2 + SUITES[header.suite].encapsulation_size
    return data[:prefix_len], data[prefix_len:-64], data[-64:]


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def resigned(prefix: bytes, chunks: list) -> bytes:
    payload = b"".join(chunks)
    return prefix + payload + sign(prefix, payload)


def vectors() -> dict[str, tuple[bytes, str | None]]:
    header = make_header(PLAINTEXT)
    stream = frame_plaintext(PLAINTEXT)
    chunks = seal_chunks(header, stream)
    valid = assemble(header, chunks)
    prefix, payload, signature = split(valid, header)
    preamble_len = len(encode_preamble(header))
    out: dict[str, tuple[bytes, str | None]] = {"valid": (valid, None)}

    empty = make_header(b"")
    out["valid_empty"] = (assemble(empty, seal_chunks(empty, frame_plaintext(b""))), None)
    for suite in ("x25519/aes-256-gcm", "mlkem768-x25519/chacha20-poly1305", "mlkem768-x25519/aes-256-gcm"):
        h = make_header(PLAINTEXT, suite=suite)
        out["valid_" + suite.replace("/", "_").replace("-", "")] = (assemble(h, seal_chunks(h, stream)), None)

    # framing
    out["bad_magic"] = (b"IMVOSEAM" + valid[8:], "not_an_envelope")
    out["empty_file"] = (b"", "not_an_envelope")
    out["plain_csv"] = (PLAINTEXT, "not_an_envelope")
    out["version_4"] = (valid[:8] + struct.pack(">H", 4) + valid[10:], "unsupported_version")
    out["version_2_claimed_by_a_format_3_header"] = (valid[:8] + struct.pack(">H", 2) + valid[10:], "malformed_header")
    out["huge_header_length"] = (valid[:10] + struct.pack(">I", 0xFFFFFFF0) + valid[14:], "header_too_large")
    out["header_length_just_over_cap"] = (
        valid[:10] + struct.pack(">I", MAX_HEADER_BYTES + 1) + valid[14:],
        "header_too_large",
    )
    out["truncated_in_magic"] = (valid[:5], "not_an_envelope")
    out["truncated_in_header"] = (valid[:40], "truncated")

    # header content: each re-signed where a signature could matter, so only the named check fails
    def with_header_bytes(body: bytes) -> bytes:
        return valid[:10] + struct.pack(">I", len(body)) + body + valid[preamble_len:]

    body = header.to_bytes()
    out["header_not_json"] = (with_header_bytes(b"{" + body[1:-1]), "malformed_header")
    out["header_not_canonical"] = (with_header_bytes(body.replace(b",", b", ", 1)), "malformed_header")
    out["header_unknown_field"] = (with_header_bytes(body[:-1] + b',"zz_extra":1}'), "malformed_header")
    out["header_bad_period"] = (with_header_bytes(body.replace(b'"2026-10"', b'"2026-13"')), "malformed_header")
    out["header_path_in_file_name"] = (
        with_header_bytes(body.replace(b'"living_wage_2026-10.csv"', b'"../../etc/cron.d/x"')),
        "malformed_header",
    )
    out["header_size_class_not_a_power_of_two"] = (
        with_header_bytes(body.replace(b'"size_class":65536', b'"size_class":65537')),
        "malformed_header",
    )
    out["header_size_class_below_one_chunk"] = (
        with_header_bytes(body.replace(b'"size_class":65536', b'"size_class":32768')),
        "malformed_header",
    )
    out["header_with_plaintext_hash"] = (  # a format-2 field: format 3 shows nothing derived from the plaintext
        with_header_bytes(body[:-1] + b',"plaintext_blake3":"' + blake3.blake3(PLAINTEXT).hexdigest().encode() + b'"}'),
        "malformed_header",
    )
    out["header_with_chunk_size"] = (
        with_header_bytes(body.replace(b'{"company_id"', b'{"chunk_size":16,"company_id"')),
        "malformed_header",
    )
    out["unknown_suite"] = (
        with_header_bytes(body.replace(b"x25519/chacha20-poly1305", b"x25519/chacha20-poly1306")),
        "unsupported_suite",
    )
    out["header_flipped_byte"] = (with_header_bytes(body.replace(b"C0042", b"C0043")), "bad_signature")

    # payload and signature bytes
    out["encapsulation_flipped_byte"] = (flip(valid, preamble_len + 5), "bad_signature")
    out["payload_flipped_byte"] = (flip(valid, len(prefix) + 70), "bad_signature")
    out["signature_flipped_byte"] = (flip(valid, len(valid) - 10), "bad_signature")
    out["truncated_mid_payload"] = (valid[: len(prefix) + 100], "truncated")
    out["truncated_signature"] = (valid[:-1], "truncated")
    out["dropped_last_chunk"] = (prefix + chunks[0] + signature, "truncated")
    out["appended_chunk"] = (prefix + payload + chunks[1] + signature, "trailing_data")
    out["appended_byte"] = (valid + b"\x00", "trailing_data")
    out["reordered_chunks"] = (prefix + chunks[1] + chunks[0] + signature, "bad_signature")

    # the signer itself made a broken file: the signature holds, the STREAM layer or the framing must catch it
    out["reordered_chunks_resigned"] = (resigned(prefix, [chunks[1], chunks[0]]), "tampered")
    out["flipped_payload_byte_resigned"] = (resigned(prefix, [flip(chunks[0], 3), chunks[1]]), "tampered")
    no_last_flag = seal_chunks(header, stream, flags=lambda i, n: False)
    out["missing_last_chunk_flag"] = (assemble(header, no_last_flag), "tampered")
    out["early_last_chunk_flag"] = (assemble(header, seal_chunks(header, stream, flags=lambda i, n: True)), "tampered")

    def framed(size: int, plain: bytes, padding: bytes, digest: bytes) -> bytes:
        return struct.pack(">Q", size) + plain + padding + digest

    pad = bytes(65536 - len(PLAINTEXT))
    digest = blake3.blake3(PLAINTEXT).digest()
    inner = {
        "inner_hash_mismatch": framed(len(PLAINTEXT), PLAINTEXT, pad, bytes(32)),
        "inner_size_too_small": framed(len(PLAINTEXT) - 1, PLAINTEXT, pad, digest),
        "inner_size_over_the_class": framed(65537, PLAINTEXT, pad, digest),
        "inner_padding_not_zero": framed(len(PLAINTEXT), PLAINTEXT, pad[:-1] + b"\x01", digest),
        "inner_stream_of_another_class": frame_plaintext(bytes(70_000)),  # 131,112 bytes under a 64 KiB header
    }
    for name, inner_stream in inner.items():
        if name == "inner_stream_of_another_class":
            out[name] = (assemble(header, seal_chunks(header, inner_stream)), "trailing_data")
        else:
            out[name] = (assemble(header, seal_chunks(header, inner_stream)), "plaintext_mismatch")
    small = make_header(b"x" * 100_000)  # size class 128 KiB, but the file holds a 64 KiB-class plaintext
    out["inner_size_in_a_smaller_class"] = (
        assemble(small, seal_chunks(small, framed(218, PLAINTEXT, bytes(131072 - 218), digest))),
        "plaintext_mismatch",
    )

    # keys
    their_fp = fingerprint(KEYS["other_signer"].public_key())
    out["signed_by_other_company"] = (
        assemble(make_header(PLAINTEXT, signer_fingerprint=their_fp), chunks, signer="other_signer"),
        "wrong_signer",
    )
    out["signed_by_other_key_claiming_ours"] = (assemble(header, chunks, signer="other_signer"), "bad_signature")
    other_fp = fingerprint(KEYS["other_recipient"].public_key())
    out["sealed_for_other_recipient"] = (
        assemble(make_header(PLAINTEXT, recipient_fingerprint=other_fp), chunks, recipient="other_recipient"),
        "wrong_recipient",
    )
    out["recipient_fingerprint_lies"] = (assemble(header, chunks, recipient="other_recipient"), "wrong_recipient")
    return out


def main() -> None:
    for old in HERE.glob("*.imvo"):
        old.unlink()
    expected = {}
    for name, (data, reason) in sorted(vectors().items()):
        (HERE / f"{name}.imvo").write_bytes(data)
        expected[f"{name}.imvo"] = reason
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    (HERE / "plaintext.csv").write_bytes(PLAINTEXT)
    keys = {name: {"type": kind, "private_hex": raw} for name, (kind, raw) in KEYS_HEX.items()}
    (HERE / "keys.json").write_text(json.dumps(keys, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(expected)} vectors to {HERE}")


if __name__ == "__main__":
    main()
