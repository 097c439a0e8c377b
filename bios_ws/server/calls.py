"""One call as the front saw it, with what only the application knows of it.

The front reads a request, has the application answer it and writes the answer; it
knows the times, the sizes, the status and the peer's address. Who called, which
operation and which fault only the application knows: it tells the front through the
request's ``CallNote`` (at ``environ[CALL_NOTE_KEY]``), which ``NotingApp`` fills from
the environ once the application answered: the principal ``PeerIdentity``
authenticated, the operation and the fault code the SOAP guard noted
(``OPERATION_ENVIRON_KEY``, ``FAULT_ENVIRON_KEY``). A request the application runs
twice (on the loop, then on a pool thread; or again after a parked wait) is noted by
its last run. ``NotingApp`` also hands the application the worker's metrics
(``METRICS_ENVIRON_KEY``) for ``GET /metrics``.

Every label here is bounded: operations are the contract's (or a few fixed routes),
outcomes are fault codes or an HTTP status. Nothing a caller sends is copied but what
the contract accepted as an operation name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bios_ws.domain.principal import Principal, Role
from bios_ws.server.identity import CA_PATH, StartResponse, WSGIApp, peer_certificate_der
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY, REFUSAL_ENVIRON_KEY
from bios_ws.soap.guard import FAULT_ENVIRON_KEY, OPERATION_ENVIRON_KEY

if TYPE_CHECKING:
    from bios_ws.server.metrics import ServerMetrics

#: Where the front puts the request's ``CallNote``.
CALL_NOTE_KEY = "vbios.call_note"
#: Where the front puts the worker's metrics (``bios_ws.server.metrics.ServerMetrics``).
METRICS_ENVIRON_KEY = "vbios.metrics"
#: The operation of a request that named none the contract knows.
NO_OPERATION = "-"
#: Principals that are no authenticated identity.
ANONYMOUS = "anonymous"
REFUSED = "refused"
#: Characters of a principal's subject kept (certificate common names are ours, but long).
_MAX_SUBJECT = 64


@dataclass(slots=True)
class CallNote:
    """What the application tells the front about one call."""

    principal: str = ANONYMOUS
    operation: str = NO_OPERATION
    fault: str | None = None

    def read(self, environ: dict[str, Any]) -> None:
        self.principal = principal_label(environ)
        operation = environ.get(OPERATION_ENVIRON_KEY)
        self.operation = operation if isinstance(operation, str) else route_of(environ)
        fault = environ.get(FAULT_ENVIRON_KEY)
        self.fault = fault if isinstance(fault, str) else None


@dataclass(frozen=True, slots=True)
class Call:
    """One answered request."""

    #: Seconds since the epoch when its head was received, and how long until its answer
    #: was ready to be written (the write itself is bounded by ``Bounds.write_timeout``).
    started: float
    duration: float
    peer: str
    principal: str
    operation: str
    #: ``ok``, the fault code answered, or ``http_STATUS`` for another refusal.
    outcome: str
    status: int
    request_bytes: int
    response_bytes: int


#: What a worker does with each call it answered.
RecordCall = Callable[[Call], None]


def outcome_of(status: int, fault: str | None) -> str:
    if fault is not None:
        return fault
    return "ok" if status < 400 else f"http_{status}"


def principal_label(environ: dict[str, Any]) -> str:
    """``guest:DOMAIN``, ``host:HOST for guest:DOMAIN`` (a host speaking for a guest),
    ``admin:SUBJECT``, ``anonymous`` (no certificate) or ``refused`` (a certificate that
    names no identity that counts, or is revoked)."""
    principal = environ.get(PRINCIPAL_ENVIRON_KEY)
    if isinstance(principal, Principal):
        if principal.role is Role.GUEST:
            return str(principal)
        if principal.role is Role.ADMIN:
            return f"admin:{principal.subject[:_MAX_SUBJECT]}"
    if environ.get(REFUSAL_ENVIRON_KEY) is not None or peer_certificate_der(environ):
        return REFUSED
    return ANONYMOUS


def route_of(environ: dict[str, Any]) -> str:
    """The name of a request that is no SOAP operation: one of a few fixed ones."""
    if str(environ.get("QUERY_STRING", "")).lower() == "wsdl":
        return "wsdl"
    if environ.get("PATH_INFO") == CA_PATH:
        return "ca.pem"
    return NO_OPERATION


class NotingApp:
    """WSGI middleware of the front: gives the application the worker's metrics and reads
    back the call's note once it answered."""

    def __init__(self, app: WSGIApp, metrics: ServerMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        if self.metrics is not None:
            environ[METRICS_ENVIRON_KEY] = self.metrics
        result = self.app(environ, start_response)
        note = environ.get(CALL_NOTE_KEY)
        if isinstance(note, CallNote):
            note.read(environ)
        return result
