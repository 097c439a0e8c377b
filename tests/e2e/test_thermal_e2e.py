"""Thermal management of simulated machines through a real `vbios serve` over mutual TLS
(two workers, each evaluating the policy every second on the shared store): an admin's override
to UpperCritical is audited and alerted once, an override to UpperFatal shuts the domain
down gracefully with LastResetCause ThermalEvent, and the guest reads it all with the
library and `vbios-client thermal`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import vbios_client as vc

from tests.e2e.conftest import ServerProcess, StartServer, init_home, run_vbios, stop_dev_tpm
from tests.waiting import wait_for

CLIENT = Path(sys.executable).parent / "vbios-client"
#: The policy's period (--thermal-interval) and a generous wait for it.
PERIOD = 1.0
POLICY_WAIT = 15.0
FAST = ("--workers", "2", "--boot-seconds", "0.3", "--graceful-timeout", "1",
        "--thermal-interval", str(PERIOD))


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    try:
        init_home(path)
        yield path
    finally:
        stop_dev_tpm(path)


def audit(home: Path, operation: str, domain: str) -> list[dict[str, str]]:
    done = run_vbios("audit", "show", "--json", "--home", str(home))
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, str]] = json.loads(done.stdout)
    return [row for row in rows if row["operation"] == operation and row["domain"] == domain]


def override(server: ServerProcess, domain: str, sensor: str, reading: str) -> None:
    reply = server.call(server.admin_bundle, "OverrideSensor",
                        f"<v:Domain>{domain}</v:Domain><v:Sensor>{sensor}</v:Sensor>"
                        f"<v:Reading>{reading}</v:Reading>"
                        "<v:DurationSeconds>600</v:DurationSeconds>")
    assert reply.status == 200, reply.body
    assert reply.text("State") in ("Critical", "Fatal")


def running(server: ServerProcess, name: str) -> vc.BiosClient:
    bios = vc.BiosClient.from_bundle(server.url, server.create_domain(name), timeout=15)
    bios.reset("On")
    wait_for(lambda: bios.get_power_state().power_state == "On", "On")
    return bios


def test_a_critical_override_is_audited_and_alerted_once(
    home: Path, start_server: StartServer
) -> None:
    server = start_server(home, *FAST)
    with running(server, "hot1") as bios:
        before = bios.thermal()
        assert (before.state, before.power_state) == ("Normal", "On")
        assert 25.0 < before.sensor("CPU").reading < 40.0
        override(server, "hot1", "CPU", "92.5")
        wait_for(lambda: audit(home, "ThermalCrossing", "hot1") != [], "the crossing audited",
                 POLICY_WAIT)
        time.sleep(3 * PERIOD)  # both workers evaluate again: nothing more is recorded
        [crossing] = audit(home, "ThermalCrossing", "hot1")
        assert crossing["principal"] == "admin:platform"
        assert server.stderr().count("hot1: CPU temperature 92.5 degC (override) reached"
                                     " UpperCritical 90 degC (Critical)") == 1
        thermal = bios.thermal()
        cpu = thermal.sensor("CPU")
        assert (thermal.state, thermal.health, cpu.reading, cpu.override_reading) == (
            "Critical", "Critical", 92.5, 92.5)
        assert thermal.fans[0].speed_percent == 100.0  # the fans follow what the sensor reads
        assert bios.get_power_state().power_state == "On"  # critical: no shutdown
        shown = subprocess.run(
            [str(CLIENT), "--url", server.url, "--bundle", str(server.work / "bundles" / "hot1"),
             "thermal", "--json"], capture_output=True, text=True, timeout=60, check=False)
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)
        assert data["state"] == "Critical"
        assert data["temperatures"][0]["override"]["set_by"].startswith("admin:")


def test_a_fatal_override_shuts_the_domain_down_gracefully(
    home: Path, start_server: StartServer
) -> None:
    server = start_server(home, *FAST)
    with running(server, "hot2") as bios:
        override(server, "hot2", "CPU", "101")
        wait_for(lambda: bios.get_power_state().last_reset_cause == "ThermalEvent",
                 "a thermal shutdown", POLICY_WAIT)
        wait_for(lambda: bios.get_power_state().power_state == "Off", "Off")  # escalated
        state = bios.get_power_state()
        assert (state.power_state, state.last_reset_cause) == ("Off", "ThermalEvent")
        time.sleep(3 * PERIOD)  # the override still says fatal: the domain is off, left alone
        assert len(audit(home, "ThermalShutdown", "hot2")) == 1
        assert [row["outcome"] for row in audit(home, "ThermalCrossing", "hot2")] == ["ok"]
        thermal = bios.thermal()
        assert (thermal.state, thermal.power_state) == ("Fatal", "Off")
        assert thermal.fans[0].speed_percent == 0.0
        cleared = server.call(server.admin_bundle, "OverrideSensor",
                              "<v:Domain>hot2</v:Domain><v:Sensor>CPU</v:Sensor>")
        assert cleared.status == 200, cleared.body
        wait_for(lambda: len(audit(home, "ThermalCrossing", "hot2")) == 2,
                 "the fatal state cleared", POLICY_WAIT)
        assert bios.thermal().state == "Normal"
