"""From a domain's settings to the plan of its machine's next boot.

What each registry attribute does to the machine is decided here, in one
table (``docs/attributes.md`` explains every attribute):

- the boot options become UEFI boot entries ``Boot0001``.. in the order of the
  domain's options, described by their display names; the boot order and
  BootNext follow the domain's;
- ``PxeDev1EnDis`` and ``HttpDev1EnDis`` (with ``HttpDev1Uri``) activate the
  network entries, and the machine has a NIC when either is on;
- ``SecureBoot`` is the firmware's Secure Boot switch, the domain's key
  databases (or the installation's default set) its keys;
- ``ProcCores`` and ``LogicalProc`` give the vCPUs; ``SerialComm`` the serial
  console;
- every attribute but the passwords is published in the ``VbiosAttributes``
  variable (JSON, UTF-8) for the firmware and the OS to read.

Standard library only.
"""

from __future__ import annotations

import json

from bios_ws.domain.firmware import (
    BootDevice,
    BootEntry,
    BootPlan,
    FirmwareImage,
    KeyDatabases,
    MachineOptions,
)
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import DomainState

#: The device each boot option id names (by the part before the first dot).
DEVICES = {"Disk": BootDevice.DISK, "Cd": BootDevice.CDROM, "Pxe": BootDevice.PXE,
           "Http": BootDevice.HTTP, "Shell": BootDevice.SHELL}
#: Boot#### numbers of a domain's options start here (Boot0000 is the firmware's setup).
FIRST_ENTRY = 1
#: The format of the published attributes document.
PUBLISHED_FORMAT = 1


def entry_numbers(state: DomainState) -> dict[str, int]:
    """The Boot#### number of each of the domain's boot options."""
    return {option.id: FIRST_ENTRY + index for index, option in enumerate(state.boot_options)}


def plan_boot(state: DomainState, registry: AttributeRegistry, default_keys: KeyDatabases,
              *, all_cores: int = 1) -> BootPlan:
    """The firmware image and machine options of ``state``'s next boot."""
    values = state.current
    numbers = entry_numbers(state)
    pxe = values.get("PxeDev1EnDis") == "Enabled"
    uri = str(values.get("HttpDev1Uri") or "")
    http = values.get("HttpDev1EnDis") == "Enabled" and bool(uri)
    entries = []
    for option in state.boot_options:
        device = DEVICES.get(option.id.split(".", 1)[0], BootDevice.DISK)
        active = option.enabled and (device is not BootDevice.PXE or pxe) and (
            device is not BootDevice.HTTP or http)
        entries.append(BootEntry(numbers[option.id], option.id, option.display_name, device,
                                 active, uri if device is BootDevice.HTTP and uri else None))
    image = FirmwareImage(
        entries=tuple(entries),
        order=tuple(numbers[option_id] for option_id in state.boot_order),
        boot_next=None if state.boot_next is None else numbers.get(state.boot_next),
        secure_boot_enable=values.get("SecureBoot") == "Enabled",
        keys=state.secure_boot_keys if state.secure_boot_keys is not None else default_keys,
        published=published(state, registry),
    )
    cores_setting = str(values.get("ProcCores", "All"))
    cores = all_cores if not cores_setting.isdigit() else int(cores_setting)
    machine = MachineOptions(
        cpus=cores * (2 if values.get("LogicalProc") == "Enabled" else 1),
        threads_per_core=2 if values.get("LogicalProc") == "Enabled" else 1,
        nic=pxe or http,
        serial=values.get("SerialComm") != "Off",
    )
    return BootPlan(image, machine)


def published(state: DomainState, registry: AttributeRegistry) -> bytes:
    """The ``VbiosAttributes`` document: every current value but the passwords."""
    definitions = registry.definitions
    values = {name: value for name, value in sorted(state.current.items())
              if name not in definitions or not definitions[name].is_password}
    document = {"format": PUBLISHED_FORMAT, "version": state.version,
                "registry": registry.registry_version, "attributes": values}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
