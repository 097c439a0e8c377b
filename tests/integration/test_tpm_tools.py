"""tpm2-tools reads and unseals what the adapter stores: the blobs are plain TPM2B structures."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.tpm.esapi import open_tpm
from bios_ws.tpm.port import BOOT_PCRS, PERSISTENT_PRIMARY, SERVICE_PCR, SealedBlob, Tpm
from tests.tpm_contract import digests_of
from tests.tpm_fixtures import SwtpmProcess, start_swtpm

PCRS = (*BOOT_PCRS, SERVICE_PCR)
#: tpm2_policypcr 5.4 reads the PCRs itself with one PCR_Read, so at most 8 ("limited to 8");
#: the adapter reads in several calls and seals to all nine.
TOOL_PCRS = (*BOOT_PCRS[:7], SERVICE_PCR)
TOOLS = ("tpm2_print", "tpm2_load", "tpm2_startauthsession", "tpm2_policypcr", "tpm2_unseal",
         "tpm2_flushcontext", "tpm2_getcap")


@pytest.fixture(scope="module")
def swtpm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwtpmProcess]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"tpm2-tools missing: {', '.join(missing)}")
    process = start_swtpm(tmp_path_factory.mktemp("swtpm"))
    yield process
    process.close()


@pytest.fixture
def tpm(swtpm: SwtpmProcess) -> Iterator[Tpm]:
    real = open_tpm(swtpm.tcti)
    real.ensure_storage_primary()
    real.pcr_reset(SERVICE_PCR)
    yield real
    real.close()


def tool(swtpm: SwtpmProcess, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TPM2TOOLS_TCTI": swtpm.tcti, "TSS2_LOG": "all+NONE"}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, timeout=60)


def write_parts(blob: SealedBlob, directory: Path) -> None:
    (directory / "seal.pub").write_bytes(blob.public)
    (directory / "seal.priv").write_bytes(blob.private)


def tools_unseal(swtpm: SwtpmProcess, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    selection = "sha256:" + ",".join(str(i) for i in TOOL_PCRS)
    loaded = tool(swtpm, cwd, "tpm2_load", "-C", hex(PERSISTENT_PRIMARY),
                  "-u", "seal.pub", "-r", "seal.priv", "-c", "seal.ctx")
    assert loaded.returncode == 0, loaded.stderr.decode()
    session = tool(swtpm, cwd, "tpm2_startauthsession", "--policy-session", "-S", "session.ctx")
    assert session.returncode == 0, session.stderr.decode()
    try:
        policy = tool(swtpm, cwd, "tpm2_policypcr", "-S", "session.ctx", "-l", selection)
        assert policy.returncode == 0, policy.stderr.decode()
        return tool(swtpm, cwd, "tpm2_unseal", "-c", "seal.ctx", "-p", "session:session.ctx")
    finally:
        # without a resource manager each tool leaves its transient objects loaded:
        # flush the session, then every transient (this swtpm serves this module only)
        assert tool(swtpm, cwd, "tpm2_flushcontext", "session.ctx").returncode == 0
        assert tool(swtpm, cwd, "tpm2_flushcontext", "-t").returncode == 0
        left = tool(swtpm, cwd, "tpm2_getcap", "handles-transient")
        assert left.returncode == 0 and left.stdout.strip() == b"", left.stdout.decode()


def test_tpm2_print_parses_the_sealed_public_part(tpm: Tpm, swtpm: SwtpmProcess,
                                                  tmp_path: Path) -> None:
    blob = tpm.seal(b"printable", PCRS)
    write_parts(blob, tmp_path)
    printed = tool(swtpm, tmp_path, "tpm2_print", "-t", "TPM2B_PUBLIC", "seal.pub")
    assert printed.returncode == 0, printed.stderr.decode()
    text = printed.stdout.decode()
    assert "keyedhash" in text
    assert "fixedtpm" in text and "fixedparent" in text and "noda" in text
    assert "userwithauth" not in text
    assert blob.policy_digest.hex() in text.lower()


def test_tpm2_tools_unseal_under_the_same_pcr_policy(tpm: Tpm, swtpm: SwtpmProcess,
                                                    tmp_path: Path) -> None:
    secret = b"read by tpm2_unseal"
    write_parts(tpm.seal(secret, TOOL_PCRS), tmp_path)
    unsealed = tools_unseal(swtpm, tmp_path)
    assert unsealed.returncode == 0, unsealed.stderr.decode()
    assert unsealed.stdout == secret


def test_tpm2_tools_unseal_fails_after_the_service_pcr_changes(tpm: Tpm, swtpm: SwtpmProcess,
                                                              tmp_path: Path) -> None:
    write_parts(tpm.seal(b"not after a change", TOOL_PCRS), tmp_path)
    tpm.pcr_extend(SERVICE_PCR, digests_of(b"another service"))
    unsealed = tools_unseal(swtpm, tmp_path)
    assert unsealed.returncode != 0
    assert b"not after a change" not in unsealed.stdout
