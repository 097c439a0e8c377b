"""Wiring: one configuration in, one object graph out.

``bootstrap(config)`` builds everything a vBIOS process serves from: the
state store, the registry, the way to the TPM (opened per use), the integrity
monitor, the machines of every kind (``bios_ws.platform``) with the observer
they call back, and one use case per registered capability
(``bios_ws.capabilities``); ``App.wsgi()`` puts the SOAP application and the
peer-certificate middleware on top, and starts the simulated machines' clock.
Nothing comes from the environment and nothing is patched afterwards.
``initialize`` is what `vbios init` (and `vbios devrun` on a fresh home) runs:
with a TPM it starts the development TPM if the home uses it, and seals the
key passphrases (``bios_ws.launch.sealing``).
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bios_ws.capabilities import TpmParts, Wiring, build_use_cases
from bios_ws.config import Config
from bios_ws.domain.hosts import check_host_name, default_host_name
from bios_ws.domain.ports import Clock
from bios_ws.domain.power import MachineKind
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.errors import AdminError
from bios_ws.home import NO_TPM, Home, TpmChoice
from bios_ws.launch.host import check_host_free, register_home
from bios_ws.periodic import Periodic
from bios_ws.pki import DEFAULT_SERVER_NAMES, Authority, initialize_pki
from bios_ws.pki.certs import parse_server_names
from bios_ws.pki.files import PUBLIC_MODE, write_file_atomic
from bios_ws.pki.issuer import HomeIssuer
from bios_ws.platform.keysets import lazy_key_set
from bios_ws.platform.port import MachineHooks, Platform
from bios_ws.platform.simulated import FileShelf, SimulatedPlatform, Ticker
from bios_ws.registry_file import load_registry, shipped_registry_text
from bios_ws.remote_wiring import (
    TableSource,
    boot_settings,
    forwarder,
    host_route,
    remote_pools,
    route_table,
)
from bios_ws.service.attestation import AttestationService
from bios_ws.service.bios import BiosService, utc_now
from bios_ws.service.boot import MachineObserver
from bios_ws.service.credentials import CredentialService
from bios_ws.service.event_subscriptions import EventService
from bios_ws.service.firmware_upload import TransferKey
from bios_ws.service.system_management import SystemManagementService
from bios_ws.service.thermal import ThermalService
from bios_ws.service.timers import TIMER_INTERVAL
from bios_ws.service.use_cases import UseCases
from bios_ws.store import SqlStore, open_store
from bios_ws.store.engine import BACKGROUND_LOOPS

if TYPE_CHECKING:
    from cryptography import x509

    from bios_ws.launch.sealing import TpmOpener
    from bios_ws.server.forwarding import RemotePools
    from bios_ws.server.identity import WSGIApp
    from bios_ws.server.tls import ServerTls

T = TypeVar("T")

#: Seconds between two prunings of the events by their retention, in a serving process.
EVENT_PRUNE_INTERVAL = 60.0


@dataclass
class App:
    """One process's object graph."""

    config: Config
    store: SqlStore
    registry: AttributeRegistry
    use_cases: UseCases
    tpm: TpmParts | None
    platforms: Mapping[MachineKind, Platform]
    observer: MachineObserver
    #: This host's connections to its remotes (guest calls forwarded, routed boots).
    pools: RemotePools
    #: The routing table in force (one per process: the forwarding, the host protocol and
    #: the routed boots read it through one keeper).
    routes: TableSource
    _threads: list[Periodic] = field(default_factory=list, repr=False)

    def use(self, kind: type[T]) -> T:
        return self.use_cases.use(kind)

    def wsgi(self, tls: ServerTls | None = None) -> WSGIApp:
        """The SOAP endpoint behind the peer-certificate middleware; the simulated
        machines' clock and the thermal policy run for as long as the process serves
        (every worker: the policy saves by compare-and-set). With ``tls`` (a server's)
        kept-alive requests of revoked certificates are refused, the CRL is kept fresh
        (republished when the store changed or it ages), the domains' wake alarms and
        watchdogs are fired (every worker looks; one claims each), and the events pruned
        by their retention."""
        from bios_ws.server.identity import PeerIdentity
        from bios_ws.server.metrics_route import MetricsRoute, StoreGauges
        from bios_ws.soap.app import create_wsgi_app

        simulated = self.platforms.get(MachineKind.SIMULATED)
        if isinstance(simulated, SimulatedPlatform):
            self._threads.append(Ticker(simulated).start())
        credentials = self.use(CredentialService)
        if tls is not None:
            self._threads.append(Periodic("vbios-crl", self.config.server.crl_check_interval,
                                          credentials.publish_revocations).start())
            timers = self.use(SystemManagementService).timers
            self._threads.append(Periodic("vbios-timers", TIMER_INTERVAL, timers.tick).start())
            self._threads.append(Periodic("vbios-events", EVENT_PRUNE_INTERVAL,
                                          self.use(EventService).prune).start())
        self._threads.append(thermal_policy(self.use(ThermalService),
                                            self.config.server.thermal_interval).start())
        ca_pem = self.config.home.ca_cert.read_bytes() if tls is not None else None
        gauges = StoreGauges(self.store.unit_of_work, self.config.host)
        soap = MetricsRoute(create_wsgi_app(self.use_cases), gauges)  # GET /metrics: admin only
        # guest calls of routed capabilities go to their remote; a host that runs a
        # domain whose settings are here asks for them at its boots (docs/remote.md)
        routed = forwarder(soap, self.routes, self.pools)
        return PeerIdentity(host_route(routed, self.use_cases, self.routes),
                            authenticate=credentials.authenticate, revocations=tls,
                            ca_pem=ca_pem)

    def close(self) -> None:
        """Stop the machines' clock, the CRL keeper and the thermal policy; release the
        store's connections."""
        for thread in self._threads:
            thread.stop()
        self.pools.close()
        self.store.dispose()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def thermal_policy(thermal: ThermalService, interval: float) -> Periodic:
    """The thread that evaluates the thermal policy every ``interval`` seconds; a domain
    another worker evaluated within half an interval is left alone."""
    return Periodic("vbios-thermal", interval, lambda: thermal.run_policy(min_gap=interval / 2))


def bootstrap(config: Config, *, clock: Clock = utc_now,
              authority: Authority | None = None,
              transfer_key: TransferKey | None = None) -> App:
    """The whole object graph of ``config``; ``authority`` is the CA already loaded
    (a server's), else it is loaded from the home on first use. ``transfer_key``: the
    static key of encrypted capsule uploads (a server's; without it a process takes
    plain uploads only)."""
    registry = load_registry(config.home.registry_path)
    # a serving worker's request threads and background loops share its pool
    store = open_store(config.store_url, threads=config.server.threads + BACKGROUND_LOOPS)
    tpm = _tpm_parts(config, store)
    gate = None if tpm is None else tpm.monitor.check_write
    # the machines call back into the settings use case (pending values apply at boot),
    # or into the remote holding a routed domain's settings (bios_ws.remote_wiring)
    default_keys = lazy_key_set(config.platform.secure_boot_keys)
    bios = BiosService(store.unit_of_work, registry, clock, gate=gate)
    pools = remote_pools(config)
    routes = route_table(store.unit_of_work, config.host)
    settings = boot_settings(bios, routes, pools, gate)
    observer = MachineObserver(store.unit_of_work, bios, clock, default_keys,
                               all_cores=config.platform.all_cores, settings=settings)
    platforms = build_platforms(config, observer.hooks())
    issuer = HomeIssuer(config.home, None if authority is None else lambda: authority)
    wiring = Wiring(store.unit_of_work, registry, clock, tpm, platforms, default_keys,
                    UseCases(), lambda: issuer, timedelta(days=config.guest_cert_days),
                    transfer_key=None if transfer_key is None else lambda: transfer_key,
                    event_retention=config.event_retention, turns=store.turns,
                    host=config.host, boot_settings=settings)
    return App(config, store, registry, build_use_cases(wiring), tpm, platforms, observer,
               pools, routes)


def check_registry_in_force(config: Config) -> str | None:
    """What a starting server does first with the home's ``registry.json``: refuse it
    (RegistryError with the stored values it rejects, naming `vbios registry apply`) when
    it is not the registry in force; record it when the store has none yet. A line saying
    what was recorded, or None (``service.registry``)."""
    from bios_ws.registry_file import load_registry_document
    from bios_ws.service.registry import RegistryService

    path = config.home.registry_path
    document = load_registry_document(path)
    store = open_store(config.store_url)
    try:
        return RegistryService(store.unit_of_work, utc_now).check_at_start(document, str(path))
    finally:
        store.dispose()


def build_platforms(config: Config, hooks: MachineHooks) -> dict[MachineKind, Platform]:
    """The machines of every kind, in the home's machines directory. A QEMU guest's
    keeper process builds its own hooks (``keeper_hooks``)."""
    from bios_ws.platform.qemu import QemuPlatform

    options = config.platform
    machines = config.home.machines_dir
    simulated = SimulatedPlatform(FileShelf(machines), hooks,
                                  boot_seconds=options.boot_seconds,
                                  graceful_timeout=options.graceful_timeout)
    qemu = QemuPlatform(machines, options, hooks_factory=KEEPER_HOOKS, home=config.home.path)
    return {MachineKind.SIMULATED: simulated, MachineKind.QEMU: qemu}


#: What a keeper process imports to build its hooks.
KEEPER_HOOKS = "bios_ws.bootstrap:keeper_hooks"


def keeper_hooks(config: Config, domain_id: str) -> MachineHooks:
    """The hooks a QEMU guest's keeper process calls (its own object graph's observer).

    A keeper lives as long as its guest: it measures the host afresh at every boot
    (integrity interval 0) rather than trusting a verdict it took minutes ago."""
    return bootstrap(dataclasses.replace(config, integrity_interval=0.0)).observer.hooks()


def _tpm_parts(config: Config, store: SqlStore) -> TpmParts | None:
    """The TPM, opened per use (``bios_ws.tpm.access``), and the integrity monitor over it;
    None for a home (or a command) without TPM."""
    from bios_ws.launch.sealing import LaunchContext
    from bios_ws.service.integrity import IntegrityMonitor
    from bios_ws.tpm.access import PerUseTpm

    home = config.home
    if not home.uses_tpm or config.tpm.is_none:
        return None
    context = LaunchContext(home, config.tpm, event_log_path=config.event_log)
    access = PerUseTpm(context.tcti, context.opener)
    monitor = IntegrityMonitor(store.unit_of_work, access, context.event_log, utc_now,
                               config.integrity_interval, host=config.host)
    return TpmParts(access=access, monitor=monitor, read_log=context.event_log,
                    ak_certificate=lambda: read_ak_certificate(home),
                    read_served_log=context.served_event_log)


def read_ak_certificate(home: Home) -> bytes | None:
    """The DER of the home's attestation key certificate, or None if not enrolled."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        pem = home.ak_cert.read_bytes()
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Initialized:
    """A new home, and the recovery code to show the admin once (None without TPM)."""

    home: Home
    recovery_code: str | None


def initialize_home(
    path: Path, server_names: Sequence[str] = DEFAULT_SERVER_NAMES
) -> Home:
    """A new installation without TPM (development and tests): see ``initialize``."""
    return initialize(path, server_names, tpm=NO_TPM).home


def initialize(
    path: Path,
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    *,
    tpm: TpmChoice,
    opener: TpmOpener | None = None,
    package_root: Path | None = None,
    host_name: str | None = None,
) -> Initialized:
    """Make a new installation at ``path``: registry, store, CA, server and admin keys.

    ``tpm`` is the development TPM (started for this home), a TCTI, or none. With
    a TPM, the two key passphrases are sealed and a recovery copy is encrypted
    under a fresh recovery code. Refuses a foreign directory and an initialized
    home. The CA certificate is written last (and removed again if sealing
    fails), so a home interrupted half-way can be initialized again.
    ``opener`` replaces the TPM connection and ``package_root`` the measured
    package (tests: a FakeTpm, a copied tree). ``host_name`` is the name the home
    registers under in its store (default: this machine's name; ``domain.hosts``).
    """
    # Refuse bad input or a broken shipped registry before anything is written.
    parse_server_names(server_names)
    host_name = check_host_name(host_name or default_host_name(socket.gethostname()))
    load_registry(None)
    shipped = shipped_registry_text()
    home = Home.create(path)
    if home.is_initialized:
        raise AdminError(f"{home.path} is already initialized")
    home.record_tpm(tpm)
    home.record_host(host_name)
    check_host_free(home)
    if tpm.is_none:
        _write_store(home, shipped)
        _record_admin(home, initialize_pki(home, server_names))
        done = Initialized(home, None)
    else:
        done = _initialize_sealed(home, shipped, server_names, opener, package_root)
    register_home(home, starting=False)
    return done


def _write_store(home: Home, shipped: str) -> None:
    write_file_atomic(home.registry_path, shipped.encode("utf-8"), PUBLIC_MODE)
    open_store(home.db_url).dispose()


def _record_admin(home: Home, cert: x509.Certificate) -> None:
    """The admin certificate of a new home is the first one its registry records."""
    from bios_ws.domain.principal import Role
    from bios_ws.pki.issuer import record_of

    store = open_store(home.db_url)
    try:
        with store.unit_of_work() as uow:
            uow.credentials.add(record_of(cert, Role.ADMIN, None, None, utc_now()))
            uow.commit()
    finally:
        store.dispose()


def _initialize_sealed(home: Home, shipped: str, server_names: Sequence[str],
                       opener: TpmOpener | None, package_root: Path | None) -> Initialized:
    from bios_ws.launch.recovery import KeyPassphrases, new_recovery_code, write_recovery
    from bios_ws.launch.sealing import LaunchContext, extend_service_pcr, seal_passphrases

    if home.tpm.is_dev and opener is None:
        from bios_ws.tpm.devtpm import DevTpm

        device = DevTpm(home.tpm_dir)
        if not device.status().running:
            device.start()
    context = (LaunchContext(home, package_root=package_root) if opener is None
               else LaunchContext(home, opener=opener, package_root=package_root))
    tpm = context.open()  # refuse an unreachable TPM before any key exists
    try:
        _write_store(home, shipped)
        passphrases = KeyPassphrases.generate()
        home.passphrase_file.unlink(missing_ok=True)
        admin = initialize_pki(home, server_names,
                               passphrases=(passphrases.server, passphrases.ca))
        _record_admin(home, admin)
        try:
            measurement = context.measure()
            seal_passphrases(context, tpm, passphrases, measurement)
            extend_service_pcr(tpm, measurement.digest)
            code = new_recovery_code()
            write_recovery(home.recovery_file, code, passphrases)
        except BaseException:
            home.ca_cert.unlink(missing_ok=True)
            raise
    finally:
        tpm.close()
    set_initial_reference(home, context.event_log(), "the boot event log at vbios init")
    return Initialized(home, code)


def set_initial_reference(home: Home, event_log: bytes | None, source: str) -> bool:
    """Take ``event_log`` (the boot the keys were sealed to) as the reference measurements,
    unless the home has some already; False if there is no log to take."""
    from bios_ws.domain.eventlog import parse_event_log
    from bios_ws.domain.principal import Principal
    from bios_ws.domain.reference import ReferenceMeasurements
    from bios_ws.service.integrity import load_reference

    if event_log is None:
        return False
    store = open_store(home.db_url)
    try:
        if load_reference(store.unit_of_work, home.host_name) is not None:
            return True
        reference = ReferenceMeasurements.from_events(parse_event_log(event_log), source=source)
        attestation = AttestationService(
            store.unit_of_work, utc_now, monitor=None, tpm_access=None,
            read_log=lambda: event_log, ak_certificate=lambda: None, host=home.host_name)
        attestation.set_reference(Principal.admin("vbios-init"), lambda: reference)
    finally:
        store.dispose()
    return True
