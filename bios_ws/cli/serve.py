"""`vbios serve`, `vbios wsdl` and `vbios devrun`: run and describe the server."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.home import MARKER_NAME, Home, resolve_home_path
from bios_ws.server.options import DEFAULT_BIND, ServerOptions, parse_bind, service_url

if TYPE_CHECKING:
    from bios_ws.server.identity import WSGIApp

DEFAULT_ADDRESS = "https://127.0.0.1:8443/"
DEFAULT_DEMO_DOMAIN = "demo"

def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve the vBIOS over mutual TLS (foreground)")
    _add_home(serve)
    _add_server_options(serve)
    serve.set_defaults(run=run_serve)

    wsdl = commands.add_parser("wsdl", help="print the WSDL contract on stdout")
    wsdl.add_argument("--address", default=DEFAULT_ADDRESS, metavar="URL",
                      help=f"service address written in the WSDL (default {DEFAULT_ADDRESS})")
    wsdl.set_defaults(run=run_wsdl)

    devrun = commands.add_parser(
        "devrun", help="initialize a home and a demo domain if missing, then serve")
    _add_home(devrun)
    _add_server_options(devrun)
    devrun.add_argument("--demo-domain", default=DEFAULT_DEMO_DOMAIN, metavar="NAME",
                        help="guest domain to create for trying it out (default %(default)s)")
    devrun.set_defaults(run=run_devrun)


def _add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", metavar="DIR",
                        help="state directory (default: $VBIOS_HOME, else ~/.local/share/vbios)")


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default=DEFAULT_BIND, type=_bind_arg, metavar="HOST:PORT",
                        help=f"address to listen on (default {DEFAULT_BIND})")
    parser.add_argument("--workers", type=_positive_int, default=ServerOptions.workers,
                        metavar="N", help="worker processes (default %(default)s)")
    parser.add_argument("--threads", type=_positive_int, default=ServerOptions.threads,
                        metavar="N", help="threads per worker (default %(default)s)")


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


def _options(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(bind=args.bind, workers=args.workers, threads=args.threads)


# -- serve -------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    home = Home.open(resolve_home_path(args.home))
    return serve_home(home, _options(args))


def serve_home(home: Home, options: ServerOptions) -> int:
    """Check everything that can be checked, then serve in the foreground."""
    from bios_ws.bootstrap import build_services
    from bios_ws.server.gunicorn_app import configure_logging, run_server
    from bios_ws.server.options import check_port_free
    from bios_ws.server.tls import server_ssl_context

    build_services(home).close()
    context = server_ssl_context(home)
    check_port_free(options.bind)
    print(f"vbios: the server key passphrase is kept in a 0600 file at {home.passphrase_file}"
          " until the TPM seals it", flush=True)
    print(f"vbios: serving {service_url(options.bind)} (home {home.path})", flush=True)
    configure_logging()
    run_server(lambda: build_wsgi_app(home), context, home.server_cert, options)
    return 0


def build_wsgi_app(home: Home) -> WSGIApp:
    """One worker's application: its own services, behind the peer-certificate middleware."""
    from bios_ws.bootstrap import build_services
    from bios_ws.server.gunicorn_app import identity_wrapped
    from bios_ws.soap.app import create_wsgi_app

    return identity_wrapped(create_wsgi_app(build_services(home).bios))


# -- wsdl --------------------------------------------------------------------------


def run_wsdl(args: argparse.Namespace) -> int:
    from bios_ws.soap.wsdl import render_wsdl

    sys.stdout.buffer.write(render_wsdl(args.address))
    sys.stdout.buffer.flush()
    return 0


# -- devrun ------------------------------------------------------------------------


def run_devrun(args: argparse.Namespace) -> int:
    from bios_ws.server.options import check_port_free

    options = _options(args)
    check_port_free(options.bind)
    home, created = ensure_home(resolve_home_path(args.home))
    if created:
        print(f"vbios: initialized a new state directory at {home.path}")
    bundle = ensure_demo_domain(home, args.demo_domain)
    client = _display_path(Path(sys.executable).parent / "vbios-client")
    print(f"vbios: admin bundle:  {home.admin_dir}")
    print(f"vbios: demo bundle:   {bundle}  (domain {args.demo_domain})")
    print("vbios: try it in another terminal:")
    print(f"  {client} --url {service_url(options.bind)} --bundle {bundle} attributes get",
          flush=True)
    return serve_home(home, options)


def ensure_home(path: Path) -> tuple[Home, bool]:
    """The home at ``path``, initialized first (CA, server and admin keys) if needed;
    and whether it was initialized now."""
    from bios_ws.bootstrap import initialize_home

    if (path / MARKER_NAME).is_file():
        home = Home.open(path)
        if home.is_initialized:
            return home, False
    return initialize_home(path), True


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
