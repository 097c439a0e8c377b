"""FakeTpm keeps the port's contract, plus its simulation switches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bios_ws.errors import TpmError, TpmLockout, TpmUnavailable
from bios_ws.tpm.fake import FakeTpm
from tests.tpm_contract import TpmContract, digests_of


@pytest.fixture
def tpm() -> Iterator[FakeTpm]:
    fake = FakeTpm()
    fake.ensure_storage_primary()
    yield fake
    fake.close()


class TestFakeTpmContract(TpmContract):
    pass


def test_seal_without_a_storage_primary_is_refused() -> None:
    fake = FakeTpm()
    with pytest.raises(TpmError, match="storage primary"):
        fake.seal(b"s", [23])


def test_unavailable_tpm_refuses_everything_until_it_returns(tpm: FakeTpm) -> None:
    blob = tpm.seal(b"s", [23])
    tpm.available = False
    for call in (lambda: tpm.unseal(blob), lambda: tpm.pcr_read([0]), tpm.active_banks):
        with pytest.raises(TpmUnavailable, match="unreachable at fake:"):
            call()
    tpm.available = True
    assert tpm.unseal(blob) == b"s"


def test_lockout_is_reported(tpm: FakeTpm) -> None:
    blob = tpm.seal(b"s", [23])
    tpm.locked_out = True
    with pytest.raises(TpmLockout):
        tpm.unseal(blob)


def test_platform_reset_needs_startup_and_restores_start_values(tpm: FakeTpm) -> None:
    blob = tpm.seal(b"s", [23])
    tpm.pcr_extend(23, digests_of(b"x"))
    tpm.platform_reset()
    with pytest.raises(TpmUnavailable, match="not started"):
        tpm.pcr_read([23])
    tpm.startup_clear()
    assert tpm.pcr_read([23])[23] == bytes(32)
    assert tpm.unseal(blob) == b"s"


def test_blob_of_another_tpm_or_after_clear_is_refused(tpm: FakeTpm) -> None:
    blob = tpm.seal(b"s", [23])
    other = FakeTpm()
    other.ensure_storage_primary()
    with pytest.raises(TpmError):
        other.unseal(blob)
    tpm.clear()
    tpm.ensure_storage_primary()
    with pytest.raises(TpmError):
        tpm.unseal(blob)
