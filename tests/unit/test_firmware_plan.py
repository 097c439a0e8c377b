"""The plan of a boot, from a domain's settings (pure)."""

from __future__ import annotations

import json

from bios_ws.domain.firmware import BootDevice, KeyDatabases
from bios_ws.domain.firmware_plan import FIRST_ENTRY, entry_numbers, plan_boot
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import DomainState

DEFAULT = KeyDatabases(pk=(b"pk",), kek=(b"kek",), db=(b"db",))


def state(registry: AttributeRegistry, **values: object) -> DomainState:
    domain = DomainState.new("vm1", registry)
    domain.current.update(values)  # type: ignore[arg-type]
    return domain


def test_boot_options_become_entries_named_by_their_display_names(
    shipped_registry: AttributeRegistry
) -> None:
    domain = state(shipped_registry)
    plan = plan_boot(domain, shipped_registry, DEFAULT)
    image = plan.firmware
    assert [(e.number, e.option_id, e.description, e.device) for e in image.entries] == [
        (1, "Disk.Virtio.0", "VirtIO disk 0", BootDevice.DISK),
        (2, "Cd.Sata.0", "SATA CD-ROM 0", BootDevice.CDROM),
        (3, "Pxe.Nic.0", "PXE IPv4 on NIC 0", BootDevice.PXE),
        (4, "Http.Nic.0", "UEFI HTTP boot on NIC 0", BootDevice.HTTP),
        (5, "Shell.Uefi", "UEFI Shell", BootDevice.SHELL)]
    assert image.order == (1, 2, 3, 4, 5) and image.boot_next is None
    assert entry_numbers(domain)["Disk.Virtio.0"] == FIRST_ENTRY


def test_order_and_boot_next_follow_the_domain(shipped_registry: AttributeRegistry) -> None:
    domain = state(shipped_registry)
    domain.set_boot_order(tuple(reversed(domain.boot_order)))
    domain.set_boot_next("Cd.Sata.0")
    image = plan_boot(domain, shipped_registry, DEFAULT).firmware
    assert image.order == (5, 4, 3, 2, 1) and image.boot_next == 2


def test_network_attributes_decide_the_nic_and_the_network_entries(
    shipped_registry: AttributeRegistry
) -> None:
    on = plan_boot(state(shipped_registry), shipped_registry, DEFAULT)  # PXE on, HTTP off
    actives = {e.option_id: e.active for e in on.firmware.entries}
    assert actives["Pxe.Nic.0"] and not actives["Http.Nic.0"] and on.machine.nic
    http = plan_boot(state(shipped_registry, PxeDev1EnDis="Disabled", HttpDev1EnDis="Enabled",
                           HttpDev1Uri="http://10.0.2.2/boot.efi"), shipped_registry, DEFAULT)
    entries = {e.option_id: e for e in http.firmware.entries}
    assert not entries["Pxe.Nic.0"].active and entries["Http.Nic.0"].active
    assert entries["Http.Nic.0"].uri == "http://10.0.2.2/boot.efi" and http.machine.nic
    off = plan_boot(state(shipped_registry, PxeDev1EnDis="Disabled"), shipped_registry,
                    DEFAULT)
    assert not off.machine.nic


def test_secure_boot_switch_and_keys(shipped_registry: AttributeRegistry) -> None:
    domain = state(shipped_registry)
    image = plan_boot(domain, shipped_registry, DEFAULT).firmware
    assert image.secure_boot_enable and image.keys == DEFAULT
    domain.current["SecureBoot"] = "Disabled"
    domain.secure_boot_keys = KeyDatabases()
    image = plan_boot(domain, shipped_registry, DEFAULT).firmware
    assert not image.secure_boot_enable and image.keys.setup_mode


def test_cores_threads_and_serial(shipped_registry: AttributeRegistry) -> None:
    default = plan_boot(state(shipped_registry), shipped_registry, DEFAULT, all_cores=1)
    assert (default.machine.cpus, default.machine.threads_per_core) == (2, 2)
    assert default.machine.serial
    four = plan_boot(state(shipped_registry, ProcCores="4", LogicalProc="Disabled",
                           SerialComm="Off"), shipped_registry, DEFAULT)
    assert (four.machine.cpus, four.machine.threads_per_core, four.machine.serial) == (
        4, 1, False)


def test_published_attributes_are_json_without_passwords(
    shipped_registry: AttributeRegistry
) -> None:
    domain = state(shipped_registry, AssetTag="rack-42")
    domain.passwords["SetupPassword"] = "hash"
    document = json.loads(plan_boot(domain, shipped_registry, DEFAULT).firmware.published)
    assert document["format"] == 1 and document["version"] == domain.version
    assert document["attributes"]["AssetTag"] == "rack-42"
    assert "SetupPassword" not in document["attributes"]
    assert "hash" not in json.dumps(document)
