"""`vbios domain create --machine|show|power|console|apply-pending`, in-process, simulated."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli_support import Run, refused

FAST = ("--boot-seconds", "0.2", "--graceful-timeout", "0.5")


@pytest.fixture
def domain(home: Path, run: Run) -> str:
    code, out, err = run("domain", "create", "vm1", "--home", str(home))
    assert code == 0, err
    assert "created domain vm1 (simulated machine, off)" in out
    return "vm1"


def power(run: Run, home: Path, *argv: str) -> dict[str, object]:
    code, out, err = run("domain", "power", *argv, "--json", "--home", str(home), *FAST)
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def test_show_prints_the_machine_and_its_power(home: Path, run: Run, domain: str) -> None:
    code, out, _ = run("domain", "show", domain, "--json", "--home", str(home))
    data = json.loads(out)
    assert code == 0
    assert (data["machine"], data["power_state"], data["settings_version"]) == (
        "simulated", "Off", 1)
    assert data["machine_dir"] == str(home / "machines" / domain)
    code, out, _ = run("domain", "show", domain, "--home", str(home))
    assert "machine" in out and "simulated" in out


def test_power_get_and_reset(home: Path, run: Run, domain: str) -> None:
    assert power(run, home, "get", domain) == {
        "power_state": "Off", "last_reset_cause": None, "last_reset_time": None,
        "pending_changes": False}
    assert power(run, home, "reset", domain, "On")["power_state"] in ("PoweringOn", "On")
    time.sleep(0.3)
    got = power(run, home, "get", domain)
    assert (got["power_state"], got["last_reset_cause"]) == ("On", "ManagementCommand")
    code, out, _ = run("domain", "power", "reset", domain, "ForceOff", "--home", str(home))
    assert code == 0 and out.startswith("vm1: the domain is Off")


def test_a_power_request_that_makes_no_sense_is_one_line(home: Path, run: Run,
                                                         domain: str) -> None:
    err = refused(run("domain", "power", "reset", domain, "Resume", "--home", str(home)),
                   "Resume makes no sense while the domain is Off")
    assert "possible now:" in err
    refused(run("domain", "power", "get", "nobody", "--home", str(home)), "nobody")


def test_console_prints_what_the_machine_printed(home: Path, run: Run, domain: str) -> None:
    power(run, home, "reset", domain, "On")
    code, out, _ = run("domain", "console", domain, "--home", str(home))
    assert code == 0 and "power on (ManagementCommand)" in out


def test_apply_pending_without_a_reset(home: Path, run: Run, domain: str) -> None:
    from bios_ws.bootstrap import bootstrap
    from bios_ws.config import Config
    from bios_ws.domain.principal import Principal
    from bios_ws.domain.state import ApplyTime
    from bios_ws.home import Home
    from bios_ws.service.bios import BiosService

    with bootstrap(Config.of(Home.open(home))) as app:
        app.use(BiosService).set_attributes(Principal.guest(domain), {"BootMode": "Bios"},
                                            ApplyTime.ON_RESET)
    code, out, _ = run("domain", "apply-pending", domain, "--home", str(home))
    assert code == 0 and "settings version 3" in out
    assert power(run, home, "get", domain)["pending_changes"] is False
    code, out, _ = run("audit", "show", "--json", "--home", str(home))
    applied = [e for e in json.loads(out) if e["operation"] == "ApplyPendingAttributes"]
    assert [(e["principal"], e["outcome"]) for e in applied] == [("admin:admin", "ok")]


def test_delete_turns_a_running_machine_off_and_removes_it(home: Path, run: Run,
                                                           domain: str) -> None:
    power(run, home, "reset", domain, "On")
    code, out, _ = run("domain", "delete", domain, "--home", str(home))
    assert code == 0 and "its machine was turned off and removed" in out
    assert not (home / "machines" / domain / "simulated.json").exists()
