"""FakeTpm: an in-memory TPM with the port's contract, for unit tests of callers.

Software PCRs in every bank; "sealing" encrypts with a key that lives only in
this object and binds the policy digest, so a blob unseals only in the same
FakeTpm and only while the PCRs match. Switches ``available`` and ``locked_out``
simulate an unreachable TPM and a dictionary-attack lockout; ``platform_reset``
simulates swtpm_ioctl -i (PCRs back to their start values, Startup needed,
resetCount up); ``occupy_ak_handle`` puts a foreign object at AK_HANDLE.

Attestation: a software "EK" certified by a fake EK CA (``ek_ca_pem``, to pass
as the enrollment anchor; other anchors are refused like on a real TPM) and a
software ECDSA P-256 AK. Quotes are real TPMS_ATTEST and TPMT_SIGNATURE bytes
(``bios_ws.tpm.attest_format``), so verifiers can be tested against them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from bios_ws.errors import TpmError, TpmLockout, TpmPolicyMismatch, TpmUnavailable
from bios_ws.tpm.attest_format import (
    marshal_ak_public,
    marshal_attest,
    marshal_ecdsa_signature,
    marshal_quote_info,
    object_name,
    pcr_digest,
)
from bios_ws.tpm.ekcert import verify_ek_certificate
from bios_ws.tpm.port import (
    AK_HANDLE,
    NO_ATTESTATION_KEY,
    PCR_BANKS,
    PCR_COUNT,
    PERSISTENT_PRIMARY,
    QUOTE_BANK,
    RESETTABLE_PCRS,
    SEAL_BANK,
    AkEnrollment,
    Quote,
    SealedBlob,
    Tpm,
    check_extend_digests,
    check_nonce,
    check_pcr_indexes,
    check_secret,
    digest_size,
    extended_value,
    policy_pcr_digest,
    seal_values,
)

_FAKE_MAGIC = b"FAKETPM1"
FAKE_FIRMWARE_VERSION = 0x20191023_00120000
#: TPM_RH_ENDORSEMENT: the qualified name of the endorsement hierarchy (EK's parent).
_ENDORSEMENT_HANDLE = b"\x40\x00\x00\x0b"
#: TCG attribute types of the EK certificate's SAN directoryName: manufacturer, model, version.
_TPM_SAN_OIDS = ("2.23.133.2.1", "2.23.133.2.2", "2.23.133.2.3")
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
        self._endorsement: _FakeEndorsement | None = None
        self._ak: ec.EllipticCurvePrivateKey | None = None
        self._foreign_at_ak = False
        self._reset_count = 0
        self._restart_count = 0
        self._clock = 0
        self._clock_origin = time.monotonic()

    # simulation switches
    def platform_reset(self) -> None:
        """Like swtpm_ioctl -i: PCRs to start values, commands refused until Startup."""
        with self._lock:
            for bank in self._banks:
                self._pcrs[bank] = [_start_value(bank, i) for i in range(PCR_COUNT)]
            self._started = False
            self._reset_count += 1
            self._restart_count = 0

    def clear(self) -> None:
        """Like TPM2_Clear: persistent objects gone, storage seed changed, counts back to 0."""
        with self._lock:
            self._primary = False
            self._key = os.urandom(32)
            self._ak = None
            self._foreign_at_ak = False
            self._reset_count = self._restart_count = 0

    def occupy_ak_handle(self) -> None:
        """Put a foreign persistent object at AK_HANDLE (replacing any AK there)."""
        with self._lock:
            self._ak = None
            self._foreign_at_ak = True

    @property
    def ek_ca_pem(self) -> bytes:
        """The fake EK CA certificate: the anchor that makes this TPM's EK certificate valid."""
        with self._lock:
            return self._endorsement_of().ca_pem

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

    def enroll_attestation_key(self, ek_anchors: Sequence[bytes]) -> AkEnrollment:
        anchors = list(ek_anchors)
        with self._lock:
            self._ready()
            endorsement = self._endorsement_of()
            verify_ek_certificate(endorsement.cert_der, anchors, endorsement.ek_public_pem)
            self._check_ak_handle()
            if self._ak is None:
                self._ak = ec.generate_private_key(ec.SECP256R1())
            return AkEnrollment(_public_pem(self._ak), _ak_name(self._ak),
                                endorsement.cert_der, endorsement.ek_public_pem)

    def attestation_key_public(self) -> bytes | None:
        with self._lock:
            self._ready()
            self._check_ak_handle()
            return None if self._ak is None else _public_pem(self._ak)

    def quote(self, nonce: bytes, pcrs: Sequence[int], bank: str = QUOTE_BANK) -> Quote:
        check_nonce(nonce)
        selected = check_pcr_indexes(pcrs)
        digest_size(bank)
        with self._lock:
            self._ready()
            self._check_ak_handle()
            if self._ak is None:
                raise TpmError(NO_ATTESTATION_KEY)
            if bank not in self._banks:
                raise TpmError(f"PCR bank {bank} is not active")
            values = {index: self._pcrs[bank][index] for index in selected}
            self._clock = max(self._clock + 1,
                              int((time.monotonic() - self._clock_origin) * 1000))
            attest = marshal_attest(
                qualified_signer=self._qualified_ak_name(self._ak), extra_data=nonce,
                clock=self._clock, reset_count=self._reset_count,
                restart_count=self._restart_count, safe=True,
                firmware_version=FAKE_FIRMWARE_VERSION,
                quote_info=marshal_quote_info(bank, selected, pcr_digest(values)),
            )
            r, s = decode_dss_signature(self._ak.sign(attest, ec.ECDSA(hashes.SHA256())))
            return Quote(attest, marshal_ecdsa_signature(r, s), bank, values)

    def close(self) -> None:
        with self._lock:
            self.closed = True

    # helpers
    def _endorsement_of(self) -> _FakeEndorsement:
        if self._endorsement is None:
            self._endorsement = _FakeEndorsement.make()
        return self._endorsement

    def _check_ak_handle(self) -> None:
        if self._foreign_at_ak:
            raise TpmError(f"handle {AK_HANDLE:#x} holds a foreign object, not an attestation"
                           " key; remove it (tpm2_evictcontrol) before enrolling")

    def _qualified_ak_name(self, ak: ec.EllipticCurvePrivateKey) -> bytes:
        """QN(AK) = H(QN(EK) || Name(AK)), QN(EK) = H(TPM_RH_ENDORSEMENT || Name(EK))."""
        ek_name = b"\x00\x0b" + hashlib.sha256(self._endorsement_of().ek_public_pem).digest()
        ek_qualified = b"\x00\x0b" + hashlib.sha256(_ENDORSEMENT_HANDLE + ek_name).digest()
        return b"\x00\x0b" + hashlib.sha256(ek_qualified + _ak_name(ak)).digest()

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


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ak_name(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return object_name(marshal_ak_public(numbers.x.to_bytes(32, "big"),
                                         numbers.y.to_bytes(32, "big")))


class _FakeEndorsement:
    """A fake EK CA (self-signed) and an EK certificate shaped like a TPM vendor's."""

    def __init__(self, ca_pem: bytes, cert_der: bytes, ek_public_pem: bytes) -> None:
        self.ca_pem, self.cert_der, self.ek_public_pem = ca_pem, cert_der, ek_public_pem

    @classmethod
    def make(cls) -> _FakeEndorsement:
        now = datetime.now(UTC)
        ca_key, ek_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
            ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "fake EK CA")])
        ca = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        tpm_model = x509.Name([x509.NameAttribute(x509.ObjectIdentifier(oid), value)
                               for oid, value in zip(_TPM_SAN_OIDS,
                                                     ("id:46414B45", "fake", "id:00010000"),
                                                     strict=True)])
        ek = (
            x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_name)
            .public_key(ek_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(tpm_model)]),
                           critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        return cls(ca.public_bytes(serialization.Encoding.PEM),
                   ek.public_bytes(serialization.Encoding.DER), _public_pem(ek_key))
