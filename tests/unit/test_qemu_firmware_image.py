"""A firmware image written into OVMF's variables and read back, without QEMU: device paths
byte for byte as OVMF 2022.11 writes them, the boot order closed by the boot manager menu,
OVMF's own entries kept, Secure Boot databases as OVMF's enrollment makes them, and plans
refused before anything is written."""

from __future__ import annotations

import struct
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

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
from bios_ws.errors import MachineError
from bios_ws.platform.qemu import firmware, loadoption, nvram
from bios_ws.platform.qemu.firmware import (
    IMAGE_SECURITY_DATABASE,
    SECURE_BOOT_ENABLE,
    VBIOS_VENDOR,
    apply_image,
    check_plan,
    read_state,
)
from bios_ws.platform.qemu.layout import MachineLayout
from bios_ws.platform.qemu.loadoption import END_OF_ORDER, GLOBAL, device_path
from bios_ws.platform.qemu.nvram import Variable, VariableStore

OVMF = Path("/usr/share/OVMF")
LAYOUT = MachineLayout(mac=bytes.fromhex("525400123456"))
NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
SNAKEOIL = x509.load_pem_x509_certificate(
    Path("/usr/share/ovmf/PkKek-1-snakeoil.pem").read_bytes()).public_bytes(Encoding.DER)


def _other_certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "other")])
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).serial_number(1)
    builder = builder.public_key(key.public_key()).not_valid_before(datetime(2026, 1, 1))
    certificate = builder.not_valid_after(datetime(2036, 1, 1)).sign(key, hashes.SHA256())
    return certificate.public_bytes(Encoding.DER)


OTHER = _other_certificate()
AUTO = bytes.fromhex("4eac0881119f594d850ee21a522c59b2")  # edk2's auto-created mark

# Device paths of the boot options OVMF 2022.11 created itself on a machine laid out like
# LAYOUT (read from its variable store after real boots).
PCI_ROOT = "02010c00d041030a00000000"
NIC = PCI_ROOT + "010106000003" + "030b2500525400123456" + "00" * 26 + "01" + "030c1b00" + "00" * 23
OVMF_PATHS = {
    BootDevice.DISK: PCI_ROOT + "010106000004" + "7fff0400",
    BootDevice.CDROM: PCI_ROOT + "01010600021f" + "03120a000000ffff0000" + "7fff0400",
    BootDevice.PXE: NIC + "7fff0400",
    BootDevice.HTTP: NIC + "03180400" + "7fff0400",  # OVMF's own has an empty Uri()
    BootDevice.SHELL: "04071400c9bdb87cebf8344faaea3ee4af6516a1"
                      "0406140083a5047c3e9e1c4fad65e05268d0b4d1" + "7fff0400",
}


def entry(number: int, device: BootDevice, description: str = "", **more: object) -> BootEntry:
    return BootEntry(number, f"option{number}", description or f"entry {number}", device,
                     **more)  # type: ignore[arg-type]


ENTRIES = (entry(1, BootDevice.DISK), entry(2, BootDevice.CDROM), entry(3, BootDevice.PXE),
           entry(4, BootDevice.HTTP, uri="http://10.0.2.2/boot.efi"),
           entry(5, BootDevice.SHELL, active=False))
IMAGE = FirmwareImage(ENTRIES, (2, 1, 3), 4, True, KeyDatabases(), b"published")


@pytest.fixture(scope="module")
def empty() -> VariableStore:
    return nvram.parse((OVMF / "OVMF_VARS_4M.fd").read_bytes())


@pytest.fixture(scope="module")
def snakeoil() -> VariableStore:
    return nvram.parse((OVMF / "OVMF_VARS_4M.snakeoil.fd").read_bytes())


def boot(variables: tuple[Variable, ...], number: int) -> tuple[int, str, bytes, bytes]:
    found = nvram.find(variables, f"Boot{number:04X}", GLOBAL)
    assert found is not None and found.attributes == nvram.NV_BS_RT
    attributes, size = struct.unpack_from("<IH", found.data)
    end = found.data.index(b"\0\0", 6)
    end += end % 2
    path = found.data[end + 2:end + 2 + size]
    return attributes, found.data[6:end].decode("utf-16-le"), path, found.data[end + 2 + size:]


# -- boot entries ------------------------------------------------------------------------


@pytest.mark.parametrize("device", list(BootDevice))
def test_device_paths_are_ovmfs_own(device: BootDevice) -> None:
    path = device_path(entry(1, device, uri="" if device is BootDevice.HTTP else None), LAYOUT)
    assert path.hex() == OVMF_PATHS[device]


def test_an_http_entry_carries_its_uri() -> None:
    path = device_path(ENTRIES[3], LAYOUT)
    uri = b"http://10.0.2.2/boot.efi"
    assert path == bytes.fromhex(NIC) + struct.pack("<BBH", 3, 0x18, 4 + len(uri)) + uri \
        + b"\x7f\xff\x04\x00"


def test_the_mac_is_locally_administered_and_the_domains_own() -> None:
    layout = MachineLayout.of("d1")
    assert layout.mac[:3] == b"\x52\x54\x00" and layout.mac[0] & 0b11 == 0b10
    assert layout.mac == MachineLayout.of("d1").mac != MachineLayout.of("d2").mac
    assert layout.mac_text.startswith("52:54:00:")


def test_the_image_is_written(empty: VariableStore) -> None:
    variables = apply_image(empty.variables, IMAGE, LAYOUT, now=NOW)
    assert boot(variables, 1) == (1, "entry 1", bytes.fromhex(OVMF_PATHS[BootDevice.DISK]), b"")
    assert boot(variables, 5)[0] == 0  # inactive
    order = nvram.find(variables, "BootOrder", GLOBAL)
    # the image's order, the end, the entries it leaves out (listed, so OVMF takes none
    # of their numbers for an entry of its own)
    assert order is not None and order.data == struct.pack("<6H", 2, 1, 3, 0xFFFF, 4, 5)
    assert nvram.find(variables, "BootFFFF", GLOBAL) == Variable(
        "BootFFFF", GLOBAL, nvram.NV_BS_RT, END_OF_ORDER)
    assert nvram.find(variables, "BootNext", GLOBAL) == Variable(
        "BootNext", GLOBAL, nvram.NV_BS_RT, b"\x04\x00")
    assert nvram.find(variables, "SecureBootEnable", SECURE_BOOT_ENABLE) == Variable(
        "SecureBootEnable", SECURE_BOOT_ENABLE, nvram.NV_BS, b"\x01")
    assert nvram.find(variables, "VbiosAttributes", VBIOS_VENDOR) == Variable(
        "VbiosAttributes", VBIOS_VENDOR, nvram.NV_BS_RT, b"published")
    assert all(nvram.find(variables, name, guid) is None for name, guid in (
        ("PK", GLOBAL), ("KEK", GLOBAL), ("db", IMAGE_SECURITY_DATABASE),
        ("dbx", IMAGE_SECURITY_DATABASE)))
    state = read_state(variables)
    assert (state.boot_order, state.boot_next, state.secure_boot_enable) == ((2, 1, 3), 4, True)
    assert state.keys == KeyDatabases()


def test_the_same_image_twice_changes_nothing(snakeoil: VariableStore) -> None:
    image = replace(IMAGE, keys=KeyDatabases(pk=(SNAKEOIL,), kek=(SNAKEOIL,), db=(SNAKEOIL,)))
    once = apply_image(snakeoil.variables, image, LAYOUT, now=NOW)
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert apply_image(once, image, LAYOUT, now=later) == once
    store = nvram.parse(snakeoil.image(once))
    assert store.image(apply_image(store.variables, image, LAYOUT, now=later)) == store.data


def test_no_boot_next_no_published_bytes_no_variables(empty: VariableStore) -> None:
    first = apply_image(empty.variables, IMAGE, LAYOUT, now=NOW)
    variables = apply_image(first, replace(IMAGE, boot_next=None, published=b""), LAYOUT)
    assert nvram.find(variables, "BootNext", GLOBAL) is None
    assert nvram.find(variables, "VbiosAttributes", VBIOS_VENDOR) is None
    assert read_state(variables).boot_next is None


def test_ovmfs_own_entries_stay_behind_the_end_others_go(empty: VariableStore) -> None:
    shell = loadoption.load_option("EFI Internal Shell", 1,
                                 bytes.fromhex(OVMF_PATHS[BootDevice.SHELL]))
    misc = loadoption.load_option("UEFI Misc Device", 1,
                                bytes.fromhex(OVMF_PATHS[BootDevice.DISK]), AUTO)
    os_entry = loadoption.load_option("debian", 1, bytes.fromhex(OVMF_PATHS[BootDevice.DISK]))
    found = (Variable("Boot0002", GLOBAL, 7, shell), Variable("Boot0007", GLOBAL, 7, misc),
             Variable("Boot0009", GLOBAL, 7, os_entry), Variable("Boot0008", GLOBAL, 7, misc),
             Variable("BootOrder", GLOBAL, 7, struct.pack("<4H", 9, 7, 2, 8)))
    variables = apply_image((*empty.variables, *found), IMAGE, LAYOUT, now=NOW)
    order = nvram.find(variables, "BootOrder", GLOBAL)
    assert order is not None
    # the image's order, the end, its other entries, then OVMF's own (once each): the
    # misc device kept its number, the shell moved off number 2 (the image's) to the
    # lowest free one
    assert struct.unpack(f"<{len(order.data) // 2}H", order.data) == (
        2, 1, 3, 0xFFFF, 4, 5, 7, 0)
    assert boot(variables, 0)[1] == "EFI Internal Shell"
    assert boot(variables, 2)[1] == "entry 2"
    assert nvram.find(variables, "Boot0008", GLOBAL) is None  # the duplicate
    assert nvram.find(variables, "Boot0009", GLOBAL) is None  # not OVMF's, not the image's
    assert read_state(variables).boot_order == (2, 1, 3)


def test_the_end_of_the_order_moves_off_a_number_the_image_takes(
    empty: VariableStore
) -> None:
    image = replace(IMAGE, entries=(*ENTRIES, entry(0xFFFF, BootDevice.DISK)), order=(0xFFFF,))
    variables = apply_image(empty.variables, image, LAYOUT, now=NOW)
    order = nvram.find(variables, "BootOrder", GLOBAL)
    assert order is not None and order.data == struct.pack("<7H", 0xFFFF, 0xFFFE, 1, 2, 3, 4, 5)
    assert nvram.find(variables, "BootFFFE", GLOBAL) is not None


def test_the_order_read_back_ends_at_the_end_entry(empty: VariableStore) -> None:
    variables = apply_image(empty.variables, IMAGE, LAYOUT, now=NOW)
    for written, read in (((3, 0xFFFF, 1, 4), (3,)), ((5, 2), (5, 2)), ((), ())):
        order = Variable("BootOrder", GLOBAL, 7, struct.pack(f"<{len(written)}H", *written))
        changed = tuple(order if v.key == order.key else v for v in variables)
        assert read_state(changed).boot_order == read  # as an OS inside may have left it


# -- Secure Boot ---------------------------------------------------------------------------


def test_keys_are_enrolled_as_ovmf_enrolls_them(
    empty: VariableStore, snakeoil: VariableStore
) -> None:
    keys = KeyDatabases(pk=(SNAKEOIL,), kek=(SNAKEOIL,), db=(SNAKEOIL,))
    variables = apply_image(empty.variables, replace(IMAGE, keys=keys), LAYOUT, now=NOW)
    for name, guid in (("PK", GLOBAL), ("KEK", GLOBAL), ("db", IMAGE_SECURITY_DATABASE)):
        ours, debians = nvram.find(variables, name, guid), snakeoil.find(name, guid)
        assert ours is not None and debians is not None
        assert ours.attributes == debians.attributes == nvram.NV_BS_RT_AT
        assert ours.data[:28] == debians.data[:28]  # EFI_SIGNATURE_LIST header
        assert ours.data[28:44] == firmware.SIGNATURE_OWNER.bytes_le  # the owner
        assert ours.data[44:] == debians.data[44:] == SNAKEOIL
        assert nvram.time_of(ours.timestamp) == NOW
    assert read_state(variables).keys == keys


def test_keys_deleted_leave_no_variables_but_dbx_keeps_its_hashes(
    snakeoil: VariableStore
) -> None:
    dbx = snakeoil.find("dbx", IMAGE_SECURITY_DATABASE)
    variables = apply_image(snakeoil.variables, replace(IMAGE, secure_boot_enable=True), LAYOUT,
                            now=NOW)
    for name, guid in (("PK", GLOBAL), ("KEK", GLOBAL), ("db", IMAGE_SECURITY_DATABASE)):
        assert nvram.find(variables, name, guid) is None
    assert nvram.find(variables, "dbx", IMAGE_SECURITY_DATABASE) == dbx  # untouched
    state = read_state(variables)
    assert state.keys.setup_mode and state.keys.dbx == ()
    revoked = apply_image(variables, replace(IMAGE, keys=KeyDatabases(dbx=(OTHER,))),
                          LAYOUT, now=NOW)
    new_dbx = nvram.find(revoked, "dbx", IMAGE_SECURITY_DATABASE)
    assert dbx is not None and new_dbx is not None
    assert new_dbx.data == firmware.signature_list(OTHER) + dbx.data
    assert read_state(revoked).keys.dbx == (OTHER,)


def test_a_changed_database_never_goes_back_in_time(snakeoil: VariableStore) -> None:
    keys = KeyDatabases(pk=(SNAKEOIL,), kek=(SNAKEOIL, OTHER), db=(SNAKEOIL,))
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    variables = apply_image(snakeoil.variables, replace(IMAGE, keys=keys), LAYOUT, now=long_ago)
    for name, guid in (("PK", GLOBAL), ("db", IMAGE_SECURITY_DATABASE)):
        assert nvram.find(variables, name, guid) == snakeoil.find(name, guid)  # Debian's owner
    kek = nvram.find(variables, "KEK", GLOBAL)
    assert kek is not None
    assert nvram.time_of(kek.timestamp) == datetime(2025, 3, 10, 2, 53, 49, tzinfo=UTC)
    assert read_state(variables).keys == keys


def test_secure_boot_enable_is_always_written_and_read_as_ovmf_does(
    snakeoil: VariableStore
) -> None:
    off = apply_image(snakeoil.variables, replace(IMAGE, secure_boot_enable=False,
                      keys=read_state(snakeoil.variables).keys), LAYOUT, now=NOW)
    assert nvram.find(off, "SecureBootEnable", SECURE_BOOT_ENABLE) == Variable(
        "SecureBootEnable", SECURE_BOOT_ENABLE, nvram.NV_BS, b"\x00")
    assert read_state(off).secure_boot_enable is False
    missing = tuple(v for v in snakeoil.variables if v.name != "SecureBootEnable")
    assert read_state(missing).secure_boot_enable is True  # OVMF creates it enabled
    no_pk = tuple(v for v in missing if v.name != "PK")
    assert read_state(no_pk).secure_boot_enable is False


def test_a_malformed_signature_database_is_refused() -> None:
    broken = Variable("db", IMAGE_SECURITY_DATABASE, nvram.NV_BS_RT_AT,
                      firmware.signature_list(SNAKEOIL)[:-1])
    with pytest.raises(MachineError, match="malformed"):
        read_state((broken,))


# -- plans refused ---------------------------------------------------------------------------


BAD: dict[str, BootPlan] = {
    "two entries, one number": BootPlan(replace(IMAGE, entries=(
        *ENTRIES, entry(1, BootDevice.CDROM)))),
    "order names nothing": BootPlan(replace(IMAGE, order=(1, 9))),
    "order repeats": BootPlan(replace(IMAGE, order=(1, 1))),
    "BootNext names nothing": BootPlan(replace(IMAGE, boot_next=9)),
    "number too big": BootPlan(replace(IMAGE, entries=(entry(0x10000, BootDevice.DISK),),
                                       order=(), boot_next=None)),
    "empty description": BootPlan(replace(IMAGE, entries=(
        replace(ENTRIES[0], description=""), *ENTRIES[1:]))),
    "control character": BootPlan(replace(IMAGE, entries=(
        replace(ENTRIES[0], description="a\nb"), *ENTRIES[1:]))),
    "beyond UCS-2": BootPlan(replace(IMAGE, entries=(
        replace(ENTRIES[0], description="boot \U0001F680"), *ENTRIES[1:]))),
    "HTTP with a file URI": BootPlan(replace(IMAGE, entries=(
        *ENTRIES[:3], replace(ENTRIES[3], uri="file:///etc/passwd"), ENTRIES[4]))),
    "URI on a disk": BootPlan(replace(IMAGE, entries=(
        replace(ENTRIES[0], uri="http://x/"), *ENTRIES[1:]))),
    "not a certificate": BootPlan(replace(IMAGE, keys=KeyDatabases(db=(b"not DER",)))),
    "two platform keys": BootPlan(replace(IMAGE, keys=KeyDatabases(pk=(SNAKEOIL, SNAKEOIL)))),
    "published too large": BootPlan(replace(IMAGE, published=bytes(firmware.MAX_DATA + 1))),
    "no vCPU": BootPlan(IMAGE, MachineOptions(cpus=0)),
    "threads not dividing": BootPlan(IMAGE, MachineOptions(cpus=3, threads_per_core=2)),
    "too many vCPUs": BootPlan(IMAGE, MachineOptions(cpus=firmware.MAX_CPUS + 1)),
}
#: Plans whose image is sound and whose firmware slot is not.
BAD_SLOTS: dict[str, BootPlan] = {
    "no slot": BootPlan(IMAGE, slot=SlotBoot("C", "vbios-1")),  # type: ignore[arg-type]
    "no BIOS version": BootPlan(IMAGE, slot=SlotBoot(Slot.A, "")),
    "BIOS version too long": BootPlan(IMAGE, slot=SlotBoot(
        Slot.A, "v" * (firmware.MAX_BIOS_VERSION + 1))),
    "BIOS version not ASCII": BootPlan(IMAGE, slot=SlotBoot(Slot.B, "vbios-\u00e9")),
    "BIOS version with a newline": BootPlan(IMAGE, slot=SlotBoot(Slot.B, "vbios\n1")),
    "slot not a SlotBoot": BootPlan(IMAGE, slot=("A", "vbios-1")),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", BAD, ids=list(BAD))
def test_a_malformed_plan_is_refused(name: str, empty: VariableStore) -> None:
    plan = BAD[name]
    with pytest.raises(MachineError, match="boot plan refused"):
        check_plan(plan)
    if plan.machine == MachineOptions():
        with pytest.raises(MachineError, match="boot plan refused"):
            apply_image(empty.variables, plan.firmware, LAYOUT)


@pytest.mark.parametrize("name", BAD_SLOTS, ids=list(BAD_SLOTS))
def test_a_plan_with_a_malformed_slot_is_refused(name: str) -> None:
    with pytest.raises(MachineError, match="boot plan refused"):
        check_plan(BAD_SLOTS[name])


@pytest.mark.parametrize("plan", [None, "plan", BootPlan(IMAGE, None),  # type: ignore[arg-type]
                                  BootPlan(replace(IMAGE, entries=({"number": 1},)))])
def test_what_is_no_plan_at_all_is_refused(plan: object) -> None:
    with pytest.raises(MachineError, match="boot plan refused"):
        check_plan(plan)


def test_a_sound_plan_passes(empty: VariableStore) -> None:
    check_plan(BootPlan(IMAGE, MachineOptions(cpus=4, threads_per_core=2)))
    no_uri = replace(IMAGE, entries=(*ENTRIES[:3], replace(ENTRIES[3], uri=None), ENTRIES[4]))
    check_plan(BootPlan(no_uri))  # an HTTP entry booting the URI DHCP offers
    variables = apply_image(empty.variables, no_uri, LAYOUT)
    assert boot(variables, 4)[2].hex() == OVMF_PATHS[BootDevice.HTTP]
    check_plan(BootPlan(FirmwareImage((), (), None, False, KeyDatabases(), b"")))
    check_plan(BootPlan(IMAGE, slot=SlotBoot(Slot.B, "vbios-7, 2026 (trial)", trial=True)))
    assert uuid.UUID(str(firmware.SIGNATURE_OWNER)) == firmware.SIGNATURE_OWNER
