"""An in-process attested host for tests: a FakeTpm booted from the shipped boot manifest,
its event log, an in-memory store, and the SOAP app with attestation and restricted mode.

Not a pytest plugin: tests call ``build_attested_host()``. ``enroll_attestation_key`` gives
the host an AK certificate from a test CA, ``guest_client`` a real ``vbios_client.BiosClient``
over the app (in-process, no sockets), ``build_host_without_tpm`` a ``--no-tpm``
installation; ``ok``, ``fault``, ``pcr_values``, ``evidence_of`` ... read the XML answers of
the attestation operations.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from vbios_client.attestation import QuoteEvidence

from bios_ws.domain.eventlog import parse_event_log
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.domain.reference import ReferenceMeasurements
from bios_ws.pki import certs
from bios_ws.pki.akcert import issue_ak_certificate
from bios_ws.pki.authority import Authority
from bios_ws.platform.simulated import in_memory_machines
from bios_ws.service.attestation import AttestationService
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService
from bios_ws.service.integrity import IntegrityMonitor
from bios_ws.service.use_cases import UseCases
from bios_ws.soap.app import create_wsgi_app
from bios_ws.soap.testing import WsgiResult, call_wsgi, sample_registry, soap_envelope
from bios_ws.soap.types import TNS
from bios_ws.tpm.bootlog import BootManifest, measure_boot, shipped_manifest_text
from bios_ws.tpm.fake import FakeTpm
from bios_ws.tpm.port import Tpm
from tests.integration.test_client_inprocess import URL, WsgiAdapter


@dataclass
class FakeClock:
    """Monotonic seconds the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class AttestedHost:
    tpm: FakeTpm
    manifest: BootManifest
    store: MemoryStore
    bios: BiosService
    attestation: AttestationService
    monitor: IntegrityMonitor
    app: Any
    monotonic: FakeClock
    guest: Principal = field(default_factory=lambda: Principal.guest("vm1"))
    admin: Principal = field(default_factory=lambda: Principal.admin("tester"))
    event_log: bytes | None = b""
    ak_certificate: bytes | None = None
    opened: int = 0

    def call(self, operation: str, inner: str = "", *, as_: Principal | None = None
             ) -> WsgiResult:
        principal = self.guest if as_ is None else as_
        return call_wsgi(self.app, soap_envelope(operation, inner), principal=principal)

    def reboot(self) -> None:
        """Platform reset, then the expected boot replayed (as the development TPM does)."""
        self.tpm.platform_reset()
        self.tpm.startup_clear()
        boot(self)

    def set_reference_from_log(self) -> None:
        assert self.event_log is not None
        reference = ReferenceMeasurements.from_events(parse_event_log(self.event_log),
                                                      source="test boot")
        self.attestation.set_reference(self.admin, lambda: reference)

    def audit_operations(self) -> list[tuple[str, str]]:
        return [(e.operation, e.outcome) for e in self.store.audit]


def boot(host: AttestedHost) -> None:
    banks = host.tpm.active_banks()
    events = host.manifest.events(banks)
    measure_boot(host.tpm, events)
    host.event_log = host.manifest.event_log(banks)


def build_attested_host(interval: float = 10.0, *, host: str | None = None,
                        store: MemoryStore | None = None, domain_id: str = "vm1"
                        ) -> AttestedHost:
    """A host with its own FakeTpm and one domain; with ``host`` (and a shared ``store``)
    one host of a fleet."""
    tpm = FakeTpm()
    manifest = BootManifest.from_json(shipped_manifest_text())
    store = MemoryStore() if store is None else store
    registry = sample_registry()
    bios = BiosService(store.unit_of_work, registry)
    DomainService(store.unit_of_work, registry, in_memory_machines(),
                  host=host).create(Principal.admin(), domain_id)
    monotonic = FakeClock()
    holder: dict[str, AttestedHost] = {}

    @contextmanager
    def access() -> Iterator[Tpm]:
        holder["host"].opened += 1
        yield tpm

    def clock() -> datetime:
        return datetime.now(UTC)

    monitor = IntegrityMonitor(store.unit_of_work, access, lambda: holder["host"].event_log,
                               clock, interval, monotonic, host=host)
    bios.gate = monitor.check_write
    attestation = AttestationService(
        store.unit_of_work, clock, monitor=monitor, tpm_access=access,
        read_log=lambda: holder["host"].event_log,
        ak_certificate=lambda: holder["host"].ak_certificate, host=host)
    app = create_wsgi_app(UseCases([bios, attestation]))
    host = AttestedHost(tpm, manifest, store, bios, attestation, monitor, app, monotonic)
    holder["host"] = host
    boot(host)
    return host


# -- additions: attestation key, guest client, a host without TPM ------------------------


def enroll_attestation_key(host: AttestedHost, ca: certs.Issued | None = None) -> certs.Issued:
    """Enroll the FakeTpm's AK and set the host's AK certificate (DER), issued by ``ca``
    (a new test CA by default); the CA comes back, for ``ca_pem``."""
    ca = ca or certs.make_ca(datetime.now(UTC))
    enrollment = host.tpm.enroll_attestation_key([host.tpm.ek_ca_pem])
    pem = issue_ak_certificate(Authority(ca), enrollment.ak_public_pem, enrollment.ak_name,
                               "test-host")
    host.ak_certificate = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    return ca


def ca_pem(ca: certs.Issued) -> bytes:
    return certs.cert_pem(ca.cert)


def add_domain(host: AttestedHost | UnmeasuredHost, domain_id: str) -> Principal:
    """Create another guest domain on the host; its guest principal comes back."""
    DomainService(host.store.unit_of_work, sample_registry(),
        in_memory_machines()).create(host.admin, domain_id)
    return Principal.guest(domain_id)


def guest_client(app: Any, principal: Principal) -> vc.BiosClient:
    """The real guest library (bundled WSDL) calling ``app`` in-process as ``principal``."""
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", WsgiAdapter(app, principal))
    return vc.BiosClient._over_session(URL, session, timeout=5)


@dataclass
class UnmeasuredHost:
    """A ``--no-tpm`` installation: attestation configured, nothing measured, no gate."""

    store: MemoryStore
    bios: BiosService
    attestation: AttestationService
    app: Any
    guest: Principal = field(default_factory=lambda: Principal.guest("vm1"))
    admin: Principal = field(default_factory=lambda: Principal.admin("tester"))

    def call(self, operation: str, inner: str = "", *, as_: Principal | None = None
             ) -> WsgiResult:
        principal = self.guest if as_ is None else as_
        return call_wsgi(self.app, soap_envelope(operation, inner), principal=principal)


def build_host_without_tpm() -> UnmeasuredHost:
    """Wired as ``bios_ws.bootstrap.build_attestation`` wires a home without TPM."""
    store = MemoryStore()
    registry = sample_registry()
    bios = BiosService(store.unit_of_work, registry)
    DomainService(store.unit_of_work, registry,
        in_memory_machines()).create(Principal.admin(), "vm1")
    attestation = AttestationService(
        store.unit_of_work, lambda: datetime.now(UTC), monitor=None, tpm_access=None,
        read_log=lambda: None, ak_certificate=lambda: None)
    return UnmeasuredHost(store, bios, attestation, create_wsgi_app(UseCases([bios, attestation])))


# -- additions: reading attestation responses (XML through call_wsgi) --------------------

T = f"{{{TNS}}}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def nonce_xml(nonce: bytes, extra: str = "") -> str:
    return f"<tns:Nonce>{b64(nonce)}</tns:Nonce>{extra}"


def pcrs_xml(*indexes: int) -> str:
    """A GetQuote request's PCR selection."""
    return ("<tns:PcrSelection>" + "".join(f"<tns:Index>{i}</tns:Index>" for i in indexes)
            + "</tns:PcrSelection>")


def ok(result: WsgiResult, operation: str) -> WsgiResult:
    assert result.status == 200, result.body
    assert result.fault_code() is None
    assert result.find(f"soap:Body/tns:{operation}Response") is not None
    return result


def fault(result: WsgiResult, code: str, kind: str) -> str:
    assert result.status == 500, result.body
    assert result.fault_code() == f"soap11env:{kind}"
    assert result.detail("Code") == code
    message = result.detail("Message")
    assert message
    return message


def response_text(result: WsgiResult, operation: str, name: str) -> str | None:
    return result.text(f"soap:Body/tns:{operation}Response/tns:{name}")


def pcr_values(result: WsgiResult, operation: str) -> dict[int, bytes]:
    wrapper = result.find(f"soap:Body/tns:{operation}Response/tns:Pcrs")
    assert wrapper is not None
    return {int(item.findtext(f"{T}Index") or "-1"): base64.b64decode(item.findtext(f"{T}Value")
                                                                      or "")
            for item in wrapper.findall(f"{T}PcrValue")}


def binary(result: WsgiResult, operation: str, name: str) -> bytes:
    return base64.b64decode(response_text(result, operation, name) or "")


def evidence_of(result: WsgiResult) -> QuoteEvidence:
    ok(result, "GetQuote")
    return QuoteEvidence(
        attest=binary(result, "GetQuote", "Attest"),
        signature=binary(result, "GetQuote", "Signature"),
        bank=response_text(result, "GetQuote", "Bank") or "",
        pcrs=pcr_values(result, "GetQuote"),
        ak_certificate=binary(result, "GetQuote", "AkCertificate"),
        event_log=binary(result, "GetQuote", "EventLog"),
    )


def finding_kinds(result: WsgiResult, operation: str) -> list[str | None]:
    status = result.find(f"soap:Body/tns:{operation}Response/tns:Status")
    assert status is not None
    return [f.findtext(f"{T}Kind") for f in status.iter(f"{T}Finding")]


def audit_of(result: WsgiResult) -> list[tuple[str | None, str | None, str | None, str | None]]:
    return [(e.findtext(f"{T}Principal"), e.findtext(f"{T}Operation"), e.findtext(f"{T}Domain"),
             e.findtext(f"{T}Outcome"))
            for e in result.xml().iter(f"{T}AuditEntry")]
