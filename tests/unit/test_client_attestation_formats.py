"""TPMS_ATTEST and TPMT_SIGNATURE parsing: a real swtpm quote, built quotes, hostile bytes."""

from __future__ import annotations

import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from vbios_client.attestation import FormatError, parse_attest, parse_signature
from vbios_client.attestation.tpm_formats import MAX_ATTEST_BYTES, MAX_SIGNATURE_BYTES

from tests.unit.test_client_attestation_support import (
    NONCE,
    marshal_attest,
    marshal_signature,
    selection_bytes,
    tpm2b,
)

# A quote by swtpm 0.9 (libtpms) over sha256 PCRs 0-7 with nonce b"n" * 32, its
# signature and the AK's public key (ECC P-256, ecdsa-sha256, under the EK).
SWTPM_ATTEST = bytes.fromhex(
    "ff54434780180022000be089800e0194e20161408fb8ae8f101700ac18df3ad0e8311d4e21edb6d585ae"
    "00206e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e0000000000000371"
    "000000020000000001201910230016363600000001000b03ff00000020d0a5b130443fcfa9268bdae3fa"
    "af66a136bd537325b7057e5be8abae9993c02a"
)
SWTPM_SIGNATURE = bytes.fromhex(
    "0018000b0020385c9d5c82a7cc5ccefead1f3a2286645cf51f85d9adccb00bc37629b7d7193a00206f4a"
    "ba6b55f2d4b238fb00164577ae2b1f7b0ff30d02c0a6237c8f3e9c80f193"
)
SWTPM_AK_PEM = b"""-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHqvIbcEfCGGKWkcG4fwX+K9WXIKU
UFC9ENGngxzDPXy7rKE50070lxsS1Ygt0ZK+4zitTFA+t8QX5IGIlRRb2Q==
-----END PUBLIC KEY-----
"""


def test_swtpm_quote_parses() -> None:
    quote = parse_attest(SWTPM_ATTEST)
    assert quote.magic == 0xFF544347 and quote.type == 0x8018
    assert quote.qualified_signer[:2] == b"\x00\x0b" and len(quote.qualified_signer) == 34
    assert quote.extra_data == b"n" * 32
    assert (quote.clock, quote.reset_count, quote.restart_count, quote.safe) == (881, 2, 0, True)
    assert quote.firmware_version == 0x2019102300163636
    assert quote.pcr_selection == {"sha256": (0, 1, 2, 3, 4, 5, 6, 7)}
    assert quote.pcr_digest.hex().startswith("d0a5b130") and len(quote.pcr_digest) == 32


def test_swtpm_signature_verifies_with_the_ak_key() -> None:
    signature = parse_signature(SWTPM_SIGNATURE)
    assert (signature.alg, signature.hash) == (0x0018, 0x000B)
    key = serialization.load_pem_public_key(SWTPM_AK_PEM)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    der = encode_dss_signature(signature.r, signature.s)
    key.verify(der, SWTPM_ATTEST, ec.ECDSA(hashes.SHA256()))
    tampered = SWTPM_ATTEST[:-1] + bytes([SWTPM_ATTEST[-1] ^ 1])
    with pytest.raises(InvalidSignature):
        key.verify(der, tampered, ec.ECDSA(hashes.SHA256()))


def test_built_quote_round_trips() -> None:
    attest = marshal_attest(extra=NONCE, digest=b"\x11" * 32, clock=7, reset_count=8,
                            restart_count=9, safe=0,
                            selection=selection_bytes([(0x0004, [0, 23]), (0x000B, [])]))
    quote = parse_attest(attest)
    assert quote.extra_data == NONCE and quote.pcr_digest == b"\x11" * 32
    assert (quote.clock, quote.reset_count, quote.restart_count, quote.safe) == (7, 8, 9, False)
    assert quote.pcr_selection == {"sha1": (0, 23), "sha256": ()}


def test_unknown_bank_gets_a_hex_name() -> None:
    quote = parse_attest(marshal_attest(selection=selection_bytes([(0x0099, [1])])))
    assert quote.pcr_selection == {"alg_0x0099": (1,)}


def test_magic_is_reported_not_refused() -> None:
    assert parse_attest(marshal_attest(magic=0x12345678)).magic == 0x12345678


@pytest.mark.parametrize(("attest", "message"), [
    (marshal_attest(kind=0x8017), "not TPM_ST_ATTEST_QUOTE"),
    (marshal_attest() + b"\0", "1 trailing bytes"),
    (marshal_attest(safe=2), "not a TPMI_YES_NO"),
    (marshal_attest(extra=bytes(67)), "extraData of 67 bytes exceeds 66"),
    (marshal_attest(signer=bytes(67)), "qualifiedSigner of 67 bytes"),
    (marshal_attest(digest=bytes(65)), "pcrDigest of 65 bytes exceeds 64"),
    (marshal_attest(selection=struct.pack(">I", 17)), "17 PCR selections exceeds 16"),
    (marshal_attest(selection=selection_bytes([(0x000B, [1])], size=5)), "sizeofSelect 5"),
    (marshal_attest(selection=selection_bytes([(0x000B, [1]), (0x000B, [2])])),
     "bank sha256 selected twice"),
    (b"\0" * (MAX_ATTEST_BYTES + 1), "exceeds"),
    (b"", "magic needs 4 bytes, 0 remain"),
])
def test_malformed_attest_is_refused(attest: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_attest(attest)


def test_attest_must_be_bytes() -> None:
    with pytest.raises(FormatError, match="must be bytes, not str"):
        parse_attest("ff54")  # type: ignore[arg-type]


def test_truncated_attest_at_every_length_names_the_offset() -> None:
    for length in range(len(SWTPM_ATTEST)):
        with pytest.raises(FormatError, match=r"truncated at offset \d+"):
            parse_attest(SWTPM_ATTEST[:length])


def test_truncated_signature_at_every_length_is_refused() -> None:
    for length in range(len(SWTPM_SIGNATURE)):
        with pytest.raises(FormatError, match=r"truncated at offset \d+"):
            parse_signature(SWTPM_SIGNATURE[:length])


def test_other_ecc_schemes_parse_and_keep_their_ids() -> None:
    signature = parse_signature(marshal_signature(5, 6, alg=0x001A, hash_alg=0x000C))
    assert (signature.alg, signature.hash, signature.r, signature.s) == (0x001A, 0x000C, 5, 6)


@pytest.mark.parametrize(("signature", "message"), [
    (struct.pack(">HH", 0x0014, 0x000B) + tpm2b(bytes(256)), "0x0014 is not an ECC"),
    (marshal_signature(1, 2) + b"\0", "1 trailing bytes at offset 72"),
    (struct.pack(">HH", 0x0018, 0x000B) + tpm2b(bytes(67)) + tpm2b(b"\1"),
     "signatureR of 67 bytes exceeds 66"),
    (b"\0" * (MAX_SIGNATURE_BYTES + 1), "exceeds"),
    (bytearray(), "sigAlg needs 2 bytes"),
])
def test_malformed_signature_is_refused(signature: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_signature(signature)


def test_format_error_is_a_value_error() -> None:
    assert issubclass(FormatError, ValueError)
