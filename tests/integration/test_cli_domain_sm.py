"""`vbios domain sm NAME ...`, in-process on a simulated domain: SMBIOS, the event log and its
policy, the wake alarm and the watchdog as the admin sees them; a refusal is one line,
exit 1, nothing changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bios_ws.cli.domain_sm import wake_time
from bios_ws.errors import AdminError
from tests.cli_support import Run, refused

FAST = ("--boot-seconds", "0.2", "--graceful-timeout", "0.5")


@pytest.fixture
def vm1(home: Path, run: Run) -> Path:
    assert run("domain", "create", "vm1", "--home", str(home))[0] == 0
    return home


def sm(run: Run, home: Path, *argv: str) -> object:
    code, out, err = run("domain", "sm", "vm1", *argv, "--json", "--home", str(home), *FAST)
    assert code == 0, err
    return json.loads(out)


def test_smbios(vm1: Path, run: Run) -> None:
    tables = sm(run, vm1, "smbios")
    assert isinstance(tables, dict)
    assert tables["bios"]["vendor"] == "bios-ws" and tables["bios"]["version"] == "vbios-1"
    assert tables["system"]["family"] == "Virtual Machine"
    code, out, _ = run("domain", "sm", "vm1", "smbios", "--home", str(vm1))
    assert code == 0 and "uuid" in out and tables["system"]["uuid"] in out


def test_the_event_log_its_policy_and_its_clear(vm1: Path, run: Run) -> None:
    assert run("domain", "power", "reset", "vm1", "On", "--home", str(vm1), *FAST)[0] == 0
    log = sm(run, vm1, "sel")
    assert isinstance(log, dict)
    assert (log["max_entries"], log["overwrite_policy"], log["entry_count"]) == (
        512, "WrapsWhenFull", 1)
    assert log["entries"][0]["message_id"] == "VbiosSel.1.0.PowerStateChanged"
    policy = sm(run, vm1, "sel-policy", "16", "--overwrite", "NeverOverWrites")
    assert policy == {"max_entries": 16, "overwrite_policy": "NeverOverWrites",
                      "entry_count": 1, "dropped": 0}
    refused(run("domain", "sm", "vm1", "sel-policy", "8", "--home", str(vm1)),
            "16 to 4096 entries")
    assert sm(run, vm1, "sel-clear") == {"removed": 1}
    code, out, _ = run("domain", "sm", "vm1", "sel", "--home", str(vm1))
    assert code == 0 and "Log cleared by admin:admin" in out


def test_the_wake_alarm(vm1: Path, run: Run) -> None:
    assert sm(run, vm1, "wake") is None
    day = (datetime.now(UTC) + timedelta(days=30)).date()
    alarm = sm(run, vm1, "wake-at", f"{day}T00:00:00+01:00")
    assert isinstance(alarm, dict)
    assert (alarm["wake_time"], alarm["set_by"]) == (
        f"{day - timedelta(days=1)}T23:00:00Z", "admin:admin")
    assert sm(run, vm1, "wake-at", "+10m")["set_by"] == "admin:admin"  # type: ignore[index]
    refused(run("domain", "sm", "vm1", "wake-at", "2020-01-01T00:00:00Z", "--home", str(vm1)),
            "is not in the future")
    refused(run("domain", "sm", "vm1", "wake-at", "+400d", "--home", str(vm1)),
            "more than 366 days ahead")
    refused(run("domain", "sm", "vm1", "wake-at", "soon", "--home", str(vm1)), "not a time")
    assert sm(run, vm1, "wake-clear") == {"cleared": True}
    assert sm(run, vm1, "wake-clear") == {"cleared": False}


def test_the_watchdog(vm1: Path, run: Run) -> None:
    shown = sm(run, vm1, "watchdog")
    assert shown == {"enabled": False, "timeout_seconds": 300, "last_pet": None,
                     "deadline": None, "expirations": 0}
    armed = sm(run, vm1, "watchdog", "enable", "45")
    assert isinstance(armed, dict) and (armed["enabled"], armed["timeout_seconds"]) == (
        True, 45)
    refused(run("domain", "sm", "vm1", "watchdog", "enable", "2", "--home", str(vm1)),
            "5 to 86400 seconds")
    refused(run("domain", "sm", "vm1", "watchdog", "disable", "30", "--home", str(vm1)),
            "SECONDS goes with enable")
    assert sm(run, vm1, "watchdog", "disable")["enabled"] is False  # type: ignore[index]


def test_an_unknown_domain_is_refused(home: Path, run: Run) -> None:
    refused(run("domain", "sm", "nope", "sel", "--home", str(home)), "no domain")


def test_wake_times() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert wake_time("+30s", now) == now + timedelta(seconds=30)
    assert wake_time("2026-05-01T02:00:00+02:00", now) == now
    for bad in ("2026-05-01T02:00:00", "+3y", ""):
        with pytest.raises(AdminError):
            wake_time(bad, now)
