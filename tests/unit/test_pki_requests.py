"""Certificate requests a guest sends: each refusal names what is wrong (no I/O)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from bios_ws.errors import InvalidRequest
from bios_ws.pki.requests import checked_request

P256 = ec.generate_private_key(ec.SECP256R1())


def request(key: object = P256, cn: str | None = "g1", uris: tuple[str, ...] = (),
            ca: bool = False) -> bytes:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if uris:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)  # type: ignore[arg-type]


def test_a_good_request_gives_its_key() -> None:
    public = checked_request(request(uris=("urn:vbios:domain:g1",)), "g1")
    assert public == P256.public_key()
    assert checked_request(request(cn=None), "g1") == P256.public_key()
    rsa_key = rsa.generate_private_key(65537, 2048)
    assert checked_request(request(rsa_key), "g1") == rsa_key.public_key()


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "1 to 16384 bytes"),
    (b"\x30" * 20_000, "1 to 16384 bytes"),
    (b"\x30\x03\x02\x01\x00", "not a PKCS#10 request"),
    (request(cn="g2"), "asks for the name 'g2'"),
    (request(uris=("urn:vbios:role:admin",)), "asks for the names ['urn:vbios:role:admin']"),
    (request(uris=("urn:vbios:domain:g2",)), "may only ask to be urn:vbios:domain:g1"),
    (request(ca=True), "asks for a CA certificate"),
    (request(ec.generate_private_key(ec.SECP224R1())), "curve secp224r1"),
    (request(rsa.generate_private_key(65537, 1024)), "1024 bits"),
], ids=["empty", "huge", "garbage", "other-cn", "admin-uri", "other-domain", "ca", "weak-ec",
        "weak-rsa"])
def test_refusals(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason.replace("[", r"\[").replace("]", r"\]")):
        checked_request(data, "g1")


def test_a_request_signed_by_another_key_is_refused() -> None:
    genuine = x509.load_der_x509_csr(request())
    other = request(ec.generate_private_key(ec.SECP256R1()))
    forged = bytearray(other)
    # swap in the genuine request's public key: the signature no longer matches it
    own = genuine.public_key().public_bytes(Encoding.DER, _spki())
    theirs = x509.load_der_x509_csr(other).public_key().public_bytes(Encoding.DER, _spki())
    start = bytes(forged).index(theirs)
    forged[start:start + len(theirs)] = own
    with pytest.raises(InvalidRequest, match="signature does not verify"):
        checked_request(bytes(forged), "g1")


def _spki() -> object:
    from cryptography.hazmat.primitives.serialization import PublicFormat

    return PublicFormat.SubjectPublicKeyInfo
