"""Power of simulated machines through a real `vbios serve` over mutual TLS, sealed in its
development TPM: the guest's and the admin's requests, the server's clock for simulated
machines (a graceful shutdown escalates with nobody asking), pending values applied at a
reset, and the power restore policy when the service starts again."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import vbios_client as vc

from tests.e2e.conftest import (
    ServerProcess,
    StartServer,
    init_home,
    run_vbios,
    stop_dev_tpm,
)
from tests.waiting import wait_for

CLIENT = Path(sys.executable).parent / "vbios-client"
FAST = ("--workers", "2", "--boot-seconds", "0.3", "--graceful-timeout", "1")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A fresh home per test (start_server stops the home's TPM when the test ends)."""
    path = tmp_path / "home"
    try:
        init_home(path)
        yield path
    finally:
        stop_dev_tpm(path)


def audit(home: Path) -> list[dict[str, str]]:
    done = run_vbios("audit", "show", "--json", "--home", str(home))
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, str]] = json.loads(done.stdout)
    return rows


def test_guest_power_over_mutual_tls(home: Path, start_server: StartServer) -> None:
    server = start_server(home, *FAST)
    bundle = server.create_domain("power1")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=15) as bios:
        assert bios.get_power_state().power_state == "Off"
        with pytest.raises(vc.InvalidPowerTransition) as refused:
            bios.reset("GracefulShutdown")
        assert refused.value.attribute == "Off"
        bios.set_attributes({"BootMode": "Bios"}, apply_time="OnReset")
        outcome = bios.reset("On")
        assert outcome.pending_changes is False and "applied at this boot" in outcome.message
        assert bios.get_attributes(["BootMode"]).values == {"BootMode": "Bios"}
        wait_for(lambda: bios.get_power_state().power_state == "On", "On")
        assert bios.reset("GracefulShutdown").power_state == "PoweringOff"
        # nobody asks: the workers' clock escalates it and records the event
        wait_for(lambda: any(e["operation"] == "PowerEvent" and e["domain"] == "power1"
                             for e in audit(home)), "escalated")
        state = bios.get_power_state()
        assert (state.power_state, state.last_reset_cause) == ("Off", "ManagementCommand")


def test_admin_resets_a_named_domain_over_soap(home: Path, start_server: StartServer) -> None:
    server = start_server(home, *FAST)
    server.create_domain("power2")
    reply = server.call(server.admin_bundle, "ResetDomain",
                        "<v:Domain>power2</v:Domain><v:ResetType>ForceOn</v:ResetType>")
    assert reply.status == 200, reply.body
    assert reply.text("PowerState") in ("PoweringOn", "On")
    state = server.call(server.admin_bundle, "GetDomainPowerState",
                        "<v:Domain>power2</v:Domain>")
    assert state.text("Machine") == "simulated"
    bad = server.call(server.admin_bundle, "ResetDomain",
                      "<v:Domain>power2</v:Domain><v:ResetType>Reboot</v:ResetType>")
    assert bad.fault_code == "InvalidRequest"


def test_power_restore_policy_when_the_service_starts_again(
    home: Path, start_server: StartServer
) -> None:
    first = start_server(home, *FAST)
    on = first.create_domain("restore-on")
    off = first.create_domain("restore-off")
    with vc.BiosClient.from_bundle(first.url, on, timeout=15) as bios:
        bios.set_attributes({"AcPwrRcvry": "On"})
    with vc.BiosClient.from_bundle(first.url, off, timeout=15) as bios:
        bios.set_attributes({"AcPwrRcvry": "Off"})
        bios.reset("On")
    first.stop()
    again = start_server(home, *FAST)
    said = again.stdout()
    assert "power restore: restore-on: powered on (AcPwrRcvry On, delay 0 s)" in said
    assert "power restore: restore-off: stays off (AcPwrRcvry Off)" in said
    with vc.BiosClient.from_bundle(again.url, on, timeout=15) as bios:
        wait_for(lambda: bios.get_power_state().power_state == "On", "On")
        assert bios.get_power_state().last_reset_cause == "PowerRestorePolicy"
    with vc.BiosClient.from_bundle(again.url, off, timeout=15) as bios:
        assert bios.get_power_state().power_state == "Off"


def test_the_cli_power_commands_against_the_server(home: Path,
                                                   start_server: StartServer) -> None:
    server = start_server(home, *FAST)
    bundle = server.create_domain("power-cli")
    code, out, err = _client(server, bundle, "power", "reset", "On", "--json")
    assert code == 0, err
    assert json.loads(out)["power_state"] in ("PoweringOn", "On")
    code, out, err = _client(server, bundle, "power", "get", "--json")
    assert code == 0, err
    assert set(json.loads(out)) == {
        "power_state", "last_reset_cause", "last_reset_time", "pending_changes"}
    code, _, err = _client(server, bundle, "power", "reset", "ForceOn")
    assert code == 1 and err.startswith("vbios-client: InvalidPowerTransition: ")


def _client(server: ServerProcess, bundle: Path, *argv: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [str(CLIENT), "--url", server.url, "--bundle", str(bundle), *argv],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    return done.returncode, done.stdout, done.stderr
