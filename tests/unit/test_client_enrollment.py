"""The guest's side of enrollment without I/O: the bootstrap URI parser, the key and
certificate request it makes, the CA pin, and the checks of what the server returns."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as NS

import pytest
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from vbios_client import _renewal
from vbios_client.enrollment import (
    ca_fingerprint,
    certificate_request,
    check_issued,
    domain_of,
    new_private_key,
    parse_bootstrap_uri,
    pinned_ca,
)

from bios_ws.domain.enrollment import Ticket
from bios_ws.domain.enrollment import parse_bootstrap_uri as server_parse
from bios_ws.errors import InvalidRequest
from bios_ws.pki.requests import checked_request

NONCE, TOKEN, PIN = "0f" * 16, "ab" * 32, "c3" * 32
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def uri(**fields: str) -> str:
    values = {"enroll": "vm1", "nonce": NONCE, "expires": "1796029200", "token": TOKEN,
              "ca": f"sha256:{PIN}", **fields}
    query = "&".join(f"{key}={value}" for key, value in values.items() if value != "-")
    return f"https://127.0.0.1:8443/?{query}"


# -- the URI ----------------------------------------------------------------------


def test_a_printed_uri_is_parsed_into_its_parts() -> None:
    parsed = parse_bootstrap_uri(f"  {uri()}\n")
    assert parsed == vc.BootstrapUri("https://127.0.0.1:8443/", "vm1", NONCE, 1796029200,
                                     TOKEN, PIN)
    assert parsed.expires_at == datetime.fromtimestamp(1796029200, UTC)


def test_the_client_reads_what_the_server_prints_as_the_server_does() -> None:
    ticket = Ticket.issue("web-01.a_b", b"k" * 32, datetime.now(UTC), timedelta(minutes=3))
    printed = ticket.uri("https://vbios.example:9443/base/", PIN)
    ours, theirs = parse_bootstrap_uri(printed), server_parse(printed)
    assert ours.server_url == theirs.server_url == "https://vbios.example:9443/base/"
    assert (ours.domain, ours.nonce, ours.token) == (ticket.domain_id, ticket.nonce,
                                                     ticket.token)
    assert ours.expires_at == theirs.ticket.expires_at == ticket.expires_at
    assert ours.ca_sha256 == theirs.ca_fingerprint == PIN


def test_an_upper_case_pin_is_read_as_lower_case() -> None:
    assert parse_bootstrap_uri(uri(ca=f"SHA256:{PIN.upper()}")).ca_sha256 == PIN


@pytest.mark.parametrize(("bad", "says"), [
    ("http://127.0.0.1:8443/?enroll=vm1", "https://"),
    ("https:///?enroll=vm1", "https://"),
    ("vm1", "https://"),
    (uri().replace("127.0.0.1:8443", "127.0.0.1:port"), "port"),
    (uri().replace("127.0.0.1:8443", "127.0.0.1:0"), "port"),
    (uri().replace("https://", "https://user:pw@"), "user name"),
    (uri(enroll="-"), "lacks enroll"),
    (uri(nonce="-", token="-"), "lacks nonce, token"),
    (uri(ca=""), "lacks ca"),
    (uri() + "&nonce=" + NONCE, "nonce more than once"),
    (uri(enroll="VM1"), "domain"),
    (uri(enroll="a" * 64), "domain"),
    (uri(enroll="vm1%2Fother"), "domain"),
    (uri(nonce="0f" * 15), "nonce"),
    (uri(nonce="zz" * 16), "nonce"),
    (uri(expires="soon"), "expiry"),
    (uri(expires="1" * 13), "expiry"),
    (uri(expires="%D9%A1%D9%A2"), "expiry"),  # Arabic-Indic digits are digits to str
    (uri(expires="-5"), "expiry"),
    (uri(token=TOKEN[:-2]), "token"),
    (uri(token=TOKEN.upper()), "token"),
    (uri(ca=PIN), "CA pin"),
    (uri(ca=f"sha1:{PIN}"), "CA pin"),
    (uri(ca=f"sha256:{PIN[:-1]}"), "CA pin"),
])
def test_a_malformed_uri_is_refused_naming_what_is_wrong(bad: str, says: str) -> None:
    with pytest.raises(vc.InvalidBootstrapUri, match=says):
        parse_bootstrap_uri(bad)


def test_a_malformed_uri_is_a_value_error_too() -> None:
    with pytest.raises(ValueError):
        parse_bootstrap_uri(uri(token="x"))
    with pytest.raises(vc.InvalidBootstrapUri, match="str"):
        parse_bootstrap_uri(b"https://h/"  # type: ignore[arg-type]
                            )
    with pytest.raises(vc.InvalidBootstrapUri, match="too long"):
        parse_bootstrap_uri(uri() + "&x=" + "a" * 5000)


def test_unknown_fields_are_ignored() -> None:
    assert parse_bootstrap_uri(uri() + "&v=2").domain == "vm1"


# -- the key and the request ---------------------------------------------------------


def test_the_request_names_the_domain_only_and_is_signed_by_the_new_key() -> None:
    key = new_private_key()
    assert isinstance(key.curve, ec.SECP256R1)
    request = x509.load_der_x509_csr(certificate_request(key, "vm1"))
    assert request.is_signature_valid
    assert isinstance(request.signature_hash_algorithm, hashes.SHA256)
    assert request.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vm1")])
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:vbios:domain:vm1"]
    assert len(request.extensions) == 1
    assert request.public_key() == key.public_key()


def test_the_server_accepts_the_request_for_its_domain_and_no_other() -> None:
    key = new_private_key()
    request = certificate_request(key, "vm1")
    assert checked_request(request, "vm1") == key.public_key()
    with pytest.raises(InvalidRequest, match="may only ask to be 'vm2'"):
        checked_request(request, "vm2")


def test_every_request_has_its_own_key() -> None:
    first, second = new_private_key(), new_private_key()
    assert first.private_numbers() != second.private_numbers()


@pytest.mark.parametrize("domain", ["", "VM1", "a/b", "urn:vbios:domain:x"])
def test_a_request_for_no_domain_id_is_refused(domain: str) -> None:
    with pytest.raises(ValueError, match="domain id"):
        certificate_request(new_private_key(), domain)


# -- the pin ---------------------------------------------------------------------------


def _ca(name: str = "vBIOS CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=9))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def test_the_pin_is_sha256_over_the_der() -> None:
    _, ca = _ca()
    assert ca_fingerprint(ca) == hashlib.sha256(ca.public_bytes(Encoding.DER)).hexdigest()
    assert pinned_ca(_pem(ca), ca_fingerprint(ca)) == ca
    assert pinned_ca(_pem(ca), ca_fingerprint(ca).upper()) == ca


@pytest.mark.parametrize("answer", ["other", "garbage", "two", "empty"])
def test_anything_but_the_pinned_ca_is_refused(answer: str) -> None:
    _, ca = _ca()
    _, other = _ca()
    pem = {"other": _pem(other), "garbage": b"<html>hello</html>", "empty": b"",
           "two": _pem(ca) + _pem(other)}[answer]
    with pytest.raises(vc.CaPinMismatch, match="nothing was sent"):
        pinned_ca(pem, ca_fingerprint(ca))


# -- what the server returns ----------------------------------------------------------


def _issue(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
           public: ec.EllipticCurvePublicKey, *uris: str,
           lifetime: timedelta = timedelta(days=30)) -> x509.Certificate:
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vm1")]))
            .issuer_name(ca.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW).not_valid_after(NOW + lifetime)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))


def _answer(cert: x509.Certificate, ca: x509.Certificate) -> NS:
    return NS(Certificate=cert.public_bytes(Encoding.DER),
              CaCertificate=ca.public_bytes(Encoding.DER), Serial=f"{cert.serial_number:X}",
              NotAfter="2026-12-30T09:00:00.000Z")


GUEST_URIS = ("urn:vbios:domain:vm1", "urn:vbios:incarnation:0123456789abcdef")


def test_a_certificate_for_the_key_from_the_ca_naming_the_domain_is_accepted() -> None:
    ca_key, ca = _ca()
    key = new_private_key()
    cert = _issue(ca_key, ca, key.public_key(), *GUEST_URIS)
    assert check_issued(_answer(cert, ca), key, ca, "vm1") == cert
    assert domain_of(cert) == "vm1"


def test_a_certificate_for_another_key_is_refused() -> None:
    ca_key, ca = _ca()
    cert = _issue(ca_key, ca, new_private_key().public_key(), *GUEST_URIS)
    with pytest.raises(vc.CertificateMismatch, match="not for the key"):
        check_issued(_answer(cert, ca), new_private_key(), ca, "vm1")


def test_a_certificate_from_another_ca_is_refused() -> None:
    _, ca = _ca()
    other_key, other = _ca()
    key = new_private_key()
    foreign = _issue(other_key, other, key.public_key(), *GUEST_URIS)
    with pytest.raises(vc.CertificateMismatch, match="another CA"):
        check_issued(_answer(foreign, other), key, ca, "vm1")
    # the same subject and key id do not help: the signature is checked
    forged = _issue(other_key, ca, key.public_key(), *GUEST_URIS)
    with pytest.raises(vc.CertificateMismatch, match="not issued by the trusted CA"):
        check_issued(_answer(forged, ca), key, ca, "vm1")


def test_a_certificate_naming_another_domain_or_none_is_refused() -> None:
    ca_key, ca = _ca()
    key = new_private_key()
    other = _issue(ca_key, ca, key.public_key(), "urn:vbios:domain:vm2")
    with pytest.raises(vc.CertificateMismatch, match="does not name domain 'vm1'"):
        check_issued(_answer(other, ca), key, ca, "vm1")
    none = _issue(ca_key, ca, key.public_key(), "urn:vbios:role:admin")
    with pytest.raises(vc.CertificateMismatch, match="no single guest domain"):
        check_issued(_answer(none, ca), key, ca, "vm1")


def test_an_unreadable_answer_is_refused() -> None:
    _, ca = _ca()
    with pytest.raises(vc.CertificateMismatch, match="no readable certificate"):
        check_issued(NS(Certificate=b"junk", CaCertificate=b""), new_private_key(), ca, "vm1")
    with pytest.raises(vc.CertificateMismatch, match="no readable certificate"):
        check_issued(None, new_private_key(), ca, "vm1")


# -- when to renew -------------------------------------------------------------------


def test_renewal_is_due_when_less_than_a_third_of_the_lifetime_remains() -> None:
    ca_key, ca = _ca()
    cert = _issue(ca_key, ca, new_private_key().public_key(), *GUEST_URIS,
                  lifetime=timedelta(days=30))
    due = _renewal.renew_at(cert.not_valid_before_utc, cert.not_valid_after_utc)
    assert due == NOW + timedelta(days=20)
