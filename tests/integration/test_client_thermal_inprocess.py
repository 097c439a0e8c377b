"""Thermal readings through the guest library and `vbios-client thermal`, in-process (over
the app): decimals as floats, thresholds, an override in force, the text and JSON output."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
import vbios_client as vc
from vbios_client import cli

from bios_ws.domain.power import ResetType
from bios_ws.registry_file import load_registry
from bios_ws.service.thermal import ThermalService
from bios_ws.soap.testing import Endpoint, build_endpoint
from tests.integration.test_client_inprocess import URL, WsgiAdapter

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint(registry=load_registry(), ambient=lambda: 22.375)


@pytest.fixture
def bios(ep: Endpoint) -> Iterator[vc.BiosClient]:
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", WsgiAdapter(ep.app, ep.guest))
    with vc.BiosClient._over_session(URL, session, timeout=5) as client:
        yield client


def drill(ep: Endpoint) -> None:
    """The domain runs, its CPU sensor overridden to 91.25 degC for ten minutes."""
    thermal = ep.use_cases.use(ThermalService)
    thermal.set_thresholds(ep.admin, "vm1", 70.5, 85.0, 95.0, 1.5)
    thermal.override(ep.admin, "vm1", "CPU", 91.25, timedelta(minutes=10))


def test_the_library_reads_the_domain_s_thermal_state(bios: vc.BiosClient,
                                                       ep: Endpoint) -> None:
    thermal = bios.thermal()
    assert isinstance(thermal, vc.Thermal)
    assert (thermal.state, thermal.health, thermal.power_state, thermal.ambient_source) == (
        "Normal", "OK", "Off", "HostSensors")
    assert (thermal.load_percent, thermal.power_watts, thermal.reading_time) == (0.0, 0.0, T0)
    cpu, inlet = thermal.temperatures
    assert cpu == thermal.sensor("CPU") and inlet == thermal.sensor("Inlet")
    assert (cpu.reading, cpu.units, cpu.physical_context) == (22.38, "Cel", "CPU")
    assert cpu.upper_fatal == vc.ThermalThreshold(100.0, 2.0)
    assert (inlet.reading, inlet.upper_caution, inlet.override_reading) == (22.38, None, None)
    assert thermal.fans == (vc.Fan("Fan1", 0.0, 0.0), vc.Fan("Fan2", 0.0, 0.0))
    with pytest.raises(KeyError):
        thermal.sensor("GPU")


def test_an_override_and_thresholds_the_admin_set(bios: vc.BiosClient, ep: Endpoint) -> None:
    drill(ep)
    thermal = bios.thermal()
    cpu = thermal.sensor("CPU")
    assert (thermal.state, thermal.health) == ("Critical", "Critical")
    assert (cpu.reading, cpu.override_reading, cpu.override_set_by) == (91.25, 91.25,
                                                                       "admin:admin")
    assert cpu.override_expires == T0 + timedelta(minutes=10)
    assert (cpu.upper_caution, cpu.upper_critical, cpu.upper_fatal) == (
        vc.ThermalThreshold(70.5, 1.5), vc.ThermalThreshold(85.0, 1.5),
        vc.ThermalThreshold(95.0, 1.5))
    assert thermal.fans[0].speed_percent == 0.0  # the machine is off: its fans stand still


def run(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch, *argv: str
        ) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_connect", lambda args: bios)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--url", URL, "--bundle", "unused", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_vbios_client_thermal_as_text(bios: vc.BiosClient, ep: Endpoint,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    drill(ep)
    ep.power.reset(ep.guest, ResetType.ON)
    ep.clock.advance(ep.platform.boot_seconds)
    code, out, err = run(bios, monkeypatch, "thermal")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "state    Critical (health Critical)"
    assert lines[1].startswith("power    On, CPU load ") and lines[1].endswith(" W")
    assert lines[2:4] == ["ambient  HostSensors", "read at  2026-01-01T00:00:02Z"]
    cpu = next(line for line in lines if line.startswith("CPU "))
    assert cpu.split() == ["CPU", "91.25", "C", "70.5", "85", "95", "91.25", "until",
                           "2026-01-01T00:10:00Z", "(admin:admin)"]
    inlet = next(line for line in lines if line.startswith("Inlet "))
    assert inlet.split() == ["Inlet", "22.38", "C", "-", "-", "-", "-"]
    fan = next(line for line in lines if line.startswith("Fan1 "))
    assert fan.split() == ["Fan1", "100.0", "%", "12000"]  # the fans follow the sensor


def test_vbios_client_thermal_as_json(bios: vc.BiosClient, ep: Endpoint,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    drill(ep)
    code, out, _ = run(bios, monkeypatch, "thermal", "--json")
    assert code == 0
    data = json.loads(out)
    assert {k: data[k] for k in ("state", "health", "power_state", "ambient_source",
                                 "reading_time")} == {
        "state": "Critical", "health": "Critical", "power_state": "Off",
        "ambient_source": "HostSensors", "reading_time": "2026-01-01T00:00:00Z"}
    cpu, inlet = data["temperatures"]
    assert cpu == {
        "name": "CPU", "physical_context": "CPU", "reading": 91.25, "units": "Cel",
        "thresholds": {"upper_caution": {"reading": 70.5, "hysteresis": 1.5},
                       "upper_critical": {"reading": 85.0, "hysteresis": 1.5},
                       "upper_fatal": {"reading": 95.0, "hysteresis": 1.5}},
        "override": {"reading": 91.25, "expires": "2026-01-01T00:10:00Z",
                     "set_by": "admin:admin"}}
    assert (inlet["thresholds"], inlet["override"], inlet["reading"]) == (None, None, 22.38)
    assert data["fans"] == [{"name": "Fan1", "speed_percent": 0.0, "speed_rpm": 0.0},
                            {"name": "Fan2", "speed_percent": 0.0, "speed_rpm": 0.0}]


def test_the_admin_s_operations_are_refused_to_the_guest(bios: vc.BiosClient) -> None:
    with pytest.raises(vc.AccessDenied):
        bios._channel.call("GetDomainThermal", Domain="vm1")
