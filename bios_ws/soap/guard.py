"""The hardened WSGI front of the SOAP endpoint.

Every request gets a SOAP 1.1 answer in ``text/xml``: a response (200), or a
fault with HTTP 500 (WS-I R1126) or the 4xx status HTTP asks for:

    method not POST (GET ?wsdl aside)      405, Allow: POST       (R1132, R1114)
    Content-Type not text/xml              415                    (R1115)
    Content-Length invalid                 400
    body larger than max_body_bytes        413
    not well-formed, DOCTYPE, PI, depth,
    encoding or charset mismatch           500 Client fault       (R1008, R1009, R1012)
    envelope checks (see ``envelope``)     500 VersionMismatch / MustUnderstand / Client
    anything unexpected                    500 Server fault with a correlation id

The body is read once, bounded, and parsed once; the parsed envelope goes to
the handler as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from bios_ws.errors import InvalidRequest, VbiosError
from bios_ws.soap import faults
from bios_ws.soap.envelope import Envelope, check_envelope
from bios_ws.soap.faults import CONTENT_TYPE, FAULT_STATUS, EnvelopeFault
from bios_ws.soap.xmlparser import parse_xml

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Handler = Callable[[Envelope, Environ], bytes]
WsdlSource = Callable[[Environ], bytes]

_READ_CHUNK = 65536
_LAST_RESORT = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n"
    b'<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soap11env:Body><soap11env:Fault><faultcode>soap11env:Server</faultcode>"
    b"<faultstring>internal error</faultstring></soap11env:Fault></soap11env:Body>"
    b"</soap11env:Envelope>"
)
_COMMON_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))
#: What the guard notes in the environ for the front's metrics and access log
#: (``bios_ws.server.calls``): the operation the envelope named (one of the contract's)
#: and the code of the fault answered.
OPERATION_ENVIRON_KEY = "vbios.operation"
FAULT_ENVIRON_KEY = "vbios.fault"


class HttpRefusal(Exception):
    """A refusal at the HTTP level: its status, and the error in the fault body."""

    def __init__(
        self, status: HTTPStatus, error: VbiosError, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = headers


class SoapGuard:
    """WSGI callable: checks the HTTP request and the envelope, then calls ``handle``."""

    def __init__(
        self,
        *,
        handle: Handler,
        operations: frozenset[str],
        wsdl: WsdlSource,
        max_body_bytes: int,
    ) -> None:
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        self._handle = handle
        self._operations = operations
        self._wsdl = wsdl
        self._max_body_bytes = max_body_bytes

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        extra: tuple[tuple[str, str], ...] = ()
        try:
            status, body = self._respond(environ)
        except HttpRefusal as refusal:
            status, body, extra = refusal.status, _render(refusal.error), refusal.headers
            environ[FAULT_ENVIRON_KEY] = refusal.error.code
        except EnvelopeFault as fault:
            status, body = HTTPStatus(FAULT_STATUS), faults.render_envelope_fault(fault)
            environ[FAULT_ENVIRON_KEY] = fault.code
        except Exception as exc:
            error = faults.error_for(exc)
            status, body = HTTPStatus(FAULT_STATUS), _render(error)
            environ[FAULT_ENVIRON_KEY] = error.code
        headers = [
            ("Content-Type", CONTENT_TYPE),
            ("Content-Length", str(len(body))),
            *_COMMON_HEADERS,
            *extra,
        ]
        start_response(f"{status.value} {status.phrase}", headers)
        return [body]

    def _respond(self, environ: Environ) -> tuple[HTTPStatus, bytes]:
        method = str(environ.get("REQUEST_METHOD", "")).upper()
        if method == "GET" and str(environ.get("QUERY_STRING", "")).lower() == "wsdl":
            return HTTPStatus.OK, self._wsdl(environ)
        if method != "POST":
            raise HttpRefusal(
                HTTPStatus.METHOD_NOT_ALLOWED,
                InvalidRequest("SOAP requests use POST (GET ?wsdl gives the contract)"),
                (("Allow", "POST"),),
            )
        charset = soap11_charset(environ.get("CONTENT_TYPE"))
        data = self._read_body(environ)
        envelope = check_envelope(parse_xml(data, charset=charset), self._operations)
        environ[OPERATION_ENVIRON_KEY] = envelope.operation
        return HTTPStatus.OK, self._handle(envelope, environ)

    def _read_body(self, environ: Environ) -> bytes:
        limit = self._max_body_bytes
        raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
        if raw_length:
            if not raw_length.isdigit():
                raise HttpRefusal(
                    HTTPStatus.BAD_REQUEST, InvalidRequest("invalid Content-Length")
                )
            length = int(raw_length)
            if length > limit:
                raise _too_large(limit)
        else:
            length = limit + 1
        data = read_input(environ, length)
        if len(data) > limit:
            raise _too_large(limit)
        return data


def read_input(environ: Environ, length: int) -> bytes:
    """Up to ``length`` bytes of the request body (fewer when it ends first); b"" without
    an input stream. Read in bounded chunks: a client's claim is never one allocation."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    chunks: list[bytes] = []
    received = 0
    while received < length:
        chunk = stream.read(min(_READ_CHUNK, length - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def soap11_charset(content_type: object) -> str | None:
    """The charset parameter of a ``text/xml`` content type; 415 for anything else."""
    media_type, _, params = str(content_type or "").partition(";")
    if media_type.strip().lower() != "text/xml":
        raise HttpRefusal(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            InvalidRequest("SOAP 1.1 requests are sent as text/xml"),
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"')
    return None


def http_refusal(status: int, message: str) -> tuple[list[tuple[str, str]], bytes]:
    """A refusal the HTTP front makes before the application sees the request (413, 431,
    400), as the SOAP fault the application would answer: (headers, body)."""
    return [("Content-Type", CONTENT_TYPE), *_COMMON_HEADERS], _render(InvalidRequest(message))


def _too_large(limit: int) -> HttpRefusal:
    return HttpRefusal(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        InvalidRequest(f"the request body is larger than {limit} bytes"),
    )


def _render(error: VbiosError) -> bytes:
    try:
        return faults.render_error(error)
    except Exception as exc:
        faults.internal_error(exc)
        return _LAST_RESORT
