"""Power of a domain's machine: states, requests, causes, and which request fits which state.

Names follow Redfish (``ComputerSystem.PowerState``, ``ResetType``,
``LastResetCause``). ``check_request`` is the one rule for what a request may
do in a state: anything else is refused with ``InvalidPowerTransition`` naming
the state, never ignored. ``restores_power`` is the AC power recovery rule the
registry's ``AcPwrRcvry`` attribute selects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from bios_ws.domain.firmware import SecureBootCurrent
from bios_ws.errors import InvalidPowerTransition


class MachineKind(StrEnum):
    """What a domain's machine is: simulated (no process) or a real QEMU + OVMF guest."""

    SIMULATED = "simulated"
    QEMU = "qemu"


class PowerState(StrEnum):
    ON = "On"
    OFF = "Off"
    POWERING_ON = "PoweringOn"
    POWERING_OFF = "PoweringOff"
    PAUSED = "Paused"


class ResetType(StrEnum):
    ON = "On"
    FORCE_ON = "ForceOn"
    FORCE_OFF = "ForceOff"
    GRACEFUL_SHUTDOWN = "GracefulShutdown"
    GRACEFUL_RESTART = "GracefulRestart"
    FORCE_RESTART = "ForceRestart"
    POWER_CYCLE = "PowerCycle"
    PUSH_POWER_BUTTON = "PushPowerButton"
    NMI = "Nmi"
    PAUSE = "Pause"
    RESUME = "Resume"


class ResetCause(StrEnum):
    """Why the machine last powered on, off or reset."""

    MANAGEMENT_COMMAND = "ManagementCommand"
    POWER_BUTTON_PRESS = "PowerButtonPress"
    GUEST_SHUTDOWN = "GuestShutdown"
    GUEST_RESET = "GuestReset"
    POWER_RESTORE_POLICY = "PowerRestorePolicy"
    CRASH = "Crash"
    WATCHDOG = "Watchdog"
    RTC_WAKEUP = "RTCWakeup"
    #: The thermal policy turned the machine off (its CPU reached UpperFatal).
    THERMAL_EVENT = "ThermalEvent"


_RUNNING = frozenset({PowerState.ON, PowerState.POWERING_ON, PowerState.PAUSED})

#: The states each request makes sense in.
ALLOWED: dict[ResetType, frozenset[PowerState]] = {
    ResetType.ON: frozenset({PowerState.OFF}),
    ResetType.FORCE_ON: frozenset({PowerState.OFF, PowerState.POWERING_OFF}),
    ResetType.FORCE_OFF: frozenset({*_RUNNING, PowerState.POWERING_OFF}),
    ResetType.GRACEFUL_SHUTDOWN: frozenset({PowerState.ON}),
    ResetType.GRACEFUL_RESTART: frozenset({PowerState.ON}),
    ResetType.FORCE_RESTART: _RUNNING,
    ResetType.POWER_CYCLE: _RUNNING,
    ResetType.PUSH_POWER_BUTTON: frozenset({PowerState.OFF, PowerState.ON}),
    ResetType.NMI: frozenset({PowerState.ON}),
    ResetType.PAUSE: frozenset({PowerState.ON}),
    ResetType.RESUME: frozenset({PowerState.PAUSED}),
}


def check_request(state: PowerState, request: ResetType) -> None:
    """Refuse ``request`` in ``state`` unless it makes sense there."""
    if state not in ALLOWED[request]:
        fitting = ", ".join(sorted(ResetType(r).value for r, states in ALLOWED.items()
                                   if state in states))
        raise InvalidPowerTransition(
            f"{request.value} makes no sense while the domain is {state.value}"
            f" (possible now: {fitting})", attribute=state.value)


def boots(state: PowerState, request: ResetType) -> bool:
    """Whether ``request`` in ``state`` ends with the machine booting (pending values apply)."""
    if request in (ResetType.ON, ResetType.FORCE_ON):
        return True
    if request is ResetType.PUSH_POWER_BUTTON:
        return state is PowerState.OFF
    return request in (ResetType.FORCE_RESTART, ResetType.GRACEFUL_RESTART,
                       ResetType.POWER_CYCLE)


def cause_of(request: ResetType) -> ResetCause:
    """The reset cause a request leaves on record."""
    if request is ResetType.PUSH_POWER_BUTTON:
        return ResetCause.POWER_BUTTON_PRESS
    return ResetCause.MANAGEMENT_COMMAND


class PowerRestorePolicy(StrEnum):
    """``AcPwrRcvry``: what a machine does when power returns after a loss."""

    ON = "On"
    OFF = "Off"
    LAST = "Last"


def restores_power(policy: PowerRestorePolicy, on_when_lost: bool) -> bool:
    """Whether a machine powers on when power returns; ``on_when_lost``: it was running."""
    if policy is PowerRestorePolicy.ON:
        return True
    if policy is PowerRestorePolicy.OFF:
        return False
    return on_when_lost


def is_running(state: PowerState) -> bool:
    """On, on its way, or paused: the machine holds its power."""
    return state in _RUNNING or state is PowerState.POWERING_OFF


@dataclass(frozen=True)
class MachineRecord:
    """What the store keeps of a domain's machine: its kind and its power, apart from the
    domain's settings (its own version: a power change never moves the settings')."""

    domain_id: str
    kind: MachineKind
    state: PowerState = PowerState.OFF
    last_reset_cause: ResetCause | None = None
    last_reset_time: datetime | None = None
    version: int = 1
    #: The boot option written as the firmware's BootNext at the last boot, until the
    #: firmware is seen to have consumed it.
    delivered_boot_next: str | None = None
    #: Whether the firmware enforced Secure Boot at the current or last boot.
    secure_boot_current: SecureBootCurrent = SecureBootCurrent.UNKNOWN
    #: The host that runs the machine (``domain.hosts``); None: no host yet (an old store).
    host: str | None = None

    def with_boot(self, delivered_boot_next: str | None,
                  secure_boot_current: SecureBootCurrent) -> MachineRecord:
        """This record once the machine booted with these firmware facts."""
        return replace(self, delivered_boot_next=delivered_boot_next,
                       secure_boot_current=secure_boot_current, version=self.version + 1)

    def with_power(self, state: PowerState, cause: ResetCause | None = None,
                   time: datetime | None = None) -> MachineRecord:
        """This record once the machine is in ``state``; with ``cause`` it was a reset
        (power on, off or restart) at ``time``."""
        if cause is None or time is None:
            return replace(self, state=state, version=self.version + 1)
        return replace(self, state=state, last_reset_cause=cause, last_reset_time=time,
                       version=self.version + 1)
