"""FakeTpm keeps the attestation contract, and its quotes are real TPM wire format."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bios_ws.errors import TpmError, TpmUnavailable
from bios_ws.tpm.attest_format import parse_attest
from bios_ws.tpm.fake import FAKE_FIRMWARE_VERSION, FakeTpm
from tests.tpm_contract import AttestationContract, verify_quote_signature


@pytest.fixture
def tpm() -> Iterator[FakeTpm]:
    fake = FakeTpm()
    fake.ensure_storage_primary()
    yield fake
    fake.close()


@pytest.fixture
def ek_anchors(tpm: FakeTpm) -> list[bytes]:
    return [tpm.ek_ca_pem]


@pytest.fixture
def reboot(tpm: FakeTpm) -> Callable[[], None]:
    def run() -> None:
        tpm.platform_reset()
        tpm.startup_clear()

    return run


@pytest.fixture
def remove_ak(tpm: FakeTpm) -> Callable[[], None]:
    return tpm.clear


@pytest.fixture
def occupy_ak_handle(tpm: FakeTpm) -> Callable[[], None]:
    return tpm.occupy_ak_handle


class TestFakeTpmAttestation(AttestationContract):
    pass


def test_another_fake_tpms_ek_ca_is_refused(tpm: FakeTpm) -> None:
    with pytest.raises(TpmError, match="does not chain"):
        tpm.enroll_attestation_key([FakeTpm().ek_ca_pem])
    assert tpm.attestation_key_public() is None


def test_the_clock_moves_forward_at_every_quote(tpm: FakeTpm) -> None:
    tpm.enroll_attestation_key([tpm.ek_ca_pem])
    clocks = [parse_attest(tpm.quote(bytes(16), [0]).attest).clock for _ in range(5)]
    assert clocks == sorted(set(clocks))


def test_quote_fields_of_the_fake(tpm: FakeTpm) -> None:
    enrollment = tpm.enroll_attestation_key([tpm.ek_ca_pem])
    quote = tpm.quote(b"n" * 20, [23])
    parsed = parse_attest(quote.attest)
    assert parsed.firmware_version == FAKE_FIRMWARE_VERSION
    assert parsed.qualified_signer[:2] == b"\x00\x0b"
    assert parsed.qualified_signer != enrollment.ak_name
    assert (parsed.reset_count, parsed.restart_count) == (0, 0)
    verify_quote_signature(quote, enrollment.ak_public_pem)


def test_attestation_needs_a_reachable_started_tpm(tpm: FakeTpm) -> None:
    tpm.enroll_attestation_key([tpm.ek_ca_pem])
    tpm.available = False
    calls: list[Callable[[], object]] = [
        lambda: tpm.enroll_attestation_key([tpm.ek_ca_pem]),
        tpm.attestation_key_public,
        lambda: tpm.quote(bytes(16), [0]),
    ]
    for call in calls:
        with pytest.raises(TpmUnavailable, match="unreachable"):
            call()
    tpm.available = True
    tpm.platform_reset()
    for call in calls:
        with pytest.raises(TpmUnavailable, match="not started"):
            call()
    tpm.startup_clear()
    assert tpm.attestation_key_public() is not None


def test_clear_removes_the_ak_and_resets_the_counts(tpm: FakeTpm) -> None:
    tpm.enroll_attestation_key([tpm.ek_ca_pem])
    tpm.platform_reset()
    tpm.startup_clear()
    tpm.clear()
    assert tpm.attestation_key_public() is None
    tpm.enroll_attestation_key([tpm.ek_ca_pem])
    assert parse_attest(tpm.quote(bytes(16), [0]).attest).reset_count == 0


def test_inactive_bank_is_refused(tpm: FakeTpm) -> None:
    only256 = FakeTpm(banks=("sha256",))
    only256.enroll_attestation_key([only256.ek_ca_pem])
    with pytest.raises(TpmError, match="not active"):
        only256.quote(bytes(16), [0], "sha1")


def test_enrolling_over_a_foreign_object_keeps_refusing_until_cleared(tpm: FakeTpm) -> None:
    tpm.occupy_ak_handle()
    with pytest.raises(TpmError, match="foreign"):
        tpm.enroll_attestation_key([tpm.ek_ca_pem])
    tpm.clear()
    assert tpm.enroll_attestation_key([tpm.ek_ca_pem]).ak_name
