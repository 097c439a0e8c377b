"""A minimal echo WSGI app behind the vBIOS's own front and mutual-TLS configuration.

The baseline of bench/roundtrip.py: same server class, TLS contexts (CRL checked),
peer-identity middleware (without the registry lookup: that is the service's
work), workers and threads as `vbios serve`; the application only reads the
request body and answers a text/xml response of a fixed size.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bios_ws.home import Home
from bios_ws.server.identity import PeerIdentity, WSGIApp
from bios_ws.server.master import run_server
from bios_ws.server.options import ServerOptions, bind_listener, bound_address, service_url
from bios_ws.server.tls import ServerTls


def echo_app(size: int, set_size: int | None = None) -> WSGIApp:
    """Answers ``size`` bytes, or ``set_size`` to a request with SOAPAction SetAttributes."""
    def answer(length: int) -> tuple[bytes, list[tuple[str, str]]]:
        payload = b"<?xml version='1.0' encoding='UTF-8'?>" + b" " * max(0, length - 38)
        return payload, [("Content-Type", "text/xml; charset=utf-8"),
                         ("Content-Length", str(len(payload)))]

    default = answer(size)
    write = default if set_size is None else answer(set_size)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        payload, headers = write if "SetAttributes" in environ.get(
            "HTTP_SOAPACTION", "") else default
        start_response("200 OK", headers)
        return [payload]

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--size", required=True, type=int)
    parser.add_argument("--set-size", type=int, help="size of the answer to SetAttributes")
    parser.add_argument("--workers", type=int, default=ServerOptions.workers)
    parser.add_argument("--threads", type=int, default=ServerOptions.threads)
    args = parser.parse_args()
    home = Home.open(args.home)
    options = ServerOptions(bind=args.bind, workers=args.workers, threads=args.threads,
                            log_level="warning")
    listener = bind_listener(args.bind)
    print(f"echo: serving {service_url(bound_address(listener))}", flush=True)
    tls = ServerTls.of(home, home.key_passphrase("server"))
    raise SystemExit(run_server(
        lambda: PeerIdentity(echo_app(args.size, args.set_size), revocations=tls),
        tls, options, listener))


if __name__ == "__main__":
    main()
