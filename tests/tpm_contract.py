"""The Tpm port's contract, run against FakeTpm (unit) and a real swtpm (integration).

Subclass ``TpmContract`` in a ``Test...`` class and provide a ``tpm`` fixture whose
Tpm has a storage primary and PCRs 16 and 23 at zero (both resettable from locality 0).
"""

from __future__ import annotations

import hashlib

import pytest

from bios_ws.errors import TpmError, TpmLockout, TpmPolicyMismatch, TpmUnavailable
from bios_ws.tpm.port import SealedBlob, Tpm, extended_value, policy_pcr_digest

FREE_PCR = 16  # resettable from locality 0, like the service PCR 23
SEALED_PCRS = (0, 1, 7, FREE_PCR, 23)


def digests_of(data: bytes) -> dict[str, bytes]:
    return {"sha1": hashlib.sha1(data).digest(), "sha256": hashlib.sha256(data).digest()}


class TpmContract:
    """Behaviour every Tpm implementation must show."""

    def test_banks_are_sha1_and_sha256(self, tpm: Tpm) -> None:
        assert tpm.active_banks() == ("sha1", "sha256")

    def test_reads_all_24_pcrs_in_both_banks(self, tpm: Tpm) -> None:
        for bank, size in (("sha1", 20), ("sha256", 32)):
            values = tpm.pcr_read(range(24), bank)
            assert sorted(values) == list(range(24))
            assert all(len(v) == size for v in values.values())
            assert values[17] == b"\xff" * size  # DRTM PCRs start as all ones
            assert values[23] == bytes(size)

    def test_extend_updates_both_banks_as_hashlib_predicts(self, tpm: Tpm) -> None:
        before = {bank: tpm.pcr_read([FREE_PCR], bank)[FREE_PCR] for bank in ("sha1", "sha256")}
        digests = digests_of(b"event one")
        tpm.pcr_extend(FREE_PCR, digests)
        for bank in ("sha1", "sha256"):
            expected = hashlib.new(bank, before[bank] + digests[bank]).digest()
            assert tpm.pcr_read([FREE_PCR], bank)[FREE_PCR] == expected

    def test_extend_needs_one_digest_per_active_bank(self, tpm: Tpm) -> None:
        with pytest.raises(ValueError, match="bank"):
            tpm.pcr_extend(FREE_PCR, {"sha256": hashlib.sha256(b"x").digest()})
        with pytest.raises(ValueError):
            tpm.pcr_extend(FREE_PCR, {"sha1": b"short", "sha256": hashlib.sha256(b"x").digest()})
        with pytest.raises(ValueError):
            tpm.pcr_extend(24, digests_of(b"x"))

    def test_reset_of_23_returns_it_to_zero(self, tpm: Tpm) -> None:
        tpm.pcr_extend(23, digests_of(b"service"))
        assert tpm.pcr_read([23])[23] != bytes(32)
        tpm.pcr_reset(23)
        assert tpm.pcr_read([23])[23] == bytes(32)
        assert tpm.pcr_read([23], "sha1")[23] == bytes(20)

    def test_reset_of_a_boot_pcr_is_refused(self, tpm: Tpm) -> None:
        before = tpm.pcr_read([0])
        with pytest.raises(TpmError) as caught:
            tpm.pcr_reset(0)
        assert type(caught.value) is TpmError
        assert tpm.pcr_read([0]) == before

    def test_storage_primary_is_idempotent(self, tpm: Tpm) -> None:
        blob = tpm.seal(b"before", [23])
        tpm.ensure_storage_primary()
        tpm.ensure_storage_primary()
        assert tpm.unseal(blob) == b"before"

    def test_seal_unseal_round_trip_through_json(self, tpm: Tpm) -> None:
        secret = b"\x00passphrase\xff" * 9  # binary, 117 bytes
        blob = tpm.seal(secret, SEALED_PCRS)
        assert secret not in blob.to_json().encode()
        assert blob.pcrs == SEALED_PCRS and blob.bank == "sha256"
        current = tpm.pcr_read(SEALED_PCRS)
        assert blob.policy_digest == policy_pcr_digest("sha256", SEALED_PCRS, current)
        assert tpm.unseal(SealedBlob.from_json(blob.to_json())) == secret

    def test_seal_to_expected_values_unseals_only_once_they_are_reached(self, tpm: Tpm) -> None:
        event = digests_of(b"the service")
        expected = extended_value("sha256", tpm.pcr_read([FREE_PCR])[FREE_PCR], event["sha256"])
        blob = tpm.seal(b"later", [FREE_PCR, 23], expected={FREE_PCR: expected})
        with pytest.raises(TpmPolicyMismatch):
            tpm.unseal(blob)
        tpm.pcr_extend(FREE_PCR, event)
        assert tpm.unseal(blob) == b"later"

    def test_extending_a_sealed_pcr_breaks_the_policy(self, tpm: Tpm) -> None:
        blob = tpm.seal(b"bound", [FREE_PCR, 23])
        tpm.pcr_extend(23, digests_of(b"modified service"))
        with pytest.raises(TpmPolicyMismatch):
            tpm.unseal(blob)
        tpm.pcr_reset(23)
        assert tpm.unseal(blob) == b"bound"

    def test_a_blob_whose_policy_was_edited_is_refused(self, tpm: Tpm) -> None:
        blob = tpm.seal(b"guarded", [23])
        for edited in (
            SealedBlob(blob.public, blob.private, blob.pcrs, blob.bank, bytes(32)),
            SealedBlob(blob.public, blob.private[:-1] + bytes([blob.private[-1] ^ 1]),
                       blob.pcrs, blob.bank, blob.policy_digest),
        ):
            with pytest.raises(TpmError) as caught:
                tpm.unseal(edited)
            assert not isinstance(caught.value, (TpmUnavailable, TpmLockout))
        assert tpm.unseal(blob) == b"guarded"

    def test_invalid_seal_arguments_are_refused(self, tpm: Tpm) -> None:
        for secret in (b"", b"x" * 129):
            with pytest.raises(ValueError):
                tpm.seal(secret, [23])
        for pcrs in ([], [24], [-1], [23, 23]):
            with pytest.raises(ValueError):
                tpm.seal(b"s", pcrs)
        with pytest.raises(ValueError):
            tpm.seal(b"s", [23], expected={7: bytes(32)})
        with pytest.raises(ValueError):
            tpm.seal(b"s", [23], expected={23: bytes(20)})

    def test_random_bytes(self, tpm: Tpm) -> None:
        first, second = tpm.get_random(100), tpm.get_random(100)
        assert len(first) == len(second) == 100 and first != second
        with pytest.raises(ValueError):
            tpm.get_random(0)

    def test_startup_clear_on_a_running_tpm_changes_nothing(self, tpm: Tpm) -> None:
        tpm.pcr_extend(23, digests_of(b"kept"))
        before = tpm.pcr_read([23])
        tpm.startup_clear()
        assert tpm.pcr_read([23]) == before

    def test_close_then_use_reconnects(self, tpm: Tpm) -> None:
        blob = tpm.seal(b"again", [23])
        tpm.close()
        assert tpm.unseal(blob) == b"again"
