"""A domain's SMBIOS tables: where each value comes from, stable per domain, strings kept to
printable ASCII."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from bios_ws.domain.smbios import (
    BASEBOARD_PRODUCT,
    DEFAULT_MANUFACTURER,
    DEFAULT_PRODUCT,
    FAMILY,
    MAX_STRING,
    UUID_NAMESPACE,
    VENDOR,
    serial_number,
    smbios_for,
    smbios_text,
    system_uuid,
)

VALUES = {"SystemManufacturer": "Example Corp", "SystemModelName": "Rack VM 9",
          "SystemServiceTag": "TAG42", "AssetTag": "rack-1"}
DAY = date(2026, 3, 4)


def test_the_tables_of_a_domain() -> None:
    tables = smbios_for("vm1", VALUES, "vbios-3", DAY)
    assert (tables.bios.vendor, tables.bios.version, tables.bios.release_date_text) == (
        VENDOR, "vbios-3", "03/04/2026")
    system = tables.system
    assert (system.manufacturer, system.product_name, system.sku_number, system.family) == (
        "Example Corp", "Rack VM 9", "TAG42", FAMILY)
    assert system.serial_number == serial_number("vm1")
    assert system.uuid == uuid.uuid5(UUID_NAMESPACE, "vm1") == system_uuid("vm1")
    assert (tables.baseboard.manufacturer, tables.baseboard.product_name,
            tables.baseboard.asset_tag) == ("Example Corp", BASEBOARD_PRODUCT, "rack-1")
    assert (tables.chassis.manufacturer, tables.chassis.asset_tag) == ("Example Corp", "rack-1")


def test_serials_and_uuid_are_stable_per_domain_and_differ_between_domains() -> None:
    first, again = smbios_for("vm1", VALUES, "vbios-1", DAY), smbios_for("vm1", {}, "x", DAY)
    other = smbios_for("vm2", VALUES, "vbios-1", DAY)
    assert first.system.uuid == again.system.uuid != other.system.uuid
    serials = {first.system.serial_number, first.baseboard.serial_number,
               first.chassis.serial_number}
    assert len(serials) == 3  # one per structure
    assert serials == {again.system.serial_number, again.baseboard.serial_number,
                       again.chassis.serial_number}
    assert first.system.serial_number != other.system.serial_number
    assert first.system.serial_number.startswith("VM-") and len(first.system.serial_number) == 15


def test_a_registry_without_the_identity_attributes_gets_the_fixed_strings() -> None:
    tables = smbios_for("vm1", {}, "vbios-1", DAY)
    assert (tables.system.manufacturer, tables.system.product_name,
            tables.system.sku_number, tables.chassis.asset_tag) == (
        DEFAULT_MANUFACTURER, DEFAULT_PRODUCT, "", "")


@pytest.mark.parametrize(("value", "kept"), [
    ("plain", "plain"), ("  padded  ", "padded"), ("tab\there", "tabhere"),
    ("caf\u00e9", "caf"), ("a,b=c", "a,b=c"), (None, ""), (42, "42"),
    ("x" * 100, "x" * MAX_STRING),
])
def test_strings_are_printable_ascii_and_bounded(value: object, kept: str) -> None:
    assert smbios_text(value) == kept


def test_a_guests_asset_tag_cannot_smuggle_control_characters() -> None:
    tables = smbios_for("vm1", {"AssetTag": "tag\x00\n,type=1"}, "vbios-1", DAY)
    assert tables.chassis.asset_tag == "tag,type=1"  # commas are QEMU's to escape
