"""What happens at every boot of a domain's machine, and after each run: the hooks every
machine calls back (``MachineObserver.hooks``).

Before a boot: pending settings are applied where the domain's settings live
(``domain.boot_settings``: this installation's ``BiosService.apply_pending``, or the
remote holding a routed domain's settings; kept pending in restricted mode); then the
plan of the boot is made from the state that answers
(``bios_ws.domain.firmware_plan``) and what the firmware gets is
recorded on the machine (the BootNext it was given, whether it enforces Secure
Boot), and which firmware slot it boots (``bios_ws.service.firmware_boot``: a staged
update is tried there). After a run: a BootNext the firmware consumed is gone from the domain.
When a machine changes state on its own, the event is recorded with its cause.
Each is audited as the platform's doing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.boot_settings import BootSettings
from bios_ws.domain.firmware import (
    BootPlan,
    FirmwareState,
    KeyDatabases,
    SecureBootCurrent,
    enforcing,
)
from bios_ws.domain.firmware_plan import plan_boot
from bios_ws.domain.ports import Clock, UnitOfWorkFactory
from bios_ws.domain.power import MachineKind, MachineRecord, ResetCause
from bios_ws.errors import RemoteUnavailable, StoreUnavailable
from bios_ws.platform.port import MachineEvent, MachineHooks
from bios_ws.service.bios import PLATFORM, BiosService
from bios_ws.service.boot_settings import LocalBootSettings
from bios_ws.service.events import power_changed
from bios_ws.service.firmware_boot import FirmwareBoot
from bios_ws.service.sel import record_power
from bios_ws.service.smbios import read_smbios

log = logging.getLogger("bios_ws.power")


class MachineObserver:
    def __init__(self, uow: UnitOfWorkFactory, bios: BiosService, clock: Clock,
                 default_keys: Callable[[], KeyDatabases],
                 *, all_cores: int = 1, settings: BootSettings | None = None) -> None:
        self._uow = uow
        self._bios = bios
        #: Where each domain's settings come from (``RoutedBootSettings`` when served).
        self.settings = LocalBootSettings(bios) if settings is None else settings
        self._clock = clock
        self._default_keys = default_keys
        self._all_cores = all_cores
        self.firmware = FirmwareBoot(uow, clock, bios.gate)

    def hooks(self) -> MachineHooks:
        return MachineHooks(before_boot=self.before_boot, on_event=self.on_event,
                            after_run=self.after_run, after_trial=self.firmware.after_trial)

    def before_boot(self, domain_id: str, cause: ResetCause) -> BootPlan | None:
        """Apply pending settings, then plan the boot. A machine boots even when the store
        or the remote holding its settings cannot be reached (a firmware boots with what
        it has): the values stay pending, the firmware keeps its last image, and it is
        logged."""
        try:
            with self._uow() as uow:
                kind = uow.machines.get(domain_id).kind
            real = kind is not MachineKind.SIMULATED
            state = self.settings.at_boot(domain_id, cause, consume_boot_next=not real)
            slot = self.firmware.plan_slot(domain_id)
            plan = dataclasses.replace(
                plan_boot(state, self._bios.registry_in_force(), self._default_keys(),
                          all_cores=self._all_cores),
                slot=slot, smbios=read_smbios(self._uow, self._clock, domain_id, slot))
            image = plan.firmware
            current = (SecureBootCurrent.ENABLED
                       if enforcing(image.secure_boot_enable, image.keys)
                       else SecureBootCurrent.DISABLED)
            self._update_machine(domain_id, lambda record: record.with_boot(
                state.boot_next if real else None, current))
        except (StoreUnavailable, RemoteUnavailable) as exc:
            log.warning("domain %s boots without its pending settings: %s", domain_id,
                        exc.message)
            return None
        return plan

    def after_run(self, domain_id: str, state: FirmwareState) -> None:
        """What the firmware's store holds after a run: a BootNext it consumed is gone."""
        with self._uow() as uow:
            delivered = uow.machines.get(domain_id).delivered_boot_next
        if delivered is not None and state.boot_next is None:
            try:
                self.settings.boot_next_consumed(domain_id, delivered)
            except RemoteUnavailable as exc:  # told after the next run (still delivered)
                log.warning("domain %s: the BootNext its firmware consumed stays set: %s",
                            domain_id, exc.message)
                return
            self._update_machine(domain_id, lambda record: record.with_boot(
                None, record.secure_boot_current))

    def on_event(self, domain_id: str, event: MachineEvent) -> None:
        with self._uow() as uow:
            record = uow.machines.get(domain_id, for_update=True)
            uow.machines.save(record.with_power(event.state, event.cause, event.time),
                              record.version)
            record_power(uow, record, event.state, event.cause, event.time)
            power_changed(uow, domain_id, record.state, event.state, event.cause, event.time)
            uow.audit.append(audit_record(event.time, "PowerEvent", domain_id, {
                "state": event.state.value, "cause": event.cause.value}))
            uow.commit()

    def _update_machine(self, domain_id: str,
                        change: Callable[[MachineRecord], MachineRecord]) -> None:
        with self._uow() as uow:
            record = uow.machines.get(domain_id, for_update=True)
            uow.machines.save(change(record), record.version)
            uow.commit()


def audit_record(time: datetime, operation: str, domain_id: str,
                 changes: Mapping[str, object]) -> AuditRecord:
    """An audit entry of the platform's own doing."""
    return AuditRecord(time=time, principal=str(PLATFORM), operation=operation,
                       domain_id=domain_id, outcome="ok", changes_digest=digest_changes(changes))
