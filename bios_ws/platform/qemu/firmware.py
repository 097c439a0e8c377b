"""A ``FirmwareImage`` written into OVMF's variables, and the ``FirmwareState`` read back.

Boot entries are load options (``loadoption``), one per ``BootEntry``. BootNext is written
when set. BootOrder is the image's order, then ``END_OF_ORDER``, then the image's other
entries, then OVMF's own. At every boot OVMF's boot manager (PlatformBootManager-
AfterConsole) creates an entry for every bootable device it finds (marked with edk2's
auto-created GUID in its optional data; deleted again once the device is gone),
registers "UiApp" and "EFI Internal Shell", and appends to BootOrder any of these that
BootOrder does not list already, exactly (description, attributes, path, optional
data), under the lowest number neither BootOrder nor BootNext holds. Left alone they
would be tried once the image's entries failed, booting a disk or the shell the
settings left out. So their variables are kept (renumbered when an image entry takes
their number) and listed after ``END_OF_ORDER`` with the image's entries its order
leaves out: OVMF then appends nothing and takes none of the image's numbers, what it
appends for a new device lands behind ``END_OF_ORDER`` too, and nothing there is
tried: ``END_OF_ORDER`` starts OVMF's boot manager menu, which waits for someone at
the console (and lists them all). Any other ``Boot####`` is deleted: entries of
earlier images, and entries an OS made.

Secure Boot: PK, KEK, db and dbx hold one EFI_SIGNATURE_LIST per certificate
(EFI_CERT_X509_GUID, owner ``SIGNATURE_OWNER``), as time-based authenticated variables
(NV|BS|RT|AT) stamped with the time of writing (never earlier than the stamp they had:
an authenticated update signed before it cannot be replayed); a database holding the
image's certificates already keeps its variable, owner and stamp; an empty one is no
variable at all. dbx also keeps the
non-X.509 lists the store had (hashes from OVMF's enrollment or a dbx update made
inside the guest): revocations are never dropped by accident. ``SecureBootEnable``
(NV|BS, one byte) is always written: without it, OVMF turns enforcement on by itself
whenever a PK is enrolled. ``VbiosAttributes`` (NV|BS|RT) holds the published bytes
(no variable when there are none: UEFI has no empty variables).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509

from bios_ws.domain.firmware import (
    DATABASES,
    PUBLISHED_VARIABLE,
    VBIOS_VENDOR_GUID,
    BootDevice,
    BootEntry,
    BootPlan,
    FirmwareImage,
    FirmwareState,
    KeyDatabases,
    MachineOptions,
    SlotBoot,
)
from bios_ws.domain.firmware_update import Slot
from bios_ws.errors import MachineError
from bios_ws.platform.qemu.layout import MachineLayout
from bios_ws.platform.qemu.loadoption import (
    END_OF_ORDER,
    GLOBAL,
    LOAD_OPTION_ACTIVE,
    boot_number,
    device_path,
    load_option,
    ovmf_own,
)
from bios_ws.platform.qemu.nvram import (
    NV_BS,
    NV_BS_RT,
    NV_BS_RT_AT,
    Variable,
    efi_time,
    find,
    time_of,
    ucs2,
)

IMAGE_SECURITY_DATABASE = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
SECURE_BOOT_ENABLE = uuid.UUID("f0a30bc7-af08-4556-99c4-001009c93a44")
CERT_X509 = uuid.UUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
VBIOS_VENDOR = uuid.UUID(VBIOS_VENDOR_GUID)
#: The owner of every certificate this module enrolls.
SIGNATURE_OWNER = uuid.UUID("f33c2290-2a92-40b6-8f0f-17229dec1ef5")

MAX_DESCRIPTION = 128
MAX_URI = 1024
#: Data of one variable: OVMF's 4 MiB build takes variables up to 0x8400 bytes in all.
MAX_DATA = 0x8000
#: q35 takes 255 vCPUs without an IOMMU (more need x2APIC interrupt remapping).
MAX_CPUS = 255
#: The BIOS version shown in SMBIOS type 0: printable ASCII (an SMBIOS string), this long.
MAX_BIOS_VERSION = 64
_DATABASE_GUID = {"PK": GLOBAL, "KEK": GLOBAL, "db": IMAGE_SECURITY_DATABASE,
                  "dbx": IMAGE_SECURITY_DATABASE}
_SIGNATURE_LIST = struct.Struct("<16sIII")


# -- checking a plan --------------------------------------------------------------------


def check_plan(plan: object) -> BootPlan:
    """``plan``, if a machine can carry it out; else MachineError saying why."""
    try:
        if not (isinstance(plan, BootPlan) and isinstance(plan.firmware, FirmwareImage)
                and isinstance(plan.machine, MachineOptions)):
            raise TypeError(f"{type(plan).__name__} is not a BootPlan")
        _check(plan)
    except (TypeError, AttributeError) as exc:  # not even shaped like a plan
        raise MachineError(f"boot plan refused: {exc}") from None
    return plan


def _check(plan: BootPlan) -> None:
    image, machine = plan.firmware, plan.machine
    numbers = [entry.number for entry in image.entries]
    if len(set(numbers)) != len(numbers):
        raise MachineError("boot plan refused: two boot entries share a number")
    for entry in image.entries:
        _check_entry(entry)
    if len(set(image.order)) != len(image.order) or not set(image.order) <= set(numbers):
        raise MachineError(f"boot plan refused: the boot order {list(image.order)} repeats"
                           " or names entries the image does not have")
    if image.boot_next is not None and image.boot_next not in numbers:
        raise MachineError(f"boot plan refused: BootNext {image.boot_next} names no entry")
    for database in DATABASES:
        certificates = image.keys.of(database)
        for der in certificates:
            try:
                x509.load_der_x509_certificate(der)
            except ValueError:
                raise MachineError(f"boot plan refused: a {database} certificate is not"
                                   " DER X.509") from None
        if sum(len(der) + 44 for der in certificates) > MAX_DATA:
            raise MachineError(f"boot plan refused: {database} is larger than {MAX_DATA}")
    if len(image.keys.pk) > 1:
        raise MachineError("boot plan refused: the platform key is one certificate")
    if len(image.published) > MAX_DATA:
        raise MachineError(f"boot plan refused: the published attributes exceed {MAX_DATA}"
                           " bytes")
    if not (1 <= machine.cpus <= MAX_CPUS and machine.threads_per_core >= 1
            and machine.cpus % machine.threads_per_core == 0):
        raise MachineError(f"boot plan refused: {machine.cpus} vCPUs in cores of"
                           f" {machine.threads_per_core} threads")
    if plan.slot is not None:
        _check_slot(plan.slot)


def _check_slot(slot: SlotBoot) -> None:
    if not isinstance(slot, SlotBoot) or not isinstance(slot.slot, Slot):
        raise MachineError("boot plan refused: its firmware slot is not a SlotBoot of slot A"
                           " or B")
    version = slot.bios_version
    if not (isinstance(version, str) and 0 < len(version) <= MAX_BIOS_VERSION
            and version.isascii() and version.isprintable()):
        raise MachineError(f"boot plan refused: the BIOS version needs 1 to"
                           f" {MAX_BIOS_VERSION} printable ASCII characters")


def _check_entry(entry: BootEntry) -> None:
    where = f"boot plan refused: Boot{entry.number:04X}" if 0 <= entry.number <= 0xFFFF \
        else "boot plan refused: an entry"
    if not 0 <= entry.number <= 0xFFFF:
        raise MachineError(f"{where} has a number outside 0000-FFFF")
    text = entry.description
    if not 0 < len(text) <= MAX_DESCRIPTION or not text.isprintable():
        raise MachineError(f"{where} needs a printable description of 1 to"
                           f" {MAX_DESCRIPTION} characters")
    try:
        ucs2(text)
    except ValueError:
        raise MachineError(f"{where}: its description is not UCS-2") from None
    if not isinstance(entry.device, BootDevice):
        raise MachineError(f"{where} has no known device")
    if entry.device is BootDevice.HTTP and entry.uri:  # none: the URI DHCP offers
        uri = entry.uri
        if not (uri.startswith(("http://", "https://")) and len(uri) <= MAX_URI
                and uri.isascii() and uri.isprintable() and " " not in uri):
            raise MachineError(f"{where} has a URI that is not http:// or https://")
    elif entry.uri is not None:
        raise MachineError(f"{where} is no HTTP entry and has a URI")


# -- writing an image -------------------------------------------------------------------


def apply_image(variables: Sequence[Variable], image: FirmwareImage, layout: MachineLayout,
                *, now: datetime | None = None) -> tuple[Variable, ...]:
    """``variables`` with ``image`` written into them (``image`` checked first: see
    ``check_plan``). Variables already right stay untouched, so applying the same
    image twice changes nothing the second time."""
    check_plan(BootPlan(image))
    moment = now or datetime.now(UTC)
    result: dict[tuple[str, uuid.UUID], Variable | None] = {v.key: v for v in variables}
    old_order = find(variables, "BootOrder", GLOBAL)
    listed = _order(old_order.data) if old_order is not None else ()
    own: dict[bytes, Variable] = {}
    for variable in sorted(variables, key=lambda v: _listed_first(v, listed)):
        if boot_number(variable) is not None:
            result[variable.key] = None
            if ovmf_own(variable):
                own.setdefault(variable.data, variable)
    taken = {entry.number for entry in image.entries}
    stop = _free(taken, descending=True)
    taken.add(stop)
    kept = []
    for variable in own.values():
        number = boot_number(variable)
        if number is None or number in taken:
            number = _free(taken)
        taken.add(number)
        kept.append(number)
        _put(result, Variable(f"Boot{number:04X}", GLOBAL, variable.attributes, variable.data))
    for entry in image.entries:
        attributes = LOAD_OPTION_ACTIVE if entry.active else 0
        option = load_option(entry.description, attributes, device_path(entry, layout))
        _put(result, Variable(f"Boot{entry.number:04X}", GLOBAL, NV_BS_RT, option))
    _put(result, Variable(f"Boot{stop:04X}", GLOBAL, NV_BS_RT, END_OF_ORDER))
    rest = sorted(entry.number for entry in image.entries if entry.number not in image.order)
    order = (*image.order, stop, *rest, *kept)
    _put(result, Variable("BootOrder", GLOBAL, NV_BS_RT, struct.pack(f"<{len(order)}H", *order)))
    result[("BootNext", GLOBAL)] = None
    if image.boot_next is not None:
        _put(result, Variable("BootNext", GLOBAL, NV_BS_RT, struct.pack("<H", image.boot_next)))
    for database in DATABASES:
        _put_database(result, database, image.keys.of(database), moment)
    _put(result, Variable("SecureBootEnable", SECURE_BOOT_ENABLE, NV_BS,
                          bytes((int(image.secure_boot_enable),))))
    key = (PUBLISHED_VARIABLE, VBIOS_VENDOR)
    result[key] = None
    if image.published:
        _put(result, Variable(PUBLISHED_VARIABLE, VBIOS_VENDOR, NV_BS_RT, image.published))
    return tuple(v for v in result.values() if v is not None)


def _order(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(data) // 2}H", data[:len(data) // 2 * 2])


def _listed_first(variable: Variable, listed: tuple[int, ...]) -> int:
    number = boot_number(variable)
    return listed.index(number) if number in listed else len(listed)


def _free(taken: set[int], *, descending: bool = False) -> int:
    numbers = range(0xFFFF, -1, -1) if descending else range(0x10000)
    return next(n for n in numbers if n not in taken)


def _put(result: dict[tuple[str, uuid.UUID], Variable | None], variable: Variable) -> None:
    """Set ``variable``, keeping the stored copy when it is the same."""
    old = result.get(variable.key)
    same = old is not None and (old.attributes, old.data) == (variable.attributes,
                                                              variable.data)
    result[variable.key] = old if same else variable


def _put_database(result: dict[tuple[str, uuid.UUID], Variable | None], database: str,
                  certificates: tuple[bytes, ...], moment: datetime) -> None:
    guid = _DATABASE_GUID[database]
    old = result.get((database, guid))
    found = _signature_lists(old.data) if old is not None else []
    others = [raw for kind, raw, _ in found if kind != CERT_X509]
    held = tuple(der for kind, _, entries in found if kind == CERT_X509 for der in entries)
    if old is not None and old.attributes == NV_BS_RT_AT and held == certificates \
            and (database == "dbx" or not others):
        return  # the same certificates (whoever owns them): untouched
    data = b"".join([signature_list(der) for der in certificates]
                    + (others if database == "dbx" else []))
    if not data:
        result[(database, guid)] = None
    else:
        stamp = moment.replace(microsecond=0)
        previous = time_of(old.timestamp) if old is not None else None
        if previous is not None and previous >= stamp:  # never back in time
            stamp = previous + timedelta(seconds=1)
        result[(database, guid)] = Variable(database, guid, NV_BS_RT_AT, data, efi_time(stamp))


def signature_list(der: bytes) -> bytes:
    """One EFI_SIGNATURE_LIST holding one X.509 certificate owned by ``SIGNATURE_OWNER``."""
    size = 16 + len(der)
    return _SIGNATURE_LIST.pack(CERT_X509.bytes_le, _SIGNATURE_LIST.size + size, 0, size) \
        + SIGNATURE_OWNER.bytes_le + der


# -- reading the state ------------------------------------------------------------------


def read_state(variables: Iterable[Variable]) -> FirmwareState:
    """What the store says: BootOrder up to the end-of-order entry, OVMF's own entries
    left out (what ``apply_image`` put after it or OVMF appends: so it is the image's
    order, unless something inside the guest changed it), BootNext,
    SecureBootEnable and the certificates of each key database (X.509 only; other
    signature types are left out). Without a SecureBootEnable variable, OVMF enforces
    as soon as a PK is enrolled: so it reads."""
    variables = tuple(variables)
    order = find(variables, "BootOrder", GLOBAL)
    numbers = _order(order.data) if order is not None else ()
    ends = {boot_number(v) for v in variables if v.data == END_OF_ORDER}
    end = next((i for i, n in enumerate(numbers) if n in ends), len(numbers))
    own = {boot_number(v) for v in variables if ovmf_own(v)}
    boot_next = find(variables, "BootNext", GLOBAL)
    enable = find(variables, "SecureBootEnable", SECURE_BOOT_ENABLE)
    certificates: dict[str, tuple[bytes, ...]] = {}
    for database in DATABASES:
        variable = find(variables, database, _DATABASE_GUID[database])
        lists = _signature_lists(variable.data) if variable is not None else []
        certificates[database] = tuple(der for kind, _, entries in lists if kind == CERT_X509
                                       for der in entries)
    keys = KeyDatabases(pk=certificates["PK"], kek=certificates["KEK"], db=certificates["db"],
                        dbx=certificates["dbx"])
    return FirmwareState(
        boot_order=tuple(n for n in numbers[:end] if n not in own),
        boot_next=struct.unpack("<H", boot_next.data)[0]
        if boot_next is not None and len(boot_next.data) == 2 else None,
        secure_boot_enable=bool(enable.data[0]) if enable is not None and enable.data
        else not keys.setup_mode,
        keys=keys)


def _signature_lists(data: bytes) -> list[tuple[uuid.UUID, bytes, list[bytes]]]:
    """Each EFI_SIGNATURE_LIST of ``data``: (type, its raw bytes, the signature data of
    its entries, owner GUIDs removed). MachineError when a list does not add up."""
    lists = []
    position = 0
    while position < len(data):
        if len(data) - position < _SIGNATURE_LIST.size:
            raise MachineError("a signature database ends inside a list header")
        kind, size, header_size, entry_size = _SIGNATURE_LIST.unpack_from(data, position)
        body = position + _SIGNATURE_LIST.size + header_size
        end = position + size
        if (size < _SIGNATURE_LIST.size or end > len(data) or body > end or entry_size <= 16
                or (end - body) % entry_size):
            raise MachineError("a signature database holds a malformed list")
        entries = [data[at + 16:at + entry_size] for at in range(body, end, entry_size)]
        lists.append((uuid.UUID(bytes_le=kind), data[position:end], entries))
        position = end
    return lists
