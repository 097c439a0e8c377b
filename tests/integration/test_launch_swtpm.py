"""Sealing against a real swtpm: round trip, policy refusal, reboot, tpm2-tools reads the blob."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.bootstrap import Initialized, initialize
from bios_ws.errors import TpmPolicyMismatch
from bios_ws.launch.measure import installed_package_root
from bios_ws.launch.sealing import unseal_key_passphrase
from bios_ws.pki import find_clear_private_keys, load_private_key
from bios_ws.tpm.esapi import open_tpm
from tests.tpm_fixtures import SwtpmProcess, require_swtpm, start_swtpm


@pytest.fixture
def swtpm(tmp_path: Path) -> Iterator[SwtpmProcess]:
    require_swtpm()
    process = start_swtpm(tmp_path / "swtpm")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    copy = tmp_path / "pkg" / "bios_ws"
    shutil.copytree(installed_package_root(), copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


@pytest.fixture
def sealed(tmp_path: Path, swtpm: SwtpmProcess, package: Path) -> Initialized:
    return initialize(tmp_path / "home", tpm=swtpm.tcti, package_root=package)


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
