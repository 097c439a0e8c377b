"""Peer certificate -> Principal, the middleware, and the listening-address helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bios_ws.domain.principal import Principal, Role
from bios_ws.errors import AccessDenied
from bios_ws.pki import certs
from bios_ws.server.identity import (
    SOCKET_ENVIRON_KEY,
    PeerIdentity,
    identity_of,
    peer_certificate_der,
)
from bios_ws.server.options import parse_bind, service_url
from bios_ws.soap.app import (
    AUDITED_REFUSAL_ENVIRON_KEY,
    PRINCIPAL_ENVIRON_KEY,
    REFUSAL_ENVIRON_KEY,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CA = certs.make_ca(NOW)
INCARNATION = "urn:vbios:incarnation:0123456789abcdef"


def der(*uris: str, cn: str | None = "someone", ca: bool = False,
        usage: bool | None = True, extended: Sequence[x509.ObjectIdentifier] | None = (
            ExtendedKeyUsageOID.CLIENT_AUTH,)) -> bytes:
    """A certificate of CA with these SAN URIs and extensions, in DER."""
    key = certs.new_key()
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    builder = (x509.CertificateBuilder().subject_name(x509.Name(names))
               .issuer_name(CA.cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if usage is not None:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=usage, content_commitment=False, key_encipherment=not usage,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
    if extended is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended)), critical=False)
    if uris:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
    return builder.sign(CA.key, hashes.SHA256()).public_bytes(Encoding.DER)


def serial_of(data: bytes) -> int:
    return x509.load_der_x509_certificate(data).serial_number


class FakeSocket:
    def __init__(self, peer: bytes | None) -> None:
        self.peer = peer
        self.calls = 0

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        assert binary_form
        self.calls += 1
        return self.peer


def test_guest_certificate_names_its_domain_incarnation_and_serial() -> None:
    data = der("urn:vbios:domain:web-1", INCARNATION, cn="web-1")
    assert identity_of(data) == Principal(Role.GUEST, "web-1", "web-1", serial_of(data),
                                          "0123456789abcdef")


def test_admin_certificate_is_admin() -> None:
    principal = identity_of(der("urn:vbios:role:admin", cn="vbios-admin"))
    assert isinstance(principal, Principal)
    assert principal.role is Role.ADMIN
    assert principal.subject == "vbios-admin"


def test_unrelated_san_entries_are_ignored() -> None:
    principal = identity_of(der("https://example.test/", "urn:vbios:domain:db", INCARNATION))
    assert isinstance(principal, Principal)
    assert principal.domain_id == "db"


@pytest.mark.parametrize(
    ("uris", "reason"),
    [
        ((), "no single vBIOS identity"),
        (("urn:vbios:domain:a", "urn:vbios:domain:b"), "no single vBIOS identity"),
        (("urn:vbios:domain:a", "urn:vbios:role:admin"), "no single vBIOS identity"),
        (("urn:vbios:domain:NOT-VALID", INCARNATION), "invalid domain"),
        (("urn:vbios:domain:", INCARNATION), "invalid domain"),
        (("urn:vbios:role:root",), "no single vBIOS identity"),
        (("urn:vbios:domain:a",), "no single domain incarnation"),
    ],
    ids=["no-uri", "two-domains", "domain-and-admin", "bad-id", "empty-id", "unknown-role",
         "no-incarnation"],
)
def test_certificates_naming_no_single_identity_give_a_reason(
    uris: tuple[str, ...], reason: str,
) -> None:
    refused = identity_of(der(*uris))
    assert isinstance(refused, str)
    assert reason in refused


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"ca": True}, "a CA certificate is not a client certificate"),
        ({"usage": None}, "has no key usage"),
        ({"usage": False}, "lacks digitalSignature"),
        ({"extended": None}, "has no extended key usage"),
        ({"extended": (ExtendedKeyUsageOID.SERVER_AUTH,)}, "not for client authentication"),
    ],
    ids=["ca-true", "no-key-usage", "no-digital-signature", "no-eku", "server-eku"],
)
def test_only_client_leaf_certificates_name_anyone(options: dict[str, Any],
                                                   reason: str) -> None:
    refused = identity_of(der("urn:vbios:role:admin", **options))
    assert isinstance(refused, str)
    assert reason in refused


def test_an_unparsable_certificate_names_nobody() -> None:
    assert identity_of(b"\x30\x03\x02\x01\x00") == "the client certificate cannot be parsed"


def test_the_subject_falls_back_to_the_uri() -> None:
    principal = identity_of(der("urn:vbios:domain:x", INCARNATION, cn=None))
    assert isinstance(principal, Principal)
    assert principal.subject == "urn:vbios:domain:x"


def test_peer_certificate_without_a_tls_socket() -> None:
    assert peer_certificate_der({}) is None
    assert peer_certificate_der({SOCKET_ENVIRON_KEY: object()}) is None
    assert peer_certificate_der({SOCKET_ENVIRON_KEY: FakeSocket(None)}) is None
    assert peer_certificate_der({SOCKET_ENVIRON_KEY: FakeSocket(b"")}) is None


class Revoked:
    def __init__(self, *serials: int) -> None:
        self.serials = set(serials)

    def is_revoked(self, serial: int) -> bool:
        return serial in self.serials


def _run(middleware_input: dict[str, Any], **options: Any) -> tuple[dict[str, Any], list[Any]]:
    seen: dict[str, Any] = {}
    started: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return [b"ok"]

    body = list(PeerIdentity(app, **options)(middleware_input, lambda *a: started.append(a)))
    if started:
        assert not seen, "the application was called"
        return {"body": body}, started
    assert body == [b"ok"]
    return seen, started


def test_middleware_sets_the_principal_per_request() -> None:
    sock = FakeSocket(der("urn:vbios:domain:alpha", INCARNATION))
    seen, _ = _run({SOCKET_ENVIRON_KEY: sock})
    principal = seen[PRINCIPAL_ENVIRON_KEY]
    assert (principal.domain_id, principal.subject) == ("alpha", "someone")
    assert sock.calls == 1


def test_middleware_never_passes_a_principal_it_did_not_derive() -> None:
    forged = Principal.admin("forged")
    seen, _ = _run({PRINCIPAL_ENVIRON_KEY: forged, SOCKET_ENVIRON_KEY: FakeSocket(None)})
    assert PRINCIPAL_ENVIRON_KEY not in seen
    two = der("urn:vbios:domain:a", "urn:vbios:domain:b")
    seen, _ = _run({PRINCIPAL_ENVIRON_KEY: forged, REFUSAL_ENVIRON_KEY: "stale",
                    SOCKET_ENVIRON_KEY: FakeSocket(two)})
    assert PRINCIPAL_ENVIRON_KEY not in seen
    assert "no single vBIOS identity" in seen[REFUSAL_ENVIRON_KEY]


def test_a_certificate_the_registry_refuses_passes_its_reason_and_no_principal() -> None:
    def authenticate(principal: Principal) -> None:
        raise AccessDenied(f"serial {principal.serial:X} was revoked")

    data = der("urn:vbios:role:admin")
    seen, _ = _run({SOCKET_ENVIRON_KEY: FakeSocket(data)}, authenticate=authenticate)
    assert PRINCIPAL_ENVIRON_KEY not in seen
    assert seen[REFUSAL_ENVIRON_KEY] == f"serial {serial_of(data):X} was revoked"


def test_a_request_of_a_revoked_certificate_never_reaches_the_application() -> None:
    data = der("urn:vbios:role:admin")
    answer, started = _run({SOCKET_ENVIRON_KEY: FakeSocket(data)},
                           revocations=Revoked(serial_of(data)))
    status, headers = started[0][:2]
    assert status == "403 Forbidden"
    assert ("Connection", "close") in headers
    assert answer["body"] == [b"client certificate revoked\n"]


@pytest.mark.parametrize(
    ("bind", "expected", "url"),
    [
        ("127.0.0.1:8443", ("127.0.0.1", 8443), "https://127.0.0.1:8443/"),
        ("0.0.0.0:9000", ("0.0.0.0", 9000), "https://127.0.0.1:9000/"),
        ("[::1]:8443", ("::1", 8443), "https://[::1]:8443/"),
        ("localhost:1", ("localhost", 1), "https://localhost:1/"),
        ("127.0.0.1:0", ("127.0.0.1", 0), "https://127.0.0.1:0/"),
    ],
)
def test_parse_bind(bind: str, expected: tuple[str, int], url: str) -> None:
    assert parse_bind(bind) == expected
    assert service_url(bind) == url


@pytest.mark.parametrize("bind", ["8443", ":8443", "host:", "host:http", "host:-1", "host:70000"])
def test_parse_bind_refuses(bind: str) -> None:
    with pytest.raises(ValueError, match=r"HOST:PORT|out of range"):
        parse_bind(bind)


def test_a_host_certificate_speaks_only_through_the_header_and_refusals_are_noted() -> None:
    data = der("urn:vbios:host:rack1-a", cn="rack1-a")
    header = "HTTP_X_VBIOS_ON_BEHALF_OF"
    seen, _ = _run({SOCKET_ENVIRON_KEY: FakeSocket(data), header: "vm1"})
    principal = seen[PRINCIPAL_ENVIRON_KEY]
    assert str(principal) == "host:rack1-a for guest:vm1"
    assert AUDITED_REFUSAL_ENVIRON_KEY not in seen
    seen, _ = _run({SOCKET_ENVIRON_KEY: FakeSocket(data)})
    assert PRINCIPAL_ENVIRON_KEY not in seen
    assert seen[AUDITED_REFUSAL_ENVIRON_KEY] == ("host:rack1-a", None)

    def no_grant(principal: Principal) -> None:
        raise AccessDenied(f"host may not speak for domain {principal.domain_id}")

    seen, _ = _run({SOCKET_ENVIRON_KEY: FakeSocket(data), header: "vm2"},
                   authenticate=no_grant)
    assert seen[REFUSAL_ENVIRON_KEY] == "host may not speak for domain vm2"
    assert seen[AUDITED_REFUSAL_ENVIRON_KEY] == ("host:rack1-a", "vm2")
    guest = der("urn:vbios:domain:alpha", INCARNATION)
    seen, _ = _run({SOCKET_ENVIRON_KEY: FakeSocket(guest), header: "alpha",
                    AUDITED_REFUSAL_ENVIRON_KEY: ("stale", None)})
    assert seen[AUDITED_REFUSAL_ENVIRON_KEY] == ("guest:alpha", "alpha")
    seen, _ = _run({SOCKET_ENVIRON_KEY: FakeSocket(None), header: "alpha",
                    AUDITED_REFUSAL_ENVIRON_KEY: ("stale", None)})
    assert "only a host certificate" in seen[REFUSAL_ENVIRON_KEY]
    assert AUDITED_REFUSAL_ENVIRON_KEY not in seen  # no identity to audit
