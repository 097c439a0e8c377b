"""Mutual-TLS handshakes per second with the CRL checked and without, in one run.

In one process, on one fresh home (no TPM: the handshake is what is measured)
whose CRL lists ``--revoked`` serials (10,000 by default), a loopback server
thread accepts connections with the server's real contexts: ``ServerTls`` (CRL
checked at every handshake, as `vbios serve` runs) and the same context without
the CRL (the baseline). A client thread makes full handshakes (TLS 1.3, the
admin bundle's P-256 certificate, no session resumption), each followed by a
one-byte answer so the server has verified the client's certificate. Prints
the median round of each and the ratio CRL-checked / baseline.

Usage: .venv/bin/python bench/handshake.py [--handshakes N] [--rounds R] [--revoked K]
"""

from __future__ import annotations

import argparse
import secrets
import socket
import ssl
import statistics
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from _shared import timed  # bench/ is the script directory

from bios_ws.bootstrap import initialize_home
from bios_ws.home import Home
from bios_ws.pki import Authority, crl
from bios_ws.server.tls import ServerTls, build_server_context


def serve(listener: socket.socket, context: Callable[[], ssl.SSLContext],
          stop: threading.Event) -> None:
    """Accept, handshake, answer one byte, close; until ``stop``."""
    while not stop.is_set():
        try:
            raw, _ = listener.accept()
        except TimeoutError:
            continue
        with raw:
            try:
                with context().wrap_socket(raw, server_side=True) as tls:
                    tls.sendall(b"k")
            except (OSError, ssl.SSLError):
                pass


def handshake_once(port: int, client: ssl.SSLContext) -> None:
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        if tls.recv(1) != b"k":
            raise SystemExit("the server refused the handshake")


def measure(context: Callable[[], ssl.SSLContext], client: ssl.SSLContext, n: int) -> float:
    """Handshakes per second over ``n`` sequential connections."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.2)
        stop = threading.Event()
        thread = threading.Thread(target=serve, args=(listener, context, stop), daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        try:
            handshake_once(port, client)  # warm up
            return n / timed(lambda: handshake_once(port, client), n)
        finally:
            stop.set()
            thread.join()


def prepare(path: Path, revoked: int) -> Home:
    home = initialize_home(path)
    authority = Authority.load(home)
    now = datetime.now(UTC)
    serials = [(secrets.randbits(127) | 1 << 126, now) for _ in range(revoked)]
    crl.publish(crl.CrlFile(home.crl_file, authority.cert), authority.issued, serials, now,
                force=True)
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--revoked", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbios-bench-") as tmp:
        home = prepare(Path(tmp) / "home", args.revoked)
        passphrase = home.key_passphrase("server")
        checked = ServerTls.of(home, passphrase)
        plain = build_server_context(ca_cert=home.ca_cert, server_cert=home.server_cert,
                                     server_key=home.server_key, passphrase=passphrase)
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(home.ca_cert))
        client.load_cert_chain(str(home.admin_dir / "cert.pem"),
                               str(home.admin_dir / "key.pem"))
        with_crl, without = [], []
        for _ in range(args.rounds):
            without.append(measure(lambda: plain, client, args.handshakes))
            with_crl.append(measure(checked.context, client, args.handshakes))
        crl_bytes = home.crl_file.stat().st_size
    base, checked_rate = statistics.median(without), statistics.median(with_crl)
    print(f"handshakes: {args.handshakes} x {args.rounds} rounds, CRL of {args.revoked:,}"
          f" serials ({crl_bytes / 1024:.0f} KiB)")
    print(f"  without CRL check: {base:8,.0f}/s  {1e3 / base:6.2f} ms")
    print(f"  CRL checked:       {checked_rate:8,.0f}/s  {1e3 / checked_rate:6.2f} ms")
    print(f"  ratio checked / without: {checked_rate / base:.2f}")


if __name__ == "__main__":
    main()
