"""EK certificate verification: chain walk to a self-signed anchor, key match, every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bios_ws.errors import TpmError
from bios_ws.tpm.ekcert import load_anchors, verify_ek_certificate

NOW = datetime(2026, 11, 1, tzinfo=UTC)
Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(subject: x509.Name, key: Key, issuer: x509.Name, issuer_key: Key, *,
              ca: bool, start: datetime = NOW - timedelta(days=1),
              end: datetime = NOW + timedelta(days=365), cert_sign: bool = True,
              with_constraints: bool = True) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
    )
    if with_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                        critical=True)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    else:  # shaped like a TPM vendor's EK certificate: empty subject, critical SAN dirName
        tpm = x509.Name([x509.NameAttribute(x509.ObjectIdentifier("2.23.133.2.1"),
                                            "id:53544D20")])
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DirectoryName(tpm)]),
                                        critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def public_pem(key: Key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


class Chain:
    def __init__(self) -> None:
        self.root_key, self.mid_key, self.ek_key = (ec.generate_private_key(ec.SECP256R1())
                                                    for _ in range(3))
        self.root = make_cert(_name("root"), self.root_key, _name("root"), self.root_key,
                              ca=True)
        self.mid = make_cert(_name("mid"), self.mid_key, _name("root"), self.root_key, ca=True)
        self.ek = make_cert(x509.Name([]), self.ek_key, _name("mid"), self.mid_key, ca=False)

    @property
    def ek_der(self) -> bytes:
        return self.ek.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain()


def verify(chain: Chain, anchors: list[bytes], ek_der: bytes | None = None,
           ek_public: bytes | None = None) -> None:
    verify_ek_certificate(ek_der or chain.ek_der, anchors, ek_public or public_pem(chain.ek_key),
                          NOW)


def test_chain_through_an_intermediate_to_the_root(chain: Chain) -> None:
    verify(chain, [pem(chain.root), pem(chain.mid)])
    verify(chain, [pem(chain.root) + pem(chain.mid)])  # one bundle file


def test_direct_issue_by_a_root(chain: Chain) -> None:
    ek = make_cert(x509.Name([]), chain.ek_key, _name("root"), chain.root_key, ca=False)
    verify(chain, [pem(chain.root)], ek.public_bytes(serialization.Encoding.DER))


def test_the_chain_must_end_at_a_self_signed_anchor(chain: Chain) -> None:
    with pytest.raises(TpmError, match=r"does not chain to a trusted EK CA.*'CN=mid'"):
        verify(chain, [pem(chain.mid)])  # the intermediate alone is not enough
    with pytest.raises(TpmError, match=r"does not chain.*issuer 'CN=mid'"):
        verify(chain, [pem(chain.root)])  # the intermediate is missing


def test_a_same_named_ca_with_another_key_is_refused(chain: Chain) -> None:
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = make_cert(_name("mid"), impostor_key, _name("mid"), impostor_key, ca=True)
    with pytest.raises(TpmError, match="does not chain"):
        verify(chain, [pem(impostor)])


def test_issuers_must_be_ca_certificates(chain: Chain) -> None:
    for kwargs in ({"ca": False}, {"ca": True, "cert_sign": False},
                   {"ca": False, "with_constraints": False}):
        mid = make_cert(_name("mid"), chain.mid_key, _name("root"), chain.root_key,
                        **kwargs)  # type: ignore[arg-type]
        with pytest.raises(TpmError, match="does not chain"):
            verify(chain, [pem(chain.root), pem(mid)])


def test_expired_or_future_certificates_are_refused(chain: Chain) -> None:
    old = make_cert(x509.Name([]), chain.ek_key, _name("mid"), chain.mid_key, ca=False,
                    start=NOW - timedelta(days=20), end=NOW - timedelta(days=1))
    with pytest.raises(TpmError, match=r"EK certificate .* is not valid now"):
        verify(chain, [pem(chain.root), pem(chain.mid)], old.public_bytes(
            serialization.Encoding.DER))
    future_mid = make_cert(_name("mid"), chain.mid_key, _name("root"), chain.root_key, ca=True,
                           start=NOW + timedelta(days=1))
    with pytest.raises(TpmError, match="does not chain"):
        verify(chain, [pem(chain.root), pem(future_mid)])


def test_the_certificate_must_certify_this_ek(chain: Chain) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TpmError, match="does not certify this TPM's endorsement key"):
        verify(chain, [pem(chain.root), pem(chain.mid)], ek_public=public_pem(other))


def test_damaged_input_is_refused(chain: Chain) -> None:
    anchors = [pem(chain.root), pem(chain.mid)]
    for der, match in ((b"", "1 to"), (b"\x30\x03abc", "not a readable X.509"),
                       (bytes(20000), "1 to")):
        with pytest.raises(TpmError, match=match):
            verify_ek_certificate(der, anchors, public_pem(chain.ek_key), NOW)
    with pytest.raises(TpmError, match="not readable PEM"):
        verify_ek_certificate(chain.ek_der, anchors, b"junk", NOW)
    for bad_anchors, match in (([], "no EK trust anchor"), ([b"junk"], "no readable PEM"),
                               ([b"x" * 300_000], "at most")):
        with pytest.raises(TpmError, match=match):
            load_anchors(bad_anchors)
