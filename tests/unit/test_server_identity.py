"""Peer certificate -> Principal, and the listening-address helpers (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from bios_ws.domain.principal import Principal, Role
from bios_ws.server.identity import (
    PeerIdentity,
    common_name,
    peer_certificate,
    principal_from_certificate,
)
from bios_ws.server.options import parse_bind, service_url
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY

Pairs = tuple[tuple[str, str], ...]


def cert(*uris: str, cn: str = "someone", other: Pairs = ()) -> dict[str, Any]:
    return {
        "subject": ((("organizationName", "bios-ws vBIOS"),), (("commonName", cn),)),
        "subjectAltName": tuple(("URI", u) for u in uris) + other,
    }


class FakeSocket:
    def __init__(self, peer: dict[str, Any] | None) -> None:
        self.peer = peer
        self.calls = 0

    def getpeercert(self) -> dict[str, Any] | None:
        self.calls += 1
        return self.peer


def test_guest_certificate_names_its_domain() -> None:
    principal = principal_from_certificate(cert("urn:vbios:domain:web-1", cn="web-1"))
    assert principal == Principal(Role.GUEST, "web-1", "web-1")


def test_admin_certificate_is_admin() -> None:
    principal = principal_from_certificate(cert("urn:vbios:role:admin", cn="vbios-admin"))
    assert principal is not None
    assert principal.role is Role.ADMIN
    assert principal.subject == "vbios-admin"


def test_unrelated_san_entries_are_ignored() -> None:
    peer = cert("https://example.test/", "urn:vbios:domain:db",
                other=(("DNS", "urn:vbios:role:admin"), ("email", "x@y")))
    principal = principal_from_certificate(peer)
    assert principal is not None
    assert principal.domain_id == "db"


@pytest.mark.parametrize(
    "peer",
    [
        None,
        {},
        cert(),
        cert("urn:vbios:domain:a", "urn:vbios:domain:b"),
        cert("urn:vbios:domain:a", "urn:vbios:role:admin"),
        cert("urn:vbios:domain:NOT VALID"),
        cert("urn:vbios:domain:"),
        cert("urn:vbios:role:root"),
        {"subject": ((("commonName", "urn:vbios:role:admin"),),)},
    ],
    ids=["none", "empty", "no-uri", "two-domains", "domain-and-admin", "bad-id", "empty-id",
         "unknown-role", "cn-only"],
)
def test_certificates_naming_no_single_identity_give_no_principal(
    peer: dict[str, Any] | None,
) -> None:
    assert principal_from_certificate(peer) is None


def test_common_name_falls_back_to_the_uri() -> None:
    peer = {"subjectAltName": (("URI", "urn:vbios:domain:x"),)}
    assert common_name(peer) == ""
    principal = principal_from_certificate(peer)
    assert principal is not None
    assert principal.subject == "urn:vbios:domain:x"


def test_peer_certificate_without_a_tls_socket() -> None:
    assert peer_certificate({}) is None
    assert peer_certificate({"gunicorn.socket": object()}) is None
    assert peer_certificate({"gunicorn.socket": FakeSocket(None)}) is None
    assert peer_certificate({"gunicorn.socket": FakeSocket({})}) is None


def _run(middleware_input: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return [b"ok"]

    assert list(PeerIdentity(app)(middleware_input, lambda *a: None)) == [b"ok"]
    return seen


def test_middleware_sets_the_principal_per_request() -> None:
    sock = FakeSocket(cert("urn:vbios:domain:alpha"))
    seen = _run({"gunicorn.socket": sock})
    assert seen[PRINCIPAL_ENVIRON_KEY] == Principal.guest("alpha", "someone")
    assert sock.calls == 1


def test_middleware_never_passes_a_principal_it_did_not_derive() -> None:
    forged = Principal.admin("forged")
    seen = _run({PRINCIPAL_ENVIRON_KEY: forged, "gunicorn.socket": FakeSocket(None)})
    assert PRINCIPAL_ENVIRON_KEY not in seen
    seen = _run({PRINCIPAL_ENVIRON_KEY: forged,
                 "gunicorn.socket": FakeSocket(cert("urn:vbios:domain:a", "urn:vbios:domain:b"))})
    assert PRINCIPAL_ENVIRON_KEY not in seen


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
