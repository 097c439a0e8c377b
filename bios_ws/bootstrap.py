"""Wiring: one state directory in, one object graph out.

Everything the service needs is read from the ``Home`` it is given; nothing
comes from the environment. ``initialize_home`` is what `vbios init` (and
`vbios devrun` on a fresh home) runs: with a TPM it starts the development
TPM if the home uses it, and seals the key passphrases
(``bios_ws.launch.sealing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.domain.registry import AttributeRegistry
from bios_ws.errors import AdminError
from bios_ws.home import TPM_DEV, TPM_NONE, Home, check_tpm_setting
from bios_ws.pki import DEFAULT_SERVER_NAMES, initialize_pki
from bios_ws.pki.certs import parse_server_names
from bios_ws.pki.files import PUBLIC_MODE, write_file_atomic
from bios_ws.registry_file import load_registry, shipped_registry_text
from bios_ws.service.attestation import AttestationService
from bios_ws.service.bios import BiosService, utc_now
from bios_ws.service.domains import DomainService
from bios_ws.service.integrity import DEFAULT_CHECK_INTERVAL, IntegrityMonitor
from bios_ws.store import SqlStore, open_store

if TYPE_CHECKING:
    from bios_ws.launch.sealing import TpmOpener


@dataclass
class Services:
    registry: AttributeRegistry
    store: SqlStore
    bios: BiosService
    domains: DomainService

    def close(self) -> None:
        """Release the store's connections."""
        self.store.dispose()


def build_attestation(
    home: Home, services: Services, *, interval: float = DEFAULT_CHECK_INTERVAL,
    tpm: str | None = None, event_log: Path | None = None,
) -> AttestationService:
    """Attestation over ``home``'s TPM, and restricted mode on ``services.bios``.

    The TPM is opened per use (``bios_ws.tpm.access``). A home without TPM gets
    a service that says so (no quotes, status Untrusted, writes not restricted).
    """
    from bios_ws.launch.sealing import LaunchContext
    from bios_ws.tpm.access import PerUseTpm

    uow = services.store.unit_of_work
    if not home.uses_tpm or tpm == TPM_NONE:
        return AttestationService(uow, utc_now, monitor=None, tpm_access=None,
                                  read_log=lambda: None, ak_certificate=lambda: None)
    context = LaunchContext(home, tpm, event_log_path=event_log)
    access = PerUseTpm(context.tcti, context.opener)
    monitor = IntegrityMonitor(uow, access, context.event_log, utc_now, interval)
    services.bios.gate = monitor.check_write
    return AttestationService(uow, utc_now, monitor=monitor, tpm_access=access,
                              read_log=context.event_log,
                              ak_certificate=lambda: read_ak_certificate(home))


def read_ak_certificate(home: Home) -> bytes | None:
    """The DER of the home's attestation key certificate, or None if not enrolled."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        pem = home.ak_cert.read_bytes()
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    except (OSError, ValueError):
        return None


def build_services(home: Home) -> Services:
    """The registry of ``home``, its store, and the use cases over them."""
    registry = load_registry(home.registry_path)
    store = open_store(home.db_url)
    return Services(
        registry=registry,
        store=store,
        bios=BiosService(store.unit_of_work, registry),
        domains=DomainService(store.unit_of_work, registry),
    )


@dataclass(frozen=True)
class Initialized:
    """A new home, and the recovery code to show the admin once (None without TPM)."""

    home: Home
    recovery_code: str | None


def initialize_home(
    path: Path, server_names: Sequence[str] = DEFAULT_SERVER_NAMES
) -> Home:
    """A new installation without TPM (development and tests): see ``initialize``."""
    return initialize(path, server_names, tpm=TPM_NONE).home


def initialize(
    path: Path,
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    *,
    tpm: str = TPM_DEV,
    opener: TpmOpener | None = None,
    package_root: Path | None = None,
) -> Initialized:
    """Make a new installation at ``path``: registry, store, CA, server and admin keys.

    ``tpm`` is "dev" (start this home's development TPM), a TCTI, or "none". With
    a TPM, the two key passphrases are sealed and a recovery copy is encrypted
    under a fresh recovery code. Refuses a foreign directory and an initialized
    home. The CA certificate is written last (and removed again if sealing
    fails), so a home interrupted half-way can be initialized again.
    ``opener`` replaces the TPM connection and ``package_root`` the measured
    package (tests: a FakeTpm, a copied tree).
    """
    # Refuse bad input or a broken shipped registry before anything is written.
    check_tpm_setting(tpm)
    parse_server_names(server_names)
    load_registry(None)
    shipped = shipped_registry_text()
    home = Home.create(path)
    if home.is_initialized:
        raise AdminError(f"{home.path} is already initialized")
    home.record_tpm(tpm)
    if tpm == TPM_NONE:
        _write_store(home, shipped)
        initialize_pki(home, server_names)
        return Initialized(home, None)
    return _initialize_sealed(home, shipped, server_names, opener, package_root)


def _write_store(home: Home, shipped: str) -> None:
    write_file_atomic(home.registry_path, shipped.encode("utf-8"), PUBLIC_MODE)
    open_store(home.db_url).dispose()


def _initialize_sealed(home: Home, shipped: str, server_names: Sequence[str],
                       opener: TpmOpener | None, package_root: Path | None) -> Initialized:
    from bios_ws.launch.recovery import KeyPassphrases, new_recovery_code, write_recovery
    from bios_ws.launch.sealing import LaunchContext, extend_service_pcr, seal_passphrases

    if home.tpm_setting == TPM_DEV and opener is None:
        from bios_ws.tpm.devtpm import DevTpm

        device = DevTpm(home.tpm_dir)
        if not device.status().running:
            device.start()
    context = LaunchContext(home, package_root=package_root)
    if opener is not None:
        context.opener = opener
    tpm = context.open()  # refuse an unreachable TPM before any key exists
    try:
        _write_store(home, shipped)
        passphrases = KeyPassphrases.generate()
        home.passphrase_file.unlink(missing_ok=True)
        initialize_pki(home, server_names, passphrases=(passphrases.server, passphrases.ca))
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
    services = build_services(home)
    try:
        if load_reference(services.store.unit_of_work) is not None:
            return True
        reference = ReferenceMeasurements.from_events(parse_event_log(event_log), source=source)
        attestation = AttestationService(
            services.store.unit_of_work, utc_now, monitor=None, tpm_access=None,
            read_log=lambda: event_log, ak_certificate=lambda: None)
        attestation.set_reference(Principal.admin("vbios-init"), lambda: reference)
    finally:
        services.close()
    return True
