"""EFI device paths and load options (``Boot####``) of the machine layout.

Boot entries are EFI_LOAD_OPTIONs (``Boot####``, attributes NV|BS|RT): LOAD_OPTION_ACTIVE
or not, the description (UCS-2) and one device path per ``BootDevice``, pointing at the
machine's fixed layout (``layout.MachineLayout``; shown for the default slots)::

    disk    PciRoot(0x0)/Pci(0x4,0x0)            the first virtio-blk disk itself: the
            boot manager boots \\EFI\\BOOT\\BOOTX64.EFI from a file system on it, and
            fails at once ("Not Found") when no disk is there
    cdrom   PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0)
    pxe     PciRoot(0x0)/Pci(0x3,0x0)/MAC(525400xxxxxx,0x1)/IPv4(0.0.0.0,0x0,DHCP,...)
    http    the same followed by Uri(<uri>) (an empty Uri() without one: the URI the
            DHCP server offers, as in OVMF's own HTTP entries)
    shell   Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)

(byte for byte what OVMF 2022.11 itself creates for these devices).
"""

from __future__ import annotations

import struct
import uuid

from bios_ws.domain.firmware import BootDevice, BootEntry
from bios_ws.platform.qemu.layout import MachineLayout
from bios_ws.platform.qemu.nvram import Variable, ucs2

#: EFI_GLOBAL_VARIABLE: Boot####, BootOrder, BootNext, PK and KEK.
GLOBAL = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
#: edk2's mark on the boot options its boot manager creates by itself.
AUTO_CREATED = uuid.UUID("8108ac4e-9f11-4d59-850e-e21a522c59b2")
OVMF_DXE_FV = uuid.UUID("7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1")
SHELL_FILE = uuid.UUID("7c04a583-9e3e-4f1c-ad65-e05268d0b4d1")
UI_APP_FILE = uuid.UUID("462caa21-7614-4503-836e-8ab6f4662331")
LOAD_OPTION_ACTIVE = 0x1
#: What OVMF registers itself: (description, attributes, FvFile).
OVMF_OWN = {("UiApp", 0x109, UI_APP_FILE), ("EFI Internal Shell", 0x1, SHELL_FILE)}
#: The end node of every device path.
END_NODE = b"\x7f\xff\x04\x00"


def _node(kind: int, subtype: int, payload: bytes) -> bytes:
    return struct.pack("<BBH", kind, subtype, 4 + len(payload)) + payload


def _pci(device: int, function: int = 0) -> bytes:
    root = _node(0x02, 0x01, struct.pack("<II", 0x0A0341D0, 0))  # PciRoot(0x0)
    return root + _node(0x01, 0x01, bytes((function, device)))


def _nic(layout: MachineLayout) -> bytes:
    mac = _node(0x03, 0x0B, layout.mac.ljust(32, b"\0") + b"\x01")
    return _pci(layout.nic_slot) + mac + _node(0x03, 0x0C, bytes(23))  # IPv4, DHCP


def _fv_file(file: uuid.UUID) -> bytes:
    return _node(0x04, 0x07, OVMF_DXE_FV.bytes_le) + _node(0x04, 0x06, file.bytes_le)


def device_path(entry: BootEntry, layout: MachineLayout) -> bytes:
    """The device path of ``entry`` on a machine laid out as ``layout``."""
    if entry.device is BootDevice.DISK:
        path = _pci(layout.disk_slot(0))
    elif entry.device is BootDevice.CDROM:
        sata = _node(0x03, 0x12, struct.pack("<HHH", layout.cdrom_port, 0xFFFF, 0))
        path = _pci(*layout.ahci) + sata
    elif entry.device is BootDevice.PXE:
        path = _nic(layout)
    elif entry.device is BootDevice.HTTP:
        path = _nic(layout) + _node(0x03, 0x18, (entry.uri or "").encode("ascii"))
    else:
        path = _fv_file(SHELL_FILE)
    return path + END_NODE


def load_option(description: str, attributes: int, path: bytes, extra: bytes = b"") -> bytes:
    return struct.pack("<IH", attributes, len(path)) + ucs2(description) + path + extra


#: The entry that closes every boot order written here: OVMF's boot manager menu (UiApp)
#: as an active boot option. It never returns by itself, so nothing after it is tried.
END_DESCRIPTION = "Boot Manager Menu (end of the boot order)"
END_OF_ORDER = load_option(END_DESCRIPTION, LOAD_OPTION_ACTIVE, _fv_file(UI_APP_FILE) + END_NODE)


def parse_load_option(data: bytes) -> tuple[int, str, bytes, bytes] | None:
    """(attributes, description, device path, optional data); None if malformed."""
    if len(data) < 8:
        return None
    attributes, path_size = struct.unpack_from("<IH", data)
    end = next((i for i in range(6, len(data) - 1, 2) if data[i:i + 2] == b"\0\0"), None)
    if end is None or end + 2 + path_size > len(data):
        return None
    description = data[6:end].decode("utf-16-le", "replace")
    path_end = end + 2 + path_size
    return attributes, description, data[end + 2:path_end], data[path_end:]


def boot_number(variable: Variable) -> int | None:
    name = variable.name
    if variable.guid != GLOBAL or len(name) != 8 or not name.startswith("Boot"):
        return None
    digits = name[4:]
    if any(c not in "0123456789ABCDEF" for c in digits):
        return None
    return int(digits, 16)


def ovmf_own(variable: Variable) -> bool:
    option = parse_load_option(variable.data)
    if option is None:
        return False
    attributes, description, path, extra = option
    if extra == AUTO_CREATED.bytes_le:
        return True
    return any(path == _fv_file(file) + END_NODE and (description, attributes) == (text, attr)
               for text, attr, file in OVMF_OWN)
