"""An installation in-process for the guest library's enrollment and renewal.

``InProcessServer`` stands where the TLS server would. The library's sessions send
through ``vbios_client._soap.https_adapter()`` and its first contact fetches the
CA through ``vbios_client._soap.fetch_ca_pem``: ``install`` puts the stand-in in
both places. requests hands an adapter what TLS would use: ``verify`` (the CA the
client trusts, a path) and ``cert`` (the certificate and key it presents). The
stand-in checks that the client trusts exactly the installation's CA and holds
the key of the certificate it presents (what the handshake proves), and hands
the certificate to ``PeerIdentity`` as the front does: the same
middleware, credential checks and SOAP application as ``vbios serve``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from requests.adapters import BaseAdapter
from vbios_client import _https, _soap

from bios_ws.bootstrap import App, bootstrap, initialize_home
from bios_ws.config import Config
from bios_ws.domain.principal import Principal
from bios_ws.home import Home
from bios_ws.server.identity import SOCKET_ENVIRON_KEY, PeerIdentity
from bios_ws.service.credentials import CredentialService
from bios_ws.service.domains import DomainService
from bios_ws.service.enrollment import EnrollmentService
from bios_ws.soap.app import create_wsgi_app
from tests.integration.test_client_inprocess import URL, WsgiAdapter

ADMIN = Principal.admin("tests")


def uri_fields(uri: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(uri).query))


def with_fields(uri: str, **changes: str) -> str:
    """``uri`` with some query fields replaced (a tampered or borrowed bootstrap URI)."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(query=urlencode({**uri_fields(uri), **changes})))


def flipped(hex_text: str) -> str:
    """The same hex text with its first digit changed."""
    return ("1" if hex_text[0] == "0" else "0") + hex_text[1:]


class _PeerSocket:
    """What gunicorn puts at ``environ[SOCKET_ENVIRON_KEY]``, as far as PeerIdentity looks."""

    def __init__(self, der: bytes | None) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        return self._der


@dataclass(frozen=True)
class Seen:
    """One request as the server got it: method, path, SOAPAction, presented serial."""

    method: str
    path: str
    action: str
    serial: int | None


def _spki(public: Any) -> bytes:
    return bytes(public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


@dataclass
class InProcessServer(BaseAdapter):  # type: ignore[misc]
    app: App
    home: Home
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self.ca_pem = self.home.ca_cert.read_bytes()
        credentials = self.app.use(CredentialService)
        self.wsgi = PeerIdentity(create_wsgi_app(self.app.use_cases),
                                 authenticate=credentials.authenticate, ca_pem=self.ca_pem)

    # -- what the library sees ---------------------------------------------------------

    def fetch_ca_pem(self, url: str, *, timeout: float) -> bytes:
        """``GET /ca.pem`` without a certificate, as ``_soap.fetch_ca_pem`` does."""
        status, _, body = self._serve("GET", urlsplit(url).path.rstrip("/") + "/ca.pem",
                                      {}, b"", None)
        assert status == 200, body
        return body

    def send(self, request: requests.PreparedRequest, stream: bool = False,  # type: ignore[override]
             timeout: object = None, verify: object = True, cert: object = None,
             proxies: object = None) -> requests.Response:
        assert isinstance(verify, str), f"the client must trust one CA file, not {verify!r}"
        assert Path(verify).read_bytes().strip() == self.ca_pem.strip(), \
            "the client must trust exactly the installation's CA"
        der = None
        if cert is not None:
            assert isinstance(cert, tuple), cert
            presented = x509.load_pem_x509_certificate(Path(cert[0]).read_bytes())
            key = serialization.load_pem_private_key(Path(cert[1]).read_bytes(), None)
            assert _spki(presented.public_key()) == _spki(key.public_key()), \
                "the handshake fails: the key is not the certificate's"
            der = presented.public_bytes(Encoding.DER)
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        status, headers, content = self._serve(str(request.method),
                                               urlsplit(request.url or URL).path or "/",
                                               dict(request.headers), body, der)
        return WsgiAdapter._response(request, status, headers, content)

    def close(self) -> None:
        pass

    # -- the server side ---------------------------------------------------------------

    def _serve(self, method: str, path: str, headers: dict[str, str], body: bytes,
               der: bytes | None) -> tuple[int, dict[str, str], bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
            "SERVER_NAME": "vbios.test", "SERVER_PORT": "8443", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "192.0.2.7", "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
            "wsgi.url_scheme": "https", "wsgi.version": (1, 0), "wsgi.multithread": False,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
            SOCKET_ENVIRON_KEY: _PeerSocket(der),
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ[f"HTTP_{key}"] = value
        serial = None if der is None else x509.load_der_x509_certificate(der).serial_number
        self.seen.append(Seen(method, path, headers.get("SOAPAction", "").strip('"'), serial))
        started: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]],
                           *_: Any) -> Any:
            started["status"], started["headers"] = status, response_headers
            return lambda data: None

        chunks = self.wsgi(environ, start_response)
        content = b"".join(chunks)
        return int(started["status"].split()[0]), dict(started["headers"]), content

    # -- the admin ---------------------------------------------------------------------

    def actions(self) -> list[str]:
        return [s.action or f"{s.method} {s.path}" for s in self.seen]

    def create_domain(self, name: str) -> None:
        self.app.use(DomainService).create(ADMIN, name)

    def bootstrap_uri(self, name: str) -> str:
        return self.app.use(EnrollmentService).ticket(ADMIN, name, URL)[1]

    def set_guest_validity(self, validity: timedelta) -> None:
        self.app.use(CredentialService).guest_validity = validity


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessServer]:
    """A fresh installation (no TPM) with domain vm1, put where the library connects."""
    home = initialize_home(tmp_path / "home")
    with bootstrap(Config.of(home)) as app:
        stand_in = InProcessServer(app, home)
        stand_in.create_domain("vm1")
        monkeypatch.setattr(_soap, "https_adapter", lambda: stand_in)
        monkeypatch.setattr(_soap, "fetch_ca_pem", stand_in.fetch_ca_pem)
        # the library's own http.client connections: here a session on the stand-in too
        monkeypatch.setattr(_https, "HttpsSender", lambda cert, key, ca: _soap.RequestsSender(
            _soap.pinned_session(cert, key, ca)))
        yield stand_in
