"""`vbios serve`, `vbios wsdl` and `vbios devrun`: run and describe the server.

With a TPM, `vbios serve` measures itself, resets and extends the service PCR,
unseals the server key's passphrase under the PCR policy and hands it to
``load_cert_chain``; the clear key never touches disk, and the TPM connection
is closed before serving. Without a TPM (``--no-tpm`` homes) every start prints
a loud warning; a TPM home never falls back to no TPM.

The listening socket is bound here, or taken from the environment
(``bios_ws.server.handover``): from systemd's socket activation, or from the
master this one replaces (SIGUSR2/SIGHUP), with its serve lock. A successor
checks first that the service on disk is what the keys are sealed to, before it
touches PCR 23 (the serving master's quotes report it), and leaves machines,
firmware updates and timers as they are (the service did not stop).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.cli.options import (
    add_home,
    add_server_options,
    add_tpm_options,
    config_from_args,
)
from bios_ws.config import Config
from bios_ws.domain.power import MachineKind
from bios_ws.errors import AdminError, VbiosError
from bios_ws.home import Home, resolve_home_path
from bios_ws.launch.warnings import NO_TPM_WARNING

if TYPE_CHECKING:
    from bios_ws.service.credentials import CredentialService
from bios_ws.server.handover import NOTHING_INHERITED, Inherited, Relaunch, inherited_from
from bios_ws.server.options import bind_listener, bound_address, service_url
from bios_ws.server.serve_lock import ServeLock

if TYPE_CHECKING:
    from bios_ws.server.master import Restarts

DEFAULT_ADDRESS = "https://127.0.0.1:8443/"
DEFAULT_DEMO_DOMAIN = "demo"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve the vBIOS over mutual TLS (foreground)")
    add_home(serve)
    add_server_options(serve)
    add_tpm_options(serve, for_init=False)
    serve.set_defaults(run=run_serve)

    wsdl = commands.add_parser("wsdl", help="print the WSDL contract on stdout")
    wsdl.add_argument("--address", default=DEFAULT_ADDRESS, metavar="URL",
                      help=f"service address written in the WSDL (default {DEFAULT_ADDRESS})")
    wsdl.set_defaults(run=run_wsdl)

    devrun = commands.add_parser(
        "devrun", help="initialize a home and a demo domain if missing, then serve")
    add_home(devrun)
    add_server_options(devrun)
    add_tpm_options(devrun, for_init=True)
    devrun.add_argument("--demo-domain", default=DEFAULT_DEMO_DOMAIN, metavar="NAME",
                        help="guest domain to create for trying it out (default %(default)s)")
    devrun.set_defaults(run=run_devrun)


# -- serve -------------------------------------------------------------------------


#: Set by systemd in the environment of every service it runs.
SYSTEMD_SERVICE_ENV = "INVOCATION_ID"


def run_serve(args: argparse.Namespace) -> int:
    inherited = inherited_from(os.environ, os.getpid())  # before any process is started
    home = Home.open(resolve_home_path(args.home))
    return serve(config_from_args(args, home), inherited.listener, inherited=inherited,
                 environ=os.environ)


def serve(config: Config, listener: socket.socket | None = None,
          lock: ServeLock | None = None, *, inherited: Inherited = NOTHING_INHERITED,
          environ: Mapping[str, str] | None = None) -> int:
    """Check everything that can be checked (first: no other user could read or swap the
    home's keys; then that no other process serves it), unlock the server key, then serve.

    ``listener`` is a socket already bound to ``config.server.bind`` (or inherited);
    ``lock`` the home's serve lock already held (else it is taken here, or taken over
    from the master ``inherited`` names, and held until the server ends). With
    ``environ``, SIGUSR2 and SIGHUP start a successor in that environment.
    """
    from bios_ws.launch.permissions import check_home_permissions

    home = config.home
    check_home_permissions(home)  # before anything is locked, unsealed, read or started
    if lock is not None:
        return _serve_locked(config, listener, restarts_of(lock, inherited, environ),
                             inherited)
    if inherited.lock_fd is not None:
        lock = ServeLock.inherit(home.serve_lock, inherited.lock_fd, home.path)
    else:
        lock = ServeLock.acquire(home.serve_lock, home.path)
    with lock:
        return _serve_locked(config, listener, restarts_of(lock, inherited, environ),
                             inherited)


def restarts_of(lock: ServeLock, inherited: Inherited,
                environ: Mapping[str, str] | None) -> Restarts:
    """How this server may be restarted, and what it does once it serves."""
    from bios_ws.server.master import Restarts

    def on_serving() -> None:
        if inherited.handed_over:
            lock.record_pid()  # it now names the server to stop
            inherited.report_serving()

    if environ is None:
        return Restarts(unavailable="vbios devrun does not restart itself: stop and start it",
                        on_serving=on_serving)
    if SYSTEMD_SERVICE_ENV in environ:
        return Restarts(unavailable="under systemd, which stops the whole service when its"
                                    " main process exits, restart the unit instead"
                                    " (vbios.socket keeps the socket meanwhile)",
                        on_serving=on_serving)
    relaunch = Relaunch(sys.executable, tuple(sys.orig_argv), dict(environ), lock.fileno())
    return Restarts(relaunch=relaunch, on_serving=on_serving)


def _serve_locked(config: Config, listener: socket.socket | None,
                  restarts: Restarts, inherited: Inherited = NOTHING_INHERITED) -> int:
    from bios_ws.bootstrap import bootstrap, check_registry_in_force
    from bios_ws.firmware.transfer import ensure_transfer_key
    from bios_ws.launch.host import register_home
    from bios_ws.pki import Authority
    from bios_ws.server.master import configure_logging, run_server
    from bios_ws.server.tls import ServerTls
    from bios_ws.service.credentials import CredentialService

    home = config.home
    sealed = check_tpm_choice(config)
    bootstrap(config).close()  # refuse a damaged registry or store before anything else
    check_registry_in_force(config)  # and a registry.json replaced but not put in force
    registered = register_home(home, config.store_url, starting=True)  # or refused: not its name
    if listener is None:
        listener = bind_listener(config.server.bind)
    if sealed:
        if inherited.handed_over:
            check_sealed_service(config)
        (passphrase, ca_passphrase), notice = unseal_passphrases(config)
    else:
        print(NO_TPM_WARNING, file=sys.stderr, flush=True)
        passphrase = ca_passphrase = home.file_passphrase()
        notice = f"the key passphrase is a 0600 file at {home.passphrase_file} (NO TPM)"
    # The CA signs the CRL (kept fresh by every worker) and the certificates it issues.
    authority = Authority.load(home, ca_passphrase)
    del ca_passphrase
    with bootstrap(config, authority=authority) as app:
        app.use(CredentialService).publish_revocations()
    tls = ServerTls.of(home, passphrase)
    # the static key of encrypted capsule uploads, under the same passphrase
    transfer_key = ensure_transfer_key(home, passphrase)
    del passphrase
    print(f"vbios: {notice}", flush=True)
    if registered:
        print(f"vbios: {registered}", flush=True)
    if sealed:
        for line in prepare_attestation(config):
            print(f"vbios: {line}", flush=True)
    if inherited.handed_over:
        print(f"vbios: taking over from pid {inherited.from_pid}: machines, firmware updates"
              " and timers go on as they are", flush=True)
    else:
        for line in restore_power(config):
            print(f"vbios: {line}", flush=True)
    print(f"vbios: serving {service_url(bound_address(listener))} (home {home.path})",
          flush=True)
    configure_logging(config.server.log_level)
    if not sealed:
        for line in NO_TPM_WARNING.splitlines():
            logging.getLogger("bios_ws.launch").warning(line.removeprefix("WARNING: "))
    # each worker builds its own object graph after the fork
    from bios_ws.soap.guard import http_refusal

    return run_server(lambda: bootstrap(config, authority=authority,
                                        transfer_key=transfer_key).wsgi(tls),
                      tls, config.server, listener, http_refusal, restarts)


def check_sealed_service(config: Config) -> None:
    """AdminError, before PCR 23 is touched, when the service on disk (code, registry,
    certificates) is not what the keys are sealed to: the launch would set PCR 23 to a
    value that cannot unseal, under the master still serving."""
    from bios_ws.launch.record import read_record
    from bios_ws.launch.sealing import LaunchContext

    home = config.home
    state = read_record(home.sealed_state)
    if state is None:
        return  # the launch's own refusal says what is missing
    measurement = LaunchContext(home, config.tpm).measure()
    if measurement.digest == state.service_digest:
        return
    measured = measurement.files
    changed = sorted(name for name in set(state.measured) | set(measured)
                     if state.measured.get(name) != measured.get(name))
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    raise AdminError(f"the service on disk is not what the keys of {home.path} are sealed to"
                     f" (changed: {shown}); PCR 23 left as it is. If the change was intended,"
                     f" re-seal (vbios tpm reseal --home {home.path}), then restart again")


def restore_power(config: Config) -> list[str]:
    """Firmware updates a stopped service left unfinished go on or end, then power
    returns to the machines as the service starts (AcPwrRcvry of each domain), then the
    watchdogs' countdowns start again and wake alarms that came due meanwhile fire."""
    from bios_ws.bootstrap import bootstrap
    from bios_ws.service.firmware_update import FirmwareUpdateService
    from bios_ws.service.firmware_upload import FirmwareUploadService
    from bios_ws.service.power import PowerService
    from bios_ws.service.system_management import SystemManagementService

    with bootstrap(config) as app:
        resumed = app.use(FirmwareUpdateService).resume(app.observer.firmware)
        expired = app.use(FirmwareUploadService).expire()
        if expired:
            resumed.append(f"{expired} abandoned capsule upload(s) removed")
        return ([f"firmware update: {line}" for line in resumed]
                + [f"power restore: {line}" for line in app.use(PowerService).restore_power()]
                + [f"timers: {line}"
                   for line in app.use(SystemManagementService).timers.at_start()])


def check_tpm_choice(config: Config) -> bool:
    """Whether the home serves with sealed keys; refuse contradicting choices (no fallback)."""
    from bios_ws.launch.sealing import check_sealed_home

    home = config.home
    if home.uses_tpm:
        if config.tpm.is_none:
            raise AdminError(f"the keys of {home.path} are sealed in its TPM ({home.tpm});"
                             " --no-tpm cannot serve it")
        check_sealed_home(home)
        if home.passphrase_file.exists():
            raise AdminError(f"{home.passphrase_file} exists although {home.path} uses a TPM;"
                             " refusing: remove that file")
        return True
    if not config.tpm.is_none:
        raise AdminError(f"{home.path} was initialized with --no-tpm: its keys are not sealed"
                         f" in a TPM, so --tpm {config.tpm} cannot apply")
    return False


def unseal_passphrases(config: Config) -> tuple[tuple[bytes, bytes], str]:
    """The measured launch: measure, set PCR 23, unseal the server's and the CA's key
    passphrases; and a line saying so."""
    from bios_ws.launch.sealing import LaunchContext, launch, unseal_passphrase

    context = LaunchContext(config.home, config.tpm)
    device = context.open()
    try:
        measurement = launch(context, device)
        server = unseal_passphrase(context, device, "server", measurement)
        ca = unseal_passphrase(context, device, "ca", measurement)
    finally:
        device.close()
    notice = (f"server and CA keys unsealed by the TPM ({context.choice}) under PCRs 0-7"
              f" and 23; service digest {measurement.digest.hex()}")
    return (server, ca), notice


def prepare_attestation(config: Config) -> list[str]:
    """Enroll the attestation key if the home has none (or the TPM lost it), then take
    the start-up integrity check; lines saying what was found."""
    from bios_ws.bootstrap import bootstrap
    from bios_ws.domain.principal import Principal
    from bios_ws.launch.enroll import ak_certificate_matches, enroll
    from bios_ws.launch.sealing import LaunchContext
    from bios_ws.service.attestation import AttestationService

    home = config.home
    lines = []
    device = LaunchContext(home, config.tpm).open()
    try:
        if not ak_certificate_matches(home, device):
            identity = enroll(home, device)
            lines.append(f"attestation key enrolled (name {identity.ak_name.hex()})")
    finally:
        device.close()
    with bootstrap(config) as app:
        status = app.use(AttestationService).integrity(Principal.admin("serve"))
    state = "Trusted" if status.trusted else "UNTRUSTED: restricted mode, writes refused"
    lines.append(f"integrity at start: {state}")
    if not status.trusted:
        lines.append(f"  {status.verdict.summary()}")
    return lines


# -- wsdl --------------------------------------------------------------------------


def run_wsdl(args: argparse.Namespace) -> int:
    from bios_ws.soap.contract import render_wsdl

    sys.stdout.buffer.write(render_wsdl(args.address))
    sys.stdout.buffer.flush()
    return 0


# -- devrun (bios_ws.cli.devrun) and its demo domain --------------------------------


def run_devrun(args: argparse.Namespace) -> int:
    from bios_ws.cli.devrun import run_devrun as devrun

    return devrun(args)


def ensure_demo_domain(home: Home, name: str,
                       kind: MachineKind = MachineKind.SIMULATED,
                       config: Config | None = None) -> Path:
    """Create domain ``name`` (a ``kind`` machine; simulated if this host cannot run that
    kind, saying so) unless it exists; issue its bundle if missing."""
    from bios_ws.bootstrap import bootstrap
    from bios_ws.domain.principal import Principal, check_domain_id
    from bios_ws.errors import PlatformUnavailable
    from bios_ws.pki import write_bundle_files
    from bios_ws.service.credentials import CredentialService
    from bios_ws.service.domains import DomainService

    check_domain_id(name)
    admin = Principal.admin("devrun")
    with bootstrap(config or Config.of(home)) as app:
        domains = app.use(DomainService)
        if name not in {summary.domain_id for summary in domains.list(admin)}:
            try:
                domains.create(admin, name, kind)
            except PlatformUnavailable as exc:
                print(f"vbios: {exc.message}; the demo domain gets a simulated machine",
                      file=sys.stderr, flush=True)
                domains.create(admin, name)
        bundle = home.bundles_dir / name
        credentials = app.use(CredentialService)
        if not bundle_counts(credentials, bundle):
            issued = credentials.issue_guest(admin, name)
            write_bundle_files(bundle, issued.cert_pem, issued.key_pem, issued.ca_pem,
                               require_empty=False)
    return bundle


def bundle_counts(credentials: CredentialService, bundle: Path) -> bool:
    """Whether the bundle in ``bundle`` holds a key and a certificate the server accepts
    (recorded, not revoked, not expired, of the domain's current incarnation)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from bios_ws.server.identity import identity_of

    try:
        if not (bundle / "key.pem").is_file():
            return False
        cert = x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
    except (OSError, ValueError):
        return False
    identity = identity_of(cert.public_bytes(Encoding.DER))
    if isinstance(identity, str):
        return False
    try:
        credentials.authenticate(identity)
    except VbiosError:
        return False
    return True
