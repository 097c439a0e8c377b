"""The one place where a TLS peer certificate becomes a ``Principal``.

``PeerIdentity`` wraps the SOAP application. For every request it reads the
certificate the TLS layer verified (``environ["gunicorn.socket"]``), turns its
SAN URIs into a principal with ``Principal.from_san_uris`` and stores it at
``environ[PRINCIPAL_ENVIRON_KEY]``. A request without a usable identity gets no
principal; the SOAP application then answers ``AccessDenied``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bios_ws.domain.principal import Principal
from bios_ws.errors import AccessDenied
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: The dict form of ``ssl.SSLSocket.getpeercert()``.
PeerCert = Mapping[str, Any]

SOCKET_ENVIRON_KEY = "gunicorn.socket"


def peer_certificate(environ: Mapping[str, Any]) -> PeerCert | None:
    """The verified client certificate of this request's connection, if any."""
    sock = environ.get(SOCKET_ENVIRON_KEY)
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        cert = getpeercert()
    except (OSError, ValueError):
        return None
    return cert if isinstance(cert, Mapping) and cert else None


def san_uris(cert: PeerCert) -> list[str]:
    return [
        value
        for kind, value in cert.get("subjectAltName", ())
        if kind == "URI" and isinstance(value, str)
    ]


def common_name(cert: PeerCert) -> str:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and isinstance(value, str):
                return value
    return ""


def principal_from_certificate(cert: PeerCert | None) -> Principal | None:
    """The principal a certificate names, or None when it names no single identity."""
    if not cert:
        return None
    uris = san_uris(cert)
    subject = common_name(cert) or (uris[0] if uris else "")
    try:
        return Principal.from_san_uris(uris, subject)
    except AccessDenied as exc:
        log.info("client certificate refused: %s", exc.message)
        return None


class PeerIdentity:
    """WSGI middleware: sets ``environ[PRINCIPAL_ENVIRON_KEY]`` from the peer certificate."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ.pop(PRINCIPAL_ENVIRON_KEY, None)
        principal = principal_from_certificate(peer_certificate(environ))
        if principal is not None:
            environ[PRINCIPAL_ENVIRON_KEY] = principal
        return self.app(environ, start_response)
