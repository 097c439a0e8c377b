"""The one place where a TLS peer certificate becomes a ``Principal``.

``PeerIdentity`` wraps the SOAP application. For every request it reads the
certificate the TLS layer verified (``environ[SOCKET_ENVIRON_KEY]``, in DER),
checks that it is a client leaf (not a CA, digitalSignature, clientAuth), turns
its SAN URIs into a principal (``Principal.from_san_uris``) and asks the
credential registry whether that certificate still counts (recorded, not
revoked or expired, the current incarnation of its domain). Only then is the
principal put at ``environ[PRINCIPAL_ENVIRON_KEY]``; otherwise the reason goes
to ``environ[REFUSAL_ENVIRON_KEY]`` and the SOAP application answers
``AccessDenied`` with it. A request on a kept-alive connection whose
certificate the CRL revoked since its handshake is answered 403 and the
connection closed: it never reaches the application. A caller without a
certificate gets the CA certificate (``GET /ca.pem``, to check against the
fingerprint of its bootstrap URI) and may call ``Enroll``; nothing else.

A host certificate (another installation's, ``docs/remote.md``) becomes a principal only
with the request's ``X-Vbios-On-Behalf-Of: D`` header: D's guest via that host
(``Principal.on_behalf_of``), which counts when the registry grants the host D; with
``X-Vbios-Acting-As: platform`` too, D's platform via that host (the admin operations on
D's routed state, ``docs/remote.md``). A refused header (the marker on any other
certificate, or without the domain), or a host refused for D, is audited by the
application (``AUDITED_REFUSAL_ENVIRON_KEY``) as other refused calls are.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bios_ws.domain.principal import Principal
from bios_ws.errors import AccessDenied
from bios_ws.soap.app import (
    AUDITED_REFUSAL_ENVIRON_KEY,
    PRINCIPAL_ENVIRON_KEY,
    REFUSAL_ENVIRON_KEY,
)

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
#: Raises AccessDenied unless the certificate a principal presented still counts.
Authenticate = Callable[[Principal], None]

#: Where the front puts the connection's verified certificate (``getpeercert`` as on an
#: ``ssl.SSLSocket``).
SOCKET_ENVIRON_KEY = "vbios.peer_certificate"
#: Where a caller without a certificate fetches the CA certificate it pins.
CA_PATH = "/ca.pem"
#: The WSGI name of the ``X-Vbios-On-Behalf-Of`` header (repeated: its values joined by
#: commas, as ``server.wsgi_call`` and PEP 3333 join them).
ON_BEHALF_OF_ENVIRON_KEY = "HTTP_X_VBIOS_ON_BEHALF_OF"
#: The WSGI name of the ``X-Vbios-Acting-As`` header (``platform``: the domain's platform).
ACTING_AS_ENVIRON_KEY = "HTTP_X_VBIOS_ACTING_AS"
_REVOKED_BODY = b"client certificate revoked\n"


class Revocations(Protocol):
    def is_revoked(self, serial: int) -> bool: ...


def peer_certificate_der(environ: Mapping[str, Any]) -> bytes | None:
    """The DER of the verified client certificate of this request's connection, if any."""
    sock = environ.get(SOCKET_ENVIRON_KEY)
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        der = getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    return der if isinstance(der, bytes) and der else None


def leaf_refusal(cert: x509.Certificate) -> str | None:
    """Why ``cert`` is no client leaf certificate, or None."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            return "a CA certificate is not a client certificate"
    except x509.ExtensionNotFound:
        pass
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "the client certificate has no key usage"
    if not usage.digital_signature:
        return "the client certificate's key usage lacks digitalSignature"
    try:
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "the client certificate has no extended key usage"
    if ExtendedKeyUsageOID.CLIENT_AUTH not in extended:
        return "the client certificate is not for client authentication"
    return None


@functools.lru_cache(maxsize=4096)
def identity_of(der: bytes) -> Principal | str:
    """The principal a client certificate names, or why it names none (cached by DER:
    a kept-alive connection presents the same certificate on every request)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return "the client certificate cannot be parsed"
    reason = leaf_refusal(cert)
    if reason is not None:
        return reason
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    subject = str(names[0].value) if names else (uris[0] if uris else "")
    try:
        return Principal.from_san_uris(uris, subject, cert.serial_number)
    except AccessDenied as exc:
        return exc.message


class PeerIdentity:
    """WSGI middleware: sets ``environ[PRINCIPAL_ENVIRON_KEY]`` from the peer certificate."""

    def __init__(self, app: WSGIApp, *, authenticate: Authenticate | None = None,
                 revocations: Revocations | None = None, ca_pem: bytes | None = None) -> None:
        self.app = app
        self._authenticate = authenticate
        self._revocations = revocations
        self._ca_pem = ca_pem

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ.pop(PRINCIPAL_ENVIRON_KEY, None)
        environ.pop(REFUSAL_ENVIRON_KEY, None)
        environ.pop(AUDITED_REFUSAL_ENVIRON_KEY, None)
        der = peer_certificate_der(environ)
        if der is None and self._ca_pem is not None and environ.get("PATH_INFO") == CA_PATH \
                and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", [("Content-Type", "application/x-pem-file"),
                                      ("Content-Length", str(len(self._ca_pem))),
                                      ("Cache-Control", "no-store")])
            return [self._ca_pem]
        identity = None if der is None else identity_of(der)
        if isinstance(identity, Principal):
            serial = identity.serial
            if (self._revocations is not None and serial is not None
                    and self._revocations.is_revoked(serial)):
                log.info("request on a connection of revoked certificate %X refused", serial)
                start_response("403 Forbidden", [("Content-Type", "text/plain"),
                                                 ("Content-Length", str(len(_REVOKED_BODY))),
                                                 ("Connection", "close")])
                return [_REVOKED_BODY]
            identity = self._speaking(identity, environ)
        elif der is None and (environ.get(ON_BEHALF_OF_ENVIRON_KEY) is not None
                              or environ.get(ACTING_AS_ENVIRON_KEY) is not None):
            identity = "only a host certificate may speak on behalf of a domain"
        if isinstance(identity, Principal):
            environ[PRINCIPAL_ENVIRON_KEY] = identity
        elif isinstance(identity, str):
            log.info("client certificate refused: %s", identity)
            environ[REFUSAL_ENVIRON_KEY] = identity
        return self.app(environ, start_response)

    def _speaking(self, certified: Principal, environ: dict[str, Any]) -> Principal | str:
        """The caller the certificate's principal and the request's header make, checked
        against the registry; a refused header or host is noted for the audit."""
        header = environ.get(ON_BEHALF_OF_ENVIRON_KEY)
        header = header if isinstance(header, str) else None
        acting_as = environ.get(ACTING_AS_ENVIRON_KEY)
        acting_as = acting_as if isinstance(acting_as, str) else None
        try:
            principal = certified.on_behalf_of(header, acting_as)
        except AccessDenied as exc:
            environ[AUDITED_REFUSAL_ENVIRON_KEY] = (str(certified), header)
            return exc.message
        checked = self._checked(principal)
        if isinstance(checked, str) and principal.via_host:
            environ[AUDITED_REFUSAL_ENVIRON_KEY] = (str(certified), principal.domain_id)
        return checked

    def _checked(self, principal: Principal) -> Principal | str:
        if self._authenticate is None:
            return principal
        try:
            self._authenticate(principal)
        except AccessDenied as exc:
            return exc.message
        return principal
