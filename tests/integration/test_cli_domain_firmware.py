"""`vbios domain firmware NAME inventory|update|job|history`, in-process on a simulated
domain: what the admin types and sees; a refusal is one line, exit 1, nothing changed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.cli_support import Run, refused
from tests.firmware_pki import write_pem
from tests.firmware_support import Signers, broken_image, capsule, make_signers

FAST = ("--boot-seconds", "0.2", "--graceful-timeout", "0.5")


@pytest.fixture
def signers(home: Path, run: Run, tmp_path: Path) -> Signers:
    made = make_signers(datetime.now(UTC))
    root = write_pem(tmp_path / "root.pem", made.root.cert_pem())
    assert run("firmware", "trust", "add", str(root), "--home", str(home))[0] == 0
    assert run("domain", "create", "vm1", "--home", str(home))[0] == 0
    return made


def firmware(run: Run, home: Path, *argv: str) -> object:
    code, out, err = run("domain", "firmware", "vm1", *argv, "--json", "--home", str(home),
                         *FAST)
    assert code in (0, 1), err
    return json.loads(out)


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / f"capsule-{time.monotonic_ns()}.cap"
    path.write_bytes(data)
    return str(path)


def boot(run: Run, home: Path) -> None:
    """Power on; the simulated machine boots when the CLI looks at it after its time."""
    assert run("domain", "power", "reset", "vm1", "On", "--home", str(home), *FAST)[0] == 0
    for _ in range(3):
        time.sleep(0.25)
        assert run("domain", "power", "get", "vm1", "--home", str(home), *FAST)[0] == 0


def test_an_update_then_the_inventory_job_and_history(home: Path, run: Run, tmp_path: Path,
                                                      signers: Signers) -> None:
    [entry] = firmware(run, home, "inventory")  # type: ignore[misc]
    assert (entry["fw_version"], entry["active_slot"], entry["bios_version"]) == (
        1, "A", "vbios-1")
    job = firmware(run, home, "update", write(tmp_path, capsule(signers, 2, count=1)))
    assert isinstance(job, dict)
    assert (job["state"], job["slot"], job["from_version"], job["requested_by"]) == (
        "NeedsReset", "B", 1, "admin:admin")
    boot(run, home)
    done = firmware(run, home, "job")
    assert isinstance(done, dict)
    assert (done["job_id"], done["state"], done["status"]) == (job["job_id"], "Completed",
                                                               "SUCCESS")
    [entry] = firmware(run, home, "inventory")  # type: ignore[misc]
    assert (entry["fw_version"], entry["active_slot"]) == (2, "B")
    code, out, _ = run("domain", "firmware", "vm1", "history", "--home", str(home))
    assert code == 0 and "Completed" in out and "1->2" in out and "CN=Update Signer" in out
    code, out, _ = run("domain", "firmware", "vm1", "inventory", "--home", str(home))
    assert code == 0 and "fw_version" in out and "vbios-2" in out


def test_a_broken_image_rolls_back_at_the_boot(
        home: Path, run: Run, tmp_path: Path, signers: Signers) -> None:
    job = firmware(run, home, "update", write(tmp_path, capsule(signers, 3, count=1,
                                                                image=broken_image())))
    assert isinstance(job, dict) and job["state"] == "NeedsReset"
    boot(run, home)
    rolled = firmware(run, home, "job", str(job["job_id"]))
    assert isinstance(rolled, dict)
    assert (rolled["state"], rolled["status"]) == ("RolledBack", "UNSUCCESSFUL")


def test_refusals_are_one_line_and_change_nothing(home: Path, run: Run, tmp_path: Path,
                                                  signers: Signers) -> None:
    below = write(tmp_path, capsule(signers, 0, lowest=0, count=1))
    err = refused(run("domain", "firmware", "vm1", "update", below, "--home", str(home)),
                  "below the lowest supported version 1")
    assert "FwVersion 0" in err
    stranger = write(tmp_path, capsule(signers, 2, stranger=True))
    refused(run("domain", "firmware", "vm1", "update", stranger, "--home", str(home)),
            "capsule signature not trusted")
    refused(run("domain", "firmware", "vm1", "update", str(tmp_path / "missing.cap"),
                "--home", str(home)), "cannot read the capsule")
    refused(run("domain", "firmware", "vm2", "inventory", "--home", str(home)), "vm2")
    refused(run("domain", "firmware", "vm1", "job", "f" * 32, "--home", str(home)),
            "no firmware job")
    [entry] = firmware(run, home, "inventory")  # type: ignore[misc]
    assert (entry["fw_version"], entry["active_slot"], entry["last_attempt_status"]) == (
        1, "A", "AUTH_ERROR")
    history = firmware(run, home, "history")
    assert isinstance(history, list)
    assert [(h["state"], h["status"]) for h in history] == [
        ("Failed", "AUTH_ERROR"), ("Failed", "INCORRECT_VERSION")]
