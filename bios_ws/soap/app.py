"""The SOAP endpoint as one WSGI callable: the guard in front of the Spyne application.

The server's TLS layer puts the caller in ``environ[PRINCIPAL_ENVIRON_KEY]``
(a ``Principal``); without one every operation is refused with AccessDenied.
``GET ?wsdl`` returns the published WSDL with this server's https address.
"""

from __future__ import annotations

import re

from bios_ws.blocking import may_block
from bios_ws.capabilities import loop_safe_operations
from bios_ws.domain.principal import Principal
from bios_ws.errors import AccessDenied
from bios_ws.service.credentials import CredentialService
from bios_ws.service.use_cases import UseCases
from bios_ws.soap.callers import anonymous_operations
from bios_ws.soap.context import Call
from bios_ws.soap.contract import contract
from bios_ws.soap.envelope import Envelope
from bios_ws.soap.guard import Environ, SoapGuard
from bios_ws.soap.types import TNS
from bios_ws.soap.wsdl import DEFAULT_ADDRESS

PRINCIPAL_ENVIRON_KEY = "vbios.principal"
#: Why the caller's certificate names no principal (set by the TLS front).
REFUSAL_ENVIRON_KEY = "vbios.identity_refused"
#: A refusal the application audits, and as whom: ``(principal, domain id or None)`` (set
#: by the TLS front beside ``REFUSAL_ENVIRON_KEY`` for a refused ``X-Vbios-On-Behalf-Of``).
AUDITED_REFUSAL_ENVIRON_KEY = "vbios.identity_refused_as"
DEFAULT_MAX_BODY_BYTES = 1_048_576

_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$")
_PATH = re.compile(r"^[A-Za-z0-9._~/\-]{0,200}$")


def create_wsgi_app(
    use_cases: UseCases, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> SoapGuard:
    """The vBIOS SOAP endpoint serving ``use_cases`` (a WSGI callable)."""
    built = contract()  # before any request: nothing is built lazily on the request path
    dispatcher = built.dispatcher
    loop_safe = {f"{{{TNS}}}{name}" for name in loop_safe_operations()}  # Clark names
    open_to_anonymous = anonymous_operations()
    unknown = loop_safe - dispatcher.operations
    if unknown:
        raise ValueError(f"loop-safe operations not in the contract: {sorted(unknown)}")

    def handle(envelope: Envelope, environ: Environ) -> bytes:
        principal = environ.get(PRINCIPAL_ENVIRON_KEY)
        if not isinstance(principal, Principal):
            refusal = environ.get(REFUSAL_ENVIRON_KEY)
            if isinstance(refusal, str):
                _audit_refusal(envelope, environ)
                raise AccessDenied(refusal)
            if envelope.operation not in open_to_anonymous:
                raise AccessDenied("the caller presented no vBIOS identity: only Enroll"
                                   " works without a client certificate")
            principal = Principal.anonymous(str(environ.get("REMOTE_ADDR", "")))
        if envelope.body.tag not in loop_safe:
            may_block(envelope.operation)  # on a worker's event loop: run on a thread
        built.validate_request(envelope.body)
        return dispatcher.dispatch(envelope, Call(principal, use_cases))

    def _audit_refusal(envelope: Envelope, environ: Environ) -> None:
        audited = environ.get(AUDITED_REFUSAL_ENVIRON_KEY)
        credentials = use_cases.find(CredentialService)
        if isinstance(audited, tuple) and credentials is not None:
            who, domain_id = audited
            may_block(envelope.operation)  # a write: on a worker's event loop, on a thread
            credentials.audit_refused(str(who), envelope.operation,
                                      domain_id if isinstance(domain_id, str) else None)

    def wsdl(environ: Environ) -> bytes:
        return built.wsdl_at(request_address(environ))

    return SoapGuard(
        handle=handle,
        operations=dispatcher.operations,
        wsdl=wsdl,
        max_body_bytes=max_body_bytes,
    )


def request_address(environ: Environ) -> str:
    """The https URL this request reached (Host header if sane, else the server's name)."""
    host = str(environ.get("HTTP_HOST", ""))
    if not _HOST.match(host):
        host = f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT', '8443')}"
        if not _HOST.match(host):
            return DEFAULT_ADDRESS
    path = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}" or "/"
    if not _PATH.match(path):
        path = "/"
    return f"https://{host}{path}"
