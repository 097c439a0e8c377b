"""Machines of routed domains, in-process: host A boots d1's machine with the settings
remote B holds (``docs/routing.md``, "Machines of routed domains"). B is the real serving
graph's front (``PeerIdentity`` and ``HostRoute`` before the SOAP application, over an
in-memory store) behind a real HTTPS server on loopback that requires a client
certificate; A is a store with its routing, the machine observer and the power use case
choosing per call where d1's settings come from (``RoutedBootSettings``), posting
through ``RemotePools`` with the host credential B issued to A."""

from __future__ import annotations

import http.server
import io
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bios_ws.domain.firmware import FirmwareState, KeyDatabases
from bios_ws.domain.power import MachineKind, ResetCause, ResetType
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.routing import Remote, RoutingTable
from bios_ws.domain.state import ApplyTime
from bios_ws.pki.certs import cert_pem, clear_key_pem, make_server_cert
from bios_ws.pki.issuer import MemoryIssuer
from bios_ws.pki.remote_credentials import client_context, keep_key, key_path
from bios_ws.server.forwarding import RemotePools
from bios_ws.server.host_route import HostRoute
from bios_ws.server.identity import SOCKET_ENVIRON_KEY, PeerIdentity
from bios_ws.server.remote_boot import RemoteBootSettings
from bios_ws.service.boot import MachineObserver
from bios_ws.service.boot_settings import LocalBootSettings, RoutedBootSettings
from bios_ws.service.credentials import CredentialService
from bios_ws.service.delegates import DelegateService
from bios_ws.service.host_boot import HostBoot
from bios_ws.service.power import PowerService
from bios_ws.service.routing import RouteKeeper, RoutingService
from bios_ws.soap.testing import Endpoint, ManualClock, build_endpoint

ADMIN = Principal.admin()
GUEST = Principal.guest("d1")
PASSPHRASE = b"server key passphrase"
VIA_A = "host:host-a for guest:d1"


def _bridge(front: Any) -> type[http.server.BaseHTTPRequestHandler]:
    """HTTP over TLS to B's WSGI front, the peer's certificate in the environ as the
    serving front puts it."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            environ: dict[str, Any] = {
                "REQUEST_METHOD": "POST", "PATH_INFO": self.path,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
                SOCKET_ENVIRON_KEY: self.connection}
            for name in ("X-Vbios-On-Behalf-Of", "X-Vbios-Acting-As"):
                given = self.headers.get(name)
                if given is not None:
                    environ["HTTP_" + name.upper().replace("-", "_")] = given
            started: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
                started["status"], started["headers"] = status, headers

            data = b"".join(front(environ, start_response))
            code, _, reason = started["status"].partition(" ")
            self.send_response(int(code), reason)
            for name, value in started["headers"]:
                if name != "Content-Length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@dataclass
class Pair:
    a: Endpoint
    b: Endpoint
    observer: MachineObserver
    power: PowerService
    server: _QuietServer
    settings: RoutedBootSettings
    table: Callable[[], RoutingTable]
    pools: RemotePools

    def b_state(self) -> Any:
        return self.b.bios.state_of("d1")

    def a_state(self) -> Any:
        return self.a.bios.state_of("d1")

    def b_audit(self) -> list[tuple[str, str, str | None, str]]:
        with self.b.store.unit_of_work() as uow:
            return [(e.principal, e.operation, e.domain_id, e.outcome)
                    for e in uow.audit.recent(100)]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with make_pair(tmp_path) as made:
        yield made


@contextmanager
def make_pair(tmp_path: Path, registry: AttributeRegistry | None = None) -> Iterator[Pair]:
    """A and B (``registry``: both installations'; default the sample one)."""
    b = build_endpoint("d1", clock=ManualClock(datetime.now(UTC)), registry=registry)
    b.domains.create(ADMIN, "d2")
    credentials = b.use_cases.use(CredentialService)
    bundle = b.use_cases.use(DelegateService).add(ADMIN, "host-a", ["d1"])
    front = PeerIdentity(HostRoute(b.app, HostBoot(b.bios),
                                   audit_refused=credentials.audit_refused),
                         authenticate=credentials.authenticate)
    issuer = credentials.issuer()
    assert isinstance(issuer, MemoryIssuer)
    ca = issuer.authority().issued
    server_cert = make_server_cert(ca, datetime.now(UTC))
    (tmp_path / "server.pem").write_bytes(cert_pem(server_cert.cert))
    (tmp_path / "server-key.pem").write_bytes(clear_key_pem(server_cert.key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=cert_pem(ca.cert).decode())
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server-key.pem")
    server = _QuietServer(("127.0.0.1", 0), _bridge(front))
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/vbios"

    a = build_endpoint("d1", host="host-a", registry=registry)
    key = load_pem_private_key(bundle.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    keep_key(key_path(tmp_path / "pki", "b"), key, PASSPHRASE)
    routing = a.use_cases.use(RoutingService)
    routing.add_remote(ADMIN, Remote("b", url, bundle.cert_pem, bundle.ca_pem))
    routing.set_route(ADMIN, "settings", "b", domain="d1")
    keeper = RouteKeeper(routing)

    def table() -> RoutingTable:
        with a.store.unit_of_work() as uow:
            return keeper.table(uow)

    pools = RemotePools(lambda remote: client_context(
        remote.cert_pem, remote.ca_pem, key_path(tmp_path / "pki", remote.name), PASSPHRASE),
        timeout=5.0)
    settings = RoutedBootSettings(LocalBootSettings(a.bios), table,
                                  lambda remote: RemoteBootSettings(pools, remote))
    observer = MachineObserver(a.store.unit_of_work, a.bios, a.clock.now, KeyDatabases,
                               settings=settings)
    power = PowerService(a.store.unit_of_work, a.clock.now,
                         {MachineKind.SIMULATED: a.platform}, a.bios, settings=settings)
    try:
        yield Pair(a, b, observer, power, server, settings, table, pools)
    finally:
        pools.close()
        server.shutdown()
        server.server_close()


def test_a_boot_on_a_applies_the_pending_values_b_holds_and_plans_from_bs_state(
        pair: Pair) -> None:
    a_before = pair.a_state()
    pair.b.bios.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    version = pair.b_state().version
    assert pair.power.get_power(GUEST).pending_changes  # B's pending, seen from A
    plan = pair.observer.before_boot("d1", ResetCause.MANAGEMENT_COMMAND)
    assert plan is not None
    after = pair.b_state()
    assert after.current["NumLock"] is False and not after.pending
    assert after.version == version + 1
    assert b'"NumLock":false' in plan.firmware.published
    assert f'"version":{after.version}'.encode() in plan.firmware.published
    assert (VIA_A, "ApplyPendingAttributes", "d1", "ok") in pair.b_audit()
    assert pair.a_state() == a_before  # A's own store is not the routed domain's
    assert not pair.power.get_power(GUEST).pending_changes


def test_a_boot_next_b_holds_goes_to_the_firmware_and_is_consumed_on_b_after_the_run(
        pair: Pair) -> None:
    with pair.a.store.unit_of_work() as uow:  # d1's machine is a QEMU guest here
        record = uow.machines.get("d1")
        uow.machines.save(replace(record, kind=MachineKind.QEMU), record.version)
        uow.commit()
    pair.b.bios.set_boot_next(GUEST, "Shell.Uefi")
    plan = pair.observer.before_boot("d1", ResetCause.MANAGEMENT_COMMAND)
    assert plan is not None and plan.firmware.boot_next == 5
    assert pair.a.store.machines["d1"].delivered_boot_next == "Shell.Uefi"
    assert pair.b_state().boot_next == "Shell.Uefi"  # not until the firmware ran
    pair.observer.after_run("d1", FirmwareState((1,), None, True, KeyDatabases()))
    assert pair.b_state().boot_next is None
    assert (VIA_A, "FirmwareConsumedBootNext", "d1", "ok") in pair.b_audit()
    assert pair.a.store.machines["d1"].delivered_boot_next is None


def test_a_simulated_machine_consumes_the_boot_next_on_b_at_its_boot(pair: Pair) -> None:
    pair.b.bios.set_boot_next(GUEST, "Shell.Uefi")
    assert pair.observer.before_boot("d1", ResetCause.MANAGEMENT_COMMAND) is not None
    assert pair.b_state().boot_next is None
    assert pair.a.store.machines["d1"].delivered_boot_next is None


def test_b_down_the_machine_boots_with_what_it_has_and_nothing_local_stands_in(
        pair: Pair) -> None:
    pair.b.bios.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    pair.a.bios.set_attributes(GUEST, {"NumLock": True}, ApplyTime.ON_RESET)  # A's own
    a_before = pair.a_state()
    pair.server.shutdown()
    pair.server.server_close()
    assert pair.observer.before_boot("d1", ResetCause.MANAGEMENT_COMMAND) is None
    assert pair.a_state() == a_before  # A's pending values were not applied instead
    assert pair.power.get_power(GUEST).pending_changes  # unknown: still pending there


def test_a_domain_not_routed_boots_with_the_local_settings(pair: Pair) -> None:
    pair.a.use_cases.use(RoutingService).set_route(ADMIN, "settings", "local", domain="d1")
    pair.a.bios.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    b_before = pair.b_state()
    assert pair.observer.before_boot("d1", ResetCause.MANAGEMENT_COMMAND) is not None
    assert pair.a_state().current["NumLock"] is False
    assert pair.b_state() == b_before


def test_the_machines_own_rules_read_the_values_b_holds(pair: Pair) -> None:
    """The thermal model reads its profiles through ``setting`` (wired to the routed
    settings): a routed domain's values are B's, read over the host protocol."""
    from bios_ws.service.thermal import ThermalService
    from bios_ws.service.thermal_sample import THERMAL_PROFILE
    pair.b.bios.set_attributes(GUEST, {"NumLock": False})
    assert pair.a.bios.setting("d1", "NumLock") is True
    assert pair.settings.setting("d1", "NumLock") is False
    pair.power.reset(GUEST, ResetType.ON)  # fans spin by the profile while it runs

    def fans(setting: Any) -> object:
        return ThermalService(pair.a.store.unit_of_work, pair.a.clock.now,
                              {MachineKind.SIMULATED: pair.a.platform}, pair.a.bios,
                              pair.power, setting=setting).thermal(GUEST).fans

    assert fans(lambda domain, name: "MinimumPower" if name == THERMAL_PROFILE
                else None) != fans(None)
