"""`vbios domain thermal ...`, in-process on a simulated domain: readings, thresholds and
overrides as the admin types and sees them; a refusal is one line, exit 1, nothing changed;
a malformed command line is a usage error (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import Run, refused

FAST = ("--boot-seconds", "0.2", "--graceful-timeout", "0.5")


@pytest.fixture
def domain(home: Path, run: Run) -> str:
    assert run("domain", "create", "vm1", "--home", str(home))[0] == 0
    return "vm1"


def thermal(run: Run, home: Path, *argv: str) -> dict[str, Any]:
    code, out, err = run("domain", "thermal", *argv, "--json", "--home", str(home), *FAST)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_the_readings_of_a_domain(home: Path, run: Run, domain: str) -> None:
    data = thermal(run, home, domain)
    assert (data["domain"], data["state"], data["health"], data["power_state"]) == (
        "vm1", "Normal", "OK", "Off")
    assert data["ambient_source"] in ("Default", "HostSensors")
    cpu, inlet = data["temperatures"]
    assert (cpu["name"], cpu["units"], cpu["reading"] == cpu["model"]) == ("CPU", "Cel", True)
    assert cpu["thresholds"]["upper_fatal"] == {"reading": 100.0, "hysteresis": 2.0}
    assert inlet["thresholds"] is None and inlet["name"] == "Inlet"
    assert [fan["name"] for fan in data["fans"]] == ["Fan1", "Fan2"]
    assert thermal(run, home, "show", domain) == data | {"reading_time": data["reading_time"]}
    code, out, _ = run("domain", "thermal", domain, "--home", str(home))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("vm1: Normal (health OK), Off, CPU load 0 %, 0 W, ambient ")
    assert lines[2].split()[:6] == ["CPU", f"{cpu['reading']:.2f}", f"{cpu['model']:.2f}",
                                    "80", "90", "100"]
    assert lines[-1] == "Fan1 0 % (0 RPM)  Fan2 0 % (0 RPM)"


def test_thresholds_and_an_override_then_cleared(home: Path, run: Run, domain: str) -> None:
    data = thermal(run, home, "thresholds", domain, "--caution", "70.5", "--critical", "85",
                   "--fatal", "95.25", "--hysteresis", "1.5")
    assert data["temperatures"][0]["thresholds"] == {
        "upper_caution": {"reading": 70.5, "hysteresis": 1.5},
        "upper_critical": {"reading": 85.0, "hysteresis": 1.5},
        "upper_fatal": {"reading": 95.25, "hysteresis": 1.5}}
    data = thermal(run, home, "override", domain, "CPU", "88.5", "--minutes", "5")
    cpu = data["temperatures"][0]
    assert (cpu["reading"], data["state"]) == (88.5, "Critical")
    assert cpu["override"]["reading"] == 88.5 and cpu["override"]["set_by"] == "admin:admin"
    assert thermal(run, home, domain)["temperatures"][0]["override"] == cpu["override"]
    data = thermal(run, home, "override-clear", domain, "CPU")
    assert data["temperatures"][0]["override"] is None and data["state"] == "Normal"
    data = thermal(run, home, "thresholds", domain, "--caution", "60", "--critical", "70",
                   "--fatal", "80")  # the hysteresis it has stays
    assert data["temperatures"][0]["thresholds"]["upper_fatal"] == {"reading": 80.0,
                                                                     "hysteresis": 1.5}
    code, out, _ = run("domain", "thermal", "override", domain, "Inlet", "-5", "--minutes",
                       "1", "--home", str(home))
    assert code == 0 and "Inlet" in out and "-5 until" in out


@pytest.mark.parametrize(("argv", "fragment"), [
    (("thresholds", "vm1", "--caution", "90", "--critical", "80", "--fatal", "100"),
     "UpperCaution < UpperCritical"),
    (("override", "vm1", "GPU", "90", "--minutes", "5"), "no sensor 'GPU'"),
    (("override", "vm1", "CPU", "90", "--minutes", "61"), "at most 3600"),
    (("override", "vm1", "CPU", "hot", "--minutes", "5"), "VALUE must be a temperature"),
    (("override", "vm1", "CPU", "90", "--minutes", "0"), "--minutes must be a positive"),
    (("vm9",), "no domain 'vm9'"),
])
def test_refusals_are_one_line_and_change_nothing(home: Path, run: Run, domain: str,
                                                  argv: tuple[str, ...], fragment: str) -> None:
    before = thermal(run, home, domain)
    refused(run("domain", "thermal", *argv, "--home", str(home), *FAST), fragment)
    after = thermal(run, home, domain)
    assert after["temperatures"][0]["thresholds"] == before["temperatures"][0]["thresholds"]
    assert after["temperatures"][0]["override"] is None


@pytest.mark.parametrize("argv", [
    ("thresholds", "vm1", "--caution", "70", "--critical", "80"),
    ("override", "vm1", "CPU", "90"),
    ("override", "vm1", "CPU", "--minutes", "5"),
    ("override-clear", "vm1"),
    ("vm1", "extra"),
    ("vm1", "--minutes", "5"),
    ("thresholds", "vm1", "--caution", "1", "--critical", "2", "--fatal", "3", "--minutes", "1"),
])
def test_malformed_command_lines_are_usage_errors(home: Path, run: Run, domain: str,
                                                  argv: tuple[str, ...],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run("domain", "thermal", *argv, "--home", str(home))
    assert stopped.value.code == 2
    assert "usage: vbios domain thermal NAME [--json]" in capsys.readouterr().err
