"""`vbios registry show|check|apply` on a real home (SQLite), a running object graph that
picks an applied registry up without a restart, and the check a starting server makes."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bios_ws.bootstrap import App, bootstrap, check_registry_in_force
from bios_ws.config import Config
from bios_ws.domain.principal import Principal
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import RegistryError, UnknownAttribute
from bios_ws.home import Home
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService
from tests.cli_support import Run, refused

GUEST = Principal.guest("vm1")


@pytest.fixture
def config(home: Path, run: Run) -> Config:
    assert run("domain", "create", "vm1", "--home", str(home))[0] == 0
    return Config.of(Home.open(home))


@pytest.fixture
def app(config: Config) -> Iterator[App]:
    with bootstrap(config) as graph:
        yield graph


def new_registry(home: Path, path: Path, change: Any) -> Path:
    document = json.loads((home / "registry.json").read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def narrower_tag_without_numlock(document: dict[str, Any]) -> None:
    """AssetTag at most 3 long, NumLock removed, a Boolean NewThing added."""
    document["registry_version"] = "new-1"
    for attribute in document["attributes"]:
        if attribute["name"] == "AssetTag":
            attribute["max_length"] = 3
    document["attributes"] = [a for a in document["attributes"] if a["name"] != "NumLock"]
    document["attributes"].append({"name": "NewThing", "type": "Boolean", "default": False})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_check_names_every_rejected_value_current_and_pending(
        run: Run, home: Path, app: App, tmp_path: Path) -> None:
    bios = app.use(BiosService)
    bios.set_attributes(GUEST, {"AssetTag": "rack-42"})
    bios.set_attributes(GUEST, {"AssetTag": "abcd"}, ApplyTime.ON_RESET)
    new = new_registry(home, tmp_path / "new.json", narrower_tag_without_numlock)
    code, out, _ = run("registry", "check", str(new), "--home", str(home))
    assert code == 1
    assert 'domain vm1: AssetTag value "rack-42": attribute AssetTag is at most 3' in out
    assert 'domain vm1: AssetTag pending value "abcd"' in out
    code, out, _ = run("registry", "check", str(new), "--home", str(home), "--json")
    report = json.loads(out)
    assert code == 1 and report["sha256"] == sha256(new)
    assert [(r["domain"], r["attribute"], r["value"], r["pending"]) for r in report["rejected"]
            ] == [("vm1", "AssetTag", "rack-42", False), ("vm1", "AssetTag", "abcd", True)]
    assert run("registry", "check", str(home / "registry.json"), "--home", str(home))[0] == 0


def test_apply_is_refused_while_values_are_rejected_and_changes_nothing(
        run: Run, home: Path, app: App, tmp_path: Path) -> None:
    app.use(BiosService).set_attributes(GUEST, {"AssetTag": "rack-42"})
    before = (sha256(home / "registry.json"), app.use(BiosService).get_attributes(GUEST))
    new = new_registry(home, tmp_path / "new.json", narrower_tag_without_numlock)
    result = run("registry", "apply", str(new), "--home", str(home))
    refused(result, "1 stored value(s) the new registry rejects")
    assert 'AssetTag value "rack-42"' in result[1]  # the report, on stdout
    assert (sha256(home / "registry.json"), app.use(BiosService).get_attributes(GUEST)) == before
    _, out, _ = run("audit", "show", "--home", str(home))
    assert "ApplyAttributeRegistry" in out and "refused:RegistryError" in out


def test_apply_with_reset_invalid_conforms_every_domain_and_running_workers_follow(
        run: Run, home: Path, app: App, tmp_path: Path) -> None:
    bios = app.use(BiosService)
    bios.set_attributes(GUEST, {"AssetTag": "rack-42"})
    assert bios.get_registry(GUEST).registry_version != "new-1"
    new = new_registry(home, tmp_path / "new.json", narrower_tag_without_numlock)
    code, out, err = run("registry", "apply", str(new), "--home", str(home), "--reset-invalid")
    assert code == 0, err
    assert 'domain vm1: AssetTag value "rack-42": attribute AssetTag is at most 3 characters' \
           ' long; reset to ""' in out
    assert "domain vm1: added NewThing (defaults)" in out
    assert "domain vm1: removed NumLock" in out
    assert sha256(home / "registry.json") == sha256(new)  # installed where serve reads it
    # the object graph built before the apply follows it at its next call
    view = bios.get_attributes(GUEST)
    assert view.version == 3
    assert view.values["AssetTag"] == "" and view.values["NewThing"] is False
    assert "NumLock" not in view.values
    assert bios.get_registry(GUEST).registry_version == "new-1"
    with pytest.raises(UnknownAttribute):
        bios.set_attributes(GUEST, {"NumLock": False})
    assert bios.set_attributes(GUEST, {"NewThing": True}) == 4
    # a domain created afterwards gets the new registry's defaults
    created = app.use(DomainService).create(Principal.admin(), "vm2")
    assert "NumLock" not in created.current and created.current["NewThing"] is False
    _, out, _ = run("audit", "show", "--home", str(home))
    assert out.count("ResetRejectedValue") == 1
    code, out, _ = run("registry", "show", "--home", str(home), "--json")
    shown = json.loads(out)
    assert shown["matches"] is True and shown["in_force"]["sha256"] == sha256(new)
    assert shown["in_force"]["registry_version"] == "new-1"
    # applying it again changes no domain
    code, out, _ = run("registry", "apply", str(new), "--home", str(home))
    assert code == 0 and "0 domain(s) changed" in out


def test_a_starting_server_records_the_file_then_refuses_a_hand_replaced_one(
        home: Path, config: Config, app: App, tmp_path: Path) -> None:
    line = check_registry_in_force(config)
    assert line is not None and "recorded in force, generation 1" in line
    assert check_registry_in_force(config) is None  # in force: nothing to do
    app.use(BiosService).set_attributes(GUEST, {"AssetTag": "rack-42"})
    registry_path = home / "registry.json"
    new_registry(home, registry_path, narrower_tag_without_numlock)  # by hand
    with pytest.raises(RegistryError) as caught:
        check_registry_in_force(config)
    message = caught.value.message
    assert "differs from the registry in force" in message
    assert 'domain vm1: AssetTag value "rack-42"' in message
    assert f"vbios registry apply {registry_path} --reset-invalid" in message
    assert app.use(BiosService).get_attributes(GUEST).values["AssetTag"] == "rack-42"


def test_a_hand_replaced_file_without_rejected_values_is_refused_too(
        home: Path, config: Config, tmp_path: Path) -> None:
    check_registry_in_force(config)
    registry_path = home / "registry.json"
    new_registry(home, registry_path, narrower_tag_without_numlock)
    with pytest.raises(RegistryError) as caught:
        check_registry_in_force(config)
    assert caught.value.message.endswith(
        f"put it in force with `vbios registry apply {registry_path}`, or restore the"
        " registry in force.")


def test_a_store_without_a_recorded_registry_is_not_adopted_over_rejected_values(
        home: Path, config: Config, app: App) -> None:
    app.use(BiosService).set_attributes(GUEST, {"AssetTag": "rack-42"})
    new_registry(home, home / "registry.json", narrower_tag_without_numlock)
    with pytest.raises(RegistryError, match="no registry is recorded in force"):
        check_registry_in_force(config)


def test_a_fifo_given_as_the_registry_is_refused_at_once(run: Run, home: Path,
                                                        tmp_path: Path) -> None:
    fifo = tmp_path / "registry.json"
    os.mkfifo(fifo)
    outcome: list[tuple[int, str, str]] = []
    worker = threading.Thread(target=lambda: outcome.append(
        run("registry", "check", str(fifo), "--home", str(home))), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("vbios registry check waited on a FIFO")
    refused(outcome[0], f"{fifo}: not a regular file")


def test_show_says_when_nothing_is_recorded_yet(run: Run, home: Path) -> None:
    code, out, _ = run("registry", "show", "--home", str(home))
    assert code == 0
    assert f"sha256:   {sha256(home / 'registry.json')}" in out
    assert "in force: none recorded yet" in out


def without_watchdog_attribute(document: dict[str, Any]) -> None:
    document["registry_version"] = "no-watchdog-1"
    document["attributes"] = [a for a in document["attributes"]
                              if a["name"] != "OsWatchdogTimer"]


def test_the_watchdog_follows_an_applied_registry_without_a_restart(
        run: Run, home: Path, app: App, tmp_path: Path) -> None:
    from bios_ws.domain import sm_requests as sm
    from bios_ws.service.system_management import SystemManagementService

    bios, system = app.use(BiosService), app.use(SystemManagementService)
    system.handle(GUEST, sm.SetWatchdog(enabled=True, timeout_seconds=60))
    assert bios.get_attributes(GUEST).values["OsWatchdogTimer"] == "Enabled"
    new = new_registry(home, tmp_path / "new.json", without_watchdog_attribute)
    code, _, err = run("registry", "apply", str(new), "--home", str(home))
    assert code == 0, err
    # the running service neither writes the removed attribute back nor reads it
    system.handle(GUEST, sm.SetWatchdog(enabled=False))
    version = bios.get_attributes(GUEST).version
    system.handle(GUEST, sm.SetWatchdog(enabled=True, timeout_seconds=60))
    system.handle(GUEST, sm.PetWatchdog())
    view = bios.get_attributes(GUEST)
    assert "OsWatchdogTimer" not in view.values and view.version == version
