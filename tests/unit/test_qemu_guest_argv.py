"""QEMU's command line for a machine and its boot plan, without QEMU: the fixed layout, the
plan's machine options, the network boot the plan asks for, disks of every kind."""

from __future__ import annotations

import struct
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from bios_ws.config import PlatformOptions
from bios_ws.domain.firmware import (
    BootDevice,
    BootEntry,
    BootPlan,
    FirmwareImage,
    KeyDatabases,
    MachineOptions,
    SlotBoot,
)
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.smbios import smbios_for
from bios_ws.platform.qemu.guest import NO_BOOT_FILE, qemu_argv, smbios_args
from bios_ws.platform.qemu.layout import MachineDir, MachineLayout


@pytest.fixture
def machine(tmp_path: Path) -> MachineDir:
    machine = MachineDir(tmp_path / "machines", "d1")
    machine.path.mkdir(parents=True)
    machine.save(machine.new_config())
    return machine


def _disks(machine: MachineDir, *disks: Path) -> None:
    config = machine.load()
    config["disks"] = [str(d) for d in disks]
    machine.save(config)


def _plan(*devices: BootDevice, **options: object) -> BootPlan:
    entries = tuple(BootEntry(n, f"o{n}", f"entry {n}", device,
                              uri="http://x/" if device is BootDevice.HTTP else None)
                    for n, device in enumerate(devices, 1))
    image = FirmwareImage(entries, tuple(e.number for e in entries), None, False,
                          KeyDatabases(), b"")
    return BootPlan(image, MachineOptions(**options))  # type: ignore[arg-type]


def _values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def _qcow2(path: Path, *, backing: int = 0, version: int = 3, incompatible: int = 0) -> Path:
    header = b"QFI\xfb" + struct.pack(">IQ", version, backing) + bytes(56)
    path.write_bytes(header + struct.pack(">Q", incompatible) + bytes(100))
    return path


def test_without_a_plan_the_machine_starts_as_before(machine: MachineDir) -> None:
    argv, notes = qemu_argv(PlatformOptions(), machine)
    assert notes == []
    assert _values(argv, "-smp") == ["cpus=1,sockets=1,cores=1,threads=1"]
    assert _values(argv, "-serial") == ["chardev:console"]
    assert _values(argv, "-device") == ["ide-cd,bus=ide.0,id=cdrom"]  # the empty CD-ROM
    assert "-netdev" not in argv and "-fw_cfg" not in argv
    assert not any("bootindex" in arg for arg in argv)


def test_the_plan_decides_cpus_and_the_console(machine: MachineDir) -> None:
    argv, _ = qemu_argv(PlatformOptions(), machine,
                        _plan(cpus=4, threads_per_core=2, nic=False, serial=False))
    assert _values(argv, "-smp") == ["cpus=4,sockets=1,cores=2,threads=2"]
    assert "-serial" not in argv and "-chardev" not in argv


@pytest.mark.parametrize(("devices", "ipv4", "pxe"), [
    ((BootDevice.PXE,), "yes", "yes"),
    ((BootDevice.HTTP,), "yes", "no"),
    ((BootDevice.DISK, BootDevice.SHELL), "no", "no"),
])
def test_the_nic_and_only_the_network_boot_the_plan_asks_for(
    machine: MachineDir, devices: tuple[BootDevice, ...], ipv4: str, pxe: str
) -> None:
    argv, _ = qemu_argv(PlatformOptions(), machine, _plan(*devices, nic=True))
    mac = MachineLayout.of("d1").mac_text
    assert f"virtio-net-pci,netdev=net0,addr=0x03,mac={mac},romfile=" in _values(argv, "-device")
    assert _values(argv, "-fw_cfg") == [
        f"name=opt/org.tianocore/IPv4Support,string={ipv4}",
        f"name=opt/org.tianocore/IPv4PXESupport,string={pxe}",
        "name=opt/org.tianocore/IPv6Support,string=no",
        "name=opt/org.tianocore/IPv6PXESupport,string=no"]
    empty = machine.empty_tftp
    assert _values(argv, "-netdev") == [
        f"user,id=net0,restrict=on,tftp={empty},bootfile={NO_BOOT_FILE}"]
    assert empty.is_dir() and list(empty.iterdir()) == []
    assert empty.stat().st_mode & 0o777 == 0o700


def test_the_network_boot_source_serves_the_nic(machine: MachineDir, tmp_path: Path) -> None:
    tftp, web = tmp_path / "tftp", tmp_path / "web"
    tftp.mkdir()
    web.mkdir()
    config = machine.load()
    config["network"] = {"tftp": str(tftp), "bootfile": "boot.efi", "http": str(web)}
    machine.save(config)
    argv, notes = qemu_argv(PlatformOptions(), machine, _plan(BootDevice.PXE))
    server = f"{sys.executable} -P -m bios_ws.platform.qemu.httpboot {web}"
    assert _values(argv, "-netdev") == [
        f"user,id=net0,restrict=on,tftp={tftp},bootfile=boot.efi,"
        f"guestfwd=tcp:10.0.2.100:80-cmd:{server}"]
    tftp.rmdir()
    web.rmdir()
    argv, notes = qemu_argv(PlatformOptions(), machine, _plan(BootDevice.PXE))
    assert notes == [f"TFTP directory {tftp} skipped: it is gone",
                     f"HTTP boot directory {web} skipped: it is gone"]
    assert _values(argv, "-netdev") == [
        f"user,id=net0,restrict=on,tftp={machine.empty_tftp},bootfile={NO_BOOT_FILE}"]


def test_disks_keep_their_slots_and_formats(machine: MachineDir, tmp_path: Path) -> None:
    directory = tmp_path / "dir"
    directory.mkdir()
    raw = tmp_path / "disk.img"
    raw.write_bytes(bytes(4096))
    gone = tmp_path / "gone.img"
    backed = _qcow2(tmp_path / "backed.qcow2", backing=0x200)
    external = _qcow2(tmp_path / "external.qcow2", incompatible=0x4)
    qcow2 = _qcow2(tmp_path / "plain.qcow2")
    _disks(machine, directory, gone, raw, backed, external, qcow2)
    argv, notes = qemu_argv(PlatformOptions(), machine, _plan(BootDevice.DISK, nic=False))
    assert _values(argv, "-drive")[2:] == [
        f"if=none,id=disk0,format=raw,file=fat:{directory},readonly=on",
        f"if=none,id=disk2,format=raw,file={raw},readonly=on",
        f"if=none,id=disk5,format=qcow2,file={qcow2},readonly=on"]
    assert _values(argv, "-device")[1:] == [
        "virtio-blk-pci,drive=disk0,addr=0x04", "virtio-blk-pci,drive=disk2,addr=0x06",
        "virtio-blk-pci,drive=disk5,addr=0x09"]
    assert [note.split(":")[0] for note in notes] == [
        f"disk {gone} skipped", f"disk {backed} skipped", f"disk {external} skipped"]
    assert "backing or external data file" in notes[1]


def test_a_machine_takes_sixteen_disks(machine: MachineDir, tmp_path: Path) -> None:
    disks = []
    for index in range(17):
        disks.append(tmp_path / f"d{index}")
        disks[-1].mkdir()
    _disks(machine, *disks)
    argv, notes = qemu_argv(PlatformOptions(), machine)
    assert _values(argv, "-device")[-1] == "virtio-blk-pci,drive=disk15,addr=0x13"
    assert notes == [f"disk {disks[16]} skipped: a machine takes 16 disks"]


def test_paths_with_commas_are_escaped(machine: MachineDir, tmp_path: Path) -> None:
    directory = tmp_path / "a,b"
    directory.mkdir()
    _disks(machine, directory)
    argv, _ = qemu_argv(PlatformOptions(), machine)
    assert f"file=fat:{tmp_path}/a,,b" in _values(argv, "-drive")[2]


# -- firmware slots ----------------------------------------------------------------------------


def _code(argv: list[str]) -> str:
    [code] = [d for d in _values(argv, "-drive") if d.startswith("if=pflash,format=raw,unit=0,")]
    return code


def test_a_slot_boots_its_image_and_shows_its_bios_version(machine: MachineDir) -> None:
    options = PlatformOptions()
    image = machine.slot_image(Slot.B)
    image.write_bytes(b"new image")
    plan = replace(_plan(nic=False), slot=SlotBoot(Slot.B, "vbios-7"))
    argv, _ = qemu_argv(options, machine, plan)
    assert _code(argv) == f"if=pflash,format=raw,unit=0,readonly=on,file={image}"
    assert _values(argv, "-smbios") == ["type=0,version=vbios-7"]
    assert image.name == "firmware-B.fd"


def test_a_slot_without_its_file_boots_the_installation_image(machine: MachineDir) -> None:
    options = PlatformOptions()
    argv, _ = qemu_argv(options, machine,
                        replace(_plan(nic=False), slot=SlotBoot(Slot.A, "vbios-1,x=y")))
    assert _code(argv).endswith(f"file={options.ovmf_code}")
    assert _values(argv, "-smbios") == ["type=0,version=vbios-1,,x=y"]  # commas escaped
    argv, _ = qemu_argv(options, machine, _plan(nic=False))  # no slot: no SMBIOS version
    assert _code(argv).endswith(f"file={options.ovmf_code}") and "-smbios" not in argv


def test_the_plans_smbios_tables_become_types_0_to_3(machine: MachineDir) -> None:
    tables = smbios_for("d1", {"SystemManufacturer": "Example, Inc.", "AssetTag": "rack-1"},
                        "vbios-3", date(2026, 2, 3))
    plan = replace(_plan(nic=False), slot=SlotBoot(Slot.A, "vbios-3"), smbios=tables)
    argv, _ = qemu_argv(PlatformOptions(), machine, plan)
    system = tables.system
    assert _values(argv, "-smbios") == [
        "type=0,vendor=bios-ws,version=vbios-3,date=02/03/2026",
        f"type=1,manufacturer=Example,, Inc.,product=Virtual Trusted Runtime BIOS,"
        f"serial={system.serial_number},uuid={system.uuid},family=Virtual Machine",
        f"type=2,manufacturer=Example,, Inc.,product=vBIOS Virtual Baseboard,"
        f"serial={tables.baseboard.serial_number},asset=rack-1",
        f"type=3,manufacturer=Example,, Inc.,serial={tables.chassis.serial_number},"
        "asset=rack-1",
    ]


def test_a_trial_shows_its_new_version_in_type_0(machine: MachineDir) -> None:
    tables = smbios_for("d1", {}, "vbios-1", date(2026, 2, 3))
    assert smbios_args(tables, SlotBoot(Slot.B, "vbios-2", trial=True))[1].startswith(
        "type=0,vendor=bios-ws,version=vbios-2,")
    assert smbios_args(tables, None)[1].startswith("type=0,vendor=bios-ws,version=vbios-1,")
    assert smbios_args(None, None) == []


def test_a_trial_boot_always_has_the_serial_console(machine: MachineDir) -> None:
    quiet = _plan(nic=False, serial=False)
    argv, _ = qemu_argv(PlatformOptions(), machine,
                        replace(quiet, slot=SlotBoot(Slot.B, "vbios-2", trial=True)))
    assert _values(argv, "-serial") == ["chardev:console"]
    argv, _ = qemu_argv(PlatformOptions(), machine,
                        replace(quiet, slot=SlotBoot(Slot.B, "vbios-2")))
    assert "-serial" not in argv
