"""What vbios-client reads without requests or cryptography: the certificate's validity
(compared with cryptography's), the http.client sender's TLS context and answer bound,
the requests sender's answer bound (no I/O: in-memory answers, no connection)."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from requests.structures import CaseInsensitiveDict
from vbios_client import _cert_validity, _https, _soap, _xml
from vbios_client.exceptions import TransportError


def _certificate(not_before: datetime, not_after: datetime
                 ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vm1 " + "x" * 40)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), True))
    return builder.sign(key, hashes.SHA256()), key


@pytest.mark.parametrize(("not_before", "not_after"), [
    (datetime(2026, 11, 30, 9, 0, 1, tzinfo=UTC), datetime(2028, 11, 29, 9, 0, tzinfo=UTC)),
    (datetime(1999, 1, 1, tzinfo=UTC), datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)),
    (datetime(2026, 1, 1, tzinfo=UTC), datetime(2051, 6, 1, 12, tzinfo=UTC)),  # GeneralizedTime
])
def test_validity_is_cryptography_s(not_before: datetime, not_after: datetime) -> None:
    cert, _ = _certificate(not_before, not_after)
    pem = cert.public_bytes(Encoding.PEM)
    assert _cert_validity.validity(b"# the bundle's certificate\n" + pem + pem) == (
        cert.not_valid_before_utc, cert.not_valid_after_utc)


@pytest.mark.parametrize("pem", [
    b"", b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
])
def test_unreadable_certificates_give_no_date(pem: bytes) -> None:
    with pytest.raises(ValueError):
        _cert_validity.validity(pem)


def test_a_truncated_certificate_gives_no_date() -> None:
    cert, _ = _certificate(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    der = cert.public_bytes(Encoding.DER)
    for cut in (10, 40, 120):
        pem = b"-----BEGIN CERTIFICATE-----\n" + base64.b64encode(der[:cut]) + \
            b"\n-----END CERTIFICATE-----\n"
        with pytest.raises(ValueError):
            _cert_validity.validity(pem)


# -- the http.client sender ---------------------------------------------------------------


def _bundle(tmp_path: Path) -> tuple[Path, Path, Path]:
    now = datetime.now(UTC)
    cert, key = _certificate(now - timedelta(hours=1), now + timedelta(days=1))
    paths = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    paths[0].write_bytes(cert.public_bytes(Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    paths[2].write_bytes(cert.public_bytes(Encoding.PEM))
    return paths


def test_the_context_trusts_the_bundle_s_ca_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key, ca = _bundle(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    context = _https._client_context(str(cert), str(key), str(ca))
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "vm1 " + "x" * 40),),)]
    assert context.check_hostname and context.minimum_version.name == "TLSv1_2"


def test_missing_files_are_refused_before_any_connection(tmp_path: Path) -> None:
    cert, _, ca = _bundle(tmp_path)
    with pytest.raises(ValueError, match="not a readable file"):
        _https.HttpsSender(cert, tmp_path / "nokey.pem", ca)


# -- the requests sender's bound ----------------------------------------------------------


def _streamed(body: bytes, declared: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers = CaseInsensitiveDict({"Content-Length": declared} if declared else {})
    response.raw = io.BytesIO(body)
    return response


def test_an_answer_is_read_whole_under_the_bound() -> None:
    assert _soap._bounded("https://h/", "GetAttributes", _streamed(b"x" * 1000)) == b"x" * 1000


@pytest.mark.parametrize("declared", [None, "40", str(10**12)])
def test_an_answer_over_the_bound_is_not_read_on(monkeypatch: pytest.MonkeyPatch,
                                                 declared: str | None) -> None:
    monkeypatch.setattr(_xml, "MAX_ANSWER_BYTES", 32)
    raw = _streamed(b"y" * (1024 * 1024), declared)
    with pytest.raises(TransportError, match="answer to GetAttributes is longer than 32"):
        _soap._bounded("https://h/", "GetAttributes", raw)
    assert raw.raw.tell() <= 256 * 1024
