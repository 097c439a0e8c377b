"""Forwarding: a guest's call of a routed capability goes to the remote vBIOS serving it.

``Forwarder`` wraps the SOAP application, inside ``PeerIdentity`` (which set the
principal). For a guest whose domain has any route (``RoutingTable.routes_any``, read
per call from the store: ``service.routing.RouteKeeper``), it reads the request body,
finds the operation in the envelope (the one hardened parser), and, when that
operation's capability (``capabilities.operation_capabilities``) goes to a remote for
the domain, posts the body unchanged to the remote's URL over mutual TLS with this
host's credential there and ``X-Vbios-On-Behalf-Of: <domain>``. The remote's answer
(status, content type, body) is relayed as it came: values, typed faults and versions
are the remote's. Every other request goes to the local application untouched (a body
read here is handed on).

A remote that cannot be reached, refuses the handshake or the credential, closes
without an answer, or does not answer within ``timeout`` seconds gives a
``RemoteUnavailable`` fault: never a hang, never a local answer
(``server.remote_pool``: one pool of kept-alive connections per remote, and the rule
of what may be sent twice: only reads, ``capabilities.read_operations``).

The admin's calls of the admin operations that act on one domain's routed state
(``capabilities.platform_operations``: ApplyPendingAttributes, Add- and
RemoveSecureBootCertificate) are forwarded too, when the request's Domain (the operation
element's ``Domain`` child) has its capability routed: this host runs that domain's
machine, so it is the domain's platform, and it says so with ``X-Vbios-Acting-As:
platform`` beside ``X-Vbios-On-Behalf-Of: <Domain>`` (``docs/remote.md``). Only then,
never for a guest's call: a guest's call of one of these goes to the local application,
which refuses it (a guest never reaches the remote's admin operations through this
host). Without any route at all, an admin's call is not read here.

The one exception is a route with a cache (``vbios route set ... --cache SECONDS``):
its remote's answers (HTTP 200) to reads are kept in this worker's memory
(``server.answer_cache``), and while the remote is unavailable a read whose answer is
younger than the route's maximum age is answered from there, saying so: ``Age: N``
(RFC 9111) and ``X-Vbios-Cached: remote=NAME; age=N``, N the whole seconds since the
remote gave it. Writes are never cached nor answered from the cache; a write that may
have changed the domain's state (answered 200, or sent whole and unanswered) drops
that domain's cached answers here. A read the remote answers with a fault drops its
cached answer (the remote's last word is the fault).
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from lxml import etree

from bios_ws.blocking import AwaitOnLoop, may_block, running_on_event_loop
from bios_ws.domain.principal import ACTING_AS_HEADER, PLATFORM, Principal, Role, is_domain_id
from bios_ws.domain.routing import Route, RoutingTable
from bios_ws.errors import RemoteOutcomeUnknown, RemoteUnavailable, VbiosError
from bios_ws.server.answer_cache import AnswerCache, CacheKey, Hit
from bios_ws.server.remote_pool import (
    DEFAULT_TIMEOUT,
    MAX_ANSWER,
    Answer,
    RemotePool,
    RemotePools,
)
from bios_ws.server.remote_pool_async import pools_of_loop
from bios_ws.server.wsgi_call import Answer as WsgiAnswer
from bios_ws.server.wsgi_call import answer_of
from bios_ws.soap import faults
from bios_ws.soap.app import DEFAULT_MAX_BODY_BYTES, PRINCIPAL_ENVIRON_KEY
from bios_ws.soap.envelope import check_envelope
from bios_ws.soap.faults import CONTENT_TYPE, FAULT_STATUS
from bios_ws.soap.guard import (
    FAULT_ENVIRON_KEY,
    OPERATION_ENVIRON_KEY,
    read_input,
    soap11_charset,
)
from bios_ws.soap.types import TNS
from bios_ws.soap.xmlparser import parse_xml

__all__ = ["ACTING_AS", "CACHED", "DEFAULT_TIMEOUT", "MAX_ANSWER", "ON_BEHALF_OF", "Answer",
           "Forwarder", "RemotePool", "RemotePools"]
log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
#: The header naming the domain a host speaks for (the remote checks the host may).
ON_BEHALF_OF = "X-Vbios-On-Behalf-Of"
#: The header saying the host calls as the domain's platform (its one value: ``platform``).
ACTING_AS = ACTING_AS_HEADER
_DOMAIN = f"{{{TNS}}}Domain"
#: The header of an answer served from the cache: ``remote=NAME; age=N``.
CACHED = "X-Vbios-Cached"
_RELAYED = [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]


class Forwarder:
    """WSGI middleware: guest calls of routed capabilities go to their remote."""

    def __init__(self, app: WSGIApp, *, table: Callable[[], RoutingTable],
                 operations: Mapping[str, str], pools: RemotePools,
                 reads: Collection[str] = (), platform: Collection[str] = (),
                 cache: AnswerCache | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        """``operations``: each operation -> its capability's routing key; ``reads``:
        the operations that change nothing (``capabilities.read_operations``; none: no
        call is sent twice nor answered from a cache); ``platform``: the admin
        operations forwarded for a routed Domain (``capabilities.platform_operations``;
        none: every admin call stays here)."""
        self.app = app
        self._table = table
        self._clark = {f"{{{TNS}}}{name}": capability for name, capability in
                       operations.items()}
        self._reads = frozenset(reads)
        self._platform = frozenset(platform)
        self._pools = pools
        self.cache = AnswerCache() if cache is None else cache
        self._max_body = max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        principal = environ.get(PRINCIPAL_ENVIRON_KEY)
        if (not isinstance(principal, Principal)
                or str(environ.get("REQUEST_METHOD", "")).upper() != "POST"):
            return self.app(environ, start_response)
        if principal.role is Role.ADMIN:
            return self._admin(environ, start_response)
        if principal.role is not Role.GUEST or principal.domain_id is None:
            return self.app(environ, start_response)
        domain = principal.domain_id
        try:
            table = self._table()
        except VbiosError as error:  # the store: the local application would fail alike
            return _fault(environ, start_response, error)
        if not table.routes_any(domain):
            return self.app(environ, start_response)
        found = self._envelope(environ)
        if found is None:
            return self.app(environ, start_response)
        body, operation, capability, _ = found
        route = table.route_for(capability, domain)
        if route is not None and principal.via_host:
            return _fault(environ, start_response, _onward(capability, domain, route))
        if route is None or operation in self._platform:  # the admin's: refused here
            return self.app(environ, start_response)
        return self._forward(environ, start_response, table, route, operation, domain,
                             body, platform=False)

    def _admin(self, environ: dict[str, Any], start_response: StartResponse
               ) -> Iterable[bytes]:
        """The admin's call: forwarded as the platform's when it is one of the platform
        operations and its Domain's capability is routed; else the local application's."""
        if not self._platform:
            return self.app(environ, start_response)
        try:
            table = self._table()
        except VbiosError as error:
            return _fault(environ, start_response, error)
        if not table.routes:  # no route at all: the body is not even read
            return self.app(environ, start_response)
        found = self._envelope(environ)
        if found is None or found[1] not in self._platform:
            return self.app(environ, start_response)
        body, operation, capability, element = found
        domain = _domain_of(element)
        route = None if domain is None else table.route_for(capability, domain)
        if domain is None or route is None:
            return self.app(environ, start_response)  # a domain of this host's own
        return self._forward(environ, start_response, table, route, operation, domain,
                             body, platform=True)

    def _forward(self, environ: dict[str, Any], start_response: StartResponse,
                 table: RoutingTable, route: Route, operation: str, domain: str,
                 body: bytes, *, platform: bool) -> Iterable[bytes]:
        """``body`` posted to ``route``'s remote for ``domain`` (as its platform when
        ``platform``), its answer relayed; a fault or a cached answer when it has none."""
        remote = table.remotes.get(route.target)
        if remote is None:  # not kept by the store (remove refuses it): still never local
            return _fault(environ, start_response,
                          RemoteUnavailable(f"remote {route.target} is unavailable"))
        environ[OPERATION_ENVIRON_KEY] = operation
        headers = {"Content-Type": str(environ.get("CONTENT_TYPE") or CONTENT_TYPE),
                   ON_BEHALF_OF: domain}
        if platform:
            headers[ACTING_AS] = PLATFORM
        action = environ.get("HTTP_SOAPACTION")
        if action is not None:
            headers["SOAPAction"] = str(action)
        read = operation in self._reads
        key = CacheKey.of(remote.name, domain, operation, body) if read else None
        relay = functools.partial(self._relay, environ, route, remote.name, domain,
                                  operation, key)
        if running_on_event_loop():
            ready = self._pools.ready(remote)
            if ready is None:  # its credential is not loaded yet: that may wait
                may_block(f"{operation} forwarded to remote {remote.name}")
            else:
                raise AwaitOnLoop(f"{operation} forwarded to remote {remote.name}",
                                  functools.partial(_on_loop, ready, body, headers, read,
                                                    environ, relay))
        try:
            result: Answer | RemoteUnavailable = self._pools.pool(remote).post(
                body, headers, idempotent=read)
        except RemoteUnavailable as error:
            result = error
        return relay(start_response, result)

    def _relay(self, environ: dict[str, Any], route: Route, remote: str, domain: str,
               operation: str, key: CacheKey | None, start_response: StartResponse,
               result: Answer | RemoteUnavailable) -> list[bytes]:
        """The guest's answer: the remote's, its cached one, or the fault; the cache kept
        as the answer says (a read's answer kept, a write's domain forgotten)."""
        if isinstance(result, RemoteUnavailable):
            error = result
            if key is None:
                if isinstance(error, RemoteOutcomeUnknown):  # the write may have been applied
                    self.cache.forget_domain(domain)
                return _fault(environ, start_response, error)
            hit = self._fresh(route, key)
            if hit is None:
                return _fault(environ, start_response, error)
            log.info("%s of %s answered from the cache: remote %s unavailable, answer"
                     " %d s old", operation, domain, remote, hit.age)
            return _cached(start_response, hit)
        answer = result
        if key is None:
            if answer.status == 200:
                self.cache.forget_domain(domain)
        elif answer.status == 200 and route.cache_seconds is not None:
            self.cache.put(key, answer.content_type, answer.body)
        elif answer.status != 200:
            self.cache.forget(key)
        start_response(f"{answer.status} {answer.reason}",
                       [("Content-Type", answer.content_type),
                        ("Content-Length", str(len(answer.body))), *_RELAYED])
        return [answer.body]

    def _fresh(self, route: Route, key: CacheKey) -> Hit | None:
        """The cached answer to ``key`` if ``route`` allows one of its age."""
        if route.cache_seconds is None:
            return None
        return self.cache.get(key, route.cache_seconds)

    def _envelope(self, environ: dict[str, Any]
                  ) -> tuple[bytes, str, str, etree._Element] | None:
        """The body (handed on whole to whatever answers the call) and the operation,
        capability and request element its envelope names; None when the body is not
        one to forward: the local guard answers what is wrong with it (413, 415, 400,
        its fault), the same answer the remote would give."""
        raw = str(environ.get("CONTENT_LENGTH") or "").strip()
        if (not raw.isdigit() or int(raw) > self._max_body
                or environ.get("wsgi.input") is None):
            return None
        body = read_input(environ, int(raw))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            charset = soap11_charset(environ.get("CONTENT_TYPE"))
            envelope = check_envelope(parse_xml(body, charset=charset), self._clark)
        except Exception:
            return None
        capability = self._clark.get(envelope.body.tag)
        if capability is None:
            return None
        return body, envelope.operation, capability, envelope.body


def _domain_of(element: etree._Element) -> str | None:
    """The domain id of the request element's one Domain child, or None (none, more than
    one, or no domain id: the local application answers that)."""
    found = [child for child in element if child.tag == _DOMAIN]
    if len(found) != 1 or len(found[0]) or not is_domain_id(found[0].text or ""):
        return None
    return found[0].text


def _cached(start_response: StartResponse, hit: Hit) -> list[bytes]:
    """The cached answer of ``hit``, saying it is, whose and how old."""
    answer = hit.answer
    start_response("200 OK", [("Content-Type", answer.content_type),
                              ("Content-Length", str(len(answer.body))), *_RELAYED,
                              ("Age", str(hit.age)),
                              (CACHED, f"remote={answer.remote}; age={hit.age}")])
    return [answer.body]


def _onward(capability: str, domain: str, route: Route) -> RemoteUnavailable:
    """A call a host forwarded here, of a capability this installation routes onward: it
    is not forwarded again (a chain would audit this host for the guest, losing the
    first, and no grant here covers the next hop)."""
    log.warning("a forwarded call of %s's %s refused: routed onward to remote %s",
                domain, capability, route.target)
    return RemoteUnavailable(f"{capability} of {domain} is not served here: this"
                             " installation routes it to another (a forwarded call is not"
                             " forwarded again)")


def _fault(environ: dict[str, Any], start_response: StartResponse, error: VbiosError
           ) -> list[bytes]:
    """``error`` as the SOAP fault the guard would answer (HTTP 500)."""
    environ[FAULT_ENVIRON_KEY] = error.code
    data = faults.render_error(error)
    start_response(f"{FAULT_STATUS} Internal Server Error",
                   [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data))),
                    *_RELAYED])
    return [data]


async def _on_loop(pool: RemotePool, body: bytes, headers: Mapping[str, str], read: bool,
                   environ: dict[str, Any],
                   relay: Callable[[StartResponse, Answer | RemoteUnavailable], list[bytes]]
                   ) -> WsgiAnswer:
    """A routed call's round trip made by the worker's event loop (no thread), relayed
    as on a thread."""
    try:
        result: Answer | RemoteUnavailable = await pools_of_loop().pool(pool).post(
            body, headers, idempotent=read)
    except RemoteUnavailable as error:
        result = error
    return answer_of(environ, lambda start_response: relay(start_response, result))
