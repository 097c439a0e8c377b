"""Use cases of a domain's power: state, reset requests, the machine's own events, power
restore when the service starts.

A request runs in the domain's turn (``DomainTurns``: one at a time per domain across
the hosts sharing the store), under the machine's lock (``Platform.lock``: one request
at a time per machine, across processes), checks the request against the live state
(``bios_ws.domain.power.check_request``), asks the platform, records the
machine's power apart from its settings (``MachineRecord``, its own version)
and appends an audit entry; a refused one is audited too. Pending settings are
applied by ``MachineObserver.before_boot`` at every boot, where the domain's settings
live (``domain.boot_settings``: here, or the remote holding a routed domain's): while
the host is Untrusted (restricted mode) they stay pending, the power request itself
still works, and the answer says so. The answer's pending flag and the power restore
policy are read there too; a remote that does not answer leaves the flag set (what
was pending there still is) and the restore policy at its default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.boot_settings import BootSettings, pending_at_boot
from bios_ws.domain.hosts import check_runs_here, only_here, runs_here
from bios_ws.domain.ports import Clock, DomainTurns, UnitOfWorkFactory
from bios_ws.domain.power import (
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
from bios_ws.domain.principal import Principal, check_domain_id, is_domain_id
from bios_ws.domain.registry import Value
from bios_ws.domain.turns import ThreadTurns
from bios_ws.errors import (
    DomainNotFound,
    PlatformUnavailable,
    RemoteUnavailable,
    ServiceRestricted,
    VbiosError,
)
from bios_ws.platform.port import Platform
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import PLATFORM, BiosService, WriteGate, outcome_of
from bios_ws.service.boot_settings import LocalBootSettings
from bios_ws.service.events import power_changed
from bios_ws.service.sel import record_power

log = logging.getLogger("bios_ws.power")

RESTORE_POLICY = "AcPwrRcvry"
RESTORE_DELAY = "AcPwrRcvryDelay"


@dataclass(frozen=True)
class PowerView:
    domain_id: str
    kind: MachineKind
    state: PowerState
    last_reset_cause: ResetCause | None
    last_reset_time: datetime | None
    pending_changes: bool


@dataclass(frozen=True)
class ResetOutcome:
    """The state a request left, whether settings are still pending, and why."""

    state: PowerState
    pending_changes: bool
    message: str


class PowerService:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, platforms: Mapping[MachineKind, Platform],
        bios: BiosService, gate: WriteGate | None = None, turns: DomainTurns | None = None,
        host: str | None = None, settings: BootSettings | None = None,
    ) -> None:
        self._uow = uow
        self._settings = LocalBootSettings(bios) if settings is None else settings
        self.host = host  # the fleet host this process is: it drives only its machines
        self._clock = clock
        self._platforms = platforms
        self._bios = bios
        self._gate = gate
        self._turns = turns or ThreadTurns()

    # -- guests and admin --------------------------------------------------------

    def get_power(self, principal: Principal) -> PowerView:
        return self._view(principal.own_domain())

    def get_domain_power(self, principal: Principal, domain_id: str) -> PowerView:
        principal.require_admin()
        return self._view(check_domain_id(domain_id))

    def reset(self, principal: Principal, reset_type: ResetType) -> ResetOutcome:
        return self._request(principal, "Reset", principal.own_domain, reset_type)

    def reset_domain(self, principal: Principal, domain_id: str,
                     reset_type: ResetType) -> ResetOutcome:
        def target() -> str:
            principal.require_admin()
            return check_domain_id(domain_id)

        return self._request(principal, "ResetDomain", target, reset_type, requested=domain_id)

    def platform_request(self, domain_id: str, reset_type: ResetType, cause: ResetCause,
                         operation: str) -> ResetOutcome:
        """A power request of the platform itself, with its own cause (a wake alarm powers
        on with RTCWakeup, a watchdog restarts with Watchdog), audited as ``operation``."""
        return self._request(PLATFORM, operation, lambda: check_domain_id(domain_id),
                             reset_type, requested=domain_id, cause=cause)

    def console(self, principal: Principal, domain_id: str, limit: int = 65536) -> bytes:
        """What the domain's machine printed on its serial console (the admin's)."""
        principal.require_admin()
        record = self._record(check_domain_id(domain_id))
        return self._platform(record.kind).console(domain_id, limit=limit)

    # -- the thermal policy ------------------------------------------------------------

    def thermal_shutdown(self, domain_id: str) -> PowerState | None:
        """The thermal policy's power off (the CPU reached UpperFatal): a running machine
        is shut down gracefully (the ACPI power button; the platform turns the power off
        when the graceful timeout passes), one booting or paused is turned off at once;
        LastResetCause ``ThermalEvent`` either way, audited as the platform's doing. None
        when it was not running or already shutting down (nothing done)."""
        platform = self._platform(self._record(domain_id).kind)
        with self._turns.turn(domain_id), platform.lock(domain_id):
            before = self._live(domain_id, platform)
            if before in (PowerState.OFF, PowerState.POWERING_OFF):
                return None
            graceful = before is PowerState.ON
            platform.power_off(domain_id, ResetCause.THERMAL_EVENT, graceful=graceful)
            after = platform.status(domain_id)
            self._save_power(domain_id, after, ResetCause.THERMAL_EVENT, audit=(
                PLATFORM, "ThermalShutdown",
                {"before": before.value, "after": after.value, "graceful": graceful}))
        log.warning("domain %s: thermal shutdown (%s, now %s)", domain_id,
                    "graceful" if graceful else "hard", after.value)
        return after

    # -- service start -------------------------------------------------------------

    def restore_power(self) -> list[str]:
        """What power does when the service starts, as after an AC power loss: every
        machine not running follows its domain's AcPwrRcvry (On, Off, or Last: on if it
        was on when it lost power) after AcPwrRcvryDelay seconds. Simulated machines
        have no power without the service. A running QEMU guest is left as it is
        (re-adopted). Lines saying what was done."""
        said = []
        with self._uow() as uow:
            records = only_here(uow.machines.list(), self.host)
        for record in records:
            line = self._restore(record)
            if line:
                said.append(f"{record.domain_id}: {line}")
        return said

    def _restore(self, record: MachineRecord) -> str | None:
        platform = self._platform(record.kind)
        domain_id = record.domain_id
        with self._turns.turn(domain_id), platform.lock(domain_id):
            if record.kind is MachineKind.SIMULATED:
                platform.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)
            elif is_running(platform.status(domain_id)):
                return None
            on_when_lost = is_running(record.state)
            current = self._current(domain_id)
            policy = PowerRestorePolicy(str(current.get(RESTORE_POLICY)
                                            or PowerRestorePolicy.LAST.value))
            if not restores_power(policy, on_when_lost):
                if on_when_lost:
                    self._save_power(domain_id, PowerState.OFF)
                    return f"stays off (AcPwrRcvry {policy.value})"
                return None
            if not platform.has_firmware(domain_id):
                return "stays off: no firmware image yet (provisioning state S1)"
            delay = current.get(RESTORE_DELAY)
            seconds = float(delay) if isinstance(delay, int) and not isinstance(delay, bool) \
                else 0.0
            platform.power_on(domain_id, ResetCause.POWER_RESTORE_POLICY, delay=seconds)
            state = platform.status(domain_id)
            self._save_power(domain_id, state, ResetCause.POWER_RESTORE_POLICY, audit=(
                PLATFORM, "RestorePower",
                {"policy": policy.value, "delay": seconds, "state": state.value}))
            return f"powered on (AcPwrRcvry {policy.value}, delay {seconds:g} s)"

    # -- the one request path --------------------------------------------------------

    def _request(self, principal: Principal, operation: str, target: Callable[[], str],
                 reset_type: ResetType, requested: str | None = None,
                 cause: ResetCause | None = None) -> ResetOutcome:
        domain_id = requested if requested is not None and is_domain_id(requested) else None
        try:
            domain_id = target()
            platform = self._platform(self._record(domain_id).kind)
            with self._turns.turn(domain_id), platform.lock(domain_id):
                before = self._live(domain_id, platform)
                check_request(before, reset_type)
                will_boot = boots(before, reset_type)
                restricted = will_boot and self._restricted()
                was_pending = self._pending(domain_id)
                cause = cause_of(reset_type) if cause is None else cause
                _act(platform, domain_id, before, reset_type, cause)
                after = platform.status(domain_id)
                pending = self._pending(domain_id) if will_boot else was_pending
                resets = reset_type not in (ResetType.NMI, ResetType.PAUSE, ResetType.RESUME)
                self._save_power(domain_id, after, cause if resets else None,
                                 audit=(principal, operation, {
                                     "reset_type": reset_type.value, "before": before.value,
                                     "after": after.value}))
        except VbiosError as exc:
            self._audit_refusal(principal, operation, domain_id, outcome_of(exc), {
                "reset_type": reset_type.value})
            raise
        return ResetOutcome(after, pending,
                            _message(will_boot, restricted, was_pending, pending, after))

    def _live(self, domain_id: str, platform: Platform) -> PowerState:
        """The live state; a machine that went off without a word (its keeper killed, the
        host rebooted under it) is recorded as a crash. Under the machine's lock."""
        live = platform.status(domain_id)
        if live is PowerState.OFF and is_running(self._record(domain_id).state):
            self._save_power(domain_id, PowerState.OFF, ResetCause.CRASH, audit=(
                PLATFORM, "PowerEvent",
                {"state": PowerState.OFF.value, "cause": ResetCause.CRASH.value}))
        return live

    def _restricted(self) -> bool:
        if self._gate is None:
            return False
        try:
            self._gate()
        except ServiceRestricted:
            return True
        return False

    def _view(self, domain_id: str) -> PowerView:
        platform = self._platform(self._record(domain_id).kind)
        with platform.lock(domain_id):
            state = self._live(domain_id, platform)
        record = self._record(domain_id)
        return PowerView(domain_id, record.kind, state, record.last_reset_cause,
                         record.last_reset_time, self._pending(domain_id))

    def _pending(self, domain_id: str) -> bool:
        """Whether the domain's next boot has something to apply, where its settings
        live; True when the remote holding them does not answer (still pending there)."""
        try:
            return pending_at_boot(self._settings.state_of(domain_id))
        except RemoteUnavailable as exc:
            log.warning("domain %s: pending settings unknown: %s", domain_id, exc.message)
            return True

    def _current(self, domain_id: str) -> dict[str, Value]:
        """The domain's current values, where its settings live ({}: its remote does
        not answer, the defaults apply)."""
        try:
            return self._settings.state_of(domain_id).current
        except RemoteUnavailable as exc:
            log.warning("domain %s: restore policy unknown: %s", domain_id, exc.message)
            return {}

    def _record(self, domain_id: str) -> MachineRecord:
        """The domain's machine record; DomainElsewhere if another host runs it."""
        with self._uow() as uow:
            record = uow.machines.get(domain_id)
        check_runs_here(record, self.host)
        return record

    def here(self, domain_ids: Iterable[str]) -> set[str]:
        """Those of ``domain_ids`` whose machines this host runs."""
        wanted = set(domain_ids)
        if self.host is None or not wanted:
            return wanted
        here = set()
        with self._uow() as uow:  # by id: a few timers, not every machine of the fleet
            for domain_id in wanted:
                with suppress(DomainNotFound):  # deleted meanwhile: nothing to fire
                    if runs_here(uow.machines.get(domain_id), self.host):
                        here.add(domain_id)
        return here

    def _platform(self, kind: MachineKind) -> Platform:
        platform = self._platforms.get(kind)
        if platform is None:
            raise PlatformUnavailable(f"this service runs no {kind.value} machines")
        return platform

    def _save_power(
        self, domain_id: str, state: PowerState, cause: ResetCause | None = None, *,
        audit: tuple[Principal, str, Mapping[str, object]] | None = None,
    ) -> None:
        """Record the machine's power (and the audit entry of what did it), in one unit."""
        with self._uow() as uow:
            record = uow.machines.get(domain_id, for_update=True)
            now = self._clock()
            uow.machines.save(record.with_power(state, cause, now), record.version)
            record_power(uow, record, state, cause, now)
            power_changed(uow, domain_id, record.state, state, cause, now)
            if audit is not None:
                principal, operation, changes = audit
                uow.audit.append(_audit(now, principal, operation, domain_id, "ok", changes))
            uow.commit()

    def _audit_refusal(self, principal: Principal, operation: str, domain_id: str | None,
                       outcome: str, changes: Mapping[str, object]) -> None:
        audit_refusal(self._uow, _audit(self._clock(), principal, operation, domain_id,
                                        outcome, changes))


def _act(platform: Platform, domain_id: str, state: PowerState, request: ResetType,
         cause: ResetCause) -> None:
    """What ``request`` (for ``cause``) asks of the platform, the machine being in ``state``."""
    if request in (ResetType.ON, ResetType.FORCE_ON) or (
            request is ResetType.PUSH_POWER_BUTTON and state is PowerState.OFF):
        if state is PowerState.POWERING_OFF:
            platform.power_off(domain_id, cause, graceful=False)
        platform.power_on(domain_id, cause)
    elif request is ResetType.FORCE_OFF:
        platform.power_off(domain_id, cause, graceful=False)
    elif request in (ResetType.GRACEFUL_SHUTDOWN, ResetType.PUSH_POWER_BUTTON):
        platform.power_off(domain_id, cause, graceful=True)
    elif request is ResetType.GRACEFUL_RESTART:
        platform.restart(domain_id, cause, graceful=True)
    elif request in (ResetType.FORCE_RESTART, ResetType.POWER_CYCLE):
        platform.restart(domain_id, cause, graceful=False)
    elif request is ResetType.NMI:
        platform.nmi(domain_id)
    elif request is ResetType.PAUSE:
        platform.pause(domain_id)
    else:
        platform.resume(domain_id)


def _message(will_boot: bool, restricted: bool, was_pending: bool, pending: bool,
             after: PowerState) -> str:
    state = f"the domain is {after.value}"
    if not will_boot:
        return state
    if restricted and pending:
        return (f"{state}; pending changes stay pending: the host is in restricted mode"
                " (its measurements do not match the reference)")
    if pending:
        return f"{state}; pending changes will be applied when it boots"
    if was_pending:
        return f"{state}; pending changes were applied at this boot"
    return f"{state}; no changes were pending"



def _audit(time: datetime, principal: Principal, operation: str, domain_id: str | None,
           outcome: str, changes: Mapping[str, object]) -> AuditRecord:
    return AuditRecord(time=time, principal=str(principal), operation=operation,
                       domain_id=domain_id, outcome=outcome,
                       changes_digest=digest_changes(changes))
