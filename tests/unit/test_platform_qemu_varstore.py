"""The structural checks of an OVMF variable store, on bytes: a real template, then
hand-made damage (the layouts: edk2's EFI_FIRMWARE_VOLUME_HEADER and VARIABLE_STORE_HEADER)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from bios_ws.errors import MachineError
from bios_ws.platform.qemu.varstore import DamagedStore, check_before_boot, check_store

OVMF = Path("/usr/share/OVMF")
TEMPLATES = ["OVMF_VARS_4M.fd", "OVMF_VARS_4M.ms.fd", "OVMF_VARS_4M.snakeoil.fd",
             "OVMF_VARS.fd"]


@pytest.fixture(scope="module")
def template() -> bytes:
    return (OVMF / "OVMF_VARS_4M.fd").read_bytes()


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_shipped_templates_are_sound(name: str) -> None:
    data = (OVMF / name).read_bytes()
    check_store(data, expected_size=len(data))


def _patch(data: bytes, offset: int, value: bytes, *, fix_checksum: bool = False) -> bytes:
    out = bytearray(data)
    out[offset:offset + len(value)] = value
    if fix_checksum:  # damage behind a valid header checksum, so the later checks speak
        header_length = struct.unpack_from("<H", out, 48)[0]
        out[50:52] = b"\0\0"
        total = sum(struct.unpack_from(f"<{header_length // 2}H", out, 0)) & 0xFFFF
        out[50:52] = struct.pack("<H", (-total) & 0xFFFF)
    return bytes(out)


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (lambda d: d[: len(d) // 2], "bytes long"),
    "empty": (lambda d: b"", "bytes long"),
    "zeroed": (lambda d: bytes(len(d)), "signature"),
    "wrong signature": (lambda d: _patch(d, 40, b"_FVX"), "signature"),
    "wrong revision": (lambda d: _patch(d, 55, b"\x01"), "revision"),
    "wrong volume length": (lambda d: _patch(d, 32, struct.pack("<Q", 4096)), "claims"),
    "odd header length": (lambda d: _patch(d, 48, struct.pack("<H", 73)), "header length"),
    "huge header length": (lambda d: _patch(d, 48, b"\xff\xff"), "header length"),
    "wrong checksum": (lambda d: _patch(d, 50, b"\x00\x00"), "checksum"),
    "not nv data": (lambda d: _patch(d, 16, bytes(16), fix_checksum=True), "non-volatile"),
    "block map": (lambda d: _patch(d, 56, struct.pack("<I", 7), fix_checksum=True),
                  "block map"),
    "no store header": (lambda d: _patch(d, 72, bytes(16)), "variable store header"),
    "store too big": (lambda d: _patch(d, 88, struct.pack("<I", 1 << 30)), "beyond"),
    "not formatted": (lambda d: _patch(d, 92, b"\xff"), "not formatted"),
    "not healthy": (lambda d: _patch(d, 93, b"\x00"), "not healthy"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_is_refused_with_its_reason(template: bytes, damage: str) -> None:
    make, reason = DAMAGE[damage]
    with pytest.raises(DamagedStore, match=reason):
        check_store(make(template), expected_size=len(template))


def test_a_store_of_another_size_than_its_template_is_refused(template: bytes) -> None:
    small = (OVMF / "OVMF_VARS.fd").read_bytes()  # sound, but the 2 MiB build's
    with pytest.raises(DamagedStore, match="its template"):
        check_store(small, expected_size=len(template))


def _machine(tmp_path: Path, template: bytes) -> tuple[Path, Path, Path]:
    tpl, store, good = tmp_path / "template.fd", tmp_path / "vars.fd", tmp_path / "vars.good.fd"
    tpl.write_bytes(template)
    store.write_bytes(template)
    good.write_bytes(template)
    return store, good, tpl


def test_a_sound_store_becomes_the_good_copy(tmp_path: Path, template: bytes) -> None:
    store, good, tpl = _machine(tmp_path, template)
    changed = _patch(template, 200, b"written by the guest")  # variable data, not a header
    store.write_bytes(changed)
    check_before_boot(store, good, tpl)
    assert good.read_bytes() == changed
    assert good.stat().st_mode & 0o777 == 0o600


def test_a_damaged_store_is_refused_and_the_good_copy_kept(
    tmp_path: Path, template: bytes
) -> None:
    store, good, tpl = _machine(tmp_path, template)
    store.write_bytes(template[:1000])
    with pytest.raises(MachineError) as refused:
        check_before_boot(store, good, tpl)
    assert str(store) in str(refused.value)
    assert f"the last good copy is kept at {good}" in str(refused.value)
    assert good.read_bytes() == template


def test_a_missing_store_is_refused(tmp_path: Path, template: bytes) -> None:
    store, good, tpl = _machine(tmp_path, template)
    store.unlink()
    with pytest.raises(MachineError, match="cannot read the variable store"):
        check_before_boot(store, good, tpl)
