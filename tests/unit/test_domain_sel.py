"""The System Event Log's rules: the ring (capacity, WrapsWhenFull, NeverOverWrites, a smaller
ring), the capacity bounds, and the entries each kind of event makes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bios_ws.domain import sel
from bios_ws.domain.sel import (
    MAX_MAX_ENTRIES,
    MAX_TEXT,
    MIN_MAX_ENTRIES,
    AppendPlan,
    EntryCode,
    OverWritePolicy,
    SelEntry,
    SelPolicy,
    SensorType,
    Severity,
    plan_append,
    trim_to,
)
from bios_ws.errors import InvalidRequest

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WRAPS = SelPolicy(16, OverWritePolicy.WRAPS_WHEN_FULL)
NEVER = SelPolicy(16, OverWritePolicy.NEVER_OVERWRITES)


def test_the_default_policy_wraps_512_entries() -> None:
    assert SelPolicy() == SelPolicy(512, OverWritePolicy.WRAPS_WHEN_FULL)


@pytest.mark.parametrize("held", [0, 1, 15])
def test_a_log_with_room_takes_an_entry_and_drops_none(held: int) -> None:
    assert plan_append(WRAPS, held) == AppendPlan(True, 0)
    assert plan_append(NEVER, held) == AppendPlan(True, 0)


def test_a_full_ring_that_wraps_drops_its_oldest() -> None:
    assert plan_append(WRAPS, 16) == AppendPlan(True, 1)
    assert plan_append(WRAPS, 20) == AppendPlan(True, 5)  # held more (a smaller ring)


def test_a_full_log_that_never_overwrites_refuses() -> None:
    assert plan_append(NEVER, 16) == AppendPlan(False, 0)
    assert plan_append(NEVER, 30) == AppendPlan(False, 0)


@pytest.mark.parametrize(("held", "gone"), [(0, 0), (16, 0), (17, 1), (100, 84)])
def test_a_smaller_ring_keeps_the_newest_whatever_its_policy(held: int, gone: int) -> None:
    assert trim_to(WRAPS, held) == trim_to(NEVER, held) == gone


@pytest.mark.parametrize("bad", [MIN_MAX_ENTRIES - 1, MAX_MAX_ENTRIES + 1, 0, -1, True, "16"])
def test_a_capacity_out_of_bounds_is_refused(bad: object) -> None:
    with pytest.raises(InvalidRequest) as refused:
        SelPolicy(bad)  # type: ignore[arg-type]
    assert refused.value.attribute == "MaxNumberOfRecords"


def test_the_bounds_themselves_are_taken() -> None:
    assert SelPolicy(MIN_MAX_ENTRIES).max_entries == MIN_MAX_ENTRIES
    assert SelPolicy(MAX_MAX_ENTRIES).max_entries == MAX_MAX_ENTRIES


def test_an_entry_takes_its_record_and_its_id() -> None:
    record = sel.log_cleared(T0, "admin:root", 3)
    entry = SelEntry.of("vm1", 7, record)
    assert (entry.domain_id, entry.entry_id, entry.created, entry.message_id) == (
        "vm1", 7, T0, "VbiosSel.1.0.LogCleared")
    assert (entry.severity, entry.sensor_type, entry.entry_code) == (
        Severity.OK, "Event Logging Disabled", "Informational")
    assert entry.message_args == ("admin:root", "3")
    assert entry.message == "Log cleared by admin:root (3 entries removed)."


@pytest.mark.parametrize(("state", "cause", "severity", "code"), [
    ("On", "ManagementCommand", Severity.OK, EntryCode.TO_RUNNING),
    ("Off", "GuestShutdown", Severity.OK, EntryCode.TO_POWER_OFF),
    ("Off", "Crash", Severity.CRITICAL, EntryCode.TO_POWER_OFF),
    ("PoweringOn", "Watchdog", Severity.WARNING, EntryCode.STATE_ASSERTED),
    ("PoweringOn", "RTCWakeup", Severity.OK, EntryCode.STATE_ASSERTED),
    ("Paused", None, Severity.OK, EntryCode.TO_IDLE),
])
def test_power_changes(state: str, cause: str | None, severity: Severity,
                       code: EntryCode) -> None:
    record = sel.power_changed(T0, state, cause)
    assert (record.severity, record.entry_code, record.sensor_type) == (
        severity, code.value, SensorType.POWER_STATE.value)
    assert record.message_id == "VbiosSel.1.0.PowerStateChanged"
    assert record.message_args == (state, cause or "")


def test_restricted_mode_entered_is_critical_and_left_is_ok() -> None:
    entered = sel.restricted_mode(T0, True, "PCR 4 differs")
    left = sel.restricted_mode(T0, False, "all PCRs match")
    assert (entered.severity, entered.entry_code, entered.message_id) == (
        Severity.CRITICAL, "Assert", "VbiosSel.1.0.RestrictedModeEntered")
    assert "PCR 4 differs" in entered.message
    assert (left.severity, left.entry_code, left.message_id) == (
        Severity.OK, "Deassert", "VbiosSel.1.0.RestrictedModeLeft")
    assert entered.sensor_type == "Platform Security Violation Attempt"


@pytest.mark.parametrize(("state", "severity"), [("Completed", Severity.OK),
                                                  ("Failed", Severity.WARNING),
                                                  ("RolledBack", Severity.WARNING)])
def test_firmware_jobs_that_ended(state: str, severity: Severity) -> None:
    record = sel.firmware_job_ended(T0, "j" * 32, state, 3, "why")
    assert (record.severity, record.message_id, record.sensor_type) == (
        severity, f"VbiosSel.1.0.FirmwareUpdate{state}", "Version Change")
    assert record.message_args == ("j" * 32, state, "3")
    assert sel.firmware_job_ended(T0, "j", "Failed", None, "x").message_args[2] == "?"


def test_credentials_watchdog_and_wake_alarm_entries() -> None:
    revoked = sel.credential_revoked(T0, "0A1B", "keyCompromise")
    assert (revoked.severity, revoked.sensor_type, revoked.message_args) == (
        Severity.WARNING, "Session Audit", ("0A1B", "keyCompromise"))
    bite = sel.watchdog_expired(T0, 30, "ForceRestart")
    assert (bite.sensor_type, bite.entry_code, bite.message_args) == (
        "Watchdog", "Assert", ("30", "ForceRestart"))
    woke = sel.wake_alarm(T0, "2026-05-01T12:00:00Z", "powered on")
    failed = sel.wake_alarm(T0, "2026-05-01T12:00:00Z", "not powered on: no firmware", False)
    assert (woke.severity, failed.severity, woke.sensor_type) == (
        Severity.OK, Severity.WARNING, "SystemBoot/Restart")


@pytest.mark.parametrize(("threshold", "high", "severity", "code"), [
    ("UpperCaution", True, Severity.WARNING, "Upper Non-critical - going high"),
    ("UpperCritical", True, Severity.CRITICAL, "Upper Critical - going high"),
    ("UpperFatal", True, Severity.CRITICAL, "Upper Non-recoverable - going high"),
    ("UpperCritical", False, Severity.OK, "Upper Critical - going low"),
])
def test_temperature_crossings_for_the_thermal_service(threshold: str, high: bool,
                                                       severity: Severity, code: str) -> None:
    record = sel.temperature_crossed(T0, "CPU1 Temp", 91.5, threshold, 90.0, high)
    assert (record.severity, record.entry_code, record.sensor_type) == (
        severity, code, "Temperature")
    assert record.message_args == ("CPU1 Temp", "91.5", threshold, "90")


def test_an_unknown_threshold_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        sel.temperature_crossed(T0, "CPU1 Temp", 1.0, "LowerCritical", 0.0, False)


def test_long_texts_are_cut() -> None:
    record = sel.restricted_mode(T0, True, "x" * 5000)
    assert len(record.message) == MAX_TEXT
    assert all(len(arg) <= MAX_TEXT for arg in record.message_args)
