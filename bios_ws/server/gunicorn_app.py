"""Run the vBIOS under gunicorn (gthread workers) over mutual TLS.

The listening socket is bound before (``options.bind_listener``) and handed
to gunicorn by its file descriptor. The TLS context is built once, before the
workers fork, from the encrypted server key; gunicorn's ``ssl_context`` hook
hands that same context to every connection. ``certfile`` only tells gunicorn
that TLS is on: it points at the server *certificate*; no clear key is ever
written. The WSGI application is built in each worker after the fork (no
database connection crosses a fork).
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from bios_ws.server.identity import PeerIdentity, WSGIApp
from bios_ws.server.options import ServerOptions

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
        context: ssl.SSLContext,
        server_cert: Path,
        options: ServerOptions,
        listener: socket.socket,
    ) -> None:
        self._app_factory = app_factory
        self._listener = listener
        self._context = context
        self._server_cert = server_cert
        self._options = options
        super().__init__(usage=None, prog="vbios")

    def settings(self) -> dict[str, Any]:
        opts = self._options
        context = self._context

        def ssl_context(conf: Any, default_factory: Any) -> ssl.SSLContext:
            return context

        return {
            "bind": [f"fd://{self._listener.fileno()}"],
            "worker_class": "gthread",
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


def identity_wrapped(app: WSGIApp) -> WSGIApp:
    """The SOAP application behind the peer-certificate middleware."""
    return PeerIdentity(app)


def run_server(
    app_factory: Callable[[], WSGIApp],
    context: ssl.SSLContext,
    server_cert: Path,
    options: ServerOptions,
    listener: socket.socket,
) -> None:
    """Serve on ``listener`` in the foreground until SIGTERM/SIGINT (gunicorn exits the
    process)."""
    VbiosServer(app_factory, context, server_cert, options, listener).run()
