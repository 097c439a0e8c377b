"""The quote wire format: marshalling round trips, and hostile input refused with clear errors."""

from __future__ import annotations

import hashlib
import struct

import pytest

from bios_ws.tpm.attest_format import (
    TPM_GENERATED_VALUE,
    check_ak_name,
    check_quote,
    marshal_ak_public,
    marshal_attest,
    marshal_ecdsa_signature,
    marshal_quote_info,
    object_name,
    parse_attest,
    parse_ecdsa_signature,
    pcr_digest,
)

NONCE = b"fresh nonce 0123"
VALUES = {0: bytes(32), 7: b"\x07" * 32, 23: b"\x17" * 32}
#: A quote made by swtpm 0.7 (tpm2-pytss, AK under the EK): sha256 PCRs 0-7, nonce "n" * 32.
SWTPM_ATTEST = bytes.fromhex(
    "ff54434780180022000be089800e0194e20161408fb8ae8f101700ac18df3ad0e8311d4e21edb6d585ae"
    "00206e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e"
    "0000000000000371" "00000002" "00000000" "01" "2019102300163636"
    "00000001000b03ff0000"
    "0020d0a5b130443fcfa9268bdae3faaf66a136bd537325b7057e5be8abae9993c02a"
)


def make_attest(**changes: object) -> bytes:
    fields: dict[str, object] = {
        "qualified_signer": b"\x00\x0b" + bytes(32), "extra_data": NONCE, "clock": 1000,
        "reset_count": 2, "restart_count": 0, "safe": True, "firmware_version": 7,
        "quote_info": marshal_quote_info("sha256", sorted(VALUES), pcr_digest(VALUES)),
    }
    fields.update(changes)
    return marshal_attest(**fields)  # type: ignore[arg-type]


def test_a_real_swtpm_quote_parses() -> None:
    parsed = parse_attest(SWTPM_ATTEST)
    assert parsed.magic == TPM_GENERATED_VALUE
    assert parsed.extra_data == b"n" * 32
    assert (parsed.clock, parsed.reset_count, parsed.restart_count, parsed.safe) == (
        881, 2, 0, True)
    assert parsed.pcr_selection == (("sha256", tuple(range(8))),)
    assert len(parsed.qualified_signer) == 34 and len(parsed.pcr_digest) == 32


def test_marshal_parse_round_trip_and_check() -> None:
    attest = make_attest()
    parsed = check_quote(attest, NONCE, "sha256", VALUES)
    assert parsed.pcr_selection == (("sha256", (0, 7, 23)),)
    assert parsed.pcr_digest == hashlib.sha256(b"".join(VALUES[i] for i in (0, 7, 23))).digest()
    assert (parsed.clock, parsed.reset_count, parsed.firmware_version) == (1000, 2, 7)


def test_check_quote_names_each_mismatch() -> None:
    attest = make_attest()
    with pytest.raises(ValueError, match="another nonce"):
        check_quote(attest, b"other nonce 01234", "sha256", VALUES)
    with pytest.raises(ValueError, match="other PCRs"):
        check_quote(attest, NONCE, "sha1", VALUES)
    with pytest.raises(ValueError, match="other PCRs"):
        check_quote(attest, NONCE, "sha256", {0: bytes(32), 7: b"\x07" * 32})
    with pytest.raises(ValueError, match="digest differs"):
        check_quote(attest, NONCE, "sha256", {**VALUES, 7: bytes(32)})
    forged = struct.pack(">I", 0x12345678) + attest[4:]
    with pytest.raises(ValueError, match="magic"):
        check_quote(forged, NONCE, "sha256", VALUES)


def test_hostile_attestation_data_is_refused() -> None:
    attest = make_attest()
    safe_at = 4 + 2 + (2 + 34) + (2 + len(NONCE)) + 8 + 4 + 4
    assert attest[safe_at] == 1
    cases = [
        (attest[:-1], "truncated"),
        (attest + b"\x00", "trailing bytes"),
        (attest[:4] + b"\x80\x17" + attest[6:], "not a quote"),
        (attest[:6] + b"\x01\x00" + attest[8:], "a field of 256 bytes exceeds 66"),
        (attest + bytes(1024), "at most 1024"),
        (make_attest(quote_info=bytes.fromhex("000000019999030100000000")), "unknown PCR bank"),
        (make_attest(quote_info=struct.pack(">I", 99)), "99 PCR banks selected"),
        (make_attest(quote_info=bytes.fromhex("00000001000b09") + bytes(11)), "bitmap of 9"),
        (attest[:safe_at] + b"\x02" + attest[safe_at + 1:], "not a boolean"),
        (b"", "truncated"),
    ]
    for data, reason in cases:
        with pytest.raises(ValueError, match=reason):
            parse_attest(data)
    with pytest.raises(ValueError, match="must be bytes"):
        parse_attest("text")  # type: ignore[arg-type]


def test_ecdsa_signature_round_trip_and_refusals() -> None:
    signature = marshal_ecdsa_signature(12345, 67890)
    assert len(signature) == 4 + 2 * (2 + 32)
    assert parse_ecdsa_signature(signature) == (12345, 67890)
    for bad, why in (
        (b"\x00\x14" + signature[2:], "not ECDSA"),  # RSASSA
        (signature[:2] + b"\x00\x04" + signature[4:], "not ECDSA"),  # SHA-1
        (signature + b"\x00", "trailing"),
        (signature[:-1], "truncated"),
        (marshal_ecdsa_signature(0, 1), "zero"),
        (bytes(300), "at most"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_ecdsa_signature(bad)


def test_ak_public_area_and_name() -> None:
    area = marshal_ak_public(b"\x01" * 32, b"\x02" * 32)
    assert area[:8] == bytes.fromhex("0023000b00050472")
    name = object_name(area)
    assert name == b"\x00\x0b" + hashlib.sha256(area).digest()
    assert check_ak_name(name) == name
    with pytest.raises(ValueError):
        marshal_ak_public(b"\x01" * 31, b"\x02" * 32)
    for bad in (name[:-1], b"\x00\x04" + name[2:], name + b"\x00"):
        with pytest.raises(ValueError, match="AK name"):
            check_ak_name(bad)
