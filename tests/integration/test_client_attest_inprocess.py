"""The guest library's attestation against the in-process app over a FakeTpm host.

``BiosClient.attest`` asks for a quote with a fresh nonce and checks it by itself:
trusted on a good host, across quotes (counters, clock) and reboots; each kind of
tampering fails its own check only. The server's-word methods decode into the
library's models, and a write on a restricted host raises ServiceRestricted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import vbios_client as vc
from vbios_client import integrity
from vbios_client.attestation import (
    CHECKS,
    ClockState,
    ClockStore,
    QuoteEvidence,
    Verdict,
    verify_quote,
)

from bios_ws.domain.eventlog import parse_event_log
from bios_ws.pki import certs
from bios_ws.tpm.bootlog import BootManifest, shipped_manifest_text
from tests.attested_host import (
    AttestedHost,
    build_attested_host,
    ca_pem,
    enroll_attestation_key,
    guest_client,
)

NONCE_A = b"nonce-A-0123456789abcdef"
NONCE_B = b"nonce-B-0123456789abcdef"
BASE_CHECKS = CHECKS[:7]  # without a previous quote: no counters, no clock


@pytest.fixture
def host() -> AttestedHost:
    host = build_attested_host()
    host.set_reference_from_log()
    return host


@pytest.fixture
def ca(host: AttestedHost) -> bytes:
    return ca_pem(enroll_attestation_key(host))


@pytest.fixture
def client(host: AttestedHost) -> Iterator[vc.BiosClient]:
    with guest_client(host.app, host.guest) as client:
        yield client


def failed(verdict: Verdict) -> list[str]:
    return [failure.check for failure in verdict.failures]


def tamper(host: AttestedHost, pcr: int = 4) -> None:
    """A runtime extend without a logged event (as tests/integration/test_restricted_mode)."""
    host.tpm.pcr_extend(pcr, {bank: hashlib.new(bank, b"rootkit").digest()
                              for bank in host.tpm.active_banks()})


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


# -- attest(): trusted, over time ---------------------------------------------------------


def test_good_host_is_trusted(client: vc.BiosClient, host: AttestedHost, ca: bytes) -> None:
    verdict = client.attest(ca_pem=ca)
    assert verdict.trusted and verdict.authentic, verdict.failures
    assert verdict.checks == BASE_CHECKS
    assert verdict.bank == "sha256"
    assert verdict.pcrs == host.tpm.pcr_read(range(8), "sha256")
    assert host.event_log is not None
    assert verdict.events == len([e for e in parse_event_log(host.event_log)
                                  if e.type_name != "EV_NO_ACTION"])


def test_selection_and_bank_are_passed_and_checked(client: vc.BiosClient, host: AttestedHost,
                                                   ca: bytes) -> None:
    verdict = client.attest([0, 1, 2, 3, 7], "sha1", ca_pem=ca)
    assert verdict.trusted, verdict.failures
    assert verdict.bank == "sha1"
    assert verdict.pcrs == host.tpm.pcr_read([0, 1, 2, 3, 7], "sha1")


def test_second_attest_checks_counters_and_clock(client: vc.BiosClient, ca: bytes) -> None:
    first = client.attest(ca_pem=ca)
    second = client.attest(ca_pem=ca)
    assert second.trusted, second.failures
    assert "counters" in second.checks and "clock" in second.checks
    assert second.checks == CHECKS
    assert first.clock is not None and second.clock is not None
    assert second.clock.clock > first.clock.clock
    assert (second.clock.reset_count, second.clock.restart_count) == (
        first.clock.reset_count, first.clock.restart_count)


def test_still_trusted_after_a_reboot(client: vc.BiosClient, host: AttestedHost,
                                      ca: bytes) -> None:
    before = client.attest(ca_pem=ca)
    host.reboot()
    after = client.attest(ca_pem=ca)
    assert after.trusted, after.failures
    assert after.checks == CHECKS
    assert before.clock is not None and after.clock is not None
    assert after.clock.reset_count == before.clock.reset_count + 1
    assert after.clock.restart_count == 0


def test_clock_store_carries_the_state_across_clients(host: AttestedHost, ca: bytes,
                                                      tmp_path: Path) -> None:
    store = ClockStore(tmp_path / "clock.json")
    with guest_client(host.app, host.guest) as first:
        assert first.attest(ca_pem=ca, clock_store=store).checks == BASE_CHECKS
    assert stat.S_IMODE((tmp_path / "clock.json").stat().st_mode) == 0o600
    with guest_client(host.app, host.guest) as second:
        verdict = second.attest(ca_pem=ca, clock_store=store)
    assert verdict.trusted and verdict.checks == CHECKS


def remembered(store: ClockStore, client: vc.BiosClient, host: AttestedHost) -> ClockState | None:
    assert host.ak_certificate is not None
    return store.load(client.url, host.ak_certificate)


def test_counters_that_went_back_fail_counters_only(client: vc.BiosClient, host: AttestedHost,
                                                    ca: bytes, tmp_path: Path) -> None:
    store = ClockStore(tmp_path / "clock.json")
    assert host.ak_certificate is not None
    store.save(client.url, host.ak_certificate, ClockState(0, 5, 0))  # a later boot was seen
    verdict = client.attest(ca_pem=ca, clock_store=store)
    assert failed(verdict) == ["counters"] and verdict.authentic
    # a failed verification leaves the state as it was: the next quote fails as well
    assert remembered(store, client, host) == ClockState(0, 5, 0)
    assert failed(client.attest(ca_pem=ca, clock_store=store)) == ["counters"]


def test_clock_that_went_back_fails_clock_only(client: vc.BiosClient, host: AttestedHost,
                                               ca: bytes, tmp_path: Path) -> None:
    store = ClockStore(tmp_path / "clock.json")
    assert host.ak_certificate is not None
    store.save(client.url, host.ak_certificate, ClockState(10**12, 0, 0))
    assert failed(client.attest(ca_pem=ca, clock_store=store)) == ["clock"]
    assert failed(client.attest(ca_pem=ca, clock_store=store)) == ["clock"]  # not overwritten
    assert remembered(store, client, host) == ClockState(10**12, 0, 0)


def test_a_clock_that_went_back_across_a_reboot_passes_and_is_remembered(
        client: vc.BiosClient, host: AttestedHost, ca: bytes, tmp_path: Path) -> None:
    store = ClockStore(tmp_path / "clock.json")
    assert host.ak_certificate is not None
    store.save(client.url, host.ak_certificate, ClockState(10**12, 0, 0))  # before the reboot
    host.reboot()
    verdict = client.attest(ca_pem=ca, clock_store=store)
    assert verdict.trusted and verdict.checks == CHECKS, verdict.failures
    assert remembered(store, client, host) == verdict.clock


def test_attest_holds_the_store_lock_from_quote_to_save(
        host: AttestedHost, ca: bytes, tmp_path: Path) -> None:
    store = ClockStore(tmp_path / "clock.json")
    verdicts: list[Verdict] = []

    def attest() -> None:
        with guest_client(host.app, host.guest) as other:
            verdicts.append(other.attest(ca_pem=ca, clock_store=ClockStore(store.path)))
            assert remembered(store, other, host) == verdicts[0].clock

    with store.locked():
        opened = host.opened
        running = threading.Thread(target=attest)
        running.start()
        running.join(timeout=1.0)
        assert running.is_alive() and host.opened == opened  # no quote asked for yet
    running.join(timeout=30)
    assert [v.trusted for v in verdicts] == [True]


def test_a_quote_failing_authenticity_is_not_remembered(client: vc.BiosClient, host: AttestedHost,
                                                        tmp_path: Path) -> None:
    enroll_attestation_key(host)
    other_ca = ca_pem(certs.make_ca(datetime.now(UTC)))
    store = ClockStore(tmp_path / "clock.json")
    verdict = client.attest(ca_pem=other_ca, clock_store=store)
    assert failed(verdict) == ["ak-certificate"] and not verdict.authentic
    assert not (tmp_path / "clock.json").exists()


# -- attest(): each tampering fails its own check ---------------------------------------


def test_runtime_extend_fails_the_event_log_only(client: vc.BiosClient, host: AttestedHost,
                                                 ca: bytes) -> None:
    client.attest(ca_pem=ca)
    tamper(host, 4)
    verdict = client.attest(ca_pem=ca)
    assert failed(verdict) == ["event-log"]
    assert "PCR 4" in verdict.failures[0].detail
    assert verdict.checks == CHECKS  # signature, nonce, counters, clock ... all ran and passed
    assert verdict.authentic


def test_ak_certificate_of_another_ca_fails_ak_certificate_only(
    client: vc.BiosClient, host: AttestedHost, ca: bytes
) -> None:
    other = ca_pem(certs.make_ca(datetime.now(UTC)))
    verdict = client.attest(ca_pem=other)
    assert failed(verdict) == ["ak-certificate"]


def test_no_ca_to_verify_with_is_a_value_error(client: vc.BiosClient, ca: bytes) -> None:
    with pytest.raises(ValueError, match="no CA certificate"):
        client.attest()


@pytest.fixture
def evidence(client: vc.BiosClient, ca: bytes) -> QuoteEvidence:
    return client.get_quote(NONCE_A)


def verify(evidence: QuoteEvidence, ca: bytes, nonce: bytes = NONCE_A) -> Verdict:
    return verify_quote(evidence, nonce=nonce, ca_pem=ca)


def test_quote_as_received_verifies(evidence: QuoteEvidence, host: AttestedHost,
                                    ca: bytes) -> None:
    assert verify(evidence, ca).trusted
    assert evidence.ak_certificate == host.ak_certificate
    assert evidence.event_log == host.event_log


def test_replayed_quote_fails_the_nonce_only(evidence: QuoteEvidence, ca: bytes) -> None:
    verdict = verify(evidence, ca, nonce=NONCE_B)
    assert failed(verdict) == ["nonce"]
    assert not verdict.authentic


@pytest.mark.parametrize("index", [10, -1])  # a byte of r, the last byte of s
def test_flipped_signature_byte_fails_the_signature_only(evidence: QuoteEvidence, ca: bytes,
                                                         index: int) -> None:
    forged = dataclasses.replace(evidence, signature=flip(evidence.signature,
                                                          index % len(evidence.signature)))
    assert failed(verify(forged, ca)) == ["signature"]


def test_tampered_event_log_fails_the_event_log_only(evidence: QuoteEvidence, host: AttestedHost,
                                                     ca: bytes) -> None:
    text = shipped_manifest_text().replace("PEI firmware volume 1.0.0",
                                           "PEI firmware volume 6.6.6")
    other_log = BootManifest.from_json(text).event_log(host.tpm.active_banks())
    assert other_log != evidence.event_log
    verdict = verify(dataclasses.replace(evidence, event_log=other_log), ca)
    assert failed(verdict) == ["event-log"]
    assert "PCR 0" in verdict.failures[0].detail


def test_reported_pcr_that_differs_from_the_quote_fails(evidence: QuoteEvidence,
                                                       ca: bytes) -> None:
    pcrs = dict(evidence.pcrs)
    pcrs[7] = bytes(32)
    verdict = verify(dataclasses.replace(evidence, pcrs=pcrs), ca)
    assert "pcr-digest" in failed(verdict) and "event-log" in failed(verdict)
    assert "signature" not in failed(verdict)


def test_quote_argument_checks(client: vc.BiosClient, ca: bytes) -> None:
    with pytest.raises(TypeError):
        client.get_quote("not bytes")  # type: ignore[arg-type]
    with pytest.raises(vc.InvalidRequest):
        client.get_quote(b"short")
    with pytest.raises(vc.InvalidRequest):
        client.get_quote(NONCE_A, [24])
    with pytest.raises(vc.InvalidRequest):
        client.get_quote(NONCE_A, bank="md5")


def test_host_without_ak_certificate_raises_attestation_unavailable(
    client: vc.BiosClient,
) -> None:
    with pytest.raises(vc.AttestationUnavailable):
        client.attest(ca_pem=b"unused")


def test_quote_over_all_24_pcrs_of_a_good_host_is_trusted(client: vc.BiosClient,
                                                          ca: bytes) -> None:
    verdict = client.attest(list(range(24)), ca_pem=ca)
    assert verdict.trusted, verdict.failures


def test_quote_over_pcrs_without_events_that_start_at_zero_is_trusted(
    client: vc.BiosClient, ca: bytes
) -> None:
    assert client.attest([16, 23], ca_pem=ca).trusted


# -- the server's word ------------------------------------------------------------------


def test_integrity_status_model(client: vc.BiosClient, host: AttestedHost) -> None:
    status = client.get_integrity_status()
    assert isinstance(status, integrity.IntegrityStatus)
    assert status.trusted and not status.restricted and status.findings == ()
    assert status.bank == "sha256" and status.checked_pcrs == tuple(range(8))
    reference = client.get_reference_measurements()
    assert reference is not None and status.reference_digest == reference.digest
    assert status.checked_at.endswith("Z")
    tamper(host, 4)
    status = client.get_integrity_status()
    assert not status.trusted and status.restricted
    assert [(f.kind, f.pcr) for f in status.findings] == [("pcr-value", 4)]
    assert json.loads(json.dumps(status.to_dict()))["state"] == "Untrusted"


def test_reference_model(client: vc.BiosClient) -> None:
    reference = client.get_reference_measurements()
    assert isinstance(reference, integrity.ReferenceMeasurements)
    assert reference.version == 1 and len(reference.digest) == 64
    assert json.loads(reference.manifest)["source"] == "test boot"
    assert reference.updated_at.endswith("Z")


def test_no_reference_is_none() -> None:
    fresh = build_attested_host()
    with guest_client(fresh.app, fresh.guest) as client:
        assert client.get_reference_measurements() is None


def test_boot_measurements_model(client: vc.BiosClient, host: AttestedHost) -> None:
    found = client.get_boot_measurements()
    assert isinstance(found, integrity.BootMeasurements)
    assert found.bank == "sha256"
    assert found.pcrs == host.tpm.pcr_read(range(24), "sha256")
    assert found.event_log == host.event_log
    expected = parse_event_log(found.event_log)
    assert [(e.index, e.pcr, e.type, e.digests, e.data_size) for e in found.events] == [
        (e.index, e.pcr, e.type_name, e.digests, len(e.data)) for e in expected]
    assert client.get_boot_measurements("sha1").pcrs == host.tpm.pcr_read(range(24), "sha1")


def test_diagnostics_model(client: vc.BiosClient, host: AttestedHost) -> None:
    found = client.collect_diagnostics()
    assert isinstance(found, integrity.Diagnostics)
    assert found.status.trusted and found.unavailable is None
    assert found.measurements is not None
    assert found.measurements.pcrs == host.tpm.pcr_read(range(24), "sha256")
    assert [(a.principal, a.operation, a.domain, a.outcome) for a in found.audit_entries] == [
        ("admin:admin", "CreateDomain", "vm1", "ok"),
        ("admin:tester", "SetReferenceMeasurements", None, "ok"),
    ]


# -- restricted mode --------------------------------------------------------------------


def test_write_while_restricted_raises_service_restricted(client: vc.BiosClient,
                                                          host: AttestedHost, ca: bytes) -> None:
    client.set_attributes({"AssetTag": "rack-1"})
    tamper(host, 4)
    assert client.get_integrity_status().restricted
    with pytest.raises(vc.ServiceRestricted) as caught:
        client.set_attributes({"AssetTag": "rack-2"})
    assert "restricted mode" in caught.value.message
    # reads, the guest's own check and diagnostics keep working
    assert client.get_attributes(["AssetTag"]).values == {"AssetTag": "rack-1"}
    assert failed(client.attest(ca_pem=ca)) == ["event-log"]
    assert client.collect_diagnostics().status.restricted
