"""verify_quote: a good quote is trusted; every tampering fails its own check, all are listed."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from vbios_client.attestation import CHECKS, ClockState, QuoteEvidence, Verdict, verify_quote

from bios_ws.domain.eventlog import write_event_log
from tests.unit.test_client_attestation_support import (
    AIK_OID,
    NONCE,
    NOW,
    Host,
    boot_events,
    host,
    make_ak_certificate,
    make_ca,
    marshal_attest,
    new_key,
    pem,
    sign,
)

BASE_CHECKS = CHECKS[:7]
PREVIOUS = ClockState(4000, 3, 1)  # the host's quotes are at ClockState(5000, 3, 1)


def verify(evidence: QuoteEvidence, *, nonce: bytes = NONCE, ca_pem: bytes | None = None,
           previous: ClockState | None = None) -> Verdict:
    return verify_quote(evidence, nonce=nonce, ca_pem=ca_pem or host().ca_pem,
                        previous=previous, now=NOW)


def failed(verdict: Verdict) -> set[str]:
    return {failure.check for failure in verdict.failures}


def detail(verdict: Verdict, check: str) -> str:
    return next(f.detail for f in verdict.failures if f.check == check)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def with_ak_certificate(der: bytes) -> QuoteEvidence:
    return host().evidence(ak_certificate=der)


# -- the good case ----------------------------------------------------------------


def test_good_quote_is_trusted() -> None:
    verdict = verify(host().evidence())
    assert verdict.trusted and verdict.authentic and verdict.failures == ()
    assert verdict.checks == BASE_CHECKS  # no previous state: counters and clock not run
    assert verdict.clock == ClockState(5000, 3, 1)
    assert verdict.bank == "sha256" and verdict.pcrs == host().pcrs
    assert verdict.events == len(boot_events())


def test_good_quote_with_previous_state_runs_every_check() -> None:
    verdict = verify(host().evidence(), previous=PREVIOUS)
    assert verdict.trusted and verdict.checks == CHECKS


def test_to_dict_is_json_ready() -> None:
    document = verify(host().evidence(nonce=b"x" * 32)).to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["trusted"] is False
    assert document["failures"] == [{"check": "nonce", "detail": document["failures"][0]["detail"]}]
    assert document["checks"] == list(BASE_CHECKS)
    assert document["clock"] == {"clock": 5000, "reset_count": 3, "restart_count": 1}
    assert document["bank"] == "sha256" and document["events"] == len(boot_events())
    assert document["pcrs"]["5"] == "00" * 32
    assert list(document["pcrs"]) == [str(index) for index in range(8)]


# -- one tampering, one failure ---------------------------------------------------


def test_old_nonce_fails_nonce_only() -> None:
    verdict = verify(host().evidence(nonce=b"o" * 32))
    assert failed(verdict) == {"nonce"} and not verdict.authentic
    assert "old or replayed" in detail(verdict, "nonce")


def test_flipped_signature_byte_fails_signature_only() -> None:
    evidence = host().evidence()
    for index in (10, len(evidence.signature) - 1):
        verdict = verify(dataclasses.replace(evidence, signature=flip(evidence.signature, index)))
        assert failed(verdict) == {"signature"}
        assert detail(verdict, "signature") == (
            "the AK signature over the attest bytes does not verify")


def test_flipped_attest_byte_fails_the_signature() -> None:
    evidence = host().evidence()
    clock_byte = 4 + 2 + (2 + 34) + (2 + 32) + 7  # last byte of clockInfo.clock
    verdict = verify(dataclasses.replace(evidence, attest=flip(evidence.attest, clock_byte)))
    assert failed(verdict) == {"signature"}
    nonce_byte = 4 + 2 + (2 + 34) + 2  # first byte of extraData
    verdict = verify(dataclasses.replace(evidence, attest=flip(evidence.attest, nonce_byte)))
    assert failed(verdict) == {"signature", "nonce"}


def test_other_signature_scheme_or_hash_fails_signature() -> None:
    evidence = host().evidence()
    ecdaa = dataclasses.replace(evidence, signature=sign(host().ak_key, evidence.attest,
                                                         alg=0x001A))
    assert "ECDAA (0x001a) is not ECDSA" in detail(verify(ecdaa), "signature")
    sha384 = dataclasses.replace(evidence, signature=sign(host().ak_key, evidence.attest,
                                                          hash_alg=0x000C))
    assert "0x000c is not SHA-256" in detail(verify(sha384), "signature")


def test_quote_signed_by_another_key_fails_signature() -> None:
    evidence = host().evidence()
    forged = dataclasses.replace(evidence, signature=sign(new_key(), evidence.attest))
    assert failed(verify(forged)) == {"signature"}


def test_wrong_magic_fails_attest_format() -> None:
    verdict = verify(host().evidence(attest=marshal_attest(magic=0xFF544348)))
    assert "not TPM_GENERATED_VALUE" in detail(verdict, "attest-format")


def test_changed_digest_byte_in_the_log_fails_event_log_only() -> None:
    events = boot_events()
    changed = events[2]
    digests = {bank: flip(value, 0) for bank, value in changed.digests.items()}
    events[2] = dataclasses.replace(changed, digests=digests)
    log = write_event_log(events, ["sha1", "sha256"])
    verdict = verify(host().evidence(event_log=log))
    assert failed(verdict) == {"event-log"} and verdict.authentic
    assert detail(verdict, "event-log").endswith("value of PCR 0")


def test_removed_event_fails_event_log() -> None:
    events = boot_events()
    del events[3]  # the EV_EFI_ACTION on PCR 1
    verdict = verify(host().evidence(event_log=write_event_log(events, ["sha1", "sha256"])))
    assert failed(verdict) == {"event-log"}
    assert "PCR 1" in detail(verdict, "event-log")


def test_quoted_pcr_without_events_must_be_zero() -> None:
    base = host()
    pcrs = {**base.pcrs, 5: b"\x05" * 32}
    verdict = verify(Host(base.ca, base.ak_key, base.ak_der, base.log, pcrs).evidence())
    assert failed(verdict) == {"event-log"}
    assert detail(verdict, "event-log").endswith("value of PCR 5")


def test_log_without_the_bank_says_so() -> None:
    log = write_event_log(boot_events(["sha1"]), ["sha1"])
    assert "the log has no sha256 digests" in detail(verify(host().evidence(event_log=log)),
                                                     "event-log")


def test_reported_pcr_value_not_quoted_fails_digest_and_log() -> None:
    evidence = host().evidence()
    pcrs = {**evidence.pcrs, 3: b"\x33" * 32}
    verdict = verify(dataclasses.replace(evidence, pcrs=pcrs))
    assert failed(verdict) == {"pcr-digest", "event-log"}


def test_selection_differing_from_the_reported_pcrs_fails() -> None:
    evidence = host().evidence()
    pcrs = {index: value for index, value in evidence.pcrs.items() if index != 7}
    verdict = verify(dataclasses.replace(evidence, pcrs=pcrs))
    assert failed(verdict) == {"pcr-selection", "pcr-digest"}
    assert detail(verdict, "pcr-selection") == (
        "the quote selects sha256:0,1,2,3,4,5,6,7, the server reports sha256:0,1,2,3,4,5,6")
    other_bank = dataclasses.replace(evidence, bank="sha1")
    assert {"pcr-selection", "pcr-digest", "event-log"} <= failed(verify(other_bank))


# -- the AK certificate -----------------------------------------------------------


def test_ak_certificate_from_another_ca_fails() -> None:
    key = host().ak_key.public_key()
    stranger = make_ak_certificate(make_ca("Another CA"), key)
    verdict = verify(with_ak_certificate(stranger))
    assert failed(verdict) == {"ak-certificate"}
    assert "not by the installation's CA 'CN=vBIOS test CA'" in detail(verdict, "ak-certificate")
    impostor = make_ak_certificate(make_ca("vBIOS test CA"), key)  # same name, other key
    verdict = verify(with_ak_certificate(impostor))
    assert detail(verdict, "ak-certificate") == (
        "the CA's signature on the AK certificate does not verify")


def test_expired_and_not_yet_valid_ak_certificates_fail() -> None:
    key = host().ak_key.public_key()
    expired = make_ak_certificate(host().ca, key, not_before=NOW - timedelta(days=30),
                                  not_after=NOW - timedelta(seconds=1))
    assert "expired at" in detail(verify(with_ak_certificate(expired)), "ak-certificate")
    future = make_ak_certificate(host().ca, key, not_before=NOW + timedelta(days=1))
    assert "not valid before" in detail(verify(with_ak_certificate(future)), "ak-certificate")


@pytest.mark.parametrize(("options", "message"), [
    ({"usages": [ExtendedKeyUsageOID.SERVER_AUTH]}, "lacks tcg-kp-AIKCertificate"),
    ({"usages": []}, "no ExtendedKeyUsage"),
    ({"digital_signature": False}, "KeyUsage lacks digitalSignature"),
    ({"key_usage": False}, "no KeyUsage"),
])
def test_ak_certificate_usage_is_required(options: dict[str, object], message: str) -> None:
    der = make_ak_certificate(host().ca, host().ak_key.public_key(), **options)  # type: ignore[arg-type]
    verdict = verify(with_ak_certificate(der))
    assert failed(verdict) == {"ak-certificate"} and message in detail(verdict, "ak-certificate")


def test_ak_on_another_curve_fails_signature_and_certificate() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    der = make_ak_certificate(host().ca, p384.public_key(), usages=[AIK_OID])
    verdict = verify(with_ak_certificate(der))
    assert failed(verdict) == {"signature", "ak-certificate"}
    assert "secp384r1, not P-256" in detail(verdict, "signature")


def test_ca_without_ca_flag_fails() -> None:
    not_ca = make_ca("Leaf posing as CA", ca=False)
    der = make_ak_certificate(not_ca, host().ak_key.public_key())
    verdict = verify(with_ak_certificate(der), ca_pem=pem(not_ca[0]))
    assert "not a CA" in detail(verdict, "ak-certificate")


def test_ca_bundle_with_several_certificates_finds_the_issuer() -> None:
    bundle = pem(make_ca("Other")[0]) + host().ca_pem
    assert verify(host().evidence(), ca_pem=bundle).trusted


@pytest.mark.parametrize("ca_pem", [b"not a PEM", b"-----BEGIN CERTIFICATE-----\nAAAA\n"
                                    b"-----END CERTIFICATE-----\n"])
def test_unreadable_ca_fails_ak_certificate(ca_pem: bytes) -> None:
    verdict = verify(host().evidence(), ca_pem=ca_pem)
    assert failed(verdict) == {"ak-certificate"}
    assert "CA certificate is unreadable" in detail(verdict, "ak-certificate")


# -- counters and clock -----------------------------------------------------------


@pytest.mark.parametrize(("previous", "check", "message"), [
    (ClockState(4000, 4, 0), "counters", "resetCount went back from 4 to 3"),
    (ClockState(4000, 3, 2), "counters",
     "restartCount went back from 2 to 1 with resetCount unchanged"),
    (ClockState(6000, 3, 1), "clock", "clock went from 6000 to 5000 ms within one boot"),
    (ClockState(5000, 3, 1), "clock", "clock went from 5000 to 5000 ms within one boot"),
    # a TPM Restart or Resume follows an orderly shutdown, which saved the clock
    (ClockState(6000, 3, 0), "clock",
     "clock went from 6000 to 5000 ms with resetCount 3 unchanged (no reboot)"),
])
def test_state_going_backwards_fails(previous: ClockState, check: str, message: str) -> None:
    verdict = verify(host().evidence(), previous=previous)
    assert detail(verdict, check) == message
    assert check in failed(verdict) and verdict.authentic


def test_backwards_clock_without_a_reboot_names_safe() -> None:
    verdict = verify(host().evidence(safe=0), previous=ClockState(9000, 3, 1))
    assert failed(verdict) == {"clock"}
    assert "within one boot (safe=NO" in detail(verdict, "clock")


@pytest.mark.parametrize("previous", [
    ClockState(4999, 3, 1),  # same boot, clock moved on
    ClockState(5000, 2, 7),  # reboot: restartCount zeroed, equal clock allowed
    ClockState(5000, 3, 0),  # resume (TPM Restart): clock equal allowed
    ClockState(0, 0, 0),
])
def test_state_moving_forward_passes(previous: ClockState) -> None:
    assert verify(host().evidence(), previous=previous).trusted


@pytest.mark.parametrize("safe", [0, 1])
@pytest.mark.parametrize("previous", [
    ClockState(242779, 2, 0),  # `vbios tpm reboot` on swtpm: the clock resumed from its save
    ClockState(6000, 2, 9),
    ClockState(2**40, 0, 0),
])
def test_a_clock_that_went_back_with_a_higher_reset_count_is_a_reboot(
        previous: ClockState, safe: int) -> None:
    # safe=NO right after the reset; YES again once the TPM saved its clock
    verdict = verify(host().evidence(safe=safe), previous=previous)
    assert verdict.trusted, verdict.failures
    assert "clock" in verdict.checks


# -- several failures, hostile bytes ----------------------------------------------


def test_several_failures_are_all_listed() -> None:
    expired = make_ak_certificate(host().ca, host().ak_key.public_key(),
                                  not_before=NOW - timedelta(days=9),
                                  not_after=NOW - timedelta(days=1))
    events = boot_events()[:-1]
    evidence = host().evidence(nonce=b"o" * 32, ak_certificate=expired,
                               event_log=write_event_log(events, ["sha1", "sha256"]))
    verdict = verify(evidence, previous=ClockState(1, 9, 0))
    assert failed(verdict) == {"nonce", "ak-certificate", "event-log", "counters"}
    assert [f.check for f in verdict.failures] == ["ak-certificate", "nonce", "event-log",
                                                   "counters"]


def test_garbage_everywhere_gives_failures_not_exceptions() -> None:
    evidence = QuoteEvidence(b"\xff" * 50, b"\x00", "md5", {99: b""}, b"\x30\x03", b"junk")
    verdict = verify(evidence, previous=PREVIOUS)
    assert failed(verdict) == set(CHECKS) and verdict.clock is None and verdict.events is None
    assert detail(verdict, "attest-format").startswith("attest unreadable: TPMS_ATTEST")
    assert detail(verdict, "event-log").startswith("event log unreadable: event log truncated")
    assert verdict.pcrs == {} and not verdict.authentic


@pytest.mark.parametrize("pcrs", [{0: b"short"}, {True: bytes(32)}, {32: bytes(32)},
                                  {0: "00" * 32}, {}, [bytes(32)]])
def test_malformed_reported_pcrs_fail(pcrs: object) -> None:
    verdict = verify(host().evidence(pcrs=pcrs))
    assert {"pcr-selection", "pcr-digest", "event-log"} <= failed(verdict)
    assert detail(verdict, "pcr-digest").startswith("reported PCRs unreadable")


def test_non_bytes_evidence_gives_failures() -> None:
    evidence = QuoteEvidence("a", None, 7, None, "cert", 3)  # type: ignore[arg-type]
    verdict = verify(evidence, previous=PREVIOUS)
    assert failed(verdict) == set(CHECKS) and verdict.bank == "7"


@pytest.mark.parametrize("field", ["attest", "signature", "ak_certificate", "event_log"])
def test_truncated_inputs_at_every_length_never_raise(field: str) -> None:
    evidence = host().evidence()
    whole: bytes = getattr(evidence, field)
    for length in range(len(whole)):
        truncated: dict[str, Any] = {field: whole[:length]}
        verdict = verify(dataclasses.replace(evidence, **truncated), previous=PREVIOUS)
        assert not verdict.trusted and verdict.failures


def test_caller_mistakes_raise() -> None:
    evidence = host().evidence()
    with pytest.raises(ValueError, match=r"16\.\.64 bytes"):
        verify_quote(evidence, nonce=b"short", ca_pem=host().ca_pem)
    with pytest.raises(TypeError, match="nonce must be bytes"):
        verify_quote(evidence, nonce="n" * 32, ca_pem=host().ca_pem)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_quote(evidence, nonce=NONCE, ca_pem=host().ca_pem, now=NOW.replace(tzinfo=None))


def test_default_now_is_the_current_time() -> None:
    current = datetime.now(UTC)
    valid_now = make_ak_certificate(host().ca, host().ak_key.public_key(),
                                    not_before=current - timedelta(days=1),
                                    not_after=current + timedelta(days=1))
    long_ago = make_ak_certificate(host().ca, host().ak_key.public_key(),
                                   not_before=current - timedelta(days=9),
                                   not_after=current - timedelta(days=1))
    evidence = with_ak_certificate(valid_now)
    assert verify_quote(evidence, nonce=NONCE, ca_pem=host().ca_pem).trusted
    expired = verify_quote(with_ak_certificate(long_ago), nonce=NONCE, ca_pem=host().ca_pem)
    assert failed(expired) == {"ak-certificate"}


def test_oversized_attest_is_not_even_hashed() -> None:
    evidence = host().evidence(attest=bytes(4097))
    verdict = verify(evidence)
    assert detail(verdict, "signature") == "attest unreadable: attest of 4097 bytes exceeds 4096"
