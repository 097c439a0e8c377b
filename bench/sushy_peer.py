"""sushy-tools' Redfish emulator with its fake systems driver, BIOS settings included:
the WSGI app bench/concurrency.py runs under gunicorn with the peer's interpreter
(`make peer` installs it), never with ours.

The fake driver (no libvirt, no cloud) answers every Systems resource but BIOS: its
driver base raises NotSupportedError there. The two methods below keep a system's
BIOS attributes in the fake system's own record, the way the driver keeps the boot
device and boot mode (`_update` writes the record back to the driver's store);
the routes, templates and everything else are sushy-tools' own.
The configuration comes from the file SUSHY_EMULATOR_CONFIG names, as for sushy-emulator.
"""

from __future__ import annotations

from typing import Any

from sushy_tools.emulator.main import app
from sushy_tools.emulator.resources.systems.fakedriver import FakeDriver


def get_bios(self: Any, identity: str) -> dict[str, Any]:
    return dict(self._get(identity).get("bios", {}))


def set_bios(self: Any, identity: str, attributes: dict[str, Any]) -> None:
    system = self._get(identity)
    self._update(system, bios={**system.get("bios", {}), **attributes})


FakeDriver.get_bios = get_bios
FakeDriver.set_bios = set_bios

__all__ = ["app"]
