"""The remote's side of the host protocol (``server.host_protocol``): WSGI middleware
inside ``PeerIdentity``, beside the SOAP endpoint, as ``/metrics`` is.

A request whose path ends in ``/host/v1/<call>`` is answered here; every other goes on
to ``app``. Only a host speaking for a domain it was granted may call
(``Principal.via_host``: ``PeerIdentity`` checked the host certificate, the
``X-Vbios-On-Behalf-Of`` header and the grant). Anyone else gets ``403`` and a short
JSON error, and is audited as other refused calls are
(``CredentialService.audit_refused``): a host refused by ``PeerIdentity`` (no grant, no
header, a bad one) as ``host:H``; a guest's own certificate or an admin's as itself. A
caller without a certificate is not audited (no identity), as elsewhere. Then: POST
only (``405``), ``application/json`` only (``415``), a body of at most
``MAX_REQUEST`` bytes (``413``), well-formed (``400``). The calls are the use case's
(``service.host_boot.HostBoot``), whose writes are audited there; ``watchdog-setting``
is the domain's platform's only (``X-Vbios-Acting-As: platform``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from bios_ws.blocking import may_block
from bios_ws.domain.principal import Principal
from bios_ws.errors import AccessDenied, InvalidRequest, RemoteUnavailable, VbiosError
from bios_ws.server import host_protocol as wire
from bios_ws.server.identity import StartResponse, WSGIApp
from bios_ws.service.host_boot import HostBoot
from bios_ws.soap.app import (
    AUDITED_REFUSAL_ENVIRON_KEY,
    PRINCIPAL_ENVIRON_KEY,
    REFUSAL_ENVIRON_KEY,
)
from bios_ws.soap.guard import FAULT_ENVIRON_KEY, OPERATION_ENVIRON_KEY, read_input

#: Audits a refused call: (principal as written, operation, domain id or None).
AuditRefused = Callable[[str, str, "str | None"], None]


class HostRoute:
    def __init__(self, app: WSGIApp, host_boot: HostBoot, *,
                 audit_refused: AuditRefused | None = None,
                 served_here: Callable[[str], bool] = lambda domain: True) -> None:
        """``served_here(D)``: whether this installation holds D's settings (False: it
        routes them onward, and the host protocol refuses D: RemoteUnavailable)."""
        self.app = app
        self._boot = host_boot
        self._audit_refused = audit_refused
        self._served_here = served_here

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        call = wire.call_of(str(environ.get("PATH_INFO", "")))
        if call is None:
            return self.app(environ, start_response)
        operation = wire.OPERATIONS[call]
        environ[OPERATION_ENVIRON_KEY] = operation
        may_block(operation)  # it reads and writes the store: on a pool thread
        principal = environ.get(PRINCIPAL_ENVIRON_KEY)
        if not isinstance(principal, Principal) or not principal.via_host:
            self._audit(environ, principal, operation)
            reason = environ.get(REFUSAL_ENVIRON_KEY)
            return _error(environ, start_response, AccessDenied(
                reason if isinstance(reason, str) else
                "only a host speaking for a domain it was granted may call the host protocol"))
        if str(environ.get("REQUEST_METHOD", "")).upper() != "POST":
            return _error(environ, start_response, InvalidRequest("POST only"),
                          HTTPStatus.METHOD_NOT_ALLOWED, ("Allow", "POST"))
        content_type = str(environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip()
        if content_type.lower() != wire.CONTENT_TYPE:
            return _error(environ, start_response,
                          InvalidRequest(f"the body must be {wire.CONTENT_TYPE}"),
                          HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        raw = str(environ.get("CONTENT_LENGTH") or "").strip()
        if not raw.isdigit():
            return _error(environ, start_response, InvalidRequest("no valid Content-Length"),
                          HTTPStatus.LENGTH_REQUIRED if not raw else HTTPStatus.BAD_REQUEST)
        if int(raw) > wire.MAX_REQUEST:
            return _error(environ, start_response, InvalidRequest(
                f"the body is larger than {wire.MAX_REQUEST} bytes"),
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        domain = str(principal.domain_id)
        try:
            if not self._served_here(domain):
                raise RemoteUnavailable(f"the settings of {domain} are not held here: this"
                                        " installation routes them to another")
            answer = self._answer(call, principal, read_input(environ, int(raw)))
        except VbiosError as error:
            return _error(environ, start_response, error)
        start_response("200 OK", _headers(answer))
        return [answer]

    def _answer(self, call: str, principal: Principal, body: bytes) -> bytes:
        if call == wire.BOOT:
            request = wire.decode_boot(body)
            done = self._boot.boot(principal, request.cause, apply=request.apply,
                                   consume_boot_next=request.consume_boot_next)
            return wire.encode_state(done.state, done.applied)
        if call == wire.STATE:
            wire.decode_state_request(body)
            return wire.encode_state(self._boot.state(principal))
        if call == wire.WATCHDOG_SETTING:
            version = self._boot.watchdog_setting(principal,
                                                  wire.decode_watchdog_setting(body))
            return wire.encode_done(str(principal.domain_id), version)
        option = wire.decode_boot_next(body)
        self._boot.boot_next_consumed(principal, option)
        state = self._boot.state(principal)
        return wire.encode_done(state.domain_id, state.version)

    def _audit(self, environ: dict[str, Any], principal: object, operation: str) -> None:
        if self._audit_refused is None:
            return
        audited = environ.get(AUDITED_REFUSAL_ENVIRON_KEY)
        if isinstance(audited, tuple) and len(audited) == 2:
            who, domain_id = audited
            self._audit_refused(str(who), operation,
                                domain_id if isinstance(domain_id, str) else None)
        elif isinstance(principal, Principal):
            self._audit_refused(str(principal), operation, principal.domain_id)


def _headers(body: bytes, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("Content-Type", wire.CONTENT_TYPE), ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"), *extra]


def _error(environ: dict[str, Any], start_response: StartResponse, error: VbiosError,
           status: HTTPStatus | None = None, *extra: tuple[str, str]) -> list[bytes]:
    environ[FAULT_ENVIRON_KEY] = error.code
    status = wire.status_of(error) if status is None else status
    body = wire.encode_error(error)
    start_response(f"{status.value} {status.phrase}", _headers(body, *extra))
    return [body]
