"""The TPM port: what bios-ws needs from a TPM 2.0, and the offline policy arithmetic.

Standard library only. Implementations: ``bios_ws.tpm.esapi`` (tpm2-pytss, a
real or software TPM) and ``bios_ws.tpm.fake`` (in memory, for unit tests).
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PCR_BANKS = ("sha1", "sha256")
SERVICE_PCR = 23
BOOT_PCRS = tuple(range(8))
SEAL_BANK = "sha256"
PERSISTENT_PRIMARY = 0x81000101
#: The persistent attestation key (owner range, beside the storage primary).
AK_HANDLE = 0x81000102
QUOTE_BANK = "sha256"
#: Quote nonces (TPM2B_DATA qualifying data): long enough to be fresh, short enough for any TPM.
NONCE_MIN, NONCE_MAX = 16, 64
NO_ATTESTATION_KEY = "no attestation key: run vbios ak enroll"
#: A quote whose PCRs changed between reading and quoting is tried again this many times.
QUOTE_RETRIES = 3
PCR_COUNT = 24
MAX_SECRET = 128
#: PCRs a locality-0 caller may reset (PC Client profile: debug and application PCRs).
RESETTABLE_PCRS = (16, 23)

#: TPM_ALG_ID and digest size of each bank name we know.
BANK_ALGORITHMS: dict[str, tuple[int, int]] = {
    "sha1": (0x0004, 20),
    "sha256": (0x000B, 32),
    "sha384": (0x000C, 48),
    "sha512": (0x000D, 64),
}
TPM_CC_POLICY_PCR = 0x0000017F


def digest_size(bank: str) -> int:
    """Digest size in bytes of ``bank``; ValueError for an unknown bank."""
    if bank not in BANK_ALGORITHMS:
        raise ValueError(f"unknown PCR bank {bank!r}")
    return BANK_ALGORITHMS[bank][1]


def check_pcr_indexes(indexes: Sequence[int]) -> tuple[int, ...]:
    """Sorted, unique PCR indexes in 0..23; ValueError otherwise (or when empty)."""
    result = tuple(sorted(set(indexes)))
    if not result:
        raise ValueError("no PCR selected")
    for index in result:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < PCR_COUNT:
            raise ValueError(f"PCR index out of range: {index!r}")
    if len(result) != len(indexes):
        raise ValueError("duplicate PCR index")
    return result


def marshal_pcr_selection(bank: str, pcrs: Sequence[int]) -> bytes:
    """Marshalled TPML_PCR_SELECTION with one bank and a 3-byte bitmap."""
    digest_size(bank)
    algorithm = BANK_ALGORITHMS[bank][0]
    bitmap = bytearray(3)
    for index in check_pcr_indexes(pcrs):
        bitmap[index // 8] |= 1 << (index % 8)
    return struct.pack(">IHB", 1, algorithm, 3) + bytes(bitmap)


def policy_pcr_digest(bank: str, pcrs: Sequence[int], values: Mapping[int, bytes]) -> bytes:
    """The PolicyPCR policy digest (SHA-256 policy hash) over ``values`` of ``pcrs`` in ``bank``.

    Equal to what a trial session gives after TPM2_PolicyPCR with those PCR values.
    """
    selected = check_pcr_indexes(pcrs)
    size = digest_size(bank)
    concatenated = b""
    for index in selected:
        value = values.get(index)
        if not isinstance(value, bytes) or len(value) != size:
            raise ValueError(f"PCR {index}: expected a {size}-byte {bank} value")
        concatenated += value
    pcr_digest = hashlib.sha256(concatenated).digest()
    return hashlib.sha256(
        bytes(32)
        + struct.pack(">I", TPM_CC_POLICY_PCR)
        + marshal_pcr_selection(bank, selected)
        + pcr_digest
    ).digest()


def extended_value(bank: str, old: bytes, digest: bytes) -> bytes:
    """The PCR value after extending ``old`` with ``digest`` in ``bank``."""
    size = digest_size(bank)
    if len(old) != size or len(digest) != size:
        raise ValueError(f"{bank} values are {size} bytes")
    return hashlib.new(bank, old + digest).digest()


@dataclass(frozen=True)
class SealedBlob:
    """A secret sealed under a PolicyPCR policy: the TPM2B parts plus what it was sealed to."""

    public: bytes
    private: bytes
    pcrs: tuple[int, ...]
    bank: str
    policy_digest: bytes

    def to_json(self) -> str:
        """A JSON object with base64 parts (no secret in it: the private part is TPM-wrapped)."""
        return json.dumps(
            {
                "format": "bios-ws-sealed-v1",
                "public": base64.b64encode(self.public).decode("ascii"),
                "private": base64.b64encode(self.private).decode("ascii"),
                "pcrs": list(self.pcrs),
                "bank": self.bank,
                "policy_digest": self.policy_digest.hex(),
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> SealedBlob:
        """Parse ``to_json`` output; ValueError on anything malformed."""
        if len(text) > 64 * 1024:
            raise ValueError("sealed blob too large")
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"sealed blob is not JSON: {exc.msg}") from None
        if not isinstance(data, dict) or data.get("format") != "bios-ws-sealed-v1":
            raise ValueError("not a bios-ws sealed blob")
        try:
            public = base64.b64decode(data["public"], validate=True)
            private = base64.b64decode(data["private"], validate=True)
            policy_digest = bytes.fromhex(data["policy_digest"])
            pcrs_raw = data["pcrs"]
            bank = data["bank"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"sealed blob field invalid: {exc}") from None
        if not isinstance(pcrs_raw, list) or not isinstance(bank, str):
            raise ValueError("sealed blob field invalid: pcrs or bank")
        pcrs = check_pcr_indexes(pcrs_raw)
        if tuple(pcrs_raw) != pcrs:
            raise ValueError("sealed blob PCR list not sorted")
        if bank != SEAL_BANK or len(policy_digest) != 32 or not public or not private:
            raise ValueError("sealed blob field invalid: bank, digest or parts")
        return cls(public, private, pcrs, bank, policy_digest)


@dataclass(frozen=True)
class Quote:
    """A TPM2_Quote by the attestation key, with the PCR values it covers."""

    attest: bytes  # marshalled TPMS_ATTEST (no TPM2B size prefix)
    signature: bytes  # marshalled TPMT_SIGNATURE (ECDSA, SHA-256)
    bank: str
    pcrs: dict[int, bytes]  # pcrDigest was checked to equal SHA-256 of these, in index order


@dataclass(frozen=True)
class AkEnrollment:
    """What the TPM proved at enrollment: the AK, and the EK it was activated against."""

    ak_public_pem: bytes  # SubjectPublicKeyInfo PEM of the AK
    ak_name: bytes  # TPM name: nameAlg (u16) || SHA-256 of the AK's public area
    ek_certificate: bytes  # DER, as read from the TPM's NV
    ek_public_pem: bytes


def check_nonce(nonce: bytes) -> bytes:
    """``nonce`` if it is bytes of NONCE_MIN..NONCE_MAX; ValueError otherwise."""
    if not isinstance(nonce, bytes) or not NONCE_MIN <= len(nonce) <= NONCE_MAX:
        raise ValueError(f"a quote nonce is {NONCE_MIN} to {NONCE_MAX} bytes")
    return nonce


class Tpm(abc.ABC):
    """A TPM 2.0 as bios-ws uses it. Thread-safe: implementations serialize access.

    Errors: ``TpmUnavailable`` (unreachable, not started, failed mid-way),
    ``TpmPolicyMismatch`` (PCRs differ from a sealed policy), ``TpmLockout``,
    ``TpmError`` for any other refusal; ValueError for invalid arguments.
    """

    @abc.abstractmethod
    def pcr_read(self, indexes: Sequence[int], bank: str = SEAL_BANK) -> dict[int, bytes]:
        """Current values of ``indexes`` in ``bank``."""

    @abc.abstractmethod
    def pcr_extend(self, index: int, digests: Mapping[str, bytes]) -> None:
        """Extend PCR ``index`` with one digest per active bank."""

    @abc.abstractmethod
    def pcr_reset(self, index: int) -> None:
        """Reset a resettable PCR (23 from locality 0); TpmError when refused."""

    @abc.abstractmethod
    def active_banks(self) -> tuple[str, ...]:
        """Names of the allocated PCR banks, e.g. ("sha1", "sha256")."""

    @abc.abstractmethod
    def ensure_storage_primary(self) -> None:
        """Make sure the ECC P-256 storage primary sits at PERSISTENT_PRIMARY; idempotent."""

    @abc.abstractmethod
    def seal(
        self, secret: bytes, pcrs: Sequence[int], expected: Mapping[int, bytes] | None = None
    ) -> SealedBlob:
        """Seal ``secret`` to the sha256 ``pcrs``: ``expected`` values where given, else current."""

    @abc.abstractmethod
    def unseal(self, blob: SealedBlob) -> bytes:
        """The sealed secret, if the PCRs match the blob's policy now."""

    @abc.abstractmethod
    def get_random(self, n: int) -> bytes:
        """``n`` random bytes from the TPM."""

    @abc.abstractmethod
    def startup_clear(self) -> None:
        """TPM2_Startup(CLEAR), after a (simulated) platform reset."""

    @abc.abstractmethod
    def enroll_attestation_key(self, ek_anchors: Sequence[bytes]) -> AkEnrollment:
        """Registrar-style enrollment of the attestation key (AK); idempotent.

        Read the EK certificate from NV and re-create the EK from its template; the
        certificate must chain to one of ``ek_anchors`` (PEM certificates, roots and
        intermediates) and certify exactly the EK's public key (else TpmError saying
        which). Create the AK (restricted ECC P-256 ECDSA-SHA256 signing key, fixedTPM,
        NODA) under the EK (endorsement hierarchy: quotes carry the real reset and
        restart counts) unless AK_HANDLE already holds a key with that template; prove
        by MakeCredential (in software, to the AK's name) and ActivateCredential (in
        the TPM) that the AK sits in the same TPM as the EK (else TpmError); persist the
        AK at AK_HANDLE. A foreign object at AK_HANDLE -> TpmError.
        """

    @abc.abstractmethod
    def attestation_key_public(self) -> bytes | None:
        """PEM of the AK persisted at AK_HANDLE, or None if none is there."""

    @abc.abstractmethod
    def quote(self, nonce: bytes, pcrs: Sequence[int], bank: str = QUOTE_BANK) -> Quote:
        """TPM2_Quote with the AK over ``pcrs`` of ``bank``, qualified by ``nonce``.

        ``nonce`` is 16..64 bytes, else ValueError. The PCRs are read and quoted; if they
        changed in between (pcrDigest differs from SHA-256 over the values read, in
        index order) it is tried again, up to 3 more times. TpmError(NO_ATTESTATION_KEY)
        when no AK is persisted.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; later calls reconnect."""


def check_secret(secret: bytes) -> None:
    """ValueError unless ``secret`` is 1..128 bytes."""
    if not isinstance(secret, bytes) or not 1 <= len(secret) <= MAX_SECRET:
        raise ValueError(f"a sealed secret is 1 to {MAX_SECRET} bytes")


def check_extend_digests(digests: Mapping[str, bytes], banks: Sequence[str]) -> None:
    """ValueError unless ``digests`` has exactly one right-sized digest per active bank."""
    if set(digests) != set(banks):
        raise ValueError(f"one digest per active bank needed: {', '.join(banks)}")
    for bank, digest in digests.items():
        if not isinstance(digest, bytes) or len(digest) != digest_size(bank):
            raise ValueError(f"{bank} digest must be {digest_size(bank)} bytes")


def seal_values(
    pcrs: tuple[int, ...], current: Mapping[int, bytes], expected: Mapping[int, bytes] | None
) -> dict[int, bytes]:
    """The values to seal to: ``expected`` where given, the current value otherwise."""
    expected = expected or {}
    unknown = set(expected) - set(pcrs)
    if unknown:
        raise ValueError(f"expected values for PCRs not sealed to: {sorted(unknown)}")
    return {index: expected.get(index, current[index]) for index in pcrs}
