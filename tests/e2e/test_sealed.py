"""The server's key sealed in the development TPM: serve, refusals, reseal, swtpm loss.

Each test gets its own home with its own swtpm (free loopback ports), stopped
by its recorded pid at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.home import Home
from bios_ws.launch.measure import measure
from bios_ws.pki import find_clear_private_keys
from tests.e2e.conftest import (
    VBIOS,
    StartServer,
    dev_tpm,
    init_home,
    recovery_code,
    run_vbios,
    stop_dev_tpm,
)

TIMEOUT = 120.0
REFUSAL_TIMEOUT = 45.0
#: `vbios` through the interpreter, so that PYTHONPATH decides which bios_ws runs.
RUN_CLI = "import sys; from bios_ws.cli import main; sys.exit(main())"


@pytest.fixture
def sealed_home(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A fresh home sealed in its own development TPM, and its recovery code."""
    home = tmp_path / "home"
    try:
        out = init_home(home)
        yield home, recovery_code(out)
    finally:
        stop_dev_tpm(home)


def serve(home: Path, *extra: str, env: dict[str, str] | None = None,
          python_module: bool = False) -> subprocess.CompletedProcess[str]:
    """A `vbios serve` expected to refuse (it exits before binding)."""
    head = [sys.executable, "-c", RUN_CLI] if python_module else [str(VBIOS)]
    return subprocess.run(
        [*head, "serve", "--home", str(home), "--bind", "127.0.0.1:0",
         "--workers", "1", *extra],
        capture_output=True, text=True, timeout=REFUSAL_TIMEOUT, stdin=subprocess.DEVNULL,
        check=False, env=env, cwd=home.parent)


def assert_refusal(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_sealed_key_serves_a_guest_and_nothing_is_in_clear(
    sealed_home: tuple[Path, str], start_server: StartServer
) -> None:
    home, _ = sealed_home
    server = start_server(home, "--workers", "2")
    assert "server and CA keys unsealed by the TPM (dev)" in server.stdout()
    guest = server.create_domain("sealed-guest")  # unseals the CA key beside the server
    assert server.call(guest, "GetAttributes").status == 200
    assert server.call(guest, "GetBootOrder").status == 200
    opened = Home.open(home)
    assert find_clear_private_keys(opened) == []
    assert not opened.passphrase_file.exists()
    assert not (home / "secrets").exists()
    for pem in (opened.server_key, opened.ca_key, opened.transfer_key):
        assert b"ENCRYPTED PRIVATE KEY" in pem.read_bytes()


def test_changed_boot_is_refused_naming_pcr_and_event_then_resealed(
    sealed_home: tuple[Path, str], start_server: StartServer
) -> None:
    home, code = sealed_home
    manifest = dev_tpm(home).manifest_path
    text = manifest.read_text()
    assert "DXE firmware volume 1.0.0" in text
    manifest.write_text(text.replace("DXE firmware volume 1.0.0", "DXE firmware volume 6.6.6"))
    rebooted = run_vbios("tpm", "reboot", "--home", str(home))
    assert rebooted.returncode == 0, rebooted.stderr
    refused = serve(home)
    assert_refusal(refused, "PCR 0 (sha256) differ", "PCR 0 (boot): event",
                   "EV_EFI_PLATFORM_FIRMWARE_BLOB", f"vbios tpm reseal --home {home}")
    assert "PCR 23" not in refused.stderr
    without_code = run_vbios("tpm", "reseal", "--home", str(home))
    assert_refusal(without_code, "recovery code", "PCR 0 (boot)")
    done = subprocess.run([str(VBIOS), "tpm", "reseal", "--home", str(home),
                           "--recovery-code-stdin"], input=code + "\n", capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert "recovered with the recovery code" in done.stdout
    assert "PCR 0 (boot): event" in done.stdout
    server = start_server(home, "--workers", "1")
    assert "unsealed by the TPM" in server.stdout()


def test_boot_pcr_extended_outside_the_log_is_named(
    sealed_home: tuple[Path, str]
) -> None:
    from bios_ws.tpm.esapi import open_tpm

    home, _ = sealed_home
    tpm = open_tpm(dev_tpm(home).status().tcti or "")
    try:
        tpm.pcr_extend(5, {bank: bytes([7]) * (20 if bank == "sha1" else 32)
                           for bank in tpm.active_banks()})
    finally:
        tpm.close()
    refused = serve(home)
    assert_refusal(refused, "PCR 5 (sha256) differ", "PCR 5 (boot): the event log shows no change")


def test_modified_installed_file_is_refused_and_named(
    sealed_home: tuple[Path, str], tmp_path: Path
) -> None:
    import bios_ws

    home, _ = sealed_home
    site = tmp_path / "site"
    copy = site / "bios_ws"
    shutil.copytree(Path(next(iter(bios_ws.__path__))), copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    measured = subprocess.run([sys.executable, "-c", RUN_CLI, "measure", "--home",
                               str(home), "--json"], capture_output=True, text=True,
                              timeout=TIMEOUT, env=env, check=False, cwd=tmp_path)
    assert measured.returncode == 0, measured.stderr
    assert json.loads(measured.stdout)["digest"] == measure(Home.open(home), copy).digest.hex()
    with (copy / "soap" / "guard.py").open("a") as handle:
        handle.write("\n# not what was sealed\n")
    refused = serve(home, env=env, python_module=True)
    assert_refusal(refused, "PCR 23 (sha256) differ", "changed: code/soap/guard.py")
    assert "PCR 0" not in refused.stderr


def test_changed_configuration_is_refused_and_named(sealed_home: tuple[Path, str]) -> None:
    home, _ = sealed_home
    registry = home / "registry.json"
    registry.write_text(registry.read_text() + "\n")
    refused = serve(home)
    assert_refusal(refused, "PCR 23 (sha256) differ", "changed: config/registry.json")
    resealed = run_vbios("tpm", "reseal", "--home", str(home))
    assert resealed.returncode == 0, resealed.stderr
    assert "boot is unchanged" in resealed.stdout
    assert "changed: config/registry.json" in resealed.stdout


def test_swtpm_killed_while_serving_then_rebooted(
    sealed_home: tuple[Path, str], start_server: StartServer
) -> None:
    home, _ = sealed_home
    server = start_server(home, "--workers", "1")
    guest = server.create_domain("survivor")
    status = dev_tpm(home).status()
    assert status.pid is not None
    os.kill(status.pid, 9)  # the swtpm this test's home started, by its recorded pid
    deadline = time.monotonic() + 10
    while dev_tpm(home).status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    down = run_vbios("tpm", "status", "--home", str(home), "--json")
    assert down.returncode in (0, 1) and '"running": false' in down.stdout, down.stdout
    assert server.call(guest, "GetAttributes").status == 200  # no call needs the TPM
    assert server.alive()
    refused = run_vbios("domain", "create", "late", "--home", str(home))
    assert_refusal(refused, "development TPM", f"vbios tpm start --home {home}")
    assert server.stop() == 0
    started = run_vbios("tpm", "start", "--home", str(home))  # restart: the boot is replayed
    assert started.returncode == 0, started.stderr
    again = start_server(home, "--workers", "1")
    assert "unsealed by the TPM" in again.stdout()
    assert again.call(guest, "GetAttributes").status == 200
