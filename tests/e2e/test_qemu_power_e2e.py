"""Real QEMU + OVMF guests (TCG) driven through a real `vbios serve` over mutual TLS.

One sealed home and one server for the module; every guest is stopped by pid at
the end and the module fails if any keeper or QEMU is left. Run one at a time
(marker ``qemu``): a TCG boot takes one core for seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import vbios_client as vc

from bios_ws.platform.qemu.layout import process_argv
from tests import waiting
from tests.e2e.conftest import ServerProcess, init_home, run_vbios, stop_dev_tpm
from tests.e2e.test_attestation_e2e import extend_behind_the_servers_back
from tests.qemu_support import kill_all, processes_of

pytestmark = pytest.mark.qemu

SERVE = ("--workers", "2", "--graceful-timeout", "3", "--integrity-interval", "0")
BOOT_LIMIT = 90.0
BOOT_ATTEMPT = re.compile(rb"BdsDxe: (loading|failed to load) Boot")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("qemu-e2e")
    home = work / "home"
    server = ServerProcess(home=home, work=work)
    try:
        init_home(home)
        server.start(*SERVE)
        yield server
    finally:
        server.stop()
        left = kill_all(home / "machines")
        stop_dev_tpm(home)
    assert left == [], f"keepers or QEMUs left running: {left}"


def create(server: ServerProcess, name: str, *extra: str) -> Path:
    out = server.work / "bundles" / name
    done = run_vbios("domain", "create", name, "--machine", "qemu", "--home",
                     str(server.home), "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr
    return out


def wait_for(check: Callable[[], bool], what: str, limit: float = BOOT_LIMIT) -> None:
    waiting.wait_for(check, what, limit, 0.2)


def console(server: ServerProcess, name: str) -> bytes:
    done = run_vbios("domain", "console", name, "--home", str(server.home), "--bytes",
                     str(1 << 20))
    assert done.returncode == 0, done.stderr
    return done.stdout.encode("utf-8", "surrogateescape")


def boot_attempts(server: ServerProcess, name: str) -> int:
    return len(BOOT_ATTEMPT.findall(console(server, name)))


def qemu_pid(server: ServerProcess, name: str) -> int | None:
    for pid in processes_of(server.home / "machines" / name):
        if any("qemu-system" in arg for arg in process_argv(pid)[:1]):
            return pid
    return None


def keeper_pid(server: ServerProcess, name: str) -> int | None:
    for pid in processes_of(server.home / "machines"):
        argv = process_argv(pid)
        if "bios_ws.platform.qemu.keeper" in argv and name in argv:
            return pid
    return None


def state(bios: vc.BiosClient) -> str:
    return bios.get_power_state().power_state


def test_power_on_graceful_escalation_restart_pause_resume(server: ServerProcess) -> None:
    bundle = create(server, "life")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        assert state(bios) == "Off"
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On")
        wait_for(lambda: boot_attempts(server, "life") >= 1, "at the firmware's boot attempt")
        assert bios.reset("GracefulShutdown").power_state == "PoweringOff"
        wait_for(lambda: state(bios) == "Off", "off after the escalation", 30)
        assert bios.get_power_state().last_reset_cause == "ManagementCommand"
        assert qemu_pid(server, "life") is None

        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On again")
        first = qemu_pid(server, "life")
        attempts = boot_attempts(server, "life")
        bios.reset("ForceRestart")
        wait_for(lambda: boot_attempts(server, "life") > attempts, "booting again")
        assert qemu_pid(server, "life") not in (None, first)  # a new QEMU: quit, prepare, spawn
        assert bios.reset("Pause").power_state == "Paused"
        assert bios.reset("Resume").power_state == "On"
        with pytest.raises(vc.InvalidPowerTransition):
            bios.reset("On")
        bios.reset("ForceOff")
        assert state(bios) == "Off"


def test_a_guest_killed_from_outside_is_off_with_cause_crash(server: ServerProcess) -> None:
    bundle = create(server, "victim")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On")
        pid = qemu_pid(server, "victim")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: state(bios) == "Off", "Off", 30)
        assert bios.get_power_state().last_reset_cause == "Crash"
    assert "Traceback" not in server.stderr()


def test_pending_values_apply_at_a_reset_but_not_while_restricted(
    server: ServerProcess
) -> None:
    bundle = create(server, "pending")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On")
        bios.set_attributes({"BootMode": "Bios"}, apply_time="OnReset")
        outcome = bios.reset("ForceRestart")
        assert outcome.pending_changes is False and "applied" in outcome.message
        assert bios.get_pending_attributes().values == {}
        assert bios.get_attributes(["BootMode"]).values == {"BootMode": "Bios"}

        bios.set_attributes({"NumLock": False}, apply_time="OnReset")
        extend_behind_the_servers_back(server.home, 4)
        try:
            outcome = bios.reset("ForceRestart")
            assert outcome.pending_changes is True and "restricted mode" in outcome.message
            wait_for(lambda: state(bios) == "On", "On while restricted")
            assert bios.get_pending_attributes().values == {"NumLock": False}
        finally:
            done = run_vbios("tpm", "reboot", "--home", str(server.home))
            assert done.returncode == 0, done.stderr
        bios.reset("ForceOff")


def test_two_resets_at_once_are_serialised_and_both_answered(server: ServerProcess) -> None:
    bundle = create(server, "twice")
    answers: list[str] = []
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=120) as bios:
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On")

        def restart() -> None:
            with vc.BiosClient.from_bundle(server.url, bundle, timeout=120) as own:
                answers.append(own.reset("ForceRestart").power_state)

        threads = [threading.Thread(target=restart) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
        assert len(answers) == 2 and set(answers) <= {"PoweringOn", "On"}
        wait_for(lambda: state(bios) == "On", "On")
        bios.reset("ForceOff")


def test_guests_outlive_a_service_restart_and_power_returns_by_policy(
    server: ServerProcess
) -> None:
    bundle = create(server, "policy")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        bios.set_attributes({"AcPwrRcvry": "Last"})
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On")
    pid = qemu_pid(server, "policy")
    server.stop()
    assert qemu_pid(server, "policy") == pid  # the guest runs on without the service
    server.start(*SERVE)
    assert "policy: powered on" not in server.stdout()  # re-adopted, not restored
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        assert state(bios) == "On" and qemu_pid(server, "policy") == pid
    server.stop()
    keeper = keeper_pid(server, "policy")
    assert keeper is not None
    os.kill(keeper, signal.SIGKILL)  # the host loses power: nothing records it
    wait_for(lambda: qemu_pid(server, "policy") is None, "QEMU gone with its keeper", 15)
    server.start(*SERVE)
    assert "power restore: policy: powered on (AcPwrRcvry Last, delay 0 s)" in server.stdout()
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        wait_for(lambda: state(bios) == "On", "On after power returned")
        assert bios.get_power_state().last_reset_cause == "PowerRestorePolicy"
        bios.reset("ForceOff")


def test_a_damaged_variable_store_is_refused_and_the_good_copy_kept(
    server: ServerProcess
) -> None:
    bundle = create(server, "damaged")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On")
        bios.reset("ForceOff")
        machine = server.home / "machines" / "damaged"
        good = (machine / "vars.good.fd").read_bytes()
        store = machine / "vars.fd"
        store.write_bytes(b"\0" * 64 + store.read_bytes()[64:])
        with pytest.raises(vc.MachineError) as refused:
            bios.reset("On")
        assert "vars.fd" in refused.value.message and "vars.good.fd" in refused.value.message
        assert (machine / "vars.good.fd").read_bytes() == good
        assert state(bios) == "Off"
        shutil.copyfile(machine / "vars.good.fd", store)  # the admin restores the good copy
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On with the good copy")
        bios.reset("ForceOff")


def test_deleting_a_domain_stops_its_guest_first(server: ServerProcess) -> None:
    bundle = create(server, "doomed")
    with vc.BiosClient.from_bundle(server.url, bundle, timeout=60) as bios:
        bios.reset("On")
        wait_for(lambda: state(bios) == "On", "On")
    done = run_vbios("domain", "delete", "doomed", "--home", str(server.home))
    assert done.returncode == 0, done.stderr
    assert processes_of(server.home / "machines" / "doomed") == []
    assert not (server.home / "machines" / "doomed").exists()


def test_missing_qemu_or_ovmf_is_one_line_naming_the_package(server: ServerProcess) -> None:
    for option, value, package in (("--qemu", "/nonexistent/qemu-system-x86_64",
                                    "qemu-system-x86"),
                                   ("--ovmf-code", "/nonexistent/OVMF_CODE.fd", "ovmf")):
        done = run_vbios("domain", "create", "nope", "--machine", "qemu", option, value,
                         "--home", str(server.home))
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and f"apt-get install {package}" in lines[0], done.stderr
    listed = json.loads(run_vbios("domain", "list", "--json", "--home",
                                  str(server.home)).stdout)
    assert "nope" not in [row["domain"] for row in listed]
