"""What a refusal says: differing PCRs, the boot events behind them, the service files."""

from __future__ import annotations

import hashlib

from bios_ws.domain.eventlog import Event, write_event_log
from bios_ws.launch.diagnosis import describe_changes, event_difference
from bios_ws.launch.record import SealedState

BANKS = ("sha1", "sha256")


def event(index: int, pcr: int, kind: int, name: str, payload: bytes) -> Event:
    return Event(index=index, pcr=pcr, type=kind, type_name=name,
                 digests={b: hashlib.new(b, payload).digest() for b in BANKS}, data=payload)


BASE = [
    event(1, 0, 0x8, "EV_S_CRTM_VERSION", b"vbios dev firmware 1.0"),
    event(2, 4, 0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION", b"shim.efi"),
    event(3, 4, 0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION", b"grubx64.efi"),
]


def state(pcrs: dict[int, bytes]) -> SealedState:
    return SealedState.now(pcrs, bytes(32), {"code/a.py": b"\x01" * 32})


def test_the_first_differing_event_is_named_with_type_and_data() -> None:
    changed = [BASE[0], BASE[1], event(3, 4, 0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION",
                                       b"evil.efi")]
    text = event_difference(BASE[1:], changed[1:])
    assert text.startswith("event 2 differs: sealed EV_EFI_BOOT_SERVICES_APPLICATION")
    assert '"grubx64.efi"' in text and '"evil.efi"' in text


def test_added_and_missing_events() -> None:
    extra = event(4, 4, 0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION", b"vmlinuz")
    assert event_difference(BASE[1:], [*BASE[1:], extra]).startswith(
        'event 3 was added: EV_EFI_BOOT_SERVICES_APPLICATION sha256')
    assert event_difference(BASE[1:], BASE[1:2]).startswith("event 2 is missing")
    assert "without a logged event" in event_difference(BASE, BASE)


def test_describe_changes_from_binary_logs() -> None:
    sealed_log = write_event_log(BASE, BANKS)
    extra = event(4, 4, 0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION", b"vmlinuz")
    current_log = write_event_log([*BASE, extra], BANKS)
    sealed_pcrs = {i: bytes(32) for i in range(8)} | {23: b"\x05" * 32}
    current = dict(sealed_pcrs) | {4: b"\x09" * 32, 23: b"\x06" * 32}
    lines = describe_changes(state(sealed_pcrs), current, {"code/a.py": b"\x02" * 32},
                             sealed_log, current_log)
    assert lines[0] == "PCRs 4, 23 (sha256) differ from the values sealed to"
    assert lines[1].startswith("PCR 4 (boot): event 3 was added:")
    assert '"vmlinuz"' in lines[1]
    assert "PCR 23 (service)" in lines[2]
    assert lines[3] == "  changed: code/a.py"


def test_no_difference_no_lines_and_unreadable_log_is_said() -> None:
    pcrs = {i: bytes(32) for i in range(8)}
    assert describe_changes(state(pcrs), pcrs, {}, None, None) == []
    lines = describe_changes(state(pcrs), pcrs | {1: b"\x01" * 32}, {}, b"garbage", b"garbage")
    assert "cannot be read" in lines[1]
