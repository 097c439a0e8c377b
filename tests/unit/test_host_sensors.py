"""What the host tells the thermal model, read from fake /proc and /sys/class/hwmon trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bios_ws.platform.host_sensors import hwmon_ambient, hwmon_readings, process_cpu_seconds


def stat_line(pid: int, name: str, utime: int, stime: int) -> str:
    # fields 3.. of proc_pid_stat(5): state ppid pgrp session tty tpgid flags minflt cminflt
    # majflt cmajflt utime stime cutime cstime ...
    rest = ["S", "1", "1", "1", "0", "-1", "4194560", "10", "0", "0", "0", str(utime),
            str(stime), "7", "8", "20", "0", "3"]
    return f"{pid} ({name}) {' '.join(rest)}\n"


def test_cpu_seconds_of_a_process_are_its_user_and_system_ticks(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "stat").write_text(stat_line(4242, "qemu-system-x86", 350, 50))
    assert process_cpu_seconds(4242, tmp_path, ticks=100) == pytest.approx(4.0)
    # a name with spaces and parentheses does not shift the fields
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "stat").write_text(stat_line(7, "a) (b c", 100, 100))
    assert process_cpu_seconds(7, tmp_path, ticks=100) == pytest.approx(2.0)
    assert process_cpu_seconds(99, tmp_path) is None  # gone
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "stat").write_text("8 (cut")
    assert process_cpu_seconds(8, tmp_path) is None


def test_cpu_seconds_of_this_process_from_the_real_proc() -> None:
    used = process_cpu_seconds(os.getpid())
    assert used is not None and used > 0


def sensor(root: Path, chip: str, name: str, millidegrees: str) -> None:
    (root / chip).mkdir(parents=True, exist_ok=True)
    (root / chip / name).write_text(millidegrees + "\n")


def test_the_ambient_is_the_coolest_plausible_hwmon_reading(tmp_path: Path) -> None:
    sensor(tmp_path, "hwmon0", "temp1_input", "48500")  # a CPU package
    sensor(tmp_path, "hwmon0", "temp2_input", "45000")
    sensor(tmp_path, "hwmon1", "temp1_input", "27250")  # the board, near the intake
    sensor(tmp_path, "hwmon1", "temp2_input", "0")  # absent: 0
    sensor(tmp_path, "hwmon2", "temp1_input", "-273000")  # broken
    sensor(tmp_path, "hwmon2", "temp3_input", "garbage")
    sensor(tmp_path, "hwmon2", "temp1_label", "Tctl")  # not a reading
    assert hwmon_readings(tmp_path) == [48.5, 45.0, 27.25]
    assert hwmon_ambient(tmp_path) == 27.25


def test_no_hwmon_sensors_no_ambient(tmp_path: Path) -> None:
    assert hwmon_ambient(tmp_path / "absent") is None
    (tmp_path / "hwmon0").mkdir()
    assert hwmon_ambient(tmp_path) is None
