"""The shared parts every capability's use case is built from (``Wiring``), and how the
use cases reach the host's TPM (``TpmParts``): the inputs of ``bios_ws.capabilities``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from bios_ws.domain.boot_settings import BootSettings
from bios_ws.domain.events import EventRetention
from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.ports import Clock, DomainTurns, UnitOfWorkFactory
from bios_ws.domain.power import MachineKind
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.platform.host_sensors import hwmon_ambient
from bios_ws.platform.port import Platform
from bios_ws.service.bios import WriteGate
from bios_ws.service.credentials import DEFAULT_GUEST_VALIDITY, Issuer
from bios_ws.service.firmware_upload import TransferKey
from bios_ws.service.integrity import EventLogReader, IntegrityMonitor, TpmAccess
from bios_ws.service.thermal_alerts import ThermalAlerts
from bios_ws.service.thermal_records import RECORDED_ALERTS
from bios_ws.service.thermal_sample import AmbientSource
from bios_ws.service.use_cases import UseCases


@dataclass(frozen=True)
class TpmParts:
    """How the use cases reach the host's TPM (absent for a home without TPM)."""

    access: TpmAccess
    monitor: IntegrityMonitor
    read_log: EventLogReader
    ak_certificate: Callable[[], bytes | None]
    #: The log guests receive: the boot log and the service PCR's events (default: read_log).
    read_served_log: EventLogReader | None = None


@dataclass(frozen=True)
class Wiring:
    """The shared parts a capability's use case is built from."""

    uow: UnitOfWorkFactory
    registry: AttributeRegistry
    clock: Clock
    tpm: TpmParts | None
    #: The machines, by kind (their hooks call back into the settings use case).
    platforms: Mapping[MachineKind, Platform]
    #: The installation's default Secure Boot keys (read on first use).
    default_keys: Callable[[], KeyDatabases]
    #: The use cases of the capabilities registered before this one.
    built: UseCases
    #: The installation's CA (called when needed: it may unseal the CA key).
    issuer: Callable[[], Issuer]
    #: How long the guest certificates it issues are valid.
    guest_validity: timedelta = DEFAULT_GUEST_VALIDITY
    #: The static transfer key of encrypted uploads (None: this process has none).
    transfer_key: Callable[[], TransferKey] | None = None
    #: What the thermal policy raises beside its audit entries (events, SEL entries).
    thermal_alerts: ThermalAlerts = RECORDED_ALERTS
    #: The host's ambient temperature (its hwmon sensors), or None.
    ambient: AmbientSource = hwmon_ambient
    #: How long events are kept.
    event_retention: EventRetention = dataclasses.field(default_factory=EventRetention)
    #: Each domain's turn for long operations (the store's: fleet-wide on PostgreSQL).
    turns: DomainTurns | None = None
    #: The fleet host this process is (``domain.hosts``); None: no fleet host (tests).
    host: str | None = None
    #: Where a boot's settings come from (``domain.boot_settings``); None: this store's.
    boot_settings: BootSettings | None = None

    @property
    def gate(self) -> WriteGate | None:
        """Refuses state changes while the host is Untrusted (restricted mode)."""
        return None if self.tpm is None else self.tpm.monitor.check_write
