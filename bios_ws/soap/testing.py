"""Helpers to drive the SOAP endpoint in-process, for tests and benchmarks (no I/O).

``call_wsgi`` runs one request through any WSGI callable; ``soap_envelope``
builds a SOAP 1.1 request; ``sample_registry`` is a small registry with one
attribute of every type.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from wsgiref.util import setup_testing_defaults

from lxml import etree

from bios_ws.capabilities import Wiring, build_use_cases
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.power import MachineKind
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.pki.issuer import MemoryIssuer
from bios_ws.platform.simulated import SimulatedPlatform, StateShelf
from bios_ws.service.bios import BiosService
from bios_ws.service.boot import MachineObserver
from bios_ws.service.domains import DomainService
from bios_ws.service.firmware_upload import TransferKey
from bios_ws.service.power import PowerService
from bios_ws.service.thermal_alerts import NO_ALERTS, ThermalAlerts
from bios_ws.service.thermal_sample import AmbientSource
from bios_ws.service.use_cases import UseCases
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY, create_wsgi_app
from bios_ws.soap.faults import SOAP11_ENV
from bios_ws.soap.types import TNS
from bios_ws.soap.xmlparser import hardened_parser

NS = {"soap": SOAP11_ENV, "tns": TNS}


@dataclass
class WsgiResult:
    status: int
    headers: dict[str, str]
    body: bytes
    _root: etree._Element | None = field(default=None, repr=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def xml(self) -> etree._Element:
        if self._root is None:
            self._root = etree.fromstring(self.body, hardened_parser())
        return self._root

    def find(self, path: str) -> etree._Element | None:
        found = self.xml().find(path, NS)
        return found

    def text(self, path: str) -> str | None:
        found = self.find(path)
        return None if found is None else found.text

    def fault_code(self) -> str | None:
        return self.text("soap:Body/soap:Fault/faultcode")

    def detail(self, name: str) -> str | None:
        return self.text(f"soap:Body/soap:Fault/detail/tns:VbiosFaultDetail/tns:{name}")


def call_wsgi(
    app: Any,
    body: bytes = b"",
    *,
    principal: Principal | None = None,
    method: str = "POST",
    content_type: str | None = "text/xml; charset=utf-8",
    query: str = "",
    content_length: str | None = None,
    extra: dict[str, Any] | None = None,
) -> WsgiResult:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length,
    }
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    if principal is not None:
        environ[PRINCIPAL_ENVIRON_KEY] = principal
    environ.update(extra or {})
    setup_testing_defaults(environ)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"] = int(status.split(" ", 1)[0])
        captured["headers"] = dict(headers)

    chunks: Iterable[bytes] = app(environ, start_response)
    data = b"".join(chunks)
    return WsgiResult(captured["status"], captured["headers"], data)


def soap_envelope(operation: str, inner: str = "", *, header: str = "") -> bytes:
    """A SOAP 1.1 request for ``operation`` whose children (in ``tns``) are ``inner``."""
    head = f"<soap:Header>{header}</soap:Header>" if header else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP11_ENV}" xmlns:tns="{TNS}">{head}'
        f"<soap:Body><tns:{operation}>{inner}</tns:{operation}></soap:Body></soap:Envelope>"
    ).encode()


def sample_registry() -> AttributeRegistry:
    return AttributeRegistry.from_dict(
        {
            "registry_version": "test-1.0",
            "attributes": [
                {"name": "BootMode", "type": "Enumeration", "display_name": "Boot mode",
                 "allowed_values": ["Uefi", "Legacy"], "default": "Uefi",
                 "reset_required": True},
                {"name": "NumLock", "type": "Boolean", "default": True},
                {"name": "WakeTimeout", "type": "Integer", "default": 30, "lower_bound": 0,
                 "upper_bound": 600, "scalar_increment": 5},
                {"name": "AssetTag", "type": "String", "default": "", "max_length": 32,
                 "help_text": "Free text"},
                {"name": "SerialNumber", "type": "String", "default": "VM-0001",
                 "read_only": True, "min_length": 1, "max_length": 16},
                {"name": "SetupPassword", "type": "Password", "min_length": 4,
                 "max_length": 32},
            ],
        }
    )


class ManualClock:
    """Time that moves only when a test says so (one clock for use cases and machines)."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def seconds(self) -> float:
        return self.moment.timestamp()

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class Endpoint:
    """An in-process endpoint over an in-memory store and simulated machines (in memory,
    on a manual clock), with one guest domain."""

    app: Any
    bios: BiosService
    domains: DomainService
    power: PowerService
    platform: SimulatedPlatform
    clock: ManualClock
    store: MemoryStore
    guest: Principal
    admin: Principal
    use_cases: UseCases
    observer: MachineObserver

    def call(self, operation: str, inner: str = "", *, as_: Principal | None = None,
             header: str = "") -> WsgiResult:
        principal = self.guest if as_ is None else as_
        return call_wsgi(self.app, soap_envelope(operation, inner, header=header),
                         principal=principal)


def build_endpoint(domain_id: str = "vm1", *, max_body_bytes: int = 1_048_576,
                   registry: AttributeRegistry | None = None,
                   transfer_key: TransferKey | None = None,
                   thermal_alerts: ThermalAlerts = NO_ALERTS,
                   ambient: AmbientSource = lambda: None, host: str | None = None,
                   store: MemoryStore | None = None, clock: ManualClock | None = None
                   ) -> Endpoint:
    """Every registered capability's use case over an in-memory store and simulated
    machines on a manual clock (no TPM: attestation answers that it has none; no host
    sensors: the thermal model's ambient is the default unless ``ambient`` says). With
    ``host``, the process is that fleet host; two endpoints may share ``store`` (two hosts
    of one fleet, each with its own machines) and ``clock``."""
    registry = registry or sample_registry()
    store = MemoryStore() if store is None else store
    clock = ManualClock() if clock is None else clock
    observer = MachineObserver(store.unit_of_work, BiosService(store.unit_of_work, registry,
                                                               clock.now),
                               clock.now, KeyDatabases)
    platform = SimulatedPlatform(StateShelf(), observer.hooks(), clock=clock.seconds)
    issuer = MemoryIssuer(clock.now())
    use_cases = build_use_cases(Wiring(store.unit_of_work, registry, clock.now, None,
                                       {MachineKind.SIMULATED: platform}, KeyDatabases,
                                       UseCases(), lambda: issuer,
                                       transfer_key=None if transfer_key is None
                                       else lambda: transfer_key,
                                       thermal_alerts=thermal_alerts, ambient=ambient,
                                       host=host))
    admin = Principal.admin()
    use_cases.use(DomainService).create(admin, domain_id)
    app = create_wsgi_app(use_cases, max_body_bytes=max_body_bytes)
    return Endpoint(app, use_cases.use(BiosService), use_cases.use(DomainService),
                    use_cases.use(PowerService), platform, clock, store,
                    Principal.guest(domain_id), admin, use_cases, observer)
