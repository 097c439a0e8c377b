"""Builders for the attestation tests: TPM structures, a test CA, AK certificates, event logs.

The quote structures are marshalled here by hand (big-endian TPM wire format) and
signed with a software ECDSA P-256 key, so the guest-side verifier is tested
against bytes it did not produce. Event logs come from the server's writer
(``bios_ws.domain.eventlog``), PCR values from the server's replay: an
implementation independent of the one under test. No tests live here.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from vbios_client.attestation import ClockState, QuoteEvidence

from bios_ws.domain.eventlog import Event, parse_event_log, write_event_log
from bios_ws.domain.eventlog import replay as server_replay
from bios_ws.domain.eventlog_types import (
    EV_EFI_ACTION,
    EV_NO_ACTION,
    EV_POST_CODE,
    EV_S_CRTM_VERSION,
    EV_SEPARATOR,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
NONCE = b"N" * 32
AIK_OID = x509.ObjectIdentifier("2.23.133.8.3")
ALG_IDS = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sha512": 0x000D}
TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE = 0xFF544347, 0x8018
TPM_ALG_ECDSA, TPM_ALG_SHA256 = 0x0018, 0x000B
QUOTED_PCRS = tuple(range(8))


# -- TPM structures -------------------------------------------------------------


def tpm2b(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def selection_bytes(selection: Sequence[tuple[int, Sequence[int]]], size: int = 3) -> bytes:
    """A TPML_PCR_SELECTION: (alg id, PCR indexes) per bank, ``size`` bitmap bytes each."""
    out = struct.pack(">I", len(selection))
    for alg, indexes in selection:
        bitmap = bytearray(size)
        for index in indexes:
            bitmap[index // 8] |= 1 << (index % 8)
        out += struct.pack(">HB", alg, size) + bytes(bitmap)
    return out


def marshal_attest(*, extra: bytes = NONCE, digest: bytes = bytes(32),
                   selection: bytes | None = None, clock: int = 5000, reset_count: int = 3,
                   restart_count: int = 1, safe: int = 1, magic: int = TPM_GENERATED_VALUE,
                   kind: int = TPM_ST_ATTEST_QUOTE, signer: bytes = b"\x00\x0b" + bytes(32),
                   firmware: int = 0x2019102300163636) -> bytes:
    """A TPMS_ATTEST of a quote (selection default: sha256 PCRs 0-7)."""
    if selection is None:
        selection = selection_bytes([(ALG_IDS["sha256"], QUOTED_PCRS)])
    return (struct.pack(">IH", magic, kind) + tpm2b(signer) + tpm2b(extra)
            + struct.pack(">QIIBQ", clock, reset_count, restart_count, safe, firmware)
            + selection + tpm2b(digest))


def marshal_signature(r: int, s: int, *, alg: int = TPM_ALG_ECDSA,
                      hash_alg: int = TPM_ALG_SHA256) -> bytes:
    return (struct.pack(">HH", alg, hash_alg) + tpm2b(r.to_bytes(32, "big"))
            + tpm2b(s.to_bytes(32, "big")))


def sign(key: ec.EllipticCurvePrivateKey, attest: bytes, **kwargs: int) -> bytes:
    """The TPMT_SIGNATURE of ``attest`` by ``key`` (ECDSA P-256, SHA-256)."""
    r, s = decode_dss_signature(key.sign(attest, ec.ECDSA(hashes.SHA256())))
    return marshal_signature(r, s, **kwargs)


def pcr_digest(values: dict[int, bytes]) -> bytes:
    return hashlib.sha256(b"".join(values[i] for i in sorted(values))).digest()


# -- certificates ---------------------------------------------------------------


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(name: str = "vBIOS test CA", key: ec.EllipticCurvePrivateKey | None = None,
            *, ca: bool = True) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = key or new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365)).not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def make_ak_certificate(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], public_key: object, *,
    usages: Sequence[x509.ObjectIdentifier] = (AIK_OID,), digital_signature: bool = True,
    not_before: datetime = NOW - timedelta(days=1), not_after: datetime = NOW + timedelta(days=365),
    key_usage: bool = True,
) -> bytes:
    """DER of an AK certificate issued by ``ca`` for ``public_key``."""
    ca_cert, ca_key = ca
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "host AK")]))
        .issuer_name(ca_cert.subject).public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if key_usage:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=digital_signature, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            key_cert_sign=not digital_signature, crl_sign=False, encipher_only=False,
            decipher_only=False), critical=True)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


# -- event logs -----------------------------------------------------------------


def event(pcr: int, kind: int, data: bytes, banks: Sequence[str] = ("sha1", "sha256"),
          *, zero: bool = False) -> Event:
    digests = {bank: bytes(hashlib.new(bank).digest_size) if zero
               else hashlib.new(bank, data).digest() for bank in banks}
    return Event(0, pcr, kind, "", digests, data)


def boot_events(banks: Sequence[str] = ("sha1", "sha256")) -> list[Event]:
    """A small boot: StartupLocality 3, then measurements on PCRs 0-4, 6 and 7 (5 stays empty)."""
    events = [
        event(0, EV_NO_ACTION, b"StartupLocality\x00\x03", banks, zero=True),
        event(0, EV_S_CRTM_VERSION, "1.0".encode("utf-16-le") + b"\0\0", banks),
        event(0, EV_POST_CODE, b"POST CODE", banks),
        event(1, EV_EFI_ACTION, b"Calling EFI Application from Boot Option", banks),
    ]
    events += [event(pcr, EV_SEPARATOR, bytes(4), banks) for pcr in (0, 1, 2, 3, 4, 6, 7)]
    return events


def pcr_values(log: bytes, bank: str = "sha256",
               indexes: Sequence[int] = QUOTED_PCRS) -> dict[int, bytes]:
    """The values a host with ``log`` has in ``indexes`` (server replay; no events = zero)."""
    replayed = server_replay(parse_event_log(log)).get(bank, {})
    size = hashlib.new(bank).digest_size
    return {index: replayed.get(index, bytes(size)) for index in indexes}


# -- a whole host ---------------------------------------------------------------


@dataclass
class Host:
    """A CA, a host's AK with its certificate and a boot log: produces signed quotes."""

    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
    ak_key: ec.EllipticCurvePrivateKey
    ak_der: bytes
    log: bytes
    pcrs: dict[int, bytes] = field(default_factory=dict)

    @property
    def ca_pem(self) -> bytes:
        return pem(self.ca[0])

    def evidence(self, *, nonce: bytes = NONCE, clock: ClockState | None = None,
                 safe: int = 1, attest: bytes | None = None, **changes: object) -> QuoteEvidence:
        """A quote over ``pcrs`` signed by the AK; ``changes`` replace QuoteEvidence fields."""
        state = clock or ClockState(5000, 3, 1)
        if attest is None:
            attest = marshal_attest(extra=nonce, digest=pcr_digest(self.pcrs),
                                    selection=selection_bytes([(0x000B, sorted(self.pcrs))]),
                                    clock=state.clock, reset_count=state.reset_count,
                                    restart_count=state.restart_count, safe=safe)
        fields: dict[str, object] = {
            "attest": attest, "signature": sign(self.ak_key, attest), "bank": "sha256",
            "pcrs": dict(self.pcrs), "ak_certificate": self.ak_der, "event_log": self.log,
        }
        fields.update(changes)
        return QuoteEvidence(**fields)  # type: ignore[arg-type]


@cache
def host() -> Host:
    ca = make_ca()
    ak_key = new_key()
    log = write_event_log(boot_events(), ["sha1", "sha256"])
    return Host(ca, ak_key, make_ak_certificate(ca, ak_key.public_key()), log, pcr_values(log))
