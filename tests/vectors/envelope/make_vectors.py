"""Write the envelope test vectors: one valid file per suite family and one-failure-each corruptions.

    .venv/bin/python tests/vectors/envelope/make_vectors.py

Keys, the file key and the creation time are fixed below, but HPKE draws a fresh ephemeral key on every
run, so the .imvo bytes differ between runs: the vectors are generated once and committed. `expected.json`
maps every vector to the `reason` opening must fail with (null: it must open to `plaintext.csv`).
All vectors are opened with `recipient` (keys.json) and the company key `signer`.

`v1_valid.imvo` is kept, not regenerated: a genuine envelope format 1 file (SHA-256 hashes) written by the
version-1 sealer, which no longer exists; readers of format 2 must refuse it as `unsupported_version`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import blake3

from aggregator.envelope.envelope import (
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    SUITES,
    EnvelopeHeader,
    chunk_nonce,
    encode_encapsulation,
    encode_preamble,
    payload_cipher,
    seal_file_key,
    signature_message,
)
from aggregator.envelope.keys import fingerprint, private_key_from_bytes

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
CHUNK = 64  # small, so the 225-byte plaintext spans four chunks, the last one partial
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
        plaintext_blake3=blake3.blake3(plaintext).hexdigest(),
        plaintext_size=len(plaintext),
        file_name="living_wage_2026-10.csv",
        chunk_size=CHUNK,
    )
    return replace(header, **changes)


def seal_chunks(header: EnvelopeHeader, plaintext: bytes, flags: Callable[[int, int], bool] | None = None) -> list:
    """STREAM-encrypt `plaintext` in header.chunk_size pieces; `flags(i, n)` overrides the last-chunk flag."""
    aead = payload_cipher(SUITES[header.suite], FILE_KEY)
    pieces = [plaintext[i : i + header.chunk_size] for i in range(0, len(plaintext), header.chunk_size)] or [b""]
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
    chunks = seal_chunks(header, PLAINTEXT)
    valid = assemble(header, chunks)
    prefix, payload, signature = split(valid, header)
    tag = 16
    c = [len(ch) for ch in chunks]
    preamble_len = len(encode_preamble(header))
    out: dict[str, tuple[bytes, str | None]] = {"valid": (valid, None)}

    empty = make_header(b"")
    out["valid_empty"] = (assemble(empty, seal_chunks(empty, b"")), None)
    for suite in ("x25519/aes-256-gcm", "mlkem768-x25519/chacha20-poly1305", "mlkem768-x25519/aes-256-gcm"):
        h = make_header(PLAINTEXT, suite=suite)
        out["valid_" + suite.replace("/", "_").replace("-", "")] = (
            assemble(h, seal_chunks(h, PLAINTEXT)),
            None,
        )

    # framing
    out["bad_magic"] = (b"IMVOSEAM" + valid[8:], "not_an_envelope")
    out["empty_file"] = (b"", "not_an_envelope")
    out["plain_csv"] = (PLAINTEXT, "not_an_envelope")
    out["version_3"] = (valid[:8] + struct.pack(">H", 3) + valid[10:], "unsupported_version")
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
    out["header_bad_period"] = (
        with_header_bytes(body.replace(b'"2026-10"', b'"2026-13"')),
        "malformed_header",
    )
    out["header_path_in_file_name"] = (
        with_header_bytes(body.replace(b'"living_wage_2026-10.csv"', b'"../../etc/cron.d/x"')),
        "malformed_header",
    )
    out["header_chunk_size_too_big"] = (
        with_header_bytes(body.replace(b'"chunk_size":64', b'"chunk_size":2097152')),
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
    out["dropped_last_chunk"] = (prefix + payload[: -c[-1]] + signature, "truncated")
    out["appended_chunk"] = (prefix + payload + chunks[0] + signature, "trailing_data")
    out["appended_byte"] = (valid + b"\x00", "trailing_data")
    out["reordered_chunks"] = (
        prefix + chunks[1] + chunks[0] + b"".join(chunks[2:]) + signature,
        "bad_signature",
    )

    # the signer itself made a broken file: the signature holds, the STREAM layer must catch it
    out["reordered_chunks_resigned"] = (resigned(prefix, [chunks[1], chunks[0], *chunks[2:]]), "tampered")
    out["flipped_payload_byte_resigned"] = (resigned(prefix, [flip(chunks[0], 3), *chunks[1:]]), "tampered")
    shrunk = make_header(PLAINTEXT, plaintext_size=3 * CHUNK)  # claims the file ends after chunk three
    out["dropped_last_chunk_resigned"] = (assemble(shrunk, chunks[:3]), "tampered")
    # one more chunk after a full final one: that chunk carries the last-chunk flag, so opening fails there
    full = PLAINTEXT[: 3 * CHUNK]
    full_chunks = seal_chunks(make_header(full), full)
    grown = make_header(full + PLAINTEXT[:10])
    extra = payload_cipher(SUITES[grown.suite], FILE_KEY).encrypt(chunk_nonce(3, True), PLAINTEXT[:10], None)
    out["appended_chunk_resigned"] = (assemble(grown, [*full_chunks, extra]), "tampered")
    no_last_flag = seal_chunks(header, PLAINTEXT, flags=lambda i, n: False)
    out["missing_last_chunk_flag"] = (assemble(header, no_last_flag), "tampered")
    assert len(chunks) == 4 and c[-1] < CHUNK + tag, "the vectors assume four chunks, the last partial"

    # keys
    their_fp = fingerprint(KEYS["other_signer"].public_key())
    out["signed_by_other_company"] = (
        assemble(make_header(PLAINTEXT, signer_fingerprint=their_fp), chunks, signer="other_signer"),
        "wrong_signer",
    )
    out["signed_by_other_key_claiming_ours"] = (
        assemble(header, chunks, signer="other_signer"),
        "bad_signature",
    )
    other_fp = fingerprint(KEYS["other_recipient"].public_key())
    out["sealed_for_other_recipient"] = (
        assemble(make_header(PLAINTEXT, recipient_fingerprint=other_fp), chunks, recipient="other_recipient"),
        "wrong_recipient",
    )
    out["recipient_fingerprint_lies"] = (
        assemble(header, chunks, recipient="other_recipient"),
        "wrong_recipient",
    )
    out["plaintext_hash_mismatch"] = (assemble(make_header(PLAINTEXT, plaintext_blake3="ab" * 32), chunks),
                                      "plaintext_mismatch")  # fmt: skip
    return out


LEGACY = {"v1_valid.imvo": "unsupported_version"}  # committed once, never regenerated (see above)


def main() -> None:
    for old in HERE.glob("*.imvo"):
        if old.name not in LEGACY:
            old.unlink()
    expected = dict(LEGACY)
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
