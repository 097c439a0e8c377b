"""Sealing against a real swtpm: round trip, policy refusal, reboot, tpm2-tools reads the blob."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.bootstrap import Initialized, initialize
from bios_ws.errors import TpmPolicyMismatch
from bios_ws.home import TpmChoice
from bios_ws.launch.measure import installed_package_root
from bios_ws.launch.sealing import unseal_key_passphrase
from bios_ws.pki import find_clear_private_keys, load_private_key
from bios_ws.tpm.esapi import open_tpm
from bios_ws.tpm.port import BOOT_PCRS, PERSISTENT_PRIMARY, SERVICE_PCR, SealedBlob
from tests.tpm_fixtures import SwtpmProcess, require_swtpm, start_swtpm


@pytest.fixture
def swtpm(tmp_path: Path) -> Iterator[SwtpmProcess]:
    require_swtpm()
    process = start_swtpm(tmp_path / "swtpm")
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    copy = tmp_path / "pkg" / "bios_ws"
    shutil.copytree(installed_package_root(), copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


@pytest.fixture
def sealed(tmp_path: Path, swtpm: SwtpmProcess, package: Path) -> Initialized:
    return initialize(tmp_path / "home", tpm=TpmChoice(swtpm.tcti), package_root=package)


def test_seal_and_unseal_round_trip(sealed: Initialized, package: Path) -> None:
    home = sealed.home
    server = unseal_key_passphrase(home, "server", package_root=package)
    ca = unseal_key_passphrase(home, "ca", package_root=package)
    load_private_key(home.server_key, server)
    load_private_key(home.ca_key, ca)
    assert not home.passphrase_file.exists()
    assert find_clear_private_keys(home) == []


def test_extended_boot_pcr_refuses_then_a_reboot_restores(
    sealed: Initialized, swtpm: SwtpmProcess, package: Path
) -> None:
    tpm = open_tpm(swtpm.tcti)
    try:
        tpm.pcr_extend(7, {"sha1": hashlib.sha1(b"x").digest(),
                           "sha256": hashlib.sha256(b"x").digest()})
        tpm.close()
        with pytest.raises(TpmPolicyMismatch, match=r"PCR 7 \(sha256\) differ"):
            unseal_key_passphrase(sealed.home, "server", package_root=package)
        swtpm.platform_reset()  # PCRs back to zero: the values this bare swtpm was sealed with
        tpm.startup_clear()
    finally:
        tpm.close()
    assert unseal_key_passphrase(sealed.home, "server", package_root=package)


def test_tpm2_tools_read_the_stored_blob(
    sealed: Initialized, swtpm: SwtpmProcess, tmp_path: Path
) -> None:
    """What the home stores is plain TPM2B: tpm2_print parses the public part, tpm2_load
    loads both parts under the persistent storage primary."""
    for tool_name in ("tpm2_print", "tpm2_load", "tpm2_flushcontext"):
        if shutil.which(tool_name) is None:
            pytest.skip(f"{tool_name} missing")
    home = sealed.home
    blob = SealedBlob.from_json(home.sealed_blob("server").read_text())
    work = tmp_path / "tools"
    work.mkdir()
    (work / "seal.pub").write_bytes(blob.public)
    (work / "seal.priv").write_bytes(blob.private)
    env = {**os.environ, "TPM2TOOLS_TCTI": swtpm.tcti, "TSS2_LOG": "all+NONE"}

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=work, env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    printed = run("tpm2_print", "-t", "TPM2B_PUBLIC", "seal.pub")
    assert "keyedhash" in printed
    assert blob.policy_digest.hex() in printed.lower()
    for attribute in ("fixedtpm", "fixedparent", "noda"):
        assert attribute in printed
    assert "userwithauth" not in printed

    # tpm2_load checks the private part's integrity against the public part under our
    # persistent storage primary. (tpm2_policypcr 5.4 refuses selections of more than 8
    # PCRs even with their values given, so the tools cannot satisfy this 9-PCR policy;
    # tests/integration/test_tpm_tools.py unseals an 8-PCR blob with them.)
    try:
        run("tpm2_load", "-C", hex(PERSISTENT_PRIMARY), "-u", "seal.pub", "-r", "seal.priv",
            "-c", "seal.ctx")
        assert (work / "seal.ctx").stat().st_size > 0
    finally:
        run("tpm2_flushcontext", "-t")  # no resource manager: flush what the tool loaded
    assert blob.pcrs == (*BOOT_PCRS, SERVICE_PCR)
