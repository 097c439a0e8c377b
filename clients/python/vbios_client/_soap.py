"""The private raw layer: the compiled contract (``_codec``) over one pinned mutual-TLS
``requests`` session (or, to enroll, a session that trusts the pinned CA and presents
no certificate).

Nothing from requests leaves this module: faults become ``vbios_client.exceptions``
classes, transport failures and unreadable answers ``TransportError``. Every session
sends through ``https_adapter()``; enrollment's one unverified exchange,
``fetch_ca_pem``, goes through ``http.client`` (tests replace these two).
"""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from vbios_client import _answers, _codec, _xml
from vbios_client.exceptions import TransportError

DEFAULT_TIMEOUT = 30.0
#: Where a server hands its CA certificate to a caller without a certificate.
CA_PATH = "/ca.pem"
MAX_CA_BYTES = 64 * 1024


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"the vBIOS URL must be https://HOST[:PORT]/..., not {url!r}")
    return url


def check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def https_adapter() -> BaseAdapter:
    """The adapter every session of this library sends through (one small pool, no retry)."""
    return HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)


def pinned_session(cert: Path, key: Path, ca: Path) -> requests.Session:
    """A session that presents ``cert``/``key`` and trusts ``ca`` only, whatever the env says."""
    for label, path in (("certificate", cert), ("key", key), ("CA certificate", ca)):
        if not Path(path).is_file():
            raise ValueError(f"client {label} {str(path)!r} is not a readable file")
    return _session(ca, (str(cert), str(key)))


def server_session(ca: Path) -> requests.Session:
    """A session that presents no certificate (enrollment) and trusts ``ca`` only."""
    if not Path(ca).is_file():
        raise ValueError(f"CA certificate {str(ca)!r} is not a readable file")
    return _session(ca, None)


def _session(ca: Path, cert: tuple[str, str] | None) -> requests.Session:
    session = requests.Session()
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would override verify, proxies would see the traffic.
    session.trust_env = False
    session.verify = str(ca)
    session.cert = cert
    session.max_redirects = 0
    session.adapters.clear()
    session.mount("https://", https_adapter())
    return session


def fetch_ca_pem(url: str, *, timeout: float) -> bytes:
    """``GET /ca.pem`` from the server at ``url`` WITHOUT verifying its certificate.

    Only for enrollment's first contact: the caller trusts the answer only if its
    SHA-256 equals the pin of the bootstrap URI. No client certificate, no proxy, no
    redirect; the answer is bounded.
    """
    parts = urlsplit(check_url(url))
    path = parts.path.rstrip("/") + CA_PATH
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the pin decides, not the chain
    host = parts.hostname or ""
    try:
        connection = http.client.HTTPSConnection(host, parts.port or 443, context=context,
                                                 timeout=timeout)
    except ValueError as exc:
        raise TransportError(f"{url}: {exc}") from None
    try:
        connection.request("GET", path, headers={"User-Agent": "vbios-client",
                                                 "Accept": "application/x-pem-file"})
        response = connection.getresponse()
        body = response.read(MAX_CA_BYTES + 1)
    except TimeoutError:
        raise TransportError(f"{url}: no answer within {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise TransportError(f"{url}: TLS failure: {exc.reason or exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(f"{url}: cannot fetch the CA certificate: {_reason(exc)}"
                             ) from None
    finally:
        connection.close()
    if response.status != 200:
        raise TransportError(f"{url}: HTTP {response.status} for {path}")
    if len(body) > MAX_CA_BYTES:
        raise TransportError(f"{url}: the CA certificate is longer than {MAX_CA_BYTES} bytes")
    return body


class SoapChannel:
    """Calls of the contract's operations at the caller's URL; ``call`` maps every failure."""

    def __init__(self, url: str, session: requests.Session, *, timeout: float) -> None:
        self.url = check_url(url)
        self.timeout = check_timeout(timeout)
        self._session = session
        session.headers["User-Agent"] = "vbios-client"

    def call(self, operation: str, **params: Any) -> Any:
        """Call ``operation``; return its result for ``_wire`` to decode."""
        try:
            body = _codec.request(operation, params)
        except ValueError as exc:
            raise ValueError(f"{operation}: invalid request: {exc}") from None
        status, content = self._post(operation, body)
        try:
            return _answers.answer(operation, status, content)
        except _answers.NotSoap:
            raise TransportError(f"{self.url}: HTTP {status} without a SOAP answer") from None
        except _answers.UnreadableAnswer as exc:
            raise TransportError(f"{self.url}: unreadable answer to {operation} ({exc})"
                                 ) from None

    def _post(self, operation: str, body: bytes) -> tuple[int, bytes]:
        try:
            response = self._session.post(self.url, data=body, headers=_codec.headers(operation),
                                          timeout=self.timeout, stream=True,
                                          allow_redirects=False)
            try:
                return response.status_code, self._bounded(operation, response)
            finally:
                if response.raw is not None:
                    response.close()
        except requests.exceptions.Timeout:
            raise TransportError(f"{self.url}: no answer within {self.timeout:g} s") from None
        except requests.exceptions.SSLError as exc:
            raise TransportError(f"{self.url}: TLS failure: {_reason(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(f"{self.url}: cannot connect: {_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"{self.url}: {type(exc).__name__}") from None

    def _bounded(self, operation: str, response: requests.Response) -> bytes:
        """The body of ``response``, read up to ``_xml.MAX_ANSWER_BYTES`` and no further."""
        limit = _xml.MAX_ANSWER_BYTES
        too_long = TransportError(f"{self.url}: the answer to {operation} is longer than"
                                  f" {limit} bytes")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_long
        if response.raw is None:  # a response made in-process (tests' adapters)
            return response.content
        chunks, size = [], 0
        for chunk in response.iter_content(256 * 1024):
            size += len(chunk)
            if size > limit:
                raise too_long
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self._session.close()


def _reason(exc: BaseException) -> str:
    """The innermost reason of a requests error, short and without the request."""
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
