"""The tpm2-pytss adapter against a real swtpm: the port's contract and the TPM's own checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.errors import TpmError, TpmUnavailable
from bios_ws.tpm.esapi import EsapiTpm, check_tcti, open_tpm
from bios_ws.tpm.port import BOOT_PCRS, SERVICE_PCR, policy_pcr_digest
from tests.ports import closed_port
from tests.tpm_contract import FREE_PCR, TpmContract, digests_of
from tests.tpm_fixtures import SwtpmProcess, start_swtpm


@pytest.fixture(scope="module")
def swtpm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwtpmProcess]:
    process = start_swtpm(tmp_path_factory.mktemp("swtpm"))
    yield process
    process.close()


@pytest.fixture
def tpm(swtpm: SwtpmProcess) -> Iterator[EsapiTpm]:
    real = open_tpm(swtpm.tcti)
    assert isinstance(real, EsapiTpm)
    real.ensure_storage_primary()
    real.pcr_reset(FREE_PCR)
    real.pcr_reset(SERVICE_PCR)
    yield real
    real.close()


class TestEsapiTpmContract(TpmContract):
    pass


def test_offline_policy_equals_the_tpm_trial_session(tpm: EsapiTpm) -> None:
    tpm.pcr_extend(SERVICE_PCR, digests_of(b"a service"))
    pcrs = (*BOOT_PCRS, FREE_PCR, SERVICE_PCR)
    offline = policy_pcr_digest("sha256", pcrs, tpm.pcr_read(pcrs))
    assert tpm.trial_policy_digest(pcrs) == offline
    assert tpm.trial_policy_digest([SERVICE_PCR]) != offline


def test_unseal_loads_and_flushes_its_objects(tpm: EsapiTpm) -> None:
    blob = tpm.seal(b"slots", [SERVICE_PCR])
    for _ in range(12):  # swtpm has 3 object and 3 session slots: a leak fails fast
        assert tpm.unseal(blob) == b"slots"
        tpm.pcr_extend(SERVICE_PCR, digests_of(b"x"))
        with pytest.raises(TpmError):
            tpm.unseal(blob)
        tpm.pcr_reset(SERVICE_PCR)


def test_tcti_must_be_explicit() -> None:
    for tcti in ("", "swtpm:", "swtpm:host=127.0.0.1", "mssim", "device:", "libtpms:x", "tabrmd"):
        with pytest.raises(ValueError):
            check_tcti(tcti)
    assert check_tcti("tabrmd:") == "tabrmd:"
    assert check_tcti("device:/dev/tpmrm0") == "device:/dev/tpmrm0"


def test_open_on_a_closed_port_is_unavailable() -> None:
    with closed_port() as port, pytest.raises(
        TpmUnavailable, match=f"unreachable at swtpm:host=127.0.0.1,port={port}"
    ):
        open_tpm(f"swtpm:host=127.0.0.1,port={port}")


def test_killed_swtpm_is_unavailable_then_reconnects_on_restart(tmp_path: Path) -> None:
    swtpm = start_swtpm(tmp_path)
    try:
        tpm = open_tpm(swtpm.tcti)
        tpm.ensure_storage_primary()
        blob = tpm.seal(b"survives", [SERVICE_PCR])
        swtpm.kill()
        for _ in range(2):
            with pytest.raises(TpmUnavailable) as caught:
                tpm.unseal(blob)
            assert caught.value.__context__ is None and caught.value.__cause__ is None
        swtpm.start()  # same state directory, same ports
        assert tpm.unseal(blob) == b"survives"  # persistent primary kept across restarts
    finally:
        swtpm.close()


def test_platform_reset_needs_startup_then_pcrs_restart(tmp_path: Path) -> None:
    swtpm = start_swtpm(tmp_path)
    try:
        tpm = open_tpm(swtpm.tcti)
        tpm.ensure_storage_primary()
        blob = tpm.seal(b"after reboot", [SERVICE_PCR])
        tpm.pcr_extend(SERVICE_PCR, digests_of(b"running"))
        swtpm.platform_reset()
        with pytest.raises(TpmUnavailable, match="not started"):
            tpm.pcr_read([SERVICE_PCR])
        tpm.startup_clear()
        assert tpm.pcr_read([SERVICE_PCR])[SERVICE_PCR] == bytes(32)
        assert tpm.unseal(blob) == b"after reboot"
    finally:
        swtpm.close()
