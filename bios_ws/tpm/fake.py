"""FakeTpm: an in-memory TPM with the port's contract, for unit tests of callers.

Software PCRs in every bank; "sealing" encrypts with a key that lives only in
this object and binds the policy digest, so a blob unseals only in the same
FakeTpm and only while the PCRs match. Switches ``available`` and ``locked_out``
simulate an unreachable TPM and a dictionary-attack lockout; ``platform_reset``
simulates swtpm_ioctl -i (PCRs back to their start values, Startup needed).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import threading
from collections.abc import Mapping, Sequence

from bios_ws.errors import TpmError, TpmLockout, TpmPolicyMismatch, TpmUnavailable
from bios_ws.tpm.port import (
    PCR_BANKS,
    PCR_COUNT,
    PERSISTENT_PRIMARY,
    RESETTABLE_PCRS,
    SEAL_BANK,
    SealedBlob,
    Tpm,
    check_extend_digests,
    check_pcr_indexes,
    check_secret,
    digest_size,
    extended_value,
    policy_pcr_digest,
    seal_values,
)

_FAKE_MAGIC = b"FAKETPM1"
#: PCRs 17-22 start as all ones after Startup at locality 0 (PC Client profile).
_ONES_PCRS = range(17, 23)


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def _start_value(bank: str, index: int) -> bytes:
    size = digest_size(bank)
    return b"\xff" * size if index in _ONES_PCRS else bytes(size)


class FakeTpm(Tpm):
    """In-memory TPM: same answers and errors as the real adapter for the port's contract."""

    def __init__(self, banks: Sequence[str] = PCR_BANKS, tcti: str = "fake:") -> None:
        self.tcti = tcti
        self._banks = tuple(banks)
        self._lock = threading.RLock()
        self._key = os.urandom(32)
        self._pcrs = {
            bank: [_start_value(bank, index) for index in range(PCR_COUNT)] for bank in self._banks
        }
        self._started = True
        self._primary = False
        self.available = True
        self.locked_out = False
        self.closed = False

    # simulation switches
    def platform_reset(self) -> None:
        """Like swtpm_ioctl -i: PCRs to start values, commands refused until Startup."""
        with self._lock:
            for bank in self._banks:
                self._pcrs[bank] = [_start_value(bank, i) for i in range(PCR_COUNT)]
            self._started = False

    def clear(self) -> None:
        """Like TPM2_Clear: persistent objects gone and the storage seed changed."""
        with self._lock:
            self._primary = False
            self._key = os.urandom(32)

    def _ready(self) -> None:
        if not self.available:
            raise TpmUnavailable(f"TPM unreachable at {self.tcti}")
        if not self._started:
            raise TpmUnavailable(f"TPM at {self.tcti} is not started (Startup needed)")
        self.closed = False

    # the port
    def pcr_read(self, indexes: Sequence[int], bank: str = SEAL_BANK) -> dict[int, bytes]:
        selected = check_pcr_indexes(indexes)
        digest_size(bank)
        with self._lock:
            self._ready()
            if bank not in self._banks:
                raise TpmError(f"PCR bank {bank} is not active")
            return {index: self._pcrs[bank][index] for index in selected}

    def pcr_extend(self, index: int, digests: Mapping[str, bytes]) -> None:
        check_pcr_indexes([index])
        check_extend_digests(digests, self._banks)
        with self._lock:
            self._ready()
            for bank, digest in digests.items():
                self._pcrs[bank][index] = extended_value(bank, self._pcrs[bank][index], digest)

    def pcr_reset(self, index: int) -> None:
        check_pcr_indexes([index])
        with self._lock:
            self._ready()
            if index not in RESETTABLE_PCRS:
                raise TpmError(f"PCR {index} cannot be reset from locality 0")
            for bank in self._banks:
                self._pcrs[bank][index] = bytes(digest_size(bank))

    def active_banks(self) -> tuple[str, ...]:
        with self._lock:
            self._ready()
            return self._banks

    def ensure_storage_primary(self) -> None:
        with self._lock:
            self._ready()
            self._primary = True

    def seal(
        self, secret: bytes, pcrs: Sequence[int], expected: Mapping[int, bytes] | None = None
    ) -> SealedBlob:
        check_secret(secret)
        selected = check_pcr_indexes(pcrs)
        with self._lock:
            self._ready()
            self._need_primary()
            current = {index: self._pcrs[SEAL_BANK][index] for index in selected}
            values = seal_values(selected, current, expected)
            policy = policy_pcr_digest(SEAL_BANK, selected, values)
            public = _FAKE_MAGIC + policy
            nonce = os.urandom(16)
            ciphertext = _xor(secret, self._stream(nonce, len(secret)))
            tag = self._tag(public, nonce, ciphertext)
            private = nonce + tag + ciphertext
            return SealedBlob(public, private, selected, SEAL_BANK, policy)

    def unseal(self, blob: SealedBlob) -> bytes:
        with self._lock:
            self._ready()
            self._need_primary()
            if self.locked_out:
                raise TpmLockout(f"TPM at {self.tcti} is in dictionary-attack lockout")
            public, private = blob.public, blob.private
            nonce, tag, ciphertext = private[:16], private[16:48], private[48:]
            if (
                not public.startswith(_FAKE_MAGIC)
                or len(private) < 49
                or not hmac.compare_digest(tag, self._tag(public, nonce, ciphertext))
            ):
                raise TpmError("sealed object does not load under this storage primary")
            bound_policy = public[len(_FAKE_MAGIC) :]
            if blob.bank != SEAL_BANK or bound_policy != blob.policy_digest:
                raise TpmError("sealed blob is inconsistent: policy digest differs from object")
            now = {index: self._pcrs[SEAL_BANK][index] for index in blob.pcrs}
            if policy_pcr_digest(SEAL_BANK, blob.pcrs, now) != bound_policy:
                raise TpmPolicyMismatch(
                    "cannot unseal: PCR values differ from the policy the secret was sealed to"
                )
            return _xor(ciphertext, self._stream(nonce, len(ciphertext)))

    def get_random(self, n: int) -> bytes:
        if not 0 < n <= 1024:
            raise ValueError("random byte count must be 1..1024")
        with self._lock:
            self._ready()
            return os.urandom(n)

    def startup_clear(self) -> None:
        with self._lock:
            if not self.available:
                raise TpmUnavailable(f"TPM unreachable at {self.tcti}")
            self._started = True

    def close(self) -> None:
        with self._lock:
            self.closed = True

    # helpers
    def _need_primary(self) -> None:
        if not self._primary:
            raise TpmError(f"no storage primary at {PERSISTENT_PRIMARY:#x}")

    def _stream(self, nonce: bytes, length: int) -> bytes:
        blocks = (length + 31) // 32
        return b"".join(
            hashlib.sha256(self._key + b"stream" + nonce + struct.pack(">I", i)).digest()
            for i in range(blocks)
        )[:length]

    def _tag(self, public: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
        return hmac.new(self._key, b"tag" + public + nonce + ciphertext, hashlib.sha256).digest()
