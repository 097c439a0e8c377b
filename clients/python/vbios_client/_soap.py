"""The private raw layer: zeep over the bundled WSDL, on one pinned mutual-TLS session
(or, to enroll, a session that trusts the pinned CA and presents no certificate).

Nothing from zeep or requests leaves this module: faults become
``vbios_client.exceptions`` classes, transport failures ``TransportError``. Every
session sends through ``https_adapter()``; enrollment's one unverified exchange,
``fetch_ca_pem``, goes through ``http.client`` (tests replace these two).
"""

from __future__ import annotations

import http.client
import io
import ssl
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import zeep
import zeep.exceptions
from requests.adapters import BaseAdapter, HTTPAdapter

from vbios_client import _wire
from vbios_client.exceptions import TransportError

NAMESPACE = "urn:bios-ws:vbios:v1"
DEFAULT_TIMEOUT = 30.0
#: Where a server hands its CA certificate to a caller without a certificate.
CA_PATH = "/ca.pem"
MAX_CA_BYTES = 64 * 1024


def bundled_wsdl() -> bytes:
    """The WSDL shipped inside the package; the client never fetches one."""
    return resources.files("vbios_client").joinpath("wsdl/vbios.wsdl").read_bytes()


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


class _QuietTransport(zeep.Transport):
    """zeep's transport without body logging (bodies carry passwords) and without fetching."""

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> requests.Response:
        return self.session.post(
            address, data=message, headers=headers, timeout=self.operation_timeout
        )

    def load(self, url: str) -> bytes:
        raise TransportError("the client never fetches documents; the WSDL is bundled")


class SoapChannel:
    """One zeep service bound to the caller's URL; ``call`` maps every failure."""

    def __init__(self, url: str, session: requests.Session, *, timeout: float) -> None:
        self.url = check_url(url)
        self.timeout = check_timeout(timeout)
        self._session = session
        transport = _QuietTransport(  # type: ignore[no-untyped-call]
            timeout=self.timeout, operation_timeout=self.timeout, session=session
        )
        session.adapters.pop("file://", None)  # zeep mounts one; we never read files through it
        session.headers["User-Agent"] = "vbios-client"
        settings = zeep.Settings(
            strict=True,
            xml_huge_tree=False,
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
            raw_response=False,
        )
        client = zeep.Client(  # type: ignore[no-untyped-call]
            io.BytesIO(bundled_wsdl()), transport=transport, settings=settings
        )
        self._client = client
        self._service = client.create_service(  # type: ignore[no-untyped-call]
            _binding_name(client), self.url
        )

    def call(self, operation: str, **params: Any) -> Any:
        """Call ``operation``; return zeep's result for ``_wire`` to decode."""
        try:
            return self._service[operation](**params)
        except zeep.exceptions.Fault as fault:
            detail = fault.detail if _is_element(fault.detail) else None
            raise _wire.fault_error(fault.code, fault.message, detail) from None
        except requests.exceptions.Timeout:
            raise TransportError(f"{self.url}: no answer within {self.timeout:g} s") from None
        except requests.exceptions.SSLError as exc:
            raise TransportError(f"{self.url}: TLS failure: {_reason(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(f"{self.url}: cannot connect: {_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"{self.url}: {type(exc).__name__}") from None
        except zeep.exceptions.TransportError as exc:
            raise TransportError(
                f"{self.url}: HTTP {exc.status_code} without a SOAP answer"
            ) from None
        except zeep.exceptions.ValidationError as exc:
            raise ValueError(f"{operation}: invalid request or answer: {exc.message}") from None
        except (zeep.exceptions.Error, OSError) as exc:
            raise TransportError(
                f"{self.url}: unreadable answer to {operation} ({type(exc).__name__})"
            ) from None

    def close(self) -> None:
        self._session.close()


def _binding_name(client: zeep.Client) -> str:
    """The QName of the contract's one binding (the WSDL declares exactly one)."""
    names = [str(n) for n in client.wsdl.bindings if str(n).startswith(f"{{{NAMESPACE}}}")]
    if len(names) != 1:
        raise RuntimeError(f"the bundled WSDL must declare one {NAMESPACE} binding: {names}")
    return names[0]


def _is_element(value: object) -> bool:
    return hasattr(value, "iter") and hasattr(value, "tag")


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
