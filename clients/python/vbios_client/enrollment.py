"""Enrollment: a guest turns a one-time bootstrap URI into its own client bundle.

    bundle = vbios_client.enroll(uri, "/etc/vbios/bundle")
    with vbios_client.BiosClient.from_bundle(url, bundle.path) as bios: ...

The admin prints the URI (`vbios domain enroll NAME`)::

    https://HOST:PORT/?enroll=<domain>&nonce=<32 hex>&expires=<unix seconds>
        &token=<64 hex>&ca=sha256:<64 hex>

``enroll``

1. parses the URI (``InvalidBootstrapUri`` naming what is wrong) and refuses a
   bundle directory that exists and is not empty (``BundleError``), before any
   network;
2. fetches the server's CA certificate (``GET /ca.pem``) without verifying the
   server, the one unverified exchange, and checks that SHA-256 over its DER is
   the URI's pin: on a mismatch it raises ``CaPinMismatch`` and sends nothing more;
3. makes a P-256 key here (it never leaves the guest) and a PKCS#10 request for
   it: CN=<domain>, SAN URI urn:vbios:domain:<domain>, signed with SHA-256;
4. calls ``Enroll`` over TLS that trusts exactly the pinned CA, host name checked,
   presenting no client certificate;
5. checks that the certificate returned is for that key, names the domain and was
   issued by the pinned CA (``CertificateMismatch``), and writes cert.pem, key.pem
   (0600) and ca.pem into the bundle directory (0700), all at once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from vbios_client import _bundle
from vbios_client._channel import DEFAULT_TIMEOUT, SoapChannel, check_timeout
from vbios_client.exceptions import CaPinMismatch, CertificateMismatch, InvalidBootstrapUri
from vbios_client.models import IssuedBundle

_UTC = timezone.utc  # noqa: UP017 - the client distribution still supports Python 3.10
StrPath = str | os.PathLike[str]

GUEST_URI_PREFIX = "urn:vbios:domain:"
URI_KEYS = ("enroll", "nonce", "expires", "token", "ca")
_DOMAIN = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_HEX32, _HEX64 = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{64}")
_MAX_URI = 4096


@dataclass(frozen=True)
class BootstrapUri:
    """A parsed bootstrap URI: where to enroll, the one-time ticket, and the CA pin
    (SHA-256 over the CA certificate's DER, lower-case hex)."""

    server_url: str
    domain: str
    nonce: str
    expires: int
    token: str
    ca_sha256: str

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, _UTC)


def parse_bootstrap_uri(uri: str) -> BootstrapUri:
    """The parts of ``uri``; ``InvalidBootstrapUri`` (a ValueError) naming what is wrong."""
    if not isinstance(uri, str):
        raise InvalidBootstrapUri(f"a bootstrap URI is a str, not {type(uri).__name__}")
    text = uri.strip()
    if len(text) > _MAX_URI:
        raise InvalidBootstrapUri("the bootstrap URI is too long")
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise InvalidBootstrapUri("the bootstrap URI's port is not a number") from None
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidBootstrapUri("a bootstrap URI starts with https://HOST:PORT/")
    if parts.username is not None or parts.password is not None:
        raise InvalidBootstrapUri("a bootstrap URI carries no user name or password")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    named = [key for key, _ in pairs]
    twice = sorted({key for key in named if key in URI_KEYS and named.count(key) > 1})
    if twice:
        raise InvalidBootstrapUri(f"the bootstrap URI gives {', '.join(twice)} more than once")
    fields = dict(pairs)
    missing = [key for key in URI_KEYS if not fields.get(key)]
    if missing:
        raise InvalidBootstrapUri(f"the bootstrap URI lacks {', '.join(missing)}"
                                  " (it is printed by `vbios domain enroll NAME`)")
    domain = fields["enroll"]
    if not _DOMAIN.fullmatch(domain):
        raise InvalidBootstrapUri(f"the bootstrap URI's domain {domain[:80]!r} is not a"
                                  " domain id (1-63 of a-z, 0-9, '.', '_', '-')")
    if not _HEX32.fullmatch(fields["nonce"]):
        raise InvalidBootstrapUri("the bootstrap URI's nonce is not 32 hex digits")
    expires = fields["expires"]
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
        raise InvalidBootstrapUri("the bootstrap URI's expiry is not a time in seconds")
    if not _HEX64.fullmatch(fields["token"]):
        raise InvalidBootstrapUri("the bootstrap URI's token is not 64 hex digits")
    algorithm, colon, pin = fields["ca"].partition(":")
    if not colon or algorithm.lower() != "sha256" or not _HEX64.fullmatch(pin.lower()):
        raise InvalidBootstrapUri("the bootstrap URI's CA pin is not sha256:<64 hex digits>")
    if port == 0:
        raise InvalidBootstrapUri("the bootstrap URI's port is 0")
    server = urlunsplit(("https", parts.netloc, parts.path or "/", "", ""))
    return BootstrapUri(server, domain, fields["nonce"], int(expires), fields["token"],
                        pin.lower())


# -- the key and the request --------------------------------------------------------


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key: made in the guest, never sent anywhere."""
    return ec.generate_private_key(ec.SECP256R1())


def certificate_request(key: ec.EllipticCurvePrivateKey, domain: str) -> bytes:
    """A PKCS#10 request (DER) by ``key`` to be ``domain``: CN=<domain>, SAN URI
    urn:vbios:domain:<domain>, signed with SHA-256."""
    if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
        raise ValueError(f"not a domain id: {domain!r}")
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(f"{GUEST_URI_PREFIX}{domain}")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(Encoding.DER)


# -- what the server returns ---------------------------------------------------------


def ca_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the certificate's DER, lower-case hex (what a bootstrap URI pins)."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def pinned_ca(pem: bytes, pin: str) -> x509.Certificate:
    """The one CA certificate in ``pem`` if its fingerprint is ``pin``; else CaPinMismatch."""
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError:
        found = []
    if len(found) != 1:
        raise CaPinMismatch("the server's /ca.pem is not one PEM certificate: it cannot be"
                            " the pinned CA; nothing was sent")
    actual = ca_fingerprint(found[0])
    if not hmac.compare_digest(actual, pin.lower()):
        raise CaPinMismatch(f"the server's CA certificate has SHA-256 {actual}, the bootstrap"
                            f" URI pins {pin.lower()}: nothing was sent to this server")
    return found[0]


def domain_of(cert: x509.Certificate) -> str:
    """The domain a guest certificate names (its SAN URI urn:vbios:domain:<domain>)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except (x509.ExtensionNotFound, ValueError):
        uris = []
    domains = [u[len(GUEST_URI_PREFIX):] for u in uris if u.startswith(GUEST_URI_PREFIX)]
    if len(domains) != 1 or not _DOMAIN.fullmatch(domains[0]):
        raise CertificateMismatch("the certificate names no single guest domain")
    return domains[0]


def check_issued(wire: Any, key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
                 domain: str) -> x509.Certificate:
    """The certificate of an Enroll or RenewCertificate answer, if it is for ``key``, names
    ``domain`` and was issued by ``ca`` (and the answer's CA is ``ca``)."""
    try:
        cert = x509.load_der_x509_certificate(bytes(wire.Certificate))
        answered_ca = bytes(wire.CaCertificate)
    except (AttributeError, TypeError, ValueError):
        raise CertificateMismatch("the server's answer holds no readable certificate") \
            from None
    if answered_ca != ca.public_bytes(Encoding.DER):
        raise CertificateMismatch("the server answered with another CA certificate than the"
                                  " one trusted")
    if _bundle.public_der(cert.public_key()) != _bundle.public_der(key.public_key()):
        raise CertificateMismatch("the certificate returned is not for the key made here")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateMismatch("the certificate returned was not issued by the trusted CA"
                                  ) from None
    if domain_of(cert) != domain:
        raise CertificateMismatch(f"the certificate returned does not name domain {domain!r}")
    return cert


def issued_bundle(cert: x509.Certificate, path: Path) -> IssuedBundle:
    return IssuedBundle(domain=domain_of(cert), serial=format(cert.serial_number, "X"),
                        not_before=cert.not_valid_before_utc,
                        not_after=cert.not_valid_after_utc, path=path)


# -- enroll ----------------------------------------------------------------------------


def enroll(uri: str, out: StrPath, *, timeout: float = DEFAULT_TIMEOUT) -> IssuedBundle:
    """Enroll with the one-time bootstrap ``uri``; write the bundle into ``out`` (a new or
    empty directory). See the module for the steps and what each refuses."""
    from vbios_client import _soap  # requests: only to enroll

    target = parse_bootstrap_uri(uri)
    check_timeout(timeout)
    out_dir = Path(out).absolute()
    _bundle.check_new(out_dir)
    ca = pinned_ca(_soap.fetch_ca_pem(target.server_url, timeout=timeout), target.ca_sha256)
    key = new_private_key()
    request = certificate_request(key, target.domain)
    with _bundle.staging(out_dir) as stage:
        ca_pem = _bundle.cert_pem(ca)
        _bundle.write_file(stage / "ca.pem", ca_pem, _bundle.PUBLIC_MODE)
        sender = _soap.RequestsSender(_soap.server_session(stage / "ca.pem"))
        channel = SoapChannel(target.server_url, sender, timeout=timeout)
        try:
            answer = channel.call("Enroll", Domain=target.domain, Nonce=target.nonce,
                                  Expires=target.expires, Token=target.token,
                                  CertificateRequest=request)
        finally:
            channel.close()
        cert = check_issued(answer, key, ca, target.domain)
        _bundle.write_new(stage, _bundle.cert_pem(cert), _bundle.key_pem(key), ca_pem)
        _bundle.commit(stage, out_dir)
    return issued_bundle(cert, out_dir)
