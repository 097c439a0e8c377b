"""System-management requests through a real `vbios serve` over mutual TLS (two workers,
simulated machines): a wake alarm powers a stopped domain on by itself (once, whichever
worker claims it), an alarm that came due while the service was down fires when it
starts, a watchdog the guest stops petting resets the domain, and the event log tells
it all; `vbios-client sm` against the same server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import vbios_client as vc

from tests.e2e.conftest import StartServer, init_home, run_vbios, stop_dev_tpm
from tests.waiting import wait_for

CLIENT = Path(sys.executable).parent / "vbios-client"
FAST = ("--workers", "2", "--boot-seconds", "0.3", "--graceful-timeout", "1")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    try:
        init_home(path)
        yield path
    finally:
        stop_dev_tpm(path)


def audit(home: Path, operation: str) -> list[dict[str, str]]:
    done = run_vbios("audit", "show", "--json", "--home", str(home))
    assert done.returncode == 0, done.stderr
    return [row for row in json.loads(done.stdout) if row["operation"] == operation]


def sel_keys(bios: vc.BiosClient) -> list[str]:
    return [e.message_id.removeprefix("VbiosSel.1.0.")
            for e in bios.get_system_event_log().entries]


def client_cli(server_url: str, bundle: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLIENT), "--url", server_url, "--bundle", str(bundle), *argv],
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_wake_alarm_powers_a_stopped_domain_on_once(home: Path,
                                                      start_server: StartServer) -> None:
    server = start_server(home, *FAST)
    bundle = server.create_domain("wake1")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=15) as bios:
        assert bios.get_power_state().power_state == "Off"
        alarm = bios.set_wake_alarm(datetime.now(UTC) + timedelta(seconds=3))
        assert bios.get_wake_alarm() == alarm
        wait_for(lambda: bios.get_power_state().last_reset_cause == "RTCWakeup",
                 "powered on by the alarm", 30)
        wait_for(lambda: bios.get_power_state().power_state == "On", "On", 30)
        assert bios.get_wake_alarm() is None
        time.sleep(2.5)  # both workers ticked since: still one power-on
        assert len(audit(home, "WakeAlarm")) == 1
        assert sel_keys(bios) == ["PowerStateChanged", "WakeAlarm"]
        woke = bios.get_system_event_log().entries[-1]
        assert woke.message_args[1].startswith("powered on")


def test_an_alarm_due_while_the_service_was_down_fires_at_start(
        home: Path, start_server: StartServer) -> None:
    server = start_server(home, *FAST)
    bundle = server.create_domain("wake2")
    server.stop()
    done = run_vbios("domain", "sm", "wake2", "wake-at", "+1s", "--home", str(home))
    assert done.returncode == 0, done.stderr
    time.sleep(2)
    server = start_server(home, *FAST)
    assert "vbios: timers: wake2: wake alarm of" in server.stdout()
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=15) as bios:
        assert bios.get_power_state().last_reset_cause == "RTCWakeup"


def test_a_watchdog_the_guest_stops_petting_resets_the_domain(
        home: Path, start_server: StartServer) -> None:
    server = start_server(home, *FAST)
    bundle = server.create_domain("dog1")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=15) as bios:
        bios.reset("On")
        wait_for(lambda: bios.get_power_state().power_state == "On", "On", 30)
        armed = bios.set_watchdog(True, timeout_seconds=5)
        assert armed.enabled and armed.deadline is not None
        for _ in range(4):  # 8 s of petting: no reset
            time.sleep(2)
            assert bios.pet_watchdog().expirations == 0
        assert bios.get_power_state().last_reset_cause == "ManagementCommand"
        wait_for(lambda: bios.get_power_state().last_reset_cause == "Watchdog",
                 "the watchdog's reset", 30)
        assert bios.get_watchdog().expirations == 1
        assert sel_keys(bios).count("WatchdogExpired") == 1
        assert [row["principal"] for row in audit(home, "WatchdogExpired")] == [
            "admin:platform"]
        assert bios.set_watchdog(False).enabled is False


def test_vbios_client_sm_against_the_server(home: Path, start_server: StartServer) -> None:
    server = start_server(home, *FAST)
    bundle = server.create_domain("cli1")
    done = client_cli(server.url, bundle, "sm", "smbios", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bios_version"] == "vbios-1"
    done = client_cli(server.url, bundle, "sm", "wake-at", "+1h", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["set_by"] == "guest:cli1"
    done = client_cli(server.url, bundle, "sm", "watchdog", "pet")
    assert done.returncode == 1 and done.stderr.startswith("vbios-client: WatchdogNotArmed:")
    done = client_cli(server.url, bundle, "sm", "sel-clear", "--json")
    assert (done.returncode, json.loads(done.stdout)) == (0, {"removed": 0})
    done = client_cli(server.url, bundle, "sm", "sel")
    assert done.returncode == 0 and "Log cleared by guest:cli1" in done.stdout
    reply = server.call(server.admin_bundle, "GetDomainSystemEventLog",
                        "<v:Domain>cli1</v:Domain>")
    assert reply.status == 200 and reply.texts("MessageId") == ["VbiosSel.1.0.LogCleared"]
