"""The boot manifest: validation, events, the event log it writes, its replay on a fake TPM."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from bios_ws.domain.eventlog import parse_event_log, replay
from bios_ws.tpm.bootlog import BootManifest, ManifestError, measure_boot, shipped_manifest_text
from bios_ws.tpm.fake import FakeTpm
from bios_ws.tpm.port import BOOT_PCRS

BANKS = ("sha1", "sha256")


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shipped_manifest_text())
    return data


def test_shipped_manifest_describes_pcrs_0_to_7() -> None:
    manifest = BootManifest.from_json(shipped_manifest_text())
    pcrs = {c.pcr for c in manifest.components}
    assert pcrs == set(BOOT_PCRS)
    names = [c.type_name for c in manifest.components]
    for expected in ("EV_S_CRTM_VERSION", "EV_EFI_PLATFORM_FIRMWARE_BLOB",
                     "EV_EFI_BOOT_SERVICES_APPLICATION", "EV_EFI_GPT_EVENT",
                     "EV_EFI_VARIABLE_DRIVER_CONFIG", "EV_EFI_ACTION", "EV_SEPARATOR"):
        assert expected in names
    secure_boot = {c.name for c in manifest.components if c.pcr == 7
                   and c.type_name == "EV_EFI_VARIABLE_DRIVER_CONFIG"}
    assert secure_boot == {"SecureBoot", "PK", "KEK", "db", "dbx"}
    assert any(c.data == b"Calling EFI Application from Boot Option" for c in manifest.components)


def test_digests_are_of_the_measured_bytes_per_bank() -> None:
    manifest = BootManifest.from_json(shipped_manifest_text())
    for component, event in zip(manifest.components, manifest.events(BANKS), strict=True):
        assert event.digests == {bank: hashlib.new(bank, component.measured).digest()
                                 for bank in BANKS}
        assert event.data == component.data


def test_separators_and_variables_measure_their_event_data() -> None:
    manifest = BootManifest.from_json(shipped_manifest_text())
    for component in manifest.components:
        if component.type_name in ("EV_SEPARATOR", "EV_EFI_VARIABLE_DRIVER_CONFIG",
                                   "EV_S_CRTM_VERSION", "EV_EFI_GPT_EVENT"):
            assert component.measured == component.data, component.name
    secure_boot = next(c for c in manifest.components if c.name == "SecureBoot")
    # UEFI_VARIABLE_DATA: GUID, name length 10, data length 1, UTF-16 name, data
    assert secure_boot.data[16:32] == (10).to_bytes(8, "little") + (1).to_bytes(8, "little")
    assert secure_boot.data[32:] == "SecureBoot".encode("utf-16-le") + b"\x01"


def test_written_log_parses_back_to_the_manifest_events() -> None:
    manifest = BootManifest.from_json(shipped_manifest_text())
    parsed = parse_event_log(manifest.event_log(BANKS))
    assert parsed[1:] == manifest.events(BANKS)


def test_measured_boot_on_a_fake_tpm_equals_the_log_replay() -> None:
    manifest = BootManifest.from_json(shipped_manifest_text())
    tpm = FakeTpm(BANKS)
    measure_boot(tpm, manifest.events(tpm.active_banks()))
    expected = replay(parse_event_log(manifest.event_log(BANKS)))
    for bank in BANKS:
        assert tpm.pcr_read(BOOT_PCRS, bank) == expected[bank]


def test_boot_is_deterministic_and_content_sensitive() -> None:
    first = replay(BootManifest.from_json(shipped_manifest_text()).events(BANKS))
    assert replay(BootManifest.from_json(shipped_manifest_text()).events(BANKS)) == first
    changed = shipped()
    kernel = next(c for c in changed["components"] if c["name"] == "kernel")
    kernel["measure"] = {"text": "a different kernel"}
    other = replay(BootManifest.from_json(json.dumps(changed)).events(BANKS))
    assert other["sha256"][4] != first["sha256"][4]
    assert {i: v for i, v in other["sha256"].items() if i != 4} == {
        i: v for i, v in first["sha256"].items() if i != 4}


def _broken(mutate: Any) -> str:
    data = copy.deepcopy(shipped())
    mutate(data)
    return json.dumps(data)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(format=2), "format"),
    (lambda d: d.update(components=[]), "components"),
    (lambda d: d["components"][0].update(pcr=9), "pcr"),
    (lambda d: d["components"][0].update(pcr=True), "pcr"),
    (lambda d: d["components"][0].update(type="EV_BOGUS"), "event type"),
    (lambda d: d["components"][0].update(type="EV_NO_ACTION"), "event type"),
    (lambda d: d["components"][0].update(data={"hex": "zz"}), "component 1"),
    (lambda d: d["components"][0].update(data={"text": "a", "hex": "00"}), "exactly one"),
    (lambda d: d["components"][0].update(data={"rot13": "x"}), "unknown encoding"),
    (lambda d: d["components"][1].update(measure={"md5": "x"}), "unknown form"),
    (lambda d: d["components"][1]["data"]["blob"].update(base="-1"), "64-bit"),
    (lambda d: d.update(components=[c for c in d["components"]
                                    if c["name"] != "separator PCR3"]), "separator"),
])
def test_invalid_manifests_are_refused(mutate: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        BootManifest.from_json(_broken(mutate))


def test_non_json_and_oversized_manifests_are_refused() -> None:
    with pytest.raises(ManifestError, match="not JSON"):
        BootManifest.from_json("{")
    with pytest.raises(ManifestError, match="larger"):
        BootManifest.from_json(" " * (2 * 1024 * 1024))
