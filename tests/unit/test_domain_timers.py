"""The timers' rules: which wake times are taken, the watchdog's timeout bounds, and when a
watchdog bites (the later of its last pet and the machine's last reset, only while the
machine runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bios_ws.domain.timers import (
    MAX_WAKE_AHEAD,
    MAX_WATCHDOG_SECONDS,
    MIN_WATCHDOG_SECONDS,
    Watchdog,
    check_timeout,
    check_wake_time,
    iso,
    parse_wake_time,
)
from bios_ws.errors import InvalidRequest

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def watchdog(timeout: int = 30, last_pet: datetime = NOW, enabled: bool = True) -> Watchdog:
    return Watchdog("vm1", enabled, timeout, last_pet, "guest:vm1")


# -- wake alarms --------------------------------------------------------------------------


def test_a_future_time_is_taken_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    taken = check_wake_time(datetime(2026, 5, 1, 15, 0, tzinfo=paris), NOW)
    assert taken == datetime(2026, 5, 1, 13, 0, tzinfo=UTC) and taken.tzinfo is UTC


def test_the_farthest_time_is_taken() -> None:
    assert check_wake_time(NOW + MAX_WAKE_AHEAD, NOW) == NOW + MAX_WAKE_AHEAD


@pytest.mark.parametrize("when", [NOW, NOW - timedelta(seconds=1),
                                  NOW + MAX_WAKE_AHEAD + timedelta(seconds=1),
                                  datetime(2026, 6, 1)])  # naive: no offset
def test_the_past_now_too_far_and_a_naive_time_are_refused(when: datetime) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_wake_time(when, NOW)
    assert refused.value.attribute == "WakeTime"


@pytest.mark.parametrize("text", ["2027-01-31T06:30:00Z", "2027-01-31T06:30:00+00:00",
                                  " 2027-01-31T07:30:00.250+01:00 "])
def test_iso_times_with_an_offset_parse(text: str) -> None:
    assert parse_wake_time(text).astimezone(UTC).replace(microsecond=0) == datetime(
        2027, 1, 31, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "tomorrow", "2027-01-31T06:30:00", "2027-13-01T00:00Z"])
def test_other_texts_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_wake_time(text)
    assert refused.value.attribute == "WakeTime"


def test_iso_writes_utc_with_z() -> None:
    assert iso(datetime(2027, 1, 31, 7, 30, tzinfo=timezone(timedelta(hours=1)))) == (
        "2027-01-31T06:30:00Z")


# -- watchdog -----------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [MIN_WATCHDOG_SECONDS, 60, MAX_WATCHDOG_SECONDS])
def test_timeouts_within_bounds_are_taken(seconds: int) -> None:
    assert check_timeout(seconds) == seconds


@pytest.mark.parametrize("seconds", [MIN_WATCHDOG_SECONDS - 1, 0, -5,
                                     MAX_WATCHDOG_SECONDS + 1, True, 1.5])
def test_timeouts_out_of_bounds_are_refused(seconds: object) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_timeout(seconds)  # type: ignore[arg-type]
    assert refused.value.attribute == "TimeoutSeconds"


def test_it_bites_once_the_timeout_passed_after_the_last_pet() -> None:
    dog = watchdog(30)
    assert dog.deadline(None) == NOW + timedelta(seconds=30)
    assert not dog.due(NOW + timedelta(seconds=29), True, None)
    assert dog.due(NOW + timedelta(seconds=30), True, None)


def test_a_boot_after_the_pet_starts_the_countdown_again() -> None:
    boot = NOW + timedelta(seconds=20)
    dog = watchdog(30)
    assert dog.deadline(boot) == boot + timedelta(seconds=30)
    assert not dog.due(NOW + timedelta(seconds=45), True, boot)
    assert dog.deadline(NOW - timedelta(hours=1)) == NOW + timedelta(seconds=30)  # older boot


def test_it_does_not_bite_a_machine_that_does_not_run_or_when_disarmed() -> None:
    late = NOW + timedelta(hours=1)
    assert not watchdog().due(late, False, None)
    assert not watchdog(enabled=False).due(late, True, None)


def test_a_pet_and_a_bite_move_the_countdown_and_the_version() -> None:
    later = NOW + timedelta(seconds=10)
    petted = watchdog().petted(later)
    assert (petted.last_pet, petted.version, petted.expirations) == (later, 2, 0)
    bitten = petted.bitten(later + timedelta(seconds=30))
    assert (bitten.last_pet, bitten.version, bitten.expirations) == (
        later + timedelta(seconds=30), 3, 1)
