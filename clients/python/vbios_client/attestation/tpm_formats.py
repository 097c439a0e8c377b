"""Read the TPM 2.0 structures a quote arrives in: TPMS_ATTEST and TPMT_SIGNATURE.

The server hands these over exactly as TPM2_Quote produced them (big-endian TPM
wire format, TPM 2.0 Library Part 2). They are hostile input: every size is
checked against what remains, trailing bytes are refused, and any defect raises
``FormatError`` (a ``ValueError``) naming the field and byte offset. Pure Python,
so the guest library needs no TPM software stack to check a quote.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ECC_SIGNATURE_ALGORITHMS",
    "MAX_ATTEST_BYTES",
    "MAX_SIGNATURE_BYTES",
    "PCR_BANKS",
    "TPM_ALG_ECDSA",
    "TPM_ALG_SHA256",
    "TPM_GENERATED_VALUE",
    "TPM_ST_ATTEST_QUOTE",
    "EcdsaSignature",
    "FormatError",
    "QuoteInfo",
    "bank_name",
    "parse_attest",
    "parse_signature",
]

TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018
TPM_ALG_ECDSA = 0x0018
TPM_ALG_SHA256 = 0x000B
#: TPM_ALG_ID -> bank name, for the banks a guest may ask a quote over.
PCR_BANKS: dict[int, str] = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384", 0x000D: "sha512"}
#: Signature schemes whose TPMU_SIGNATURE member is TPMS_SIGNATURE_ECC (hash, r, s).
ECC_SIGNATURE_ALGORITHMS: dict[int, str] = {
    0x0018: "ECDSA", 0x001A: "ECDAA", 0x001B: "SM2", 0x001C: "ECSCHNORR",
}
MAX_ATTEST_BYTES = 4096  # a TPMS_ATTEST fits in TPM2B_ATTEST, well under this
MAX_SIGNATURE_BYTES = 1024
MAX_PCR_SELECTIONS = 16  # banks in one TPML_PCR_SELECTION
MAX_SIZEOF_SELECT = 4  # 32 PCRs
MAX_ECC_PARAMETER = 66  # TPM2B_ECC_PARAMETER of P-521
_SIZEOF_TPMT_HA = 2 + 64  # algorithm id + largest digest (SHA-512)


class FormatError(ValueError):
    """Bytes that are not the TPM structure they claim to be; the message says where."""


@dataclass(frozen=True)
class QuoteInfo:
    """A TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE, field by field.

    ``pcr_selection`` maps a bank name ("sha256") to the PCR indexes selected,
    ascending; ``magic`` is reported as read (the verifier checks it).
    """

    magic: int
    type: int
    qualified_signer: bytes
    extra_data: bytes
    clock: int
    reset_count: int
    restart_count: int
    safe: bool
    firmware_version: int
    pcr_selection: dict[str, tuple[int, ...]]
    pcr_digest: bytes


@dataclass(frozen=True)
class EcdsaSignature:
    """A TPMT_SIGNATURE of the ECC family: scheme, hash algorithm and (r, s)."""

    alg: int
    hash: int
    r: int
    s: int


def bank_name(alg: int) -> str:
    """The bank name of a TPM_ALG_ID; an unknown one gets a stable hexadecimal name."""
    return PCR_BANKS.get(alg, f"alg_0x{alg:04x}")


class _Reader:
    """Big-endian bounded reads; a shortfall is a FormatError naming the field and offset."""

    def __init__(self, data: bytes, structure: str) -> None:
        self.data = data
        self.structure = structure
        self.offset = 0

    def take(self, size: int, what: str) -> bytes:
        remaining = len(self.data) - self.offset
        if size > remaining:
            raise FormatError(f"{self.structure} truncated at offset {self.offset}: {what}"
                              f" needs {size} bytes, {remaining} remain")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def sized(self, what: str, limit: int) -> bytes:
        """A TPM2B: u16 size, then that many bytes (at most ``limit``)."""
        at = self.offset
        size = self.uint(2, f"{what} size")
        if size > limit:
            raise FormatError(f"{self.structure} offset {at}: {what} of {size} bytes"
                              f" exceeds {limit}")
        return self.take(size, what)

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise FormatError(f"{self.structure}: {len(self.data) - self.offset} trailing"
                              f" bytes at offset {self.offset}")


def _as_bytes(data: object, structure: str, limit: int) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"{structure} must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > limit:
        raise FormatError(f"{structure} of {len(data)} bytes exceeds {limit}")
    return data


def parse_attest(data: bytes) -> QuoteInfo:
    """Decode a marshalled TPMS_ATTEST carrying a TPMS_QUOTE_INFO.

    Another attestation type (certify, time, ...) is refused: its body is not a
    quote's, so nothing after the header could be read meaningfully.
    """
    reader = _Reader(_as_bytes(data, "TPMS_ATTEST", MAX_ATTEST_BYTES), "TPMS_ATTEST")
    magic = reader.uint(4, "magic")
    kind = reader.uint(2, "type")
    if kind != TPM_ST_ATTEST_QUOTE:
        raise FormatError(f"TPMS_ATTEST type 0x{kind:04x} is not TPM_ST_ATTEST_QUOTE"
                          f" (0x{TPM_ST_ATTEST_QUOTE:04x})")
    signer = reader.sized("qualifiedSigner", _SIZEOF_TPMT_HA)  # TPMU_NAME's largest member
    extra = reader.sized("extraData", _SIZEOF_TPMT_HA)  # TPM2B_DATA holds a TPMT_HA at most
    clock = reader.uint(8, "clock")
    reset_count = reader.uint(4, "resetCount")
    restart_count = reader.uint(4, "restartCount")
    at = reader.offset
    safe = reader.uint(1, "safe")
    if safe > 1:
        raise FormatError(f"TPMS_ATTEST offset {at}: safe is {safe}, not a TPMI_YES_NO")
    firmware = reader.uint(8, "firmwareVersion")
    selection = _pcr_selection(reader)
    digest = reader.sized("pcrDigest", 64)
    reader.finish()
    return QuoteInfo(magic, kind, signer, extra, clock, reset_count, restart_count,
                     bool(safe), firmware, selection, digest)


def _pcr_selection(reader: _Reader) -> dict[str, tuple[int, ...]]:
    at = reader.offset
    count = reader.uint(4, "pcrSelect count")
    if count > MAX_PCR_SELECTIONS:
        raise FormatError(f"TPMS_ATTEST offset {at}: {count} PCR selections exceeds"
                          f" {MAX_PCR_SELECTIONS}")
    selection: dict[str, tuple[int, ...]] = {}
    for number in range(count):
        at = reader.offset
        bank = bank_name(reader.uint(2, f"pcrSelect[{number}] hash"))
        if bank in selection:
            raise FormatError(f"TPMS_ATTEST offset {at}: bank {bank} selected twice")
        size = reader.uint(1, f"pcrSelect[{number}] sizeofSelect")
        if size > MAX_SIZEOF_SELECT:
            raise FormatError(f"TPMS_ATTEST offset {at}: sizeofSelect {size} exceeds"
                              f" {MAX_SIZEOF_SELECT}")
        bitmap = reader.take(size, f"pcrSelect[{number}] bitmap")
        selection[bank] = tuple(i for i in range(size * 8) if bitmap[i // 8] >> (i % 8) & 1)
    return selection


def parse_signature(data: bytes) -> EcdsaSignature:
    """Decode a marshalled TPMT_SIGNATURE of the ECC family (ECDSA, ECDAA, SM2, ECSCHNORR).

    RSA and HMAC signatures have another layout and are refused; which ECC
    scheme and hash a quote may use is the verifier's decision, not the parser's.
    """
    reader = _Reader(_as_bytes(data, "TPMT_SIGNATURE", MAX_SIGNATURE_BYTES), "TPMT_SIGNATURE")
    alg = reader.uint(2, "sigAlg")
    if alg not in ECC_SIGNATURE_ALGORITHMS:
        raise FormatError(f"TPMT_SIGNATURE sigAlg 0x{alg:04x} is not an ECC signature scheme")
    hash_alg = reader.uint(2, "hash")
    r = reader.sized("signatureR", MAX_ECC_PARAMETER)
    s = reader.sized("signatureS", MAX_ECC_PARAMETER)
    reader.finish()
    return EcdsaSignature(alg, hash_alg, int.from_bytes(r, "big"), int.from_bytes(s, "big"))
