"""HttpsSender: one keep-alive mutual-TLS connection through the standard library.

For one-shot processes (the ``vbios-client`` command) that should not pay for
importing requests and urllib3. It trusts exactly the bundle's CA (the environment
is never read: no REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or proxy applies), checks the
server's name, presents the bundle's certificate, follows no redirect, bounds the
answer, and maps failures to ``TransportError`` with the texts ``_soap.RequestsSender``
gives. One thread at a time: a client shared by threads uses the requests sender.
"""

from __future__ import annotations

import http.client
import select
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from vbios_client import _xml
from vbios_client._channel import USER_AGENT, check_client_files, reason, too_long
from vbios_client.exceptions import TransportError


class HttpsSender:
    def __init__(self, cert: Path, key: Path, ca: Path) -> None:
        check_client_files(cert, key, ca)
        self._files = (str(cert), str(key), str(ca))
        self._context: ssl.SSLContext | None = None
        self._connection: http.client.HTTPSConnection | None = None

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
             operation: str) -> tuple[int, bytes]:
        parts = urlsplit(url)
        limit = _xml.MAX_ANSWER_BYTES
        try:
            connection = self._connect(parts.hostname or "", parts.port or 443, timeout)
            connection.request("POST", parts.path or "/", body=body,
                               headers={**headers, "User-Agent": USER_AGENT})
            response = connection.getresponse()
            declared = response.getheader("Content-Length") or ""
            if declared.isdigit() and int(declared) > limit:
                self.close()
                raise too_long(url, operation, limit)
            content = response.read(limit + 1)
            if len(content) > limit:
                self.close()
                raise too_long(url, operation, limit)
            if response.will_close:
                self.close()
            return response.status, content
        except TimeoutError:
            self.close()
            raise TransportError(f"{url}: no answer within {timeout:g} s") from None
        except ssl.SSLError as exc:
            self.close()
            raise TransportError(f"{url}: TLS failure: {reason(exc)}") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(f"{url}: cannot connect: {reason(exc)}") from None

    def _connect(self, host: str, port: int, timeout: float) -> http.client.HTTPSConnection:
        """The open connection, unless the server closed it meanwhile; else a new one."""
        connection = self._connection
        if connection is not None and connection.sock is not None:
            readable, _, _ = select.select([connection.sock], [], [], 0)
            if not readable:  # an idle keep-alive connection has nothing to read
                connection.timeout = timeout
                connection.sock.settimeout(timeout)
                return connection
            self.close()
        if self._context is None:
            self._context = _client_context(*self._files)
        connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                 context=self._context)
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _client_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """Trusts ``ca`` only (not the system's, whatever the environment says), checks the
    server's name, presents ``cert``/``key``; TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
