"""The server's TLS context: mutual TLS against the installation's own CA and its CRL.

The server key is stored encrypted; its passphrase is handed to OpenSSL in
memory (``load_cert_chain(password=...)``), so the clear key never touches disk.
Every client certificate is checked against the CA's CRL during the handshake
(``VERIFY_CRL_CHECK_LEAF``): a revoked certificate never reaches the
application. ``ServerTls`` keeps one context per process and gives every new
connection the context of the CA, server certificate and CRL files as they are
now (one ``stat`` each per handshake): a new revocation applies from the next
handshake, without a restart, and no context is built per connection.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from bios_ws.errors import KeyUnreadable

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from bios_ws.home import Home

#: TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3 suites are all AEAD).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!DSS"


def server_ssl_context(home: Home) -> ssl.SSLContext:
    """The context for `vbios serve`; KeyUnreadable when a key or passphrase fails."""
    return build_server_context(
        ca_cert=home.ca_cert,
        server_cert=home.server_cert,
        server_key=home.server_key,
        passphrase=home.key_passphrase("server"),
        crl_file=home.crl_file,
    )


def build_server_context(
    *, ca_cert: Path, server_cert: Path, server_key: Path, passphrase: bytes,
    crl_file: Path | None = None,
) -> ssl.SSLContext:
    """A server context that verifies a client certificate against ``ca_cert`` and, with
    ``crl_file``, that CRL. A client without a certificate completes the handshake (it
    may only enroll: ``PeerIdentity`` and the SOAP application refuse everything else);
    a client presenting a certificate that does not verify is refused at the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (
        ssl.OP_NO_COMPRESSION
        | ssl.OP_NO_RENEGOTIATION
        | ssl.OP_CIPHER_SERVER_PREFERENCE
        | ssl.OP_SINGLE_ECDH_USE
    )
    try:
        context.load_verify_locations(cafile=str(ca_cert))
    except (OSError, ssl.SSLError) as exc:
        raise KeyUnreadable(f"cannot read the CA certificate {ca_cert}: {_reason(exc)}") from None
    if crl_file is not None:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        try:
            context.load_verify_locations(cafile=str(crl_file))
        except (OSError, ssl.SSLError) as exc:
            raise KeyUnreadable(f"cannot read the CRL {crl_file}: {_reason(exc)}") from None
    try:
        context.load_cert_chain(str(server_cert), str(server_key), password=passphrase)
    except (OSError, ssl.SSLError) as exc:
        raise KeyUnreadable(
            f"cannot load the server key {server_key} with its certificate {server_cert}:"
            f" {_reason(exc)} (wrong passphrase or damaged file?)"
        ) from None
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "TLS library error"
    return exc.strerror or type(exc).__name__


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


class ServerTls:
    """The server's TLS context as of its files now, and the serials the CRL revokes.

    Each call looks at the CA, server certificate and CRL files (a ``stat`` each);
    when one changed, the context is rebuilt from them (the server key's passphrase
    stays in memory for that: the key itself is in OpenSSL's memory anyway). A CRL
    file that cannot be read keeps the context built before and is logged: the
    service that publishes the CRL replaces a damaged one. Thread-safe.
    """

    def __init__(self, *, ca_cert: Path, server_cert: Path, server_key: Path,
                 passphrase: bytes, crl_file: Path) -> None:
        self._paths = (ca_cert, server_cert, server_key)
        self._passphrase = passphrase
        self._crl_file = crl_file
        self._lock = threading.Lock()
        self._signature = self._signatures()
        self._context = self._build()  # KeyUnreadable at start: nothing to fall back to
        self._revoked = _revoked_serials(crl_file)

    @classmethod
    def of(cls, home: Home, passphrase: bytes) -> ServerTls:
        return cls(ca_cert=home.ca_cert, server_cert=home.server_cert,
                   server_key=home.server_key, passphrase=passphrase,
                   crl_file=home.crl_file)

    def context(self) -> ssl.SSLContext:
        """The context for the next handshake."""
        self._refresh()
        return self._context

    def is_revoked(self, serial: int) -> bool:
        """Whether the CRL as of now lists ``serial`` (asked on every request: one
        ``stat``, of the CRL file only)."""
        if _signature(self._crl_file) != self._signature[-1]:
            self._refresh()
        return serial in self._revoked

    def _signatures(self) -> tuple[tuple[int, int, int] | None, ...]:
        return tuple(_signature(path) for path in (*self._paths[:2], self._crl_file))

    def _refresh(self) -> None:
        if self._signatures() == self._signature:
            return
        with self._lock:
            signature = self._signatures()
            if signature == self._signature:
                return
            try:
                context = self._build()
                revoked = _revoked_serials(self._crl_file)
            except (KeyUnreadable, ValueError, OSError) as exc:
                log.error("the TLS context cannot be rebuilt (%s); the previous one stays in"
                          " force", getattr(exc, "message", type(exc).__name__))
                self._signature = signature
                return
            self._context, self._revoked, self._signature = context, revoked, signature

    def _build(self) -> ssl.SSLContext:
        ca_cert, server_cert, server_key = self._paths
        return build_server_context(ca_cert=ca_cert, server_cert=server_cert,
                                    server_key=server_key, passphrase=self._passphrase,
                                    crl_file=self._crl_file)


def _revoked_serials(crl_file: Path) -> frozenset[int]:
    crl = x509.load_pem_x509_crl(crl_file.read_bytes())
    return frozenset(entry.serial_number for entry in crl)
