"""The host's integrity: live measurements against the reference, and restricted mode.

``IntegrityMonitor`` reads the live event log and the PCRs it needs, compares
them with the reference measurements the admin set (``bios_ws.domain.integrity``)
and remembers the verdict for ``interval`` seconds. It is consulted at start,
on demand (``status(force=True)``) and before every state-changing operation
(``check_write``): an Untrusted host refuses those with ``ServiceRestricted``
while reads, attestation and diagnostics keep working. A TPM that cannot be
read counts as Untrusted (fail closed).

Every worker process has its own monitor; the state they share is the
``integrity`` host record. Only the worker that flips it (in a write-locked
unit of work) appends the audit entry, so entering and leaving restricted mode
is audited once per change, whatever the number of workers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.eventlog import EventLogError, parse_event_log
from bios_ws.domain.hosts import host_key
from bios_ws.domain.integrity import Finding, IntegrityVerdict, evaluate, needed_pcrs
from bios_ws.domain.ports import Clock, UnitOfWorkFactory
from bios_ws.domain.reference import ReferenceError, ReferenceMeasurements
from bios_ws.errors import ServiceRestricted, TpmError
from bios_ws.service.events import integrity_changed
from bios_ws.service.sel import record_restricted_mode
from bios_ws.tpm.port import QUOTE_BANK, Tpm

#: Host record keys.
REFERENCE_KEY = "reference-measurements"
INTEGRITY_KEY = "integrity"
#: The principal named in audit entries of restricted-mode changes.
MONITOR_PRINCIPAL = "vbios:integrity-monitor"
DEFAULT_CHECK_INTERVAL = 10.0

#: Opens the TPM for one use (the server holds no connection between uses).
TpmAccess = Callable[[], AbstractContextManager[Tpm]]
EventLogReader = Callable[[], bytes | None]


@dataclass(frozen=True)
class IntegrityStatus:
    """A verdict, whether writes are restricted, and when it was taken."""

    verdict: IntegrityVerdict
    restricted: bool
    checked_at: datetime

    @property
    def trusted(self) -> bool:
        return self.verdict.trusted


def load_reference(uow_factory: UnitOfWorkFactory, host: str | None
                   ) -> ReferenceMeasurements | None:
    """Host ``host``'s stored reference measurements, or None if its admin set none."""
    with uow_factory() as uow:
        record = uow.records.get(host_key(REFERENCE_KEY, host))
    if record is None:
        return None
    try:
        return ReferenceMeasurements.from_manifest(record.value)
    except ReferenceError:  # stored by us, so only a damaged store gets here
        return None


def untrusted(kind: str, message: str, bank: str = QUOTE_BANK) -> IntegrityVerdict:
    """A verdict of one host-wide finding (no TPM, unreadable TPM)."""
    return IntegrityVerdict(
        trusted=False, findings=(Finding(pcr=None, kind=kind, message=message),),
        checked_pcrs=(), bank=bank, reference_digest=None,
    )


def measure_integrity(
    reference: ReferenceMeasurements | None, tpm_access: TpmAccess, read_log: EventLogReader,
    bank: str = QUOTE_BANK,
) -> IntegrityVerdict:
    """Read what ``reference`` needs from the live log and the TPM, and judge it."""
    log = read_log()
    try:
        events = parse_event_log(log) if log is not None else []
    except EventLogError:
        events = []  # evaluate() reports the malformed log itself
    pcrs = needed_pcrs(reference, events)
    live: dict[str, dict[int, bytes]] = {bank: {}}
    if pcrs:
        try:
            with tpm_access() as tpm:
                live[bank] = tpm.pcr_read(pcrs, bank)
        except TpmError as exc:
            return untrusted("tpm-unavailable", f"the TPM could not be read: {exc.message}", bank)
    return evaluate(reference, log, live, bank)


class IntegrityMonitor:
    """See the module docstring. Thread-safe; one per worker process."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        tpm_access: TpmAccess,
        read_log: EventLogReader,
        clock: Clock,
        interval: float = DEFAULT_CHECK_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
        host: str | None = None,
    ) -> None:
        if not interval >= 0:
            raise ValueError("the integrity check interval must be >= 0 seconds")
        self._uow = uow
        self.host = host  # the fleet host whose integrity this is (its own records)
        self._key = host_key(INTEGRITY_KEY, host)
        self._tpm_access = tpm_access
        self._read_log = read_log
        self._clock = clock
        self.interval = interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last: IntegrityStatus | None = None
        self._last_at = 0.0

    def status(self, *, force: bool = False) -> IntegrityStatus:
        """The verdict, measured now if ``force`` or older than the interval."""
        with self._lock:
            now = self._monotonic()
            if force or self._last is None or now - self._last_at >= self.interval:
                verdict = measure_integrity(load_reference(self._uow, self.host), self._tpm_access,
                                            self._read_log)
                checked_at = self._clock()
                self._record(verdict, checked_at)
                self._last = IntegrityStatus(verdict, not verdict.trusted, checked_at)
                self._last_at = now
            return self._last

    def check_write(self) -> None:
        """ServiceRestricted unless the host is Trusted (re-measured at most once per interval)."""
        status = self.status()
        if status.restricted:
            raise ServiceRestricted(
                "the host is in restricted mode: its measurements do not match the reference"
                f" ({status.verdict.summary()}); state-changing operations are refused")

    def _record(self, verdict: IntegrityVerdict, now: datetime) -> None:
        """Store a changed verdict and audit the change, once across all workers."""
        with self._uow() as uow:
            stored = uow.records.get(self._key)
            if stored is not None and _stored_trusted(stored.value) == verdict.trusted:
                return
        with self._uow() as uow:
            stored = uow.records.get(self._key, for_update=True)
            previous = _stored_trusted(stored.value) if stored is not None else None
            if previous == verdict.trusted:
                return  # another worker recorded the same change meanwhile
            uow.records.put(self._key, json.dumps({
                "trusted": verdict.trusted, "since": now.isoformat(),
                "summary": verdict.summary()[:2000],
            }, sort_keys=True), now)
            if previous is not None or not verdict.trusted:
                operation = "LeaveRestrictedMode" if verdict.trusted else "EnterRestrictedMode"
                record_restricted_mode(uow, not verdict.trusted, verdict.summary(), now, self.host)
                uow.audit.append(AuditRecord(
                    time=now, principal=MONITOR_PRINCIPAL, operation=operation, domain_id=None,
                    outcome="ok", changes_digest=digest_changes(verdict.to_dict()),
                ))
                integrity_changed(uow, verdict.trusted, verdict.summary(), now)
            uow.commit()


def _stored_trusted(value: str) -> bool | None:
    try:
        trusted = json.loads(value).get("trusted")
    except (ValueError, AttributeError):
        return None
    return trusted if isinstance(trusted, bool) else None
