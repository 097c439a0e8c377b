"""`vbios serve`, `vbios wsdl` and `vbios devrun`: run and describe the server.

With a TPM, `vbios serve` measures itself, resets and extends the service PCR,
unseals the server key's passphrase under the PCR policy and hands it to
``load_cert_chain``; the clear key never touches disk, and the TPM connection
is closed before serving. Without a TPM (``--no-tpm`` homes) every start prints
a loud warning; a TPM home never falls back to no TPM.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.cli.admin import add_tpm_options, chosen_tpm
from bios_ws.errors import AdminError
from bios_ws.home import MARKER_NAME, TPM_DEV, TPM_NONE, Home, resolve_home_path
from bios_ws.launch.warnings import NO_TPM_WARNING
from bios_ws.server.options import (
    DEFAULT_BIND,
    ServerOptions,
    bind_listener,
    bound_address,
    parse_bind,
    service_url,
)

if TYPE_CHECKING:
    from bios_ws.server.identity import WSGIApp

DEFAULT_ADDRESS = "https://127.0.0.1:8443/"
DEFAULT_DEMO_DOMAIN = "demo"

def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve the vBIOS over mutual TLS (foreground)")
    _add_home(serve)
    _add_server_options(serve)
    add_tpm_options(serve, for_init=False)
    serve.set_defaults(run=run_serve)

    wsdl = commands.add_parser("wsdl", help="print the WSDL contract on stdout")
    wsdl.add_argument("--address", default=DEFAULT_ADDRESS, metavar="URL",
                      help=f"service address written in the WSDL (default {DEFAULT_ADDRESS})")
    wsdl.set_defaults(run=run_wsdl)

    devrun = commands.add_parser(
        "devrun", help="initialize a home and a demo domain if missing, then serve")
    _add_home(devrun)
    _add_server_options(devrun)
    add_tpm_options(devrun, for_init=True)
    devrun.add_argument("--demo-domain", default=DEFAULT_DEMO_DOMAIN, metavar="NAME",
                        help="guest domain to create for trying it out (default %(default)s)")
    devrun.set_defaults(run=run_devrun)


def _add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", metavar="DIR",
                        help="state directory (default: $VBIOS_HOME, else ~/.local/share/vbios)")


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=DEFAULT_BIND, type=_bind_arg, metavar="HOST:PORT",
                        help=f"address to listen on (default {DEFAULT_BIND}; port 0: any free"
                             " port, printed at start)")
    parser.add_argument("--workers", type=_positive_int, default=ServerOptions.workers,
                        metavar="N", help="worker processes (default %(default)s)")
    parser.add_argument("--threads", type=_positive_int, default=ServerOptions.threads,
                        metavar="N", help="threads per worker (default %(default)s)")
    parser.add_argument("--integrity-interval", type=_seconds,
                        default=ServerOptions.integrity_interval, metavar="SECONDS",
                        help="re-check the measurements before a state change when the last"
                             " check is older than this (default %(default)s)")
    parser.add_argument("--event-log", metavar="FILE",
                        help="the platform's boot event log (default: the development TPM's,"
                             " or /sys/kernel/security/tpm0/binary_bios_measurements for a"
                             " device TPM)")


def _bind_arg(text: str) -> str:
    try:
        parse_bind(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_int(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 256:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 256, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 86400, not {text!r}")
    return value


def _options(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(bind=args.bind, workers=args.workers, threads=args.threads,
                         integrity_interval=args.integrity_interval, event_log=args.event_log)


# -- serve -------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    home = Home.open(resolve_home_path(args.home))
    return serve_home(home, _options(args), chosen_tpm(args, None))


def serve_home(home: Home, options: ServerOptions, tpm: str | None = None,
               listener: socket.socket | None = None) -> int:
    """Check everything that can be checked, unlock the server key, then serve.

    ``tpm`` is the command's override (--tpm, $VBIOS_TPM, or "none" for --no-tpm);
    ``listener`` a socket already bound to ``options.bind``.
    """
    from bios_ws.bootstrap import build_services
    from bios_ws.server.gunicorn_app import configure_logging, run_server
    from bios_ws.server.tls import build_server_context

    sealed = check_tpm_choice(home, tpm)
    build_services(home).close()
    if listener is None:
        listener = bind_listener(options.bind)
    if sealed:
        passphrase, notice = unseal_server_passphrase(home, tpm)
    else:
        print(NO_TPM_WARNING, file=sys.stderr, flush=True)
        passphrase = home.file_passphrase()
        notice = f"the key passphrase is a 0600 file at {home.passphrase_file} (NO TPM)"
    context = build_server_context(ca_cert=home.ca_cert, server_cert=home.server_cert,
                                   server_key=home.server_key, passphrase=passphrase)
    del passphrase
    print(f"vbios: {notice}", flush=True)
    if sealed:
        for line in prepare_attestation(home, tpm, options):
            print(f"vbios: {line}", flush=True)
    print(f"vbios: serving {service_url(bound_address(listener))} (home {home.path})",
          flush=True)
    configure_logging()
    if not sealed:
        for line in NO_TPM_WARNING.splitlines():
            logging.getLogger("bios_ws.launch").warning(line.removeprefix("WARNING: "))
    run_server(lambda: build_wsgi_app(home, options, tpm), context, home.server_cert, options,
               listener)
    return 0


def check_tpm_choice(home: Home, tpm: str | None) -> bool:
    """Whether ``home`` serves with sealed keys; refuse contradicting choices (no fallback)."""
    from bios_ws.launch.sealing import check_sealed_home

    if home.uses_tpm:
        if tpm == TPM_NONE:
            raise AdminError(f"the keys of {home.path} are sealed in its TPM ({home.tpm_setting});"
                             " --no-tpm cannot serve it")
        check_sealed_home(home)
        if home.passphrase_file.exists():
            raise AdminError(f"{home.passphrase_file} exists although {home.path} uses a TPM;"
                             " refusing: remove that file")
        return True
    if tpm is not None and tpm != TPM_NONE:
        raise AdminError(f"{home.path} was initialized with --no-tpm: its keys are not sealed"
                         f" in a TPM, so --tpm {tpm} cannot apply")
    return False


def unseal_server_passphrase(home: Home, tpm: str | None) -> tuple[bytes, str]:
    """The measured launch: measure, set PCR 23, unseal; and a line saying so."""
    from bios_ws.launch.sealing import LaunchContext, launch, unseal_passphrase

    context = LaunchContext(home, tpm)
    device = context.open()
    try:
        measurement = launch(context, device)
        passphrase = unseal_passphrase(context, device, "server", measurement)
    finally:
        device.close()
    notice = (f"server key unsealed by the TPM ({context.setting}) under PCRs 0-7 and 23;"
              f" service digest {measurement.digest.hex()}")
    return passphrase, notice


def prepare_attestation(home: Home, tpm: str | None, options: ServerOptions) -> list[str]:
    """Enroll the attestation key if the home has none (or the TPM lost it), then take
    the start-up integrity check; lines saying what was found."""
    from bios_ws.bootstrap import build_attestation, build_services
    from bios_ws.domain.principal import Principal
    from bios_ws.launch.enroll import ak_certificate_matches, enroll
    from bios_ws.launch.sealing import LaunchContext

    lines = []
    device = LaunchContext(home, tpm).open()
    try:
        if not ak_certificate_matches(home, device):
            identity = enroll(home, device)
            lines.append(f"attestation key enrolled (name {identity.ak_name.hex()})")
    finally:
        device.close()
    services = build_services(home)
    try:
        attestation = build_attestation(home, services, tpm=tpm, event_log=_path(options.event_log))
        status = attestation.integrity(Principal.admin("serve"))
    finally:
        services.close()
    state = "Trusted" if status.trusted else "UNTRUSTED: restricted mode, writes refused"
    lines.append(f"integrity at start: {state}")
    if not status.trusted:
        lines.append(f"  {status.verdict.summary()}")
    return lines


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def build_wsgi_app(home: Home, options: ServerOptions | None = None,
                   tpm: str | None = None) -> WSGIApp:
    """One worker's application: its own services, behind the peer-certificate middleware."""
    from bios_ws.bootstrap import build_attestation, build_services
    from bios_ws.server.gunicorn_app import identity_wrapped
    from bios_ws.soap.app import create_wsgi_app

    services = build_services(home)
    options = options or ServerOptions()
    attestation = build_attestation(home, services, interval=options.integrity_interval, tpm=tpm,
                                    event_log=_path(options.event_log))
    return identity_wrapped(create_wsgi_app(services.bios, attestation=attestation))


# -- wsdl --------------------------------------------------------------------------


def run_wsdl(args: argparse.Namespace) -> int:
    from bios_ws.soap.contract import render_wsdl

    sys.stdout.buffer.write(render_wsdl(args.address))
    sys.stdout.buffer.flush()
    return 0


# -- devrun ------------------------------------------------------------------------


def run_devrun(args: argparse.Namespace) -> int:
    options = _options(args)
    tpm = chosen_tpm(args, None)
    listener = bind_listener(options.bind)  # a taken port refuses before anything is made
    home, created = ensure_home(resolve_home_path(args.home), tpm or TPM_DEV)
    if created:
        print(f"vbios: initialized a new state directory at {home.path}")
    elif home.tpm_setting == TPM_DEV and tpm is None:
        ensure_dev_tpm(home)
        ensure_dev_reference(home)
    bundle = ensure_demo_domain(home, args.demo_domain)
    client = _display_path(Path(sys.executable).parent / "vbios-client")
    print(f"vbios: admin bundle:  {home.admin_dir}")
    print(f"vbios: demo bundle:   {bundle}  (domain {args.demo_domain})")
    print("vbios: try it in another terminal:")
    url = service_url(bound_address(listener))
    print(f"  {client} --url {url} --bundle {bundle} attributes get", flush=True)
    return serve_home(home, options, tpm, listener)


def ensure_home(path: Path, tpm: str = TPM_DEV) -> tuple[Home, bool]:
    """The home at ``path``, initialized first (CA, server and admin keys, sealed with
    ``tpm``) if needed; and whether it was initialized now."""
    from bios_ws.bootstrap import initialize

    if (path / MARKER_NAME).is_file():
        home = Home.open(path)
        if home.is_initialized:
            return home, False
    if tpm == TPM_NONE:
        print(NO_TPM_WARNING, file=sys.stderr, flush=True)
    done = initialize(path, tpm=tpm)
    if done.recovery_code is not None:
        print("vbios: RECOVERY CODE (shown once, stored nowhere; needed by vbios tpm reseal"
              f" after a boot change): {done.recovery_code}", flush=True)
    return done.home, True


def ensure_dev_tpm(home: Home) -> None:
    """Start the home's development TPM unless it runs (it then replays the boot)."""
    from bios_ws.tpm.devtpm import DevTpm

    device = DevTpm(home.tpm_dir)
    if not device.status().running:
        status = device.start()
        print(f"vbios: started the development TPM ({status.tcti})", flush=True)


def ensure_dev_reference(home: Home) -> None:
    """A development home made before references existed takes its current boot as one."""
    from bios_ws.bootstrap import build_services, set_initial_reference
    from bios_ws.launch.sealing import LaunchContext
    from bios_ws.service.integrity import load_reference

    services = build_services(home)
    try:
        if load_reference(services.store.unit_of_work) is not None:
            return
    finally:
        services.close()
    if set_initial_reference(home, LaunchContext(home).event_log(),
                             "the boot event log at vbios devrun"):
        print("vbios: no reference measurements were set: took this boot's event log"
              " (development TPM)", flush=True)


def ensure_demo_domain(home: Home, name: str) -> Path:
    """Create domain ``name`` unless it exists; issue its bundle if missing."""
    from bios_ws.bootstrap import build_services
    from bios_ws.domain.principal import Principal, check_domain_id
    from bios_ws.pki import issue_domain_bundle

    check_domain_id(name)
    admin = Principal.admin("devrun")
    services = build_services(home)
    try:
        if name not in {summary.domain_id for summary in services.domains.list(admin)}:
            services.domains.create(admin, name)
    finally:
        services.close()
    bundle = home.bundles_dir / name
    if not (bundle / "cert.pem").is_file() or not (bundle / "key.pem").is_file():
        issue_domain_bundle(home, name, bundle)
    return bundle


def _display_path(path: Path) -> str:
    try:
        relative = path.relative_to(Path.cwd())
    except ValueError:
        return str(path)
    return os.path.join(".", str(relative)) if relative.parts else str(path)
