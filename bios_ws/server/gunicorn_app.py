"""Run the vBIOS under gunicorn (gthread workers) over mutual TLS.

The listening socket is bound before (``options.bind_listener``) and handed
to gunicorn by its file descriptor. The TLS contexts come from ``ServerTls``,
made before the workers fork from the encrypted server key: gunicorn's
``ssl_context`` hook asks it for every connection, so a CRL published since
applies from the next handshake. ``certfile`` only tells gunicorn that TLS is
on: it points at the server *certificate*; no clear key is ever written. The
worker (``revocation_aware_worker``) also closes kept-alive connections whose
certificate was revoked since their handshake, within a second. The WSGI
application is built in each worker after the fork (no database connection
crosses a fork).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from bios_ws.domain.principal import Principal
from bios_ws.server.identity import WSGIApp, identity_of
from bios_ws.server.options import ServerOptions
from bios_ws.server.tls import ServerTls

#: Loggers of libraries that may log whole request bodies: silenced.
QUIET_LOGGERS = ("spyne",)


def configure_logging(level: str = "INFO") -> None:
    """Log lines on stderr; library loggers that could print request bodies stay silent."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


class VbiosServer(BaseApplication):  # type: ignore[misc]
    """gunicorn's application: settings from ``ServerOptions``, never from the environment."""

    def __init__(
        self,
        app_factory: Callable[[], WSGIApp],
        tls: ServerTls,
        server_cert: Path,
        options: ServerOptions,
        listener: socket.socket,
    ) -> None:
        self._app_factory = app_factory
        self._listener = listener
        self._tls = tls
        self._server_cert = server_cert
        self._options = options
        super().__init__(usage=None, prog="vbios")

    def settings(self) -> dict[str, Any]:
        opts = self._options
        tls = self._tls

        def ssl_context(conf: Any, default_factory: Any) -> ssl.SSLContext:
            return tls.context()

        return {
            "bind": [f"fd://{self._listener.fileno()}"],
            "worker_class": revocation_aware_worker(tls),
            "workers": opts.workers,
            "threads": opts.threads,
            "keepalive": opts.keepalive,
            "timeout": opts.timeout,
            "graceful_timeout": opts.graceful_timeout,
            "certfile": str(self._server_cert),
            "ssl_context": ssl_context,
            "http_protocols": "h1",
            "control_socket_disable": True,
            "limit_request_line": 4094,
            "limit_request_fields": 50,
            "limit_request_field_size": 8190,
            "forwarded_allow_ips": "",
            "secure_scheme_headers": {},
            "proxy_protocol": "off",
            "accesslog": opts.access_log,
            "access_log_format": '%(h)s "%(r)s" %(s)s %(B)s %(M)sms',
            "errorlog": "-",
            "loglevel": opts.log_level,
            "proc_name": "vbios",
            "preload_app": False,
            "sendfile": False,
        }

    def load_config(self) -> None:
        for key, value in self.settings().items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        return self._app_factory()


def peer_serial(sock: Any) -> int | None:
    """The serial of the client certificate a TLS connection presented, if any."""
    try:
        der = sock.getpeercert(binary_form=True)
    except (OSError, ValueError, AttributeError):
        return None
    if not der:
        return None
    identity = identity_of(der)
    return identity.serial if isinstance(identity, Principal) else None


def revocation_aware_worker(tls: ServerTls) -> type[Any]:
    """gunicorn's gthread worker that also closes kept-alive connections whose
    certificate ``tls`` now revokes (its loop runs this at least once a second)."""
    from gunicorn.workers.gthread import ThreadWorker

    class RevocationAwareWorker(ThreadWorker):  # type: ignore[misc]
        def murder_keepalived(self, force: bool = False) -> None:
            super().murder_keepalived(force)
            for conn in list(self.keepalived_conns):
                serial = peer_serial(conn.sock)
                if serial is None or not tls.is_revoked(serial):
                    continue
                self.keepalived_conns.remove(conn)
                with contextlib.suppress(OSError, KeyError, ValueError):
                    self.poller.unregister(conn.sock)  # unless already unregistered
                self.nr_conns -= 1
                conn.close()
                logging.getLogger(__name__).info(
                    "closed a kept-alive connection of revoked certificate %X", serial)

    return RevocationAwareWorker


def run_server(
    app_factory: Callable[[], WSGIApp],
    tls: ServerTls,
    server_cert: Path,
    options: ServerOptions,
    listener: socket.socket,
) -> None:
    """Serve on ``listener`` in the foreground until SIGTERM/SIGINT (gunicorn exits the
    process)."""
    VbiosServer(app_factory, tls, server_cert, options, listener).run()
