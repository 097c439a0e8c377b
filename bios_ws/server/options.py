"""Server options and the listening address: standard library only, cheap to import."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from pathlib import Path

from bios_ws.errors import PortInUse

DEFAULT_BIND = "127.0.0.1:8443"
#: Connections the kernel queues before a worker accepts them.
LISTEN_BACKLOG = 2048


@dataclass(frozen=True)
class Bounds:
    """What one connection may cost a worker: each bound has a `vbios serve` option.

    A connection that exceeds a time bound is closed (counted, logged per interval); a
    head or body over its size bound is answered 431 or 413 and closed. Only complete
    requests within these bounds reach the threads that run the application."""

    #: Seconds from the TCP connection to a completed TLS handshake.
    handshake_timeout: float = 5.0
    #: Seconds to receive a whole request head (request line and headers), counted from
    #: the handshake, or from the first byte of a kept-alive connection's next request.
    head_timeout: float = 10.0
    #: Seconds a kept-alive connection may wait for the first byte of its next request.
    idle_timeout: float = 15.0
    #: Bytes per second a request body must arrive at, once ``body_grace`` has passed.
    body_min_rate: int = 16_384
    body_grace: float = 5.0
    #: Seconds a response may take to be written out (a client that does not read).
    write_timeout: float = 10.0
    #: Bytes of request line and headers.
    max_head_bytes: int = 16_384
    #: Bytes of request body; a larger one is answered 413 with a SOAP fault.
    max_body_bytes: int = 1_048_576
    #: A body over the limit is read and dropped up to this many bytes before the 413 is
    #: answered (so a client that sends it whole reads the answer, not a reset).
    discard_limit: int = 8 * 1_048_576
    #: Open connections per worker process (the open-file limit is raised to fit).
    max_connections: int = 4_000


@dataclass(frozen=True)
class ServerOptions:
    bind: str = DEFAULT_BIND
    workers: int = 2
    #: Threads per worker that run the application (complete requests only).
    threads: int = 8
    #: Seconds a stopping worker lets calls in progress finish before it closes them.
    drain_timeout: float = 15.0
    log_level: str = "info"
    #: Seconds between two checks that the published CRL matches the store and is fresh.
    crl_check_interval: float = 5.0
    #: Seconds between two evaluations of the thermal policy (``ThermalService.evaluate``).
    thermal_interval: float = 5.0
    bounds: Bounds = Bounds()
    #: Seconds a call forwarded to a remote vBIOS may take before it answers
    #: RemoteUnavailable (``bios_ws.server.forwarding``).
    remote_timeout: float = 10.0
    #: Where the workers write their access log (JSON lines): a file path, or
    #: ``ACCESS_LOG_STDERR``; None: no access log (``bios_ws.server.access_log``).
    access_log: Path | str | None = None
    #: Bytes an access log file reaches before it is rotated, and rotated files kept.
    access_log_max_bytes: int = 10 * 1_048_576
    access_log_backups: int = 5
    #: Where the serving process keeps the workers' metric files (prometheus_client
    #: multiprocess mode); None: each worker serves its own counts (``bios_ws.server.metrics``).
    metrics_dir: Path | None = None


#: ``ServerOptions.access_log`` for standard error (`vbios serve --access-log -`).
ACCESS_LOG_STDERR = "-"


def parse_bind(bind: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6HOST]:PORT`` -> (host, port); ValueError when malformed.

    Port 0 asks the kernel for a free port when the server binds."""
    host, sep, port_text = bind.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT, not {bind!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 <= port < 65536:
        raise ValueError(f"port out of range in {bind!r}")
    return host, port


def bind_listener(bind: str) -> socket.socket:
    """A TCP socket bound to ``bind`` (SO_REUSEADDR), and
    listening; PortInUse if the address is taken. Port 0 takes a port from the kernel:
    ``bound_address`` tells which. The socket is handed over to the server as is, so
    nobody can take the port between this check and serving (a bound socket that does
    not listen yet could still be shared by another SO_REUSEADDR bind). Connections made
    before the server accepts wait in the backlog. TCP_NODELAY is set here, before
    ``listen``: every connection inherits it from the listener when the kernel creates
    it, so one that waited in the backlog before the server set it on the listener
    would otherwise keep Nagle's algorithm and wait for a delayed
    ACK (40 ms) at every response written in two parts."""
    host, port = parse_bind(bind)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PortInUse(f"cannot resolve {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"{host}:{port} is in use") from None
        raise PortInUse(f"cannot bind {host}:{port}: {exc.strerror}") from None
    listener.set_inheritable(True)
    return listener


def bound_address(listener: socket.socket) -> str:
    """The ``HOST:PORT`` a listener from ``bind_listener`` is bound to."""
    host, port = listener.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_url(bind: str) -> str:
    """The https URL clients use for ``bind`` (a wildcard address shows as loopback)."""
    host, port = parse_bind(bind)
    if host == "0.0.0.0":  # noqa: S104 - only a display name for the URL
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}/"
