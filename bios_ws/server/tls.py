"""The server's TLS context: mutual TLS against the installation's own CA.

The server key is stored encrypted; its passphrase is handed to OpenSSL in
memory (``load_cert_chain(password=...)``), so the clear key never touches disk.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.errors import KeyUnreadable

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
    )


def build_server_context(
    *, ca_cert: Path, server_cert: Path, server_key: Path, passphrase: bytes
) -> ssl.SSLContext:
    """A server context that requires a client certificate issued by ``ca_cert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
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
