"""The service PCR's event log: a launch's extend of PCR 23 recorded, appended to the boot
log, and replayed by the guest's own parser to the value the TPM holds."""

from __future__ import annotations

import hashlib
import struct

from vbios_client.attestation import parse_event_log as guest_parse
from vbios_client.attestation import replay as guest_replay

from bios_ws.domain.eventlog import Event, parse_event_log, write_event_log
from bios_ws.launch.measure import expected_service_pcr
from bios_ws.launch.sealing import extend_service_pcr
from bios_ws.tpm.bootlog import BootManifest, measure_boot, shipped_manifest_text
from bios_ws.tpm.fake import FakeTpm
from bios_ws.tpm.port import BOOT_PCRS, SERVICE_PCR
from bios_ws.tpm.service_log import (
    SERVICE_EVENT_TAG_ID,
    served_event_log,
    service_event,
    service_event_log,
)

DIGEST = hashlib.sha256(b"vbios-measure-v1\nthe service").digest()


def booted_tpm(banks: tuple[str, ...] = ("sha1", "sha256")) -> tuple[FakeTpm, bytes]:
    tpm = FakeTpm(banks)
    manifest = BootManifest.from_json(shipped_manifest_text())
    events = manifest.events(tpm.active_banks())
    measure_boot(tpm, events)
    return tpm, manifest.event_log(tpm.active_banks())


def test_the_served_log_replays_every_boot_pcr_and_the_service_pcr() -> None:
    tpm, boot_log = booted_tpm()
    extend_service_pcr(tpm, DIGEST)
    served = served_event_log(boot_log, service_event_log(DIGEST, tpm.active_banks()))
    assert served.startswith(boot_log)
    replayed = guest_replay(guest_parse(served))
    for bank in tpm.active_banks():
        assert replayed[bank] == {**tpm.pcr_read(BOOT_PCRS, bank),
                                  **tpm.pcr_read([SERVICE_PCR], bank)}, bank
    assert replayed["sha256"][SERVICE_PCR] == expected_service_pcr(DIGEST)


def test_pcr_23_extended_by_anything_else_does_not_replay() -> None:
    tpm, boot_log = booted_tpm()
    extend_service_pcr(tpm, DIGEST)
    tpm.pcr_extend(SERVICE_PCR, {bank: hashlib.new(bank, b"other").digest()
                                 for bank in tpm.active_banks()})
    served = served_event_log(boot_log, service_event_log(DIGEST, tpm.active_banks()))
    replayed = guest_replay(guest_parse(served))["sha256"]
    assert replayed[SERVICE_PCR] != tpm.pcr_read([SERVICE_PCR])[SERVICE_PCR]


def test_the_event_names_the_service_digest() -> None:
    event = service_event(DIGEST, ("sha1", "sha256"))
    assert (event.pcr, event.type, event.type_name) == (23, 0x6, "EV_EVENT_TAG")
    tag, size = struct.unpack_from("<II", event.data)
    text = event.data[8:]
    assert tag == SERVICE_EVENT_TAG_ID == int.from_bytes(b"vbio", "big")
    assert size == len(text) and text == b"vbios service " + DIGEST.hex().encode()
    assert event.digests == {"sha256": DIGEST, "sha1": hashlib.sha1(DIGEST).digest()}


def test_the_records_follow_the_banks_the_boot_log_declares() -> None:
    _, boot_log = booted_tpm(("sha256",))
    served = served_event_log(boot_log, service_event_log(DIGEST, ("sha1", "sha256")))
    last = parse_event_log(served)[-1]
    assert last.pcr == SERVICE_PCR and set(last.digests) == {"sha256"}
    assert guest_replay(guest_parse(served))["sha256"][SERVICE_PCR] == (
        expected_service_pcr(DIGEST))


def test_nothing_is_appended_that_would_make_the_log_malformed() -> None:
    _, boot_log = booted_tpm()
    sha256_only = service_event_log(DIGEST, ("sha256",))
    assert served_event_log(boot_log, sha256_only) == boot_log  # no sha1 digest to give
    assert served_event_log(boot_log, None) == boot_log
    assert served_event_log(boot_log, b"not a log at all, longer than a header") == boot_log
    other_pcr = write_event_log(
        [Event(1, 10, 0x6, "EV_EVENT_TAG", {"sha1": bytes(20), "sha256": bytes(32)}, b"x")],
        ("sha1", "sha256"))
    assert served_event_log(boot_log, other_pcr) == boot_log  # only PCR 23 is the service's
    # a SHA-1 format (TPM 1.2) boot log cannot be followed by crypto-agile records
    sha1_log = struct.pack("<II20sI", 0, 0x4, bytes(20), 4) + bytes(4)
    assert served_event_log(sha1_log, service_event_log(DIGEST, ("sha1",))) == sha1_log
