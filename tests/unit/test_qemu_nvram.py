"""The variables of an OVMF variable store: read and written back, on the shipped templates
and on hand-made damage (the layout: edk2's AUTHENTICATED_VARIABLE_HEADER)."""

from __future__ import annotations

import os
import struct
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bios_ws.errors import MachineError
from bios_ws.platform.qemu import nvram
from bios_ws.platform.qemu.nvram import Variable, VariableStore
from bios_ws.platform.qemu.varstore import VARIABLE_GUID

OVMF = Path("/usr/share/OVMF")
TEMPLATES = sorted(p.name for p in OVMF.glob("OVMF_VARS*.fd"))
GLOBAL = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
VENDOR = uuid.UUID("7f3c4a52-1e0b-4c6e-9a53-0d0f2b1e5c11")
START = 0x64  # where the variables of every shipped template begin
STAMP = nvram.efi_time(datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC))


def test_the_four_kinds_of_template_are_there() -> None:
    assert {"OVMF_VARS_4M.fd", "OVMF_VARS_4M.ms.fd", "OVMF_VARS_4M.snakeoil.fd",
            "OVMF_VARS.fd"} <= set(TEMPLATES)


@pytest.fixture(scope="module")
def empty() -> VariableStore:
    return nvram.parse((OVMF / "OVMF_VARS_4M.fd").read_bytes())


@pytest.fixture(scope="module")
def snakeoil() -> VariableStore:
    return nvram.parse((OVMF / "OVMF_VARS_4M.snakeoil.fd").read_bytes())


# -- the shipped templates -------------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES)
def test_an_unchanged_variable_set_gives_the_same_bytes(name: str) -> None:
    data = (OVMF / name).read_bytes()
    store = nvram.parse(data)
    assert store.authenticated
    assert store.image(store.variables) == data
    assert store.image(list(store.variables)) == data


@pytest.mark.parametrize("name", TEMPLATES)
def test_a_rebuilt_store_holds_the_same_variables_compacted(name: str) -> None:
    data = (OVMF / name).read_bytes()
    store = nvram.parse(data)
    rebuilt = store.image(store.variables[::-1])
    again = nvram.parse(rebuilt)
    assert set(again.variables) == set(store.variables)
    assert again.variables == store.variables[::-1]
    assert again.image(again.variables) == rebuilt
    assert rebuilt[:store.start] == data[:store.start]
    assert rebuilt[store.end:] == data[store.end:]  # the fault tolerant write area
    used = sum(-(-(60 + 2 * len(v.name) + 2 + len(v.data)) // 4) * 4 for v in store.variables)
    assert set(rebuilt[store.start + used:store.end]) <= {0xFF}


def test_the_snakeoil_template_reads_as_edk2_wrote_it(snakeoil: VariableStore) -> None:
    pk = snakeoil.find("PK", GLOBAL)
    assert pk is not None
    assert pk.attributes == nvram.NV_BS_RT_AT
    assert nvram.time_of(pk.timestamp) == datetime(2025, 3, 10, 2, 53, 48, tzinfo=UTC)
    assert (pk.monotonic_count, pk.pubkey_index, len(pk.data)) == (0, 0, 935)
    enable = snakeoil.find("SecureBootEnable", uuid.UUID("f0a30bc7-af08-4556-99c4-001009c93a44"))
    assert enable is not None and enable.data == b"\x01" and enable.attributes == nvram.NV_BS
    names = [v.name for v in snakeoil.variables]
    assert len(names) == len(set(names)) == 31  # deleted copies (state 0x3c, 0x3d) left out
    assert "BootOrder" not in names  # only deleted copies of it in the file


# -- changes ---------------------------------------------------------------------------------


def test_variables_added_changed_and_deleted(snakeoil: VariableStore) -> None:
    published = Variable("VbiosAttributes", VENDOR, nvram.NV_BS_RT, b"\x01\x02\x03")
    kept = [v for v in snakeoil.variables if v.name != "dbx"]
    changed = [Variable(v.name, v.guid, v.attributes, b"\x00") if v.name == "Timeout" else v
               for v in kept]
    store = nvram.parse(snakeoil.image([*changed, published]))
    assert store.find("dbx", uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")) is None
    assert store.find("VbiosAttributes", VENDOR) == published
    timeout = store.find("Timeout", GLOBAL)
    assert timeout is not None and timeout.data == b"\x00"
    assert store.find("PK", GLOBAL) == snakeoil.find("PK", GLOBAL)  # timestamp and all


def test_authenticated_header_fields_survive_a_rewrite(empty: VariableStore) -> None:
    variable = Variable("db", GLOBAL, nvram.NV_BS_RT_AT, b"x" * 5, STAMP, 7, 3)
    assert nvram.parse(empty.image([variable])).variables == (variable,)


def test_a_name_beyond_ucs2_or_a_duplicate_or_too_much_is_refused(empty: VariableStore) -> None:
    with pytest.raises(ValueError, match="UCS-2"):
        empty.image([Variable("Boot\U0001F600", GLOBAL, 7, b"x")])
    with pytest.raises(ValueError, match="twice"):
        empty.image([Variable("A", GLOBAL, 7, b"x"), Variable("A", GLOBAL, 7, b"y")])
    with pytest.raises(ValueError, match="the store has"):
        empty.image([Variable(f"V{i}", GLOBAL, 7, bytes(40000)) for i in range(7)])
    with pytest.raises(ValueError, match="invalid variable name"):
        empty.image([Variable("", GLOBAL, 7, b"x")])


def test_a_plain_store_holds_plain_variables_only(empty: VariableStore) -> None:
    data = bytearray(empty.data)
    data[72:88] = VARIABLE_GUID.bytes_le
    plain = nvram.parse(bytes(data))
    assert not plain.authenticated
    variable = Variable("Timeout", GLOBAL, nvram.NV_BS_RT, b"\x05\x00")
    rebuilt = plain.image([variable])
    assert rebuilt[START:START + 4] == b"\xaa\x55\x3f\x00"
    assert nvram.parse(rebuilt).variables == (variable,)
    with pytest.raises(ValueError, match="authenticated"):
        plain.image([Variable("PK", GLOBAL, nvram.NV_BS_RT_AT, b"x", STAMP)])


# -- states and damage -------------------------------------------------------------------------


def _header(name: str, data: bytes, *, state: int = 0x3F, name_size: int | None = None,
            data_size: int | None = None, attributes: int = 7) -> bytes:
    raw_name = name.encode("utf-16-le", "surrogatepass") + b"\0\0"
    header = struct.pack("<HBBIQ16sIII16s", 0x55AA, state, 0, attributes, 0, bytes(16), 0,
                         len(raw_name) if name_size is None else name_size,
                         len(data) if data_size is None else data_size, GLOBAL.bytes_le)
    body = header + raw_name + data
    return body + b"\xff" * (-len(body) % 4)


def _with(empty: VariableStore, *records: bytes) -> bytes:
    area = b"".join(records)
    return empty.data[:START] + area + empty.data[START + len(area):]


def test_only_added_variables_count(empty: VariableStore) -> None:
    data = _with(empty, _header("Gone", b"1", state=0x3C), _header("Half", b"2", state=0x7F),
                 _header("Old", b"3", state=0x3D), _header("Kept", b"4"),
                 _header("Moving", b"5", state=0x3E))
    assert [(v.name, v.data) for v in nvram.parse(data).variables] == [
        ("Kept", b"4"), ("Moving", b"5")]
    newer = _with(empty, _header("Moving", b"old", state=0x3E), _header("Moving", b"new"))
    assert [v.data for v in nvram.parse(newer).variables] == [b"new"]


def test_a_write_cut_short_is_what_the_firmware_drops(empty: VariableStore) -> None:
    cut = struct.pack("<HBB", 0x55AA, 0x7F, 0) + b"\xff" * 56  # sizes never written
    store = nvram.parse(_with(empty, _header("Kept", b"1"), cut, b"\x12\x34"))
    assert [v.name for v in store.variables] == ["Kept"]
    assert nvram.parse(store.image(store.variables)).variables == store.variables


DAMAGE: dict[str, tuple[Callable[[VariableStore], bytes], str]] = {
    "name beyond the store": (lambda e: _with(e, _header("A", b"", name_size=1 << 30)),
                              "remain"),
    "data beyond the store": (lambda e: _with(e, _header("A", b"", data_size=0x40000)),
                              "remain"),
    "name without NUL": (lambda e: _with(e, _header("AB", b"", name_size=4)), "malformed"),
    "odd name size": (lambda e: _with(e, _header("A", b"", name_size=3)), "malformed"),
    "empty name": (lambda e: _with(e, _header("", b"", name_size=2)), "malformed"),
    "lone surrogate": (lambda e: _with(e, _header("\ud800", b"")), "UCS-2"),
    "valid twice": (lambda e: _with(e, _header("A", b"1"), _header("A", b"2")), "twice"),
    "header damage": (lambda e: e.data[:40] + b"XXXX" + e.data[44:], "signature"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_store_is_refused_naming_the_file(
    damage: str, empty: VariableStore, tmp_path: Path
) -> None:
    make, reason = DAMAGE[damage]
    path = tmp_path / "vars.fd"
    path.write_bytes(make(empty))
    with pytest.raises(MachineError) as refused:
        nvram.load(path)
    assert str(path) in str(refused.value)
    assert reason in str(refused.value)


def test_a_store_of_the_wrong_size_or_missing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vars.fd"
    path.write_bytes((OVMF / "OVMF_VARS.fd").read_bytes())
    with pytest.raises(MachineError, match="its template 540672"):
        nvram.load(path, expected_size=540672)
    with pytest.raises(MachineError, match="cannot read"):
        nvram.load(tmp_path / "none.fd")


# -- files -------------------------------------------------------------------------------------


def test_save_replaces_the_file_and_keeps_the_previous_one(
    snakeoil: VariableStore, tmp_path: Path
) -> None:
    path = tmp_path / "vars.fd"
    path.write_bytes(snakeoil.data)
    store = nvram.load(path)
    assert not nvram.save(path, store, store.variables)
    assert not (tmp_path / "vars.prev.fd").exists()
    published = Variable("VbiosAttributes", VENDOR, nvram.NV_BS_RT, b"on")
    assert nvram.save(path, store, [*store.variables, published])
    assert (tmp_path / "vars.prev.fd").read_bytes() == snakeoil.data
    assert nvram.load(path).find("VbiosAttributes", VENDOR) == published
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == ["vars.fd", "vars.prev.fd"]


def test_a_store_that_cannot_hold_the_variables_is_left_alone(
    empty: VariableStore, tmp_path: Path
) -> None:
    path = tmp_path / "vars.fd"
    path.write_bytes(empty.data)
    with pytest.raises(MachineError, match=str(path)):
        nvram.save(path, empty, [Variable(f"V{i}", GLOBAL, 7, bytes(40000)) for i in range(7)])
    assert path.read_bytes() == empty.data
    assert sorted(os.listdir(tmp_path)) == ["vars.fd"]


def test_a_write_takes_milliseconds(snakeoil: VariableStore, tmp_path: Path) -> None:
    path = tmp_path / "vars.fd"
    path.write_bytes(snakeoil.data)
    timings = []
    for index in range(10):
        started = time.perf_counter()
        store = nvram.load(path)
        published = Variable("VbiosAttributes", VENDOR, nvram.NV_BS_RT, bytes([index]) * 512)
        others = [v for v in store.variables if v.key != published.key]
        nvram.save(path, store, [*others[::-1], published])
        timings.append(time.perf_counter() - started)
    timings.sort()
    print(f"read + rebuild + write of a 528 KiB store: median {timings[5] * 1000:.1f} ms,"
          f" worst {timings[-1] * 1000:.1f} ms")
    assert timings[5] < 0.05


def test_efi_time() -> None:
    moment = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)
    assert nvram.time_of(nvram.efi_time(moment)) == moment
    assert nvram.time_of(nvram.NO_TIME) is None
    assert nvram.time_of(b"\xff" * 16) is None
