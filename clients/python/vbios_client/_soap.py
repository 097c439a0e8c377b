"""The requests sender: enrollment's session, which trusts the pinned CA and presents
no certificate, and the sessions tests hand ``BiosClient._over_session`` or mount
in-process adapters on (``pinned_session``). A client's own calls go through
``_https.HttpsSender`` instead.

Nothing from requests leaves this module: transport failures become
``TransportError``. Every session sends through ``https_adapter()``; enrollment's one
unverified exchange, ``fetch_ca_pem``, goes through ``http.client`` (tests replace
these two).
"""

from __future__ import annotations

import http.client
import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from vbios_client import _xml
from vbios_client._channel import (
    USER_AGENT,
    check_client_files,
    check_url,
    reason,
    too_long,
)
from vbios_client.exceptions import TransportError
from vbios_client.models import CachedAnswer, cached_answer

#: Where a server hands its CA certificate to a caller without a certificate.
CA_PATH = "/ca.pem"
MAX_CA_BYTES = 64 * 1024


def https_adapter() -> BaseAdapter:
    """The adapter every session of this library sends through (one small pool, no retry)."""
    return HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)


def pinned_session(cert: Path, key: Path, ca: Path) -> requests.Session:
    """A session that presents ``cert``/``key`` and trusts ``ca`` only, whatever the env says."""
    check_client_files(cert, key, ca)
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
        connection.request("GET", path, headers={"User-Agent": USER_AGENT,
                                                 "Accept": "application/x-pem-file"})
        response = connection.getresponse()
        body = response.read(MAX_CA_BYTES + 1)
    except TimeoutError:
        raise TransportError(f"{url}: no answer within {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise TransportError(f"{url}: TLS failure: {exc.reason or exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(f"{url}: cannot fetch the CA certificate: {reason(exc)}"
                             ) from None
    finally:
        connection.close()
    if response.status != 200:
        raise TransportError(f"{url}: HTTP {response.status} for {path}")
    if len(body) > MAX_CA_BYTES:
        raise TransportError(f"{url}: the CA certificate is longer than {MAX_CA_BYTES} bytes")
    return body


class RequestsSender:
    """Posts through a requests session (pooled connections, safe to share by threads)."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        session.headers["User-Agent"] = USER_AGENT
        self._noted = threading.local()  # each thread's last answer's cache note

    def last_cached(self) -> CachedAnswer | None:
        """Whether the calling thread's last answer was served from the vBIOS's cache."""
        noted: CachedAnswer | None = getattr(self._noted, "cached", None)
        return noted

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
             operation: str) -> tuple[int, bytes]:
        self._noted.cached = None
        try:
            response = self.session.post(url, data=body, headers=headers, timeout=timeout,
                                         stream=True, allow_redirects=False)
            try:
                content = _bounded(url, operation, response)
                self._noted.cached = cached_answer(response.headers.get("X-Vbios-Cached"))
                return response.status_code, content
            finally:
                if response.raw is not None:
                    response.close()
        except requests.exceptions.Timeout:
            raise TransportError(f"{url}: no answer within {timeout:g} s") from None
        except requests.exceptions.SSLError as exc:
            raise TransportError(f"{url}: TLS failure: {reason(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(f"{url}: cannot connect: {reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"{url}: {type(exc).__name__}") from None

    def close(self) -> None:
        self.session.close()


def _bounded(url: str, operation: str, response: requests.Response) -> bytes:
    """The body of ``response``, read up to ``_xml.MAX_ANSWER_BYTES`` and no further."""
    limit = _xml.MAX_ANSWER_BYTES
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_long(url, operation, limit)
    if response.raw is None:  # a response made in-process (tests' adapters)
        return response.content
    chunks, size = [], 0
    for chunk in response.iter_content(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_long(url, operation, limit)
        chunks.append(chunk)
    return b"".join(chunks)
