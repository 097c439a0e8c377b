"""Firmware updates that really replace a domain's firmware, through a real `vbios serve`.

A ``qemu`` domain boots the EFI probe (tests/efi/probe.c), which prints the SMBIOS type 0
BIOS version its firmware shows. A capsule whose image is a copy of the installation's
OVMF code boots from slot B and the guest sees the new version; a capsule whose image is
not firmware never reaches a boot attempt, and the domain rolls back to slot A by itself.
A service killed during a trial and started again never leaves the update half-applied.
The admin submits with `vbios domain firmware NAME update` (in-process on the served
home's store; the keeper of the machine carries the trial out). Real QEMU tests run one
at a time (marker ``qemu``).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bios_ws.config import OVMF_DIR
from tests import waiting
from tests.e2e.conftest import ServerProcess, init_home, run_vbios, stop_dev_tpm
from tests.e2e.test_firmware_e2e import Boots, Firmware, create
from tests.efi_probe import build_probe, disk_dir
from tests.firmware_pki import write_pem
from tests.firmware_support import Signers, capsule, make_signers
from tests.qemu_support import kill_all

TRIAL_TIMEOUT = "20"
SERVE = ("--workers", "1", "--graceful-timeout", "3", "--firmware-trial-timeout",
         TRIAL_TIMEOUT)
JOB_LIMIT = 150.0

pytestmark = pytest.mark.qemu


@dataclass
class Updates:
    fw: Firmware
    signers: Signers
    ovmf_code: bytes


@pytest.fixture(scope="module")
def updates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Updates]:
    work = tmp_path_factory.mktemp("firmware-update-e2e")
    probe = build_probe(work / "probe")
    home = work / "home"
    server = ServerProcess(home=home, work=work)
    signers = make_signers(datetime.now(UTC))
    try:
        init_home(home)
        root = write_pem(work / "root.pem", signers.root.cert_pem())
        trusted = run_vbios("firmware", "trust", "add", str(root), "--home", str(home))
        assert trusted.returncode == 0, trusted.stderr
        server.start(*SERVE)
        yield Updates(Firmware(server, probe, disk_dir(work / "signed", probe.signed),
                               disk_dir(work / "unsigned", probe.unsigned)),
                      signers, (OVMF_DIR / "OVMF_CODE_4M.fd").read_bytes())
    finally:
        server.stop()
        left = kill_all(home / "machines")
        stop_dev_tpm(home)
    assert left == [], f"keepers or QEMUs left running: {left}"


def firmware(up: Updates, name: str, *args: str) -> dict[str, object]:
    done = run_vbios("domain", "firmware", name, *args, "--json", "--home",
                     str(up.fw.server.home), "--graceful-timeout", "3",
                     "--firmware-trial-timeout", TRIAL_TIMEOUT, timeout=JOB_LIMIT + 30)
    assert done.returncode in (0, 1), done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def submit(up: Updates, name: str, data: bytes, *extra: str) -> dict[str, object]:
    path = up.fw.server.work / f"{name}-{len(os.listdir(up.fw.server.work))}.cap"
    path.write_bytes(data)
    return firmware(up, name, "update", str(path), *extra)


def inventory(up: Updates, name: str) -> dict[str, object]:
    done = run_vbios("domain", "firmware", name, "inventory", "--json", "--home",
                     str(up.fw.server.home))
    assert done.returncode == 0, done.stderr
    [entry] = json.loads(done.stdout)
    assert isinstance(entry, dict)
    return entry


def test_the_new_image_boots_from_slot_b_and_the_guest_sees_its_version(
        updates: Updates) -> None:
    client = create(updates.fw, "fwnew", updates.fw.signed)
    boots = Boots(updates.fw, "fwnew")
    client.reset("On")
    report, _ = boots.probe()
    assert report.bios_version == "vbios-1"
    job = submit(updates, "fwnew", capsule(updates.signers, 2, count=1,
                                           image=updates.ovmf_code),
                 "--apply-time", "Immediate", "--wait", "--timeout", str(JOB_LIMIT))
    assert (job["state"], job["status"], job["slot"]) == ("Completed", "SUCCESS", "B"), job
    report, _ = boots.probe()
    assert report.bios_version == "vbios-2"
    entry = inventory(updates, "fwnew")
    assert (entry["fw_version"], entry["active_slot"], entry["last_attempt_status"]) == (
        2, "B", "SUCCESS")
    client.reset("ForceOff")


def test_an_image_that_does_not_boot_rolls_back_by_itself(updates: Updates) -> None:
    client = create(updates.fw, "fwbad", updates.fw.signed)
    boots = Boots(updates.fw, "fwbad")
    garbage = bytes(range(256)) * (len(updates.ovmf_code) // 256)  # right size, not code
    job = submit(updates, "fwbad", capsule(updates.signers, 5, lowest=5, count=1,
                                           image=garbage),
                 "--apply-time", "Immediate", "--wait", "--timeout", str(JOB_LIMIT))
    assert (job["state"], job["status"], job["slot"]) == ("RolledBack", "UNSUCCESSFUL",
                                                          "B"), job
    assert "did not reach a boot attempt" in str(job["message"])
    report, _ = boots.probe()  # slot A again, by itself
    assert report.bios_version == "vbios-1"
    entry = inventory(updates, "fwbad")
    assert (entry["fw_version"], entry["lowest_supported_version"], entry["active_slot"],
            entry["last_attempt_version"], entry["last_attempt_status"]) == (
        1, 1, "A", 5, "UNSUCCESSFUL")
    client.reset("ForceOff")


def test_a_service_killed_during_a_trial_leaves_nothing_half_applied(
        updates: Updates) -> None:
    """The service is killed (SIGKILL) while the machine tries the new image; the
    machine's keeper finishes the trial, and the started service reports the job ended."""
    create(updates.fw, "fwkill", updates.fw.signed)
    job = submit(updates, "fwkill", capsule(updates.signers, 3, count=1,
                                            image=updates.ovmf_code),
                 "--apply-time", "Immediate")
    server = updates.fw.server
    os.kill(server.pid, signal.SIGKILL)
    assert server.proc is not None
    server.proc.wait(timeout=10)
    server.start(*SERVE)

    def ended() -> bool:
        latest = firmware(updates, "fwkill", "job", str(job["job_id"]))
        return latest["state"] in ("Completed", "RolledBack", "Failed")

    waiting.wait_for(ended, "the job to end after the restart", JOB_LIMIT, 1.0)
    final = firmware(updates, "fwkill", "job", str(job["job_id"]))
    entry = inventory(updates, "fwkill")
    if final["state"] == "Completed":
        assert (entry["fw_version"], entry["active_slot"]) == (3, "B")
    else:
        assert (entry["fw_version"], entry["active_slot"]) == (1, "A")
    run_vbios("domain", "power", "reset", "fwkill", "ForceOff", "--home", str(server.home))
