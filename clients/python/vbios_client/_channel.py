"""SoapChannel: an operation's request written from the contract (``_codec``), posted by a
sender, its answer read back (``_answers``).

A sender posts bytes over mutual TLS and maps its own failures to ``TransportError``
with the same texts whichever it is: ``_https.HttpsSender`` (the library's: a pool of
keep-alive TLS connections speaking its own strict HTTP/1.1, shared by threads) or
``_soap.RequestsSender`` (a requests session: enrollment's, and the in-process
adapters of tests). This module
imports neither requests nor lxml until a call needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from vbios_client.exceptions import TransportError

if TYPE_CHECKING:
    from vbios_client.models import CachedAnswer

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "vbios-client"


class Sender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
             operation: str) -> tuple[int, bytes]:
        """POST ``body``; the HTTP status and the answer's body (bounded in size)."""

    def close(self) -> None: ...


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"the vBIOS URL must be https://HOST[:PORT]/..., not {url!r}")
    return url


def check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def check_client_files(cert: Path, key: Path, ca: Path) -> None:
    """ValueError unless the certificate, key and CA files are there."""
    for label, path in (("certificate", cert), ("key", key), ("CA certificate", ca)):
        if not Path(path).is_file():
            raise ValueError(f"client {label} {str(path)!r} is not a readable file")


def too_long(url: str, operation: str, limit: int) -> TransportError:
    return TransportError(f"{url}: the answer to {operation} is longer than {limit} bytes")


class SoapChannel:
    """Calls of the contract's operations at the caller's URL; ``call`` maps every failure."""

    def __init__(self, url: str, sender: Sender, *, timeout: float) -> None:
        self.url = check_url(url)
        self.timeout = check_timeout(timeout)
        self.sender = sender

    def call(self, operation: str, *, timeout: float | None = None, **params: Any) -> Any:
        """Call ``operation``; return its result for ``_wire`` to decode. ``timeout``: this
        call's, instead of the channel's (a long poll waits on the server's side)."""
        from vbios_client import _answers, _codec

        try:
            body = _codec.request(operation, params)
        except ValueError as exc:
            raise ValueError(f"{operation}: invalid request: {exc}") from None
        status, content = self.sender.post(self.url, body, _codec.headers(operation),
                                           timeout=timeout or self.timeout,
                                           operation=operation)
        try:
            return _answers.answer(operation, status, content)
        except _answers.NotSoap:
            raise TransportError(f"{self.url}: HTTP {status} without a SOAP answer") from None
        except _answers.UnreadableAnswer as exc:
            raise TransportError(f"{self.url}: unreadable answer to {operation} ({exc})"
                                 ) from None

    def last_cached(self) -> CachedAnswer | None:
        """The cache note of the calling thread's last answer (a sender that keeps none:
        None)."""
        noted = getattr(self.sender, "last_cached", None)
        return None if noted is None else noted()

    def close(self) -> None:
        self.sender.close()


def reason(exc: BaseException) -> str:
    """The innermost reason of a transport error, short and without the request."""
    inner: BaseException = exc
    seen = 0
    while seen < 8:
        nested = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        nested = nested or getattr(inner, "reason", None)
        if not isinstance(nested, BaseException):
            break
        inner, seen = nested, seen + 1
    text = str(inner) or type(inner).__name__
    if "[Errno" in text:  # urllib3 prefixes the connection's repr
        text = text[text.index("[Errno"):]
    return text[:300]
