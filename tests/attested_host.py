"""An in-process attested host for tests: a FakeTpm booted from the shipped boot manifest,
its event log, an in-memory store, and the SOAP app with attestation and restricted mode.

Not a pytest plugin: tests call ``build_attested_host()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bios_ws.domain.eventlog import parse_event_log
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.domain.reference import ReferenceMeasurements
from bios_ws.service.attestation import AttestationService
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService
from bios_ws.service.integrity import IntegrityMonitor
from bios_ws.soap.app import create_wsgi_app
from bios_ws.soap.testing import WsgiResult, call_wsgi, sample_registry, soap_envelope
from bios_ws.tpm.bootlog import BootManifest, measure_boot, shipped_manifest_text
from bios_ws.tpm.fake import FakeTpm
from bios_ws.tpm.port import Tpm


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


def build_attested_host(interval: float = 10.0) -> AttestedHost:
    tpm = FakeTpm()
    manifest = BootManifest.from_json(shipped_manifest_text())
    store = MemoryStore()
    registry = sample_registry()
    bios = BiosService(store.unit_of_work, registry)
    DomainService(store.unit_of_work, registry).create(Principal.admin(), "vm1")
    monotonic = FakeClock()
    holder: dict[str, AttestedHost] = {}

    @contextmanager
    def access() -> Iterator[Tpm]:
        holder["host"].opened += 1
        yield tpm

    def clock() -> datetime:
        return datetime.now(UTC)

    monitor = IntegrityMonitor(store.unit_of_work, access, lambda: holder["host"].event_log,
                               clock, interval, monotonic)
    bios.gate = monitor.check_write
    attestation = AttestationService(
        store.unit_of_work, clock, monitor=monitor, tpm_access=access,
        read_log=lambda: holder["host"].event_log,
        ak_certificate=lambda: holder["host"].ak_certificate)
    app = create_wsgi_app(bios, attestation=attestation)
    host = AttestedHost(tpm, manifest, store, bios, attestation, monitor, app, monotonic)
    holder["host"] = host
    boot(host)
    return host
