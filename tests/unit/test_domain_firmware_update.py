"""The firmware update rules: the floor, the monotonic count, the firmware class, and what
each outcome changes in a domain's ESRT-style state (refusals only LastAttempt*)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from bios_ws.domain.capsule import VerifiedCapsule, parse_capsule
from bios_ws.domain.capsule_build import CapsuleSpec, build_capsule
from bios_ws.domain.capsule_fakes import FakeCapsuleSigner, FakeCapsuleVerifier
from bios_ws.domain.firmware_update import (
    FirmwareEntry,
    FirmwareInventory,
    LastAttemptStatus,
    Slot,
    UpdateDecision,
    attempt_status_of,
    judge_capsule,
    judge_capsule_for,
    record_failed_attempt,
    record_refusal,
    record_update_rolled_back,
    record_update_succeeded,
)
from bios_ws.errors import CapsuleNotTrusted, InvalidCapsule

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FIRMWARE_CLASS = uuid.UUID("0f6d58fc-2258-4d27-9e23-d77219b0897c")
OTHER_CLASS = uuid.UUID("5b1f1c6e-8a07-4f3d-9a55-3c1d2e0f4b77")
SIGNER = FakeCapsuleSigner("Test Capsule Signer")

#: installed FwVersion 6, floor 5, last accepted MonotonicCount 9, booting slot A
ENTRY = FirmwareEntry(FIRMWARE_CLASS, fw_version=6, lowest_supported_version=5,
                      last_monotonic_count=9, active_slot=Slot.A)


def capsule(fw_version: int, count: int, *, lowest: int = 0,
            firmware_class: uuid.UUID = FIRMWARE_CLASS) -> VerifiedCapsule:
    spec = CapsuleSpec(image_type_id=firmware_class, fw_version=fw_version,
                       lowest_supported_version=lowest, monotonic_count=count)
    data = build_capsule(b"firmware image", spec, SIGNER.sign)
    return FakeCapsuleVerifier().verify(parse_capsule(data), [SIGNER.anchor], now=NOW)


def unchanged_but_last_attempt(before: FirmwareEntry, after: FirmwareEntry) -> bool:
    return dataclasses.replace(after, last_attempt_version=before.last_attempt_version,
                               last_attempt_status=before.last_attempt_status) == before


# --- acceptance ---------------------------------------------------------------------------

def test_a_newer_version_with_a_greater_count_is_accepted() -> None:
    decision = judge_capsule(ENTRY, capsule(7, 10))
    assert decision.accepted and decision.status is LastAttemptStatus.SUCCESS
    assert decision.message == "accepted: the capsule updates FwVersion 6 to 7; it goes to slot B"


def test_reinstalling_the_installed_version_is_accepted() -> None:
    decision = judge_capsule(ENTRY, capsule(6, 10))
    assert decision.accepted
    assert decision.message == "accepted: the capsule reinstalls FwVersion 6; it goes to slot B"


def test_an_older_version_at_or_above_the_floor_is_accepted() -> None:
    decision = judge_capsule(ENTRY, capsule(5, 10))
    assert decision.accepted
    assert decision.message == (
        "accepted: the capsule downgrades FwVersion 6 to 5 (allowed: not below the lowest"
        " supported version 5); it goes to slot B")


def test_a_version_below_the_floor_is_refused_with_incorrect_version() -> None:
    decision = judge_capsule(ENTRY, capsule(3, 10))
    assert not decision.accepted
    assert decision.status is LastAttemptStatus.INCORRECT_VERSION
    assert decision.message == (
        "FwVersion 3 is below the lowest supported version 5 of this domain; a downgrade"
        " below the floor is never allowed")


def test_a_count_equal_to_the_last_accepted_is_refused_as_a_replay() -> None:
    decision = judge_capsule(ENTRY, capsule(7, 9))
    assert decision.status is LastAttemptStatus.AUTH_ERROR
    assert decision.message == (
        "MonotonicCount 9 is not greater than 9, the last accepted for this firmware class:"
        " a replayed or older signed capsule is refused")


def test_a_count_below_the_last_accepted_is_refused() -> None:
    decision = judge_capsule(ENTRY, capsule(7, 7))
    assert decision.status is LastAttemptStatus.AUTH_ERROR
    assert decision.message.startswith("MonotonicCount 7 is not greater than 9,")


def test_reinstalling_with_the_same_count_is_refused() -> None:
    assert judge_capsule(ENTRY, capsule(6, 9)).status is LastAttemptStatus.AUTH_ERROR


def test_any_count_is_accepted_before_the_first_update() -> None:
    fresh = FirmwareEntry(FIRMWARE_CLASS, fw_version=1, lowest_supported_version=1)
    assert fresh.last_monotonic_count is None
    assert judge_capsule(fresh, capsule(1, 0)).accepted


def test_a_capsule_of_another_firmware_class_is_refused_as_invalid_format() -> None:
    decision = judge_capsule(ENTRY, capsule(7, 10, firmware_class=OTHER_CLASS))
    assert decision.status is LastAttemptStatus.INVALID_FORMAT
    assert decision.message == (
        f"the capsule is for firmware class {OTHER_CLASS}, and this domain's firmware class is"
        f" {FIRMWARE_CLASS}: it is not an update of this firmware")


def test_the_class_is_judged_first_then_the_floor_then_the_count() -> None:
    assert judge_capsule(ENTRY, capsule(1, 1, firmware_class=OTHER_CLASS)).status \
        is LastAttemptStatus.INVALID_FORMAT
    assert judge_capsule(ENTRY, capsule(1, 1)).status is LastAttemptStatus.INCORRECT_VERSION


def test_the_inventory_finds_the_entry_of_the_capsules_class() -> None:
    other = FirmwareEntry(OTHER_CLASS, fw_version=1, lowest_supported_version=1)
    inventory = FirmwareInventory((ENTRY, other))
    assert judge_capsule_for(inventory, capsule(2, 1, firmware_class=OTHER_CLASS)).accepted
    assert judge_capsule_for(inventory, capsule(3, 10)).status \
        is LastAttemptStatus.INCORRECT_VERSION


def test_the_inventory_refuses_a_class_the_domain_does_not_have() -> None:
    decision = judge_capsule_for(FirmwareInventory((ENTRY,)),
                                 capsule(7, 10, firmware_class=OTHER_CLASS))
    assert decision.status is LastAttemptStatus.INVALID_FORMAT
    assert decision.message == (
        f"the capsule is for firmware class {OTHER_CLASS}, which this domain does not have"
        f" (its firmware classes: {FIRMWARE_CLASS})")
    empty = judge_capsule_for(FirmwareInventory(()), capsule(7, 10))
    assert empty.message.endswith("(its firmware classes: none)")


def test_errors_before_the_rules_map_to_esrt_codes() -> None:
    assert attempt_status_of(InvalidCapsule("image", "empty")) \
        is LastAttemptStatus.INVALID_FORMAT
    assert attempt_status_of(CapsuleNotTrusted("bad-signature", "no")) \
        is LastAttemptStatus.AUTH_ERROR


def test_the_esrt_codes_are_those_of_the_uefi_specification() -> None:
    assert [(s.name, s.value) for s in LastAttemptStatus] == [
        ("SUCCESS", 0), ("UNSUCCESSFUL", 1), ("INSUFFICIENT_RESOURCES", 2),
        ("INCORRECT_VERSION", 3), ("INVALID_FORMAT", 4), ("AUTH_ERROR", 5),
        ("PWR_EVT_AC", 6), ("PWR_EVT_BATT", 7), ("UNSATISFIED_DEPENDENCIES", 8)]


# --- what a refusal changes ---------------------------------------------------------------

@pytest.mark.parametrize("refused", [
    pytest.param(capsule(3, 10), id="below-floor"),
    pytest.param(capsule(7, 9), id="replayed-count"),
])
def test_a_refusal_records_only_the_last_attempt(refused: VerifiedCapsule) -> None:
    decision = judge_capsule(ENTRY, refused)
    after = record_refusal(ENTRY, refused, decision)
    assert (after.last_attempt_version, after.last_attempt_status) == (
        refused.fw_version, decision.status)
    assert (after.fw_version, after.lowest_supported_version, after.last_monotonic_count,
            after.active_slot) == (6, 5, 9, Slot.A)
    assert unchanged_but_last_attempt(ENTRY, after)


def test_a_refusal_of_another_class_changes_nothing() -> None:
    foreign = capsule(7, 10, firmware_class=OTHER_CLASS)
    assert record_refusal(ENTRY, foreign, judge_capsule(ENTRY, foreign)) is ENTRY


def test_an_acceptance_is_not_a_refusal_to_record() -> None:
    accepted = capsule(7, 10)
    with pytest.raises(ValueError, match="accepted"):
        record_refusal(ENTRY, accepted, judge_capsule(ENTRY, accepted))


def test_a_failed_attempt_cannot_be_a_success() -> None:
    with pytest.raises(ValueError, match="SUCCESS"):
        record_failed_attempt(ENTRY, 7, LastAttemptStatus.SUCCESS)


def test_a_failed_attempt_keeps_everything_but_the_last_attempt() -> None:
    after = record_failed_attempt(ENTRY, 8, LastAttemptStatus.INSUFFICIENT_RESOURCES)
    assert (after.last_attempt_version, after.last_attempt_status) == (
        8, LastAttemptStatus.INSUFFICIENT_RESOURCES)
    assert unchanged_but_last_attempt(ENTRY, after)


# --- success and rollback -----------------------------------------------------------------

def test_a_success_installs_the_image_and_flips_the_slot() -> None:
    after = record_update_succeeded(ENTRY, capsule(8, 12, lowest=7))
    assert after == FirmwareEntry(FIRMWARE_CLASS, fw_version=8, lowest_supported_version=7,
                                  last_monotonic_count=12, last_attempt_version=8,
                                  last_attempt_status=LastAttemptStatus.SUCCESS,
                                  active_slot=Slot.B)


def test_a_success_never_lowers_the_floor() -> None:
    after = record_update_succeeded(ENTRY, capsule(8, 12, lowest=2))
    assert after.lowest_supported_version == 5


def test_a_reinstall_keeps_the_version_and_raises_the_count() -> None:
    after = record_update_succeeded(ENTRY, capsule(6, 10))
    assert (after.fw_version, after.last_monotonic_count, after.active_slot) == (6, 10, Slot.B)


def test_two_successes_flip_the_slot_back() -> None:
    once = record_update_succeeded(ENTRY, capsule(7, 10))
    twice = record_update_succeeded(once, capsule(8, 11))
    assert (once.active_slot, twice.active_slot) == (Slot.B, Slot.A)
    assert once.inactive_slot is Slot.A


def test_a_success_the_rules_refuse_is_an_error() -> None:
    with pytest.raises(ValueError, match="MonotonicCount 9 is not greater than 9"):
        record_update_succeeded(ENTRY, capsule(7, 9))


def test_a_rollback_raises_nothing_and_keeps_the_slot() -> None:
    after = record_update_rolled_back(ENTRY, capsule(9, 20, lowest=9))
    assert (after.last_attempt_version, after.last_attempt_status) == (
        9, LastAttemptStatus.UNSUCCESSFUL)
    assert (after.fw_version, after.lowest_supported_version, after.last_monotonic_count,
            after.active_slot) == (6, 5, 9, Slot.A)


def test_after_a_rollback_the_same_capsule_may_be_tried_again() -> None:
    tried = capsule(9, 20, lowest=9)
    after = record_update_rolled_back(ENTRY, tried)
    assert judge_capsule(after, tried).accepted


# --- the state itself ---------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {"fw_version": -1}, {"fw_version": 2**32}, {"lowest_supported_version": 7},
    {"last_attempt_version": 2**32}, {"last_monotonic_count": -1},
    {"last_monotonic_count": 2**64},
])
def test_an_impossible_entry_is_refused(fields: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(ENTRY, **fields)  # type: ignore[arg-type]


def test_an_entry_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ENTRY.fw_version = 7  # type: ignore[misc]


def test_an_inventory_holds_one_entry_per_class() -> None:
    with pytest.raises(ValueError, match="twice"):
        FirmwareInventory((ENTRY, ENTRY))


def test_an_inventory_replaces_an_entry_by_class() -> None:
    other = FirmwareEntry(OTHER_CLASS, fw_version=1, lowest_supported_version=1)
    inventory = FirmwareInventory((ENTRY, other))
    updated = record_update_succeeded(ENTRY, capsule(7, 10))
    assert list(inventory.replaced(updated)) == [updated, other]
    assert list(inventory) == [ENTRY, other]
    with pytest.raises(ValueError, match="no firmware class"):
        FirmwareInventory((other,)).replaced(updated)


def test_a_slot_knows_the_other() -> None:
    assert (Slot.A.other, Slot.B.other) == (Slot.B, Slot.A)


def test_a_decision_is_accepted_only_on_success() -> None:
    assert not UpdateDecision(LastAttemptStatus.UNSUCCESSFUL, "no").accepted
