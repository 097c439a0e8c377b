"""The guest library's system-management calls and `vbios-client sm`, through the bundled
WSDL, against the in-process app (``build_endpoint``, a manual clock): typed models, the
timers fired by the serving process's tick, typed faults, and the CLI's output shapes and
exit statuses."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
import vbios_client as vc
from vbios_client import cli, sm_cli

from bios_ws.registry_file import load_registry
from bios_ws.service.system_management import SystemManagementService
from bios_ws.soap.testing import Endpoint, build_endpoint
from tests.integration.test_client_inprocess import URL, WsgiAdapter

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint(registry=load_registry())


@pytest.fixture
def bios(ep: Endpoint) -> Iterator[vc.BiosClient]:
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", WsgiAdapter(ep.app, ep.guest))
    with vc.BiosClient._over_session(URL, session, timeout=5) as client:
        yield client


def tick(ep: Endpoint) -> list[str]:
    return ep.use_cases.use(SystemManagementService).timers.tick()


def test_smbios(bios: vc.BiosClient) -> None:
    found = bios.get_smbios()
    assert isinstance(found, vc.Smbios)
    assert (found.bios_vendor, found.bios_version, found.bios_release_date) == (
        "bios-ws", "vbios-1", "01/01/2026")
    assert (found.manufacturer, found.family, found.chassis_asset_tag) == (
        "bios-ws", "Virtual Machine", "")
    assert len(found.uuid) == 36 and found.serial_number.startswith("VM-")


def test_the_event_log_and_its_clear(bios: vc.BiosClient) -> None:
    bios.reset("On")
    log = bios.get_system_event_log()
    assert (log.max_entries, log.overwrite_policy, log.dropped_entries) == (
        512, "WrapsWhenFull", 0)
    [entry] = log.entries
    assert entry == vc.SelEntry(1, "vm1", START, "OK", "The power state is PoweringOn"
                                " (ManagementCommand).", "VbiosSel.1.0.PowerStateChanged",
                                ("PoweringOn", "ManagementCommand"), "System ACPI PowerState",
                                "State Asserted")
    assert bios.clear_system_event_log() == 1
    assert [e.message_id for e in bios.get_system_event_log().entries] == [
        "VbiosSel.1.0.LogCleared"]


def test_a_wake_alarm(bios: vc.BiosClient, ep: Endpoint) -> None:
    assert bios.get_wake_alarm() is None
    paris = timezone(timedelta(hours=1))
    alarm = bios.set_wake_alarm(datetime(2026, 1, 1, 1, 0, 30, tzinfo=paris))
    assert alarm == vc.WakeAlarm(START + timedelta(seconds=30), "guest:vm1", START)
    assert bios.get_wake_alarm() == alarm
    ep.clock.advance(30)
    assert len(tick(ep)) == 1
    assert bios.get_power_state().last_reset_cause == "RTCWakeup"
    assert bios.clear_wake_alarm() is False


def test_wake_alarm_arguments_are_checked_here(bios: vc.BiosClient) -> None:
    with pytest.raises(ValueError, match="aware"):
        bios.set_wake_alarm(datetime(2027, 1, 1))
    with pytest.raises(TypeError):
        bios.set_wake_alarm("2027-01-01T00:00:00Z")  # type: ignore[arg-type]
    with pytest.raises(vc.InvalidRequest) as refused:
        bios.set_wake_alarm(START - timedelta(days=1))
    assert refused.value.attribute == "WakeTime"


def test_the_watchdog(bios: vc.BiosClient, ep: Endpoint) -> None:
    with pytest.raises(vc.WatchdogNotArmed):
        bios.pet_watchdog()
    bios.reset("On")
    armed = bios.set_watchdog(True, timeout_seconds=10)
    assert armed == vc.Watchdog(True, 10, START, START + timedelta(seconds=10), 0)
    ep.clock.advance(5)
    assert bios.pet_watchdog().deadline == START + timedelta(seconds=15)
    ep.clock.advance(10)
    tick(ep)
    assert bios.get_power_state().last_reset_cause == "Watchdog"
    assert bios.get_watchdog().expirations == 1
    assert bios.set_watchdog(False).enabled is False
    with pytest.raises(vc.InvalidRequest):
        bios.set_watchdog(True, timeout_seconds=1)
    with pytest.raises(TypeError):
        bios.set_watchdog("yes")  # type: ignore[arg-type]


# -- vbios-client sm -------------------------------------------------------------------

def run(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch, *argv: str
        ) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_connect", lambda args: bios)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--url", URL, "--bundle", "unused", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_smbios(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(bios, monkeypatch, "sm", "smbios", "--json")
    assert code == 0 and json.loads(out)["bios_version"] == "vbios-1"
    code, out, _ = run(bios, monkeypatch, "sm", "smbios")
    assert code == 0 and "System (type 1)" in out and "vbios-1" in out


def test_cli_sel_and_clear(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    bios.reset("On")
    code, out, _ = run(bios, monkeypatch, "sm", "sel", "--json")
    data = json.loads(out)
    assert code == 0 and data["entries"][0]["created"] == "2026-01-01T00:00:00Z"
    assert data["entries"][0]["message_args"] == ["PoweringOn", "ManagementCommand"]
    code, out, _ = run(bios, monkeypatch, "sm", "sel")
    assert code == 0 and out.startswith("# 1 of 512 entries (WrapsWhenFull)")
    assert "System ACPI PowerState: The power state is PoweringOn" in out
    code, out, _ = run(bios, monkeypatch, "sm", "sel-clear", "--json")
    assert (code, json.loads(out)) == (0, {"removed": 1})


def test_cli_wake(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(bios, monkeypatch, "sm", "wake")
    assert (code, out) == (0, "no wake alarm\n")
    code, out, _ = run(bios, monkeypatch, "sm", "wake-at", "2026-02-01T06:30:00Z", "--json")
    assert code == 0 and json.loads(out)["wake_time"] == "2026-02-01T06:30:00Z"
    code, out, _ = run(bios, monkeypatch, "sm", "wake")
    assert code == 0 and "2026-02-01T06:30:00Z" in out and "guest:vm1" in out
    code, out, _ = run(bios, monkeypatch, "sm", "wake-clear")
    assert (code, out) == (0, "wake alarm cleared\n")
    code, _, err = run(bios, monkeypatch, "sm", "wake-at", "2025-02-01T06:30:00Z")
    assert code == 1 and err.startswith("vbios-client: InvalidRequest: ")
    code, _, err = run(bios, monkeypatch, "sm", "wake-at", "2026-02-01T06:30:00")
    assert code == 2 and "no offset" in err


def test_cli_relative_wake_times() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert sm_cli.wake_time("+90s", now) == now + timedelta(seconds=90)
    assert sm_cli.wake_time("+2h", now) == now + timedelta(hours=2)
    assert sm_cli.wake_time("+1d", now) == now + timedelta(days=1)
    with pytest.raises(sm_cli.UsageError):
        sm_cli.wake_time("+5w", now)


def test_cli_watchdog(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(bios, monkeypatch, "sm", "watchdog", "pet")
    assert code == 1 and err.startswith("vbios-client: WatchdogNotArmed: ")
    code, out, _ = run(bios, monkeypatch, "sm", "watchdog", "enable", "60", "--json")
    assert code == 0 and json.loads(out)["timeout_seconds"] == 60
    code, out, _ = run(bios, monkeypatch, "sm", "watchdog", "pet")
    assert code == 0 and "armed" in out and "60 s" in out
    code, out, _ = run(bios, monkeypatch, "sm", "watchdog")
    assert code == 0 and "watchdog    = armed" in out
    code, out, _ = run(bios, monkeypatch, "sm", "watchdog", "disable", "--json")
    assert code == 0 and json.loads(out)["enabled"] is False
    code, _, err = run(bios, monkeypatch, "sm", "watchdog", "pet", "30")
    assert code == 2 and "SECONDS goes with enable" in err
    with pytest.raises(SystemExit) as usage:
        run(bios, monkeypatch, "sm", "watchdog", "bite")
    assert usage.value.code == 2
