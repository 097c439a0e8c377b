"""A domain's SMBIOS tables: what its firmware tells the OS about the machine (types 0-3).

Where each value comes from (stable for a domain; ``docs/system-management.md``):

- type 0 (BIOS): vendor ``bios-ws``; version ``vbios-<FwVersion>`` of the firmware the
  machine boots (a trial boot shows the new image's); release date the day that
  firmware was installed (the day its update completed, or the day the domain was
  created for the installation's image), as SMBIOS writes dates (``MM/DD/YYYY``);
- type 1 (system): manufacturer ``SystemManufacturer`` and product ``SystemModelName``
  (read-only registry attributes: the admin sets them in the home's registry file),
  SKU ``SystemServiceTag``, family ``Virtual Machine``, a serial number and a UUID
  derived from the domain id (a domain deleted and created again under its name has
  the same ones);
- type 2 (baseboard) and type 3 (chassis): the same manufacturer, serial numbers
  derived from the domain id, and the guest's ``AssetTag`` attribute as asset tag.

Strings are printable ASCII, at most ``MAX_STRING`` characters (anything else is dropped).
Standard library only.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

VENDOR = "bios-ws"
FAMILY = "Virtual Machine"
BASEBOARD_PRODUCT = "vBIOS Virtual Baseboard"
#: When the domain's settings have no such attribute (a registry without them).
DEFAULT_MANUFACTURER = "bios-ws"
DEFAULT_PRODUCT = "Virtual Trusted Runtime BIOS"
#: The namespace of the system UUIDs (uuid5 of the domain id).
UUID_NAMESPACE = uuid.UUID("35075cc3-ac02-4ff5-ace2-440613e08554")
MAX_STRING = 64


@dataclass(frozen=True)
class BiosInformation:
    """SMBIOS type 0."""

    vendor: str
    version: str
    release_date: date

    @property
    def release_date_text(self) -> str:
        """As SMBIOS writes it: MM/DD/YYYY."""
        return self.release_date.strftime("%m/%d/%Y")


@dataclass(frozen=True)
class SystemInformation:
    """SMBIOS type 1."""

    manufacturer: str
    product_name: str
    serial_number: str
    uuid: uuid.UUID
    sku_number: str
    family: str


@dataclass(frozen=True)
class BaseboardInformation:
    """SMBIOS type 2."""

    manufacturer: str
    product_name: str
    serial_number: str
    asset_tag: str


@dataclass(frozen=True)
class ChassisInformation:
    """SMBIOS type 3."""

    manufacturer: str
    serial_number: str
    asset_tag: str


@dataclass(frozen=True)
class SmbiosTables:
    bios: BiosInformation
    system: SystemInformation
    baseboard: BaseboardInformation
    chassis: ChassisInformation


def smbios_text(value: object) -> str:
    """``value`` as an SMBIOS string: printable ASCII only, trimmed, cut to MAX_STRING."""
    text = "" if value is None else str(value)
    kept = "".join(c for c in text if " " <= c <= "~")
    return kept.strip()[:MAX_STRING].strip()


def system_uuid(domain_id: str) -> uuid.UUID:
    return uuid.uuid5(UUID_NAMESPACE, domain_id)


def serial_number(domain_id: str, kind: str = "VM") -> str:
    """``<kind>-`` and 12 hex digits of the domain id's SHA-256 (upper case)."""
    digest = hashlib.sha256(f"{kind}:{domain_id}".encode()).hexdigest()[:12].upper()
    return f"{kind}-{digest}"


def smbios_for(domain_id: str, values: Mapping[str, object], bios_version: str,
               release_date: date) -> SmbiosTables:
    """The tables of ``domain_id`` whose current settings are ``values``, booting the
    firmware ``bios_version`` installed on ``release_date``."""
    manufacturer = smbios_text(values.get("SystemManufacturer")) or DEFAULT_MANUFACTURER
    product = smbios_text(values.get("SystemModelName")) or DEFAULT_PRODUCT
    asset = smbios_text(values.get("AssetTag"))
    return SmbiosTables(
        bios=BiosInformation(VENDOR, smbios_text(bios_version), release_date),
        system=SystemInformation(manufacturer, product, serial_number(domain_id),
                                 system_uuid(domain_id),
                                 smbios_text(values.get("SystemServiceTag")), FAMILY),
        baseboard=BaseboardInformation(manufacturer, BASEBOARD_PRODUCT,
                                       serial_number(domain_id, "BB"), asset),
        chassis=ChassisInformation(manufacturer, serial_number(domain_id, "CH"), asset),
    )
