"""The TPM wire format of quotes and attestation-key names (standard library only).

Marshalling and parsing of TPMS_ATTEST (quote type), TPMS_QUOTE_INFO, an ECDSA
TPMT_SIGNATURE and the public area of the attestation key, as TPM 2.0 Part 2
defines them (big-endian, TPM2B = u16 size + bytes). FakeTpm builds its quotes
with these functions, the ESAPI adapter checks the TPM's quotes with them, and a
verifier can use ``check_quote`` without a TSS. Parsing takes hostile input:
every length is bounded and trailing bytes are refused (ValueError).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bios_ws.tpm.port import BANK_ALGORITHMS, check_pcr_indexes, marshal_pcr_selection

TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018
TPM_ALG_SHA256 = 0x000B
TPM_ALG_NULL = 0x0010
TPM_ALG_ECDSA = 0x0018
TPM_ALG_ECC = 0x0023
TPM_ECC_NIST_P256 = 0x0003
#: FIXEDTPM | FIXEDPARENT | SENSITIVEDATAORIGIN | USERWITHAUTH | NODA | RESTRICTED | SIGN_ENCRYPT
AK_OBJECT_ATTRIBUTES = 0x00050472
MAX_ATTEST_BYTES = 1024
MAX_SIGNATURE_BYTES = 256
_MAX_BANKS = 16
_MAX_SELECT_BYTES = 8
_P256_BYTES = 32


@dataclass(frozen=True)
class ParsedAttest:
    """The fields of a quote's TPMS_ATTEST."""

    magic: int
    type: int
    qualified_signer: bytes
    extra_data: bytes
    clock: int
    reset_count: int
    restart_count: int
    safe: bool
    firmware_version: int
    pcr_selection: tuple[tuple[str, tuple[int, ...]], ...]  # (bank, indexes) per bank
    pcr_digest: bytes


def _tpm2b(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("TPM2B field too large")
    return struct.pack(">H", len(data)) + data


def pcr_digest(values: Mapping[int, bytes]) -> bytes:
    """SHA-256 over the PCR values in index order: a quote's pcrDigest (SHA-256 AK)."""
    return hashlib.sha256(b"".join(values[index] for index in sorted(values))).digest()


def marshal_quote_info(bank: str, pcrs: Sequence[int], digest: bytes) -> bytes:
    """TPMS_QUOTE_INFO: the PCR selection (one bank) and the pcrDigest."""
    return marshal_pcr_selection(bank, pcrs) + _tpm2b(digest)


def marshal_attest(
    *,
    qualified_signer: bytes,
    extra_data: bytes,
    clock: int,
    reset_count: int,
    restart_count: int,
    safe: bool,
    firmware_version: int,
    quote_info: bytes,
) -> bytes:
    """A quote's TPMS_ATTEST (no TPM2B size prefix), the bytes the AK signs."""
    return (
        struct.pack(">IH", TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE)
        + _tpm2b(qualified_signer)
        + _tpm2b(extra_data)
        + struct.pack(">QIIB", clock, reset_count, restart_count, 1 if safe else 0)
        + struct.pack(">Q", firmware_version)
        + quote_info
    )


class _Reader:
    """Bounds-checked big-endian reads from a byte string."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.offset, self.what = data, 0, what

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise ValueError(f"{self.what} is truncated")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def tpm2b(self, limit: int) -> bytes:
        (size,) = self.unpack(">H")
        if size > limit:
            raise ValueError(f"{self.what}: a field of {size} bytes exceeds {limit}")
        return self.take(size)

    def end(self) -> None:
        if self.offset != len(self.data):
            raise ValueError(f"{self.what} has trailing bytes")


def _bank_name(algorithm: int) -> str:
    for name, (known, _) in BANK_ALGORITHMS.items():
        if known == algorithm:
            return name
    raise ValueError(f"quote selects an unknown PCR bank (algorithm {algorithm:#06x})")


def _read_selection(reader: _Reader) -> tuple[tuple[str, tuple[int, ...]], ...]:
    (count,) = reader.unpack(">I")
    if count > _MAX_BANKS:
        raise ValueError(f"{reader.what}: {count} PCR banks selected")
    banks = []
    for _ in range(count):
        algorithm, size = reader.unpack(">HB")
        if size > _MAX_SELECT_BYTES:
            raise ValueError(f"{reader.what}: PCR bitmap of {size} bytes")
        bitmap = reader.take(size)
        indexes = tuple(i for i in range(size * 8) if bitmap[i // 8] & (1 << (i % 8)))
        banks.append((_bank_name(algorithm), indexes))
    return tuple(banks)


def parse_attest(data: bytes) -> ParsedAttest:
    """Parse a quote's TPMS_ATTEST; ValueError if it is not one (any type but quote)."""
    if not isinstance(data, bytes) or len(data) > MAX_ATTEST_BYTES:
        raise ValueError(f"attestation data must be bytes of at most {MAX_ATTEST_BYTES}")
    reader = _Reader(data, "attestation data")
    magic, kind = reader.unpack(">IH")
    if kind != TPM_ST_ATTEST_QUOTE:
        raise ValueError(f"attestation data is not a quote (type {kind:#06x})")
    signer = reader.tpm2b(2 + 64)
    extra = reader.tpm2b(2 + 64)
    clock, reset_count, restart_count, safe = reader.unpack(">QIIB")
    if safe > 1:
        raise ValueError("attestation data: clock 'safe' flag is not a boolean")
    (firmware,) = reader.unpack(">Q")
    selection = _read_selection(reader)
    digest = reader.tpm2b(64)
    reader.end()
    return ParsedAttest(magic, kind, signer, extra, clock, reset_count, restart_count,
                        bool(safe), firmware, selection, digest)


def check_quote(
    attest: bytes, nonce: bytes, bank: str, values: Mapping[int, bytes]
) -> ParsedAttest:
    """Parse ``attest`` and check it quotes ``values`` of ``bank`` with ``nonce``.

    Checks the magic (TPM_GENERATED_VALUE), the type, extraData == nonce, the selection
    (exactly ``bank`` and the indexes of ``values``) and pcrDigest == SHA-256 of the
    values. The signature is not checked here. ValueError names the first mismatch.
    """
    parsed = parse_attest(attest)
    if parsed.magic != TPM_GENERATED_VALUE:
        raise ValueError("quote was not generated by a TPM (magic differs)")
    if parsed.extra_data != nonce:
        raise ValueError("quote carries another nonce")
    if parsed.pcr_selection != ((bank, check_pcr_indexes(list(values))),):
        raise ValueError("quote covers other PCRs than expected")
    if parsed.pcr_digest != pcr_digest(values):
        raise ValueError("quote's PCR digest differs from the PCR values")
    return parsed


def marshal_ecdsa_signature(r: int, s: int) -> bytes:
    """TPMT_SIGNATURE for ECDSA with SHA-256 over P-256 (r and s as 32-byte TPM2Bs)."""
    return struct.pack(">HH", TPM_ALG_ECDSA, TPM_ALG_SHA256) + b"".join(
        _tpm2b(value.to_bytes(_P256_BYTES, "big")) for value in (r, s)
    )


def parse_ecdsa_signature(data: bytes) -> tuple[int, int]:
    """(r, s) of an ECDSA/SHA-256 TPMT_SIGNATURE; ValueError for anything else."""
    if not isinstance(data, bytes) or len(data) > MAX_SIGNATURE_BYTES:
        raise ValueError(f"signature must be bytes of at most {MAX_SIGNATURE_BYTES}")
    reader = _Reader(data, "signature")
    scheme, hash_alg = reader.unpack(">HH")
    if (scheme, hash_alg) != (TPM_ALG_ECDSA, TPM_ALG_SHA256):
        raise ValueError("signature is not ECDSA with SHA-256")
    r = int.from_bytes(reader.tpm2b(66), "big")
    s = int.from_bytes(reader.tpm2b(66), "big")
    reader.end()
    if not r or not s:
        raise ValueError("signature has a zero component")
    return r, s


def marshal_ak_public(x: bytes, y: bytes) -> bytes:
    """The AK's TPMT_PUBLIC: ECC P-256, ECDSA-SHA256, no symmetric, empty policy, point x, y."""
    if len(x) != _P256_BYTES or len(y) != _P256_BYTES:
        raise ValueError("a P-256 point has 32-byte coordinates")
    return (
        struct.pack(">HHI", TPM_ALG_ECC, TPM_ALG_SHA256, AK_OBJECT_ATTRIBUTES)
        + _tpm2b(b"")  # authPolicy
        + struct.pack(">HHHHH", TPM_ALG_NULL, TPM_ALG_ECDSA, TPM_ALG_SHA256,
                      TPM_ECC_NIST_P256, TPM_ALG_NULL)  # symmetric, scheme, curve, kdf
        + _tpm2b(x)
        + _tpm2b(y)
    )


def object_name(public_area: bytes) -> bytes:
    """The TPM name of an object with a SHA-256 nameAlg: 0x000b || SHA-256(public area)."""
    return struct.pack(">H", TPM_ALG_SHA256) + hashlib.sha256(public_area).digest()


def check_ak_name(name: bytes) -> bytes:
    """``name`` if it looks like a SHA-256 TPM object name (34 bytes); ValueError otherwise."""
    if not isinstance(name, bytes) or len(name) != 34 or name[:2] != b"\x00\x0b":
        raise ValueError("an AK name is 0x000b followed by a 32-byte SHA-256 digest")
    return name
