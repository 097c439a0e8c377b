"""The power rules: which request fits which state, what boots, causes, power restore."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bios_ws.domain.power import (
    ALLOWED,
    MachineKind,
    MachineRecord,
    PowerRestorePolicy,
    PowerState,
    ResetCause,
    ResetType,
    boots,
    cause_of,
    check_request,
    is_running,
    restores_power,
)
from bios_ws.errors import InvalidPowerTransition

S, R = PowerState, ResetType

#: The whole table, spelled out: a change of the rules is a change of this test.
EXPECTED = {
    R.ON: {S.OFF},
    R.FORCE_ON: {S.OFF, S.POWERING_OFF},
    R.FORCE_OFF: {S.ON, S.POWERING_ON, S.PAUSED, S.POWERING_OFF},
    R.GRACEFUL_SHUTDOWN: {S.ON},
    R.GRACEFUL_RESTART: {S.ON},
    R.FORCE_RESTART: {S.ON, S.POWERING_ON, S.PAUSED},
    R.POWER_CYCLE: {S.ON, S.POWERING_ON, S.PAUSED},
    R.PUSH_POWER_BUTTON: {S.OFF, S.ON},
    R.NMI: {S.ON},
    R.PAUSE: {S.ON},
    R.RESUME: {S.PAUSED},
}


def test_every_request_has_its_states() -> None:
    assert set(ALLOWED) == set(ResetType)
    assert {r: set(states) for r, states in ALLOWED.items()} == EXPECTED


@pytest.mark.parametrize("request_type", list(ResetType))
@pytest.mark.parametrize("state", list(PowerState))
def test_a_request_is_allowed_or_refused_naming_the_state(
    state: PowerState, request_type: ResetType
) -> None:
    if state in EXPECTED[request_type]:
        check_request(state, request_type)
        return
    with pytest.raises(InvalidPowerTransition) as refused:
        check_request(state, request_type)
    assert refused.value.attribute == state.value
    assert state.value in refused.value.message and request_type.value in refused.value.message
    assert "possible now:" in refused.value.message


def test_what_boots() -> None:
    assert boots(S.OFF, R.ON) and boots(S.OFF, R.FORCE_ON) and boots(S.OFF, R.PUSH_POWER_BUTTON)
    assert not boots(S.ON, R.PUSH_POWER_BUTTON)
    for request in (R.FORCE_RESTART, R.GRACEFUL_RESTART, R.POWER_CYCLE):
        assert boots(S.ON, request)
    for request in (R.FORCE_OFF, R.GRACEFUL_SHUTDOWN, R.NMI, R.PAUSE, R.RESUME):
        assert not boots(S.ON, request)


def test_causes() -> None:
    assert cause_of(R.PUSH_POWER_BUTTON) is ResetCause.POWER_BUTTON_PRESS
    assert all(cause_of(r) is ResetCause.MANAGEMENT_COMMAND
               for r in ResetType if r is not R.PUSH_POWER_BUTTON)


@pytest.mark.parametrize(("policy", "was_on", "powers_on"), [
    (PowerRestorePolicy.ON, False, True), (PowerRestorePolicy.ON, True, True),
    (PowerRestorePolicy.OFF, False, False), (PowerRestorePolicy.OFF, True, False),
    (PowerRestorePolicy.LAST, False, False), (PowerRestorePolicy.LAST, True, True),
])
def test_power_restore(policy: PowerRestorePolicy, was_on: bool, powers_on: bool) -> None:
    assert restores_power(policy, was_on) is powers_on


def test_running_states() -> None:
    assert {s for s in PowerState if is_running(s)} == {
        S.ON, S.POWERING_ON, S.PAUSED, S.POWERING_OFF}


def test_a_machine_record_moves_its_own_version_only() -> None:
    record = MachineRecord("vm1", MachineKind.QEMU)
    assert (record.state, record.last_reset_cause, record.version) == (S.OFF, None, 1)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    on = record.with_power(S.ON, ResetCause.MANAGEMENT_COMMAND, moment)
    assert (on.state, on.last_reset_cause, on.last_reset_time, on.version) == (
        S.ON, ResetCause.MANAGEMENT_COMMAND, moment, 2)
    paused = on.with_power(S.PAUSED)
    assert (paused.last_reset_cause, paused.last_reset_time, paused.version) == (
        ResetCause.MANAGEMENT_COMMAND, moment, 3)
