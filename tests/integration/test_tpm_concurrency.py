"""One Tpm from many threads, and several processes with their own contexts, on one swtpm."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.errors import TpmLockout
from bios_ws.tpm.esapi import open_tpm
from bios_ws.tpm.port import SERVICE_PCR
from tests.tpm_fixtures import SwtpmProcess, start_swtpm

WORKER = """
import sys
from bios_ws.tpm.esapi import open_tpm
tcti, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
tpm = open_tpm(tcti)
tpm.ensure_storage_primary()
for i in range(rounds):
    secret = f"{name}-{i}".encode()
    blob = tpm.seal(secret, [0, 7, 23])
    assert tpm.unseal(blob) == secret, "wrong secret"
    assert len(tpm.get_random(16)) == 16
tpm.close()
print("ok", name, rounds)
"""


@pytest.fixture
def swtpm(tmp_path: Path) -> Iterator[SwtpmProcess]:
    process = start_swtpm(tmp_path)
    yield process
    process.close()


def test_200_seal_unseal_cycles_from_8_threads_on_one_tpm(swtpm: SwtpmProcess) -> None:
    tpm = open_tpm(swtpm.tcti)
    tpm.ensure_storage_primary()
    errors: list[BaseException] = []
    done: list[int] = []

    def worker(number: int) -> None:
        try:
            for i in range(25):
                secret = f"thread {number} round {i}".encode()
                blob = tpm.seal(secret, [0, 1, SERVICE_PCR])
                assert tpm.unseal(blob) == secret
                tpm.pcr_read(range(24), "sha1")
            done.append(number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert sorted(done) == list(range(8))
    tpm.close()


def test_four_processes_each_with_its_own_context(swtpm: SwtpmProcess, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), swtpm.tcti, f"p{n}", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2],
        )
        for n in range(4)
    ]
    results = [worker.communicate(timeout=300) for worker in workers]
    for n, (worker, (out, err)) in enumerate(zip(workers, results, strict=True)):
        assert worker.returncode == 0, err.decode()[-2000:]
        assert out.decode().split() == ["ok", f"p{n}", "30"]


def _drive_into_lockout(tcti: str) -> int:
    """Fail the password of a DA-protected sealed object until the TPM locks out; last rc."""
    from tpm2_pytss import ESAPI, TSS2_Exception
    from tpm2_pytss.constants import TPM2_ALG, TPMA_OBJECT
    from tpm2_pytss.types import (
        TPM2B_PUBLIC,
        TPM2B_SENSITIVE_CREATE,
        TPM2B_SENSITIVE_DATA,
        TPMS_SENSITIVE_CREATE,
        TPMT_PUBLIC,
    )

    ctx = ESAPI(tcti)
    parent = ctx.tr_from_tpmpublic(0x81000101)
    public = TPM2B_PUBLIC(TPMT_PUBLIC(
        type=TPM2_ALG.KEYEDHASH, nameAlg=TPM2_ALG.SHA256,
        objectAttributes=TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.USERWITHAUTH,
    ))
    public.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG.NULL
    sensitive = TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(
        userAuth=b"right", data=TPM2B_SENSITIVE_DATA(b"x")))
    private, public, _, _, _ = ctx.create(parent, sensitive, public)
    handle = ctx.load(parent, private, public)
    ctx.tr_set_auth(handle, b"wrong")
    last = 0
    try:
        for _ in range(5):  # swtpm: 3 failures, then lockout
            try:
                ctx.unseal(handle)
            except TSS2_Exception as exc:
                last = int(exc.rc)
    finally:
        ctx.flush_context(handle)
        ctx.close()
    return last


def test_lockout_does_not_stop_our_noda_objects(swtpm: SwtpmProcess) -> None:
    from bios_ws.tpm.rc import TPM_RC_LOCKOUT, map_tss_error, tpm_code

    tpm = open_tpm(swtpm.tcti)
    tpm.ensure_storage_primary()
    blob = tpm.seal(b"noda", [SERVICE_PCR])
    last = _drive_into_lockout(swtpm.tcti)
    assert tpm_code(last) == TPM_RC_LOCKOUT
    assert isinstance(map_tss_error(last, swtpm.tcti, "unseal"), TpmLockout)
    assert tpm.unseal(blob) == b"noda"  # NODA: a lockout caused elsewhere does not stop serve
    assert tpm.unseal(tpm.seal(b"new", [SERVICE_PCR])) == b"new"
    tpm.close()
