"""Firmware updates from the guest (vbios_client and `vbios-client firmware`) against a real
`vbios serve` over mutual TLS with simulated machines: real signed capsules (the signer's
root trusted with `vbios firmware trust add`), uploads in chunks, plain and encrypted, an
upload resumed by another client, the trial boot at a reset, refusals and exit statuses.
One server for the module; each test its own domain."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import vbios_client as vc

from tests.e2e.conftest import ServerProcess, init_home, run_vbios, stop_dev_tpm
from tests.firmware_support import (
    Signers,
    broken_image,
    capsule,
    firmware_volume,
    make_signers,
)

VBIOS_CLIENT = Path(sys.executable).parent / "vbios-client"
SERVE = ("--workers", "2", "--boot-seconds", "0.3", "--graceful-timeout", "1")
MIB = 1024 * 1024
WAIT = 30.0


@dataclass
class Updates:
    server: ServerProcess
    signers: Signers

    def client(self, bundle: Path) -> vc.BiosClient:
        return vc.BiosClient.from_bundle(self.server.url, bundle, timeout=30)


@pytest.fixture(scope="module")
def updates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Updates]:
    work = tmp_path_factory.mktemp("client-firmware-e2e")
    home = work / "home"
    signers = make_signers(datetime.now(UTC))
    root = work / "update-root.pem"
    root.write_bytes(signers.root.cert_pem())
    server = ServerProcess(home=home, work=work)
    try:
        init_home(home)
        trusted = run_vbios("firmware", "trust", "add", str(root), "--home", str(home))
        assert trusted.returncode == 0, trusted.stderr
        server.start(*SERVE)
        yield Updates(server, signers)
    finally:
        server.stop()
        stop_dev_tpm(home)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_plain_update_in_chunks_applied_at_the_next_reset(updates: Updates) -> None:
    data = capsule(updates.signers, 2, image=firmware_volume(4 * MIB, tag=b"plain"))
    with updates.client(updates.server.create_domain("fw-plain")) as bios:
        [entry] = bios.firmware_inventory()
        assert (entry.fw_version, entry.lowest_supported_version, entry.active_slot,
                entry.bios_version) == (1, 1, "A", "vbios-1")
        seen: list[tuple[int, int]] = []
        job = bios.update_firmware(data, progress=lambda sent, total: seen.append((sent, total)))
        assert (job.state, job.slot, job.from_version, job.fw_version) == (
            "NeedsReset", "B", 1, 2)
        assert job.capsule_sha256 == sha256(data) and job.signer
        assert len(seen) == 1 + -(-len(data) // (512 * 1024)) >= 10  # 0, then each chunk
        assert seen[-1] == (len(data), len(data))
        bios.reset("On")
        done = bios.wait_for_firmware_job(job.job_id, timeout=WAIT, poll=0.1)
        assert (done.state, done.status, done.percent_complete) == ("Completed", "Success", 100)
        [entry] = bios.firmware_inventory()
        assert (entry.fw_version, entry.active_slot, entry.bios_version,
                entry.last_attempt_status) == (2, "B", "vbios-2", "Success")
        assert [j.job_id for j in bios.firmware_history()] == [job.job_id]


def test_an_encrypted_update_applied_at_once(updates: Updates) -> None:
    data = capsule(updates.signers, 3, lowest=2)
    with updates.client(updates.server.create_domain("fw-sealed")) as bios:
        job = bios.update_firmware(data, encrypt=True, apply_time="Immediate")
        assert job.capsule_sha256 == sha256(data)  # decrypted on the vBIOS's side
        done = bios.wait_for_firmware_job(job.job_id, timeout=WAIT, poll=0.1)
        assert done.state == "Completed", done.message
        [entry] = bios.firmware_inventory()
        assert (entry.fw_version, entry.lowest_supported_version) == (3, 2)


def test_an_interrupted_upload_is_resumed_by_another_client(updates: Updates) -> None:
    data = capsule(updates.signers, 2, image=firmware_volume(2 * MIB, tag=b"resumed"))
    bundle = updates.server.create_domain("fw-resume")
    with updates.client(bundle) as first:
        opened = first.begin_firmware_upload(len(data), sha256(data))
        step = opened.max_chunk_size
        for offset in (0, step):
            first.upload_firmware_chunk(opened.upload_id, offset, data[offset:offset + step])
    # the first client and its connections are gone; another takes over
    with updates.client(bundle) as second:
        status = second.get_firmware_upload(opened.upload_id)
        assert (status.next_offset, status.total, status.size, status.encrypted) == (
            2 * step, len(data), len(data), False)
        with pytest.raises(vc.ChunkRefused) as refused:
            second.upload_firmware_chunk(opened.upload_id, 0, data[:step])
        assert refused.value.attribute == "Offset"
        assert second.resume_firmware_upload(opened.upload_id, data).complete
        job = second.commit_firmware_upload(opened.upload_id)
        assert (job.state, job.capsule_sha256) == ("NeedsReset", sha256(data))
        with pytest.raises(vc.UnknownUpload):
            second.get_firmware_upload(opened.upload_id)


def test_refused_capsules_raise_their_faults_and_stay_in_the_history(updates: Updates) -> None:
    with updates.client(updates.server.create_domain("fw-refused")) as bios:
        with pytest.raises(vc.FirmwareUpdateRefused) as refused:
            bios.update_firmware(capsule(updates.signers, 0, lowest=0))
        assert refused.value.attribute == "FwVersion"
        with pytest.raises(vc.CapsuleNotTrusted):
            bios.update_firmware(capsule(updates.signers, 2, stranger=True), encrypt=True)
        history = bios.firmware_history()
        assert [(job.state, job.status) for job in history] == [
            ("Failed", "AuthError"), ("Failed", "IncorrectVersion")]
        assert bios.firmware_job().job_id == history[0].job_id
        assert bios.firmware_inventory()[0].fw_version == 1


# -- the command --------------------------------------------------------------------------


def vbios_client_cli(updates: Updates, bundle: Path, *argv: str
                     ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VBIOS_")}
    environ.update({"VBIOS_URL": updates.server.url, "VBIOS_BUNDLE": str(bundle)})
    return subprocess.run([str(VBIOS_CLIENT), *argv], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=environ, check=False)


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_firmware_commands(updates: Updates, tmp_path: Path) -> None:
    bundle = updates.server.create_domain("fw-cli")

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return vbios_client_cli(updates, bundle, *argv)

    files = {name: tmp_path / f"{name}.cap" for name in ("good", "broken", "low")}
    files["good"].write_bytes(capsule(updates.signers, 2))
    files["broken"].write_bytes(capsule(updates.signers, 3, count=2, image=broken_image()))
    files["low"].write_bytes(capsule(updates.signers, 0, lowest=0, count=3))
    [entry] = as_json(cli("firmware", "inventory", "--json"))
    assert (entry["fw_version"], entry["active_slot"]) == (1, "A")

    done = cli("firmware", "update", str(files["good"]), "--apply-time", "Immediate",
               "--wait", "--timeout", str(WAIT), "--json")
    job = as_json(done)
    assert (job["state"], job["from_version"], job["fw_version"]) == ("Completed", 1, 2)
    assert job["created_at"].endswith("Z") and "T" in job["created_at"]
    assert done.stderr.splitlines()[-1] == f"job {job['job_id']}: Completed (100%)"
    assert as_json(cli("firmware", "job", job["job_id"], "--json")) == job

    rolled = cli("firmware", "update", str(files["broken"]), "--apply-time", "Immediate",
                 "--wait", "--json")
    assert rolled.returncode == 1, rolled.stderr
    assert json.loads(rolled.stdout)["state"] == "RolledBack"
    assert rolled.stderr.splitlines()[-1].startswith("vbios-client: firmware job ")

    low = cli("firmware", "update", str(files["low"]), "--json")
    assert low.returncode == 1
    assert json.loads(low.stdout)["error"]["code"] == "FirmwareUpdateRefused"
    [line] = low.stderr.splitlines()
    assert line.startswith("vbios-client: FirmwareUpdateRefused: ")

    history = as_json(cli("firmware", "history", "--json"))
    assert [row["state"] for row in history] == ["Failed", "RolledBack", "Completed"]
    table = cli("firmware", "history")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["CREATED", "STATE", "VERSION", "STATUS", "JOB", "SIGNER"]
    assert [row.split()[1:3] for row in rows] == [["Failed", "2->0"], ["RolledBack", "2->3"],
                                                   ["Completed", "1->2"]]
    [entry] = as_json(cli("firmware", "inventory", "--json"))
    assert (entry["fw_version"], entry["active_slot"], entry["last_attempt_status"]) == (
        2, "B", "IncorrectVersion")
