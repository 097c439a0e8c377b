"""What the host tells about itself for the thermal model: the CPU time a process used
(``/proc/<pid>/stat``) and the temperatures of its hwmon sensors
(``/sys/class/hwmon/*/temp*_input``). Standard library only; every reader takes the
directory it reads, so tests give it a fake one."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

log = logging.getLogger("bios_ws.platform")

PROC = Path("/proc")
HWMON = Path("/sys/class/hwmon")
#: Readings outside this range are not an ambient temperature (a sensor that is absent
#: or broken reads 0, -273 or 255 degC) [degC].
AMBIENT_RANGE = (0.0, 60.0)
#: Clock ticks per second of /proc's utime and stime.
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int, proc: Path = PROC, ticks: int = _TICKS) -> float | None:
    """User plus system CPU seconds process ``pid`` has used (fields 14 and 15 of its
    ``stat``, in clock ticks); None when there is no such process or its stat is unreadable."""
    try:
        text = (proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the name in parentheses may hold spaces
    try:
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    except (IndexError, ValueError):
        return None


def hwmon_readings(root: Path = HWMON) -> list[float]:
    """Every plausible temperature the host's hwmon sensors read now [degC], in the order
    of their files (``temp*_input`` holds millidegrees)."""
    found = []
    try:
        sensors = sorted(root.glob("*/temp*_input"))
    except OSError:
        return []
    for path in sensors:
        try:
            value = int(path.read_text(encoding="ascii").strip()) / 1000.0
        except (OSError, ValueError):
            continue
        low, high = AMBIENT_RANGE
        if math.isfinite(value) and low < value < high:
            found.append(value)
    return found


def hwmon_ambient(root: Path = HWMON) -> float | None:
    """The host's ambient temperature from its hwmon sensors: the coolest plausible
    reading (the sensor nearest the intake air; the others sit on hot parts); None when
    the host has none."""
    readings = hwmon_readings(root)
    return min(readings) if readings else None
