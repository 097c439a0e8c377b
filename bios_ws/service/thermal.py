"""Thermal management of a domain: its readings, the admin's thresholds and overrides, and
the policy a BMC applies (``docs/thermal.md``).

Readings are computed when asked (``thermal``): the model is advanced from the domain's
stored record by the time that passed (``thermal_sample``), and nothing is written. The
policy runs in the serving processes every few seconds (``evaluate``): each domain's
record is advanced and saved by compare-and-set, so that when several processes evaluate
at once one of them wins each step and the others leave it. The winner audits every
crossing of a threshold, calls the ``ThermalAlerts`` hooks inside the same unit of work,
and after the commit shuts the domain down (``PowerService.thermal_shutdown``,
LastResetCause ThermalEvent) while its CPU sensor is at UpperFatal and it runs.

An admin's change (thresholds, an override) advances the record to now and keeps the
level the policy last acted on: the policy acts on it at its next period. Changes are
refused while the host is Untrusted (restricted mode); the policy never is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.hosts import check_runs_here, only_here
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.power import MachineKind, MachineRecord, PowerState, is_running
from bios_ws.domain.principal import Principal, check_domain_id, is_domain_id
from bios_ws.domain.thermal_policy import (
    SETTLED_DEGREES,
    Sensor,
    SensorOverride,
    ThermalLevel,
    ThermalRecord,
    Thresholds,
    check_override,
    sensor_named,
    settled_off,
)
from bios_ws.errors import DomainNotFound, InvalidRequest, VbiosError, VersionConflict
from bios_ws.platform.port import Platform
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import PLATFORM, BiosService, WriteGate, outcome_of
from bios_ws.service.power import PowerService
from bios_ws.service.thermal_alerts import NO_ALERTS, ThermalAlert, ThermalAlerts
from bios_ws.service.thermal_sample import (
    AmbientSource,
    Sample,
    Sampler,
    Setting,
    ThermalView,
)

log = logging.getLogger("bios_ws.thermal")

#: Seconds between two evaluations of the policy in a serving process.
DEFAULT_INTERVAL = 5.0
#: How many times an admin's change is tried again when another process saved first.
_ATTEMPTS = 5


class ThermalService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 platforms: Mapping[MachineKind, Platform], bios: BiosService,
                 power: PowerService, *, alerts: ThermalAlerts = NO_ALERTS,
                 ambient: AmbientSource = lambda: None, gate: WriteGate | None = None,
                 setting: Setting | None = None) -> None:
        """``setting``: where the thermal model reads a domain's profiles (the settings a
        boot uses, ``domain.boot_settings``: a routed domain's are its remote's); by
        default ``bios``'s."""
        self._uow = uow
        self._clock = clock
        self._power = power
        self._alerts = alerts
        self._gate = gate
        self._sampler = Sampler(platforms, bios.setting if setting is None else setting,
                                ambient)

    # -- readings -------------------------------------------------------------------

    def thermal(self, principal: Principal, domain_id: str | None = None) -> ThermalView:
        """The domain's readings now: a guest's own; the admin names the domain."""
        return self._sample(self.target(principal, domain_id)).view

    @staticmethod
    def target(principal: Principal, domain_id: str | None) -> str:
        if domain_id is None:
            return principal.own_domain()
        principal.require_admin()
        return check_domain_id(domain_id)

    def _sample(self, domain_id: str) -> Sample:
        with self._uow() as uow:
            machine = uow.machines.get(domain_id)  # DomainNotFound
            stored = uow.thermal.get(domain_id)
        check_runs_here(machine, self._power.host)  # its sensors are its host's
        return self._sampler.sample(domain_id, machine.kind, stored, self._clock(),
                                    powered_since(machine))

    # -- the admin's changes --------------------------------------------------------------

    def set_thresholds(self, principal: Principal, domain_id: str, caution: float,
                       critical: float, fatal: float, hysteresis: float | None = None
                       ) -> ThermalView:
        """The CPU sensor's thresholds, and their hysteresis (None: the one it has); refused
        (InvalidRequest naming the field) unless caution < critical < fatal, each within
        ``THRESHOLD_RANGE``, and 0 <= hysteresis <= ``MAX_HYSTERESIS``."""
        changes = {"caution": caution, "critical": critical, "fatal": fatal,
                   "hysteresis": hysteresis}

        def change(record: ThermalRecord) -> ThermalRecord:
            kept = record.thresholds.hysteresis if hysteresis is None else hysteresis
            return replace(record, thresholds=Thresholds(caution, critical, fatal, kept).check())

        return self._change(principal, "SetThermalThresholds", domain_id, change, changes)

    def override(self, principal: Principal, domain_id: str, sensor: str,
                 value: float | None, lasting: timedelta | None = None) -> ThermalView:
        """A sensor reads at least ``value`` for ``lasting`` (at most ``MAX_OVERRIDE``); with
        ``value`` None its override ends now."""
        changes = {"sensor": sensor[:32], "value": value,
                   "seconds": None if lasting is None else lasting.total_seconds()}

        def change(record: ThermalRecord) -> ThermalRecord:
            if value is None:
                if lasting is not None:
                    raise InvalidRequest("clearing an override takes no duration",
                                         attribute="DurationSeconds")
                return replace(record, overrides=record.without_override(
                    sensor_named(sensor)).overrides)
            if lasting is None:
                raise InvalidRequest("an override needs its duration",
                                     attribute="DurationSeconds")
            known = check_override(sensor, value, lasting)
            override = SensorOverride(known, float(value), record.updated_at + lasting,
                                      str(principal))
            return replace(record, overrides=record.with_override(override).overrides)

        return self._change(principal, "OverrideSensor", domain_id, change, changes)

    def _change(self, principal: Principal, operation: str, domain_id: str,
                change: Callable[[ThermalRecord], ThermalRecord],
                changes: Mapping[str, object]) -> ThermalView:
        target = domain_id if is_domain_id(domain_id) else None
        try:
            target = self.target(principal, domain_id)
            if self._gate is not None:
                self._gate()
            for _ in range(_ATTEMPTS):
                sample = self._sample(target)
                record = change(sample.record)
                with self._uow() as uow:
                    if _store(uow, sample.stored, record):
                        uow.audit.append(_audit(record.updated_at, principal, operation,
                                                target, "ok", changes))
                        uow.commit()
                        break
            else:
                raise VersionConflict(f"the thermal state of {target} kept changing; try"
                                      " again")
        except VbiosError as exc:
            audit_refusal(self._uow, _audit(self._clock(), principal, operation, target,
                                            outcome_of(exc), changes))
            raise
        return self._sample(target).view

    # -- the policy -------------------------------------------------------------------------

    def run_policy(self, min_gap: float = 0.0) -> None:
        """``evaluate``, for the periodic thread: a store that cannot be reached (or is busy
        past its timeout) is one line in the log, and the next period tries again."""
        try:
            self.evaluate(min_gap)
        except VbiosError as exc:
            log.warning("the thermal policy did not run: %s", exc.message)

    def evaluate(self, min_gap: float = 0.0) -> list[ThermalAlert]:
        """Advance and save every domain's record whose last save is at least ``min_gap``
        seconds old, audit and raise its crossings, then shut down the domains at
        UpperFatal that run. The crossings this process recorded."""
        now = self._clock()
        ambient = self._sampler.ambient()
        with self._uow() as uow:
            machines, stored = _candidates(uow, ambient, now)
        samples = []
        for machine in only_here(machines, self._power.host):
            domain_id, record = machine.domain_id, stored.get(machine.domain_id)
            if record is not None and (now - record.updated_at).total_seconds() < min_gap:
                continue
            if machine.state is PowerState.OFF and settled_off(record, ambient, now):
                continue  # nothing to advance: not read, not saved (10,000 idle domains)
            try:
                samples.append(self._sampler.sample(domain_id, machine.kind, record, now,
                                                    powered_since(machine)))
            except VbiosError as exc:
                log.warning("domain %s: no thermal reading: %s", domain_id, exc.message)
        if not samples:
            return []
        crossings, shutdowns = self._record(samples)
        for domain_id in shutdowns:
            try:
                self._power.thermal_shutdown(domain_id)
            except VbiosError as exc:
                log.error("domain %s: the thermal shutdown failed: %s", domain_id, exc.message)
        return crossings

    def _record(self, samples: list[Sample]) -> tuple[list[ThermalAlert], list[str]]:
        """Save each sample's record at the level it reached, in one unit of work."""
        crossings, shutdowns = [], []
        with self._uow() as uow:
            for sample in samples:
                view = sample.view
                record = replace(sample.record, level=view.level,
                                 overrides=sample.record.active_overrides(view.time))
                if not _store(uow, sample.stored, record):
                    continue  # another process saved this domain first: its step
                previous = ThermalLevel.NORMAL if sample.stored is None else sample.stored.level
                if record.level != previous:
                    crossings.append(self._crossing(uow, view, previous))
                if record.level is ThermalLevel.FATAL and is_running(view.power_state) \
                        and view.power_state is not PowerState.POWERING_OFF:
                    shutdowns.append(view.domain_id)
            uow.commit()
        for alert in crossings:
            (log.warning if alert.rising else log.info)("domain %s: %s", alert.domain_id,
                                                        alert.message)
        return crossings, shutdowns

    def _crossing(self, uow: UnitOfWork, view: ThermalView, previous: ThermalLevel
                  ) -> ThermalAlert:
        cpu = view.sensor(Sensor.CPU)
        thresholds = cpu.thresholds or Thresholds()
        crossed = view.level if view.level > previous else previous
        alert = ThermalAlert(view.domain_id, Sensor.CPU, cpu.reading,
                             cpu.reading > cpu.model, previous, view.level,
                             thresholds.of(crossed), view.time)
        uow.audit.append(_audit(view.time, PLATFORM, "ThermalCrossing", view.domain_id, "ok", {
            "sensor": Sensor.CPU.value, "reading": alert.reading, "model": cpu.model,
            "from": previous.label, "to": view.level.label, "threshold": alert.threshold}))
        hook = self._alerts.hook_for(alert)
        if hook is not None:
            hook(uow, alert)
        return alert


def _candidates(uow: UnitOfWork, ambient: float, now: datetime
                ) -> tuple[list[MachineRecord], dict[str, ThermalRecord]]:
    """The machines the policy may have to evaluate, by domain id, and their records: the
    powered ones, and the off ones whose record is not settled; every machine when the
    ambient alone reaches a threshold (an off machine without record is then at a level
    too). Read in one unit of work, without decoding the settled rest."""
    if not settled_off(None, ambient, now):
        return uow.machines.list(), {r.domain_id: r for r in uow.thermal.list()}
    stored = {r.domain_id: r for r in uow.thermal.unsettled(ambient, SETTLED_DEGREES)}
    machines = {m.domain_id: m for m in uow.machines.powered()}
    for domain_id in stored.keys() - machines.keys():
        with suppress(DomainNotFound):  # deleted, its record with it
            machines[domain_id] = uow.machines.get(domain_id)
    for domain_id in machines.keys() - stored.keys():
        record = uow.thermal.get(domain_id)
        if record is not None:
            stored[domain_id] = record
    return [machines[domain_id] for domain_id in sorted(machines)], stored


def _store(uow: UnitOfWork, stored: ThermalRecord | None, record: ThermalRecord) -> bool:
    """Compare-and-set: save ``record`` over ``stored`` if nobody changed it meanwhile, or add
    it as the domain's first (unless the domain went away). Either begins with a write
    (the machine's row locked), as a writing unit must on SQLite: a read snapshot upgraded
    to a write fails at once when another process writes."""
    if stored is not None:
        return uow.thermal.save(record, stored.version)
    try:
        uow.machines.get(record.domain_id, for_update=True)
    except VbiosError:
        return False
    return uow.thermal.add(record)


def _audit(time: datetime, principal: Principal, operation: str, domain_id: str | None,
           outcome: str, changes: Mapping[str, object]) -> AuditRecord:
    return AuditRecord(time=time, principal=str(principal), operation=operation,
                       domain_id=domain_id, outcome=outcome,
                       changes_digest=digest_changes(changes))


def powered_since(machine: MachineRecord) -> datetime | None:
    """When the machine last powered on, if the store says it runs."""
    return machine.last_reset_time if is_running(machine.state) else None
