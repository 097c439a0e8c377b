"""Use cases of boot-integrity attestation: measurements, quotes, status, references, diagnostics.

Guests and the admin read; only the admin sets the reference measurements.
Quotes are signed in the TPM by the attestation key; the guest verifies them
itself (``vbios_client.attestation``), so nothing here asks to be trusted.
Without a TPM (a ``--no-tpm`` development home) quotes and measurements fail
with ``AttestationUnavailable`` and the status says why.

Two event logs: the boot log (``read_log``: what the integrity verdict and the
admin's reference are taken from, PCRs 0-7) and the log guests receive with a
quote or the measurements (``read_served_log``: the boot log followed by the
service PCR's events, ``bios_ws.tpm.service_log``, so a quote over PCR 23 replays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bios_ws.domain.audit import AuditRecord, SeenEntry, digest_changes
from bios_ws.domain.eventlog import Event, EventLogError, parse_event_log
from bios_ws.domain.hosts import host_key
from bios_ws.domain.ports import Clock, UnitOfWorkFactory
from bios_ws.domain.principal import Principal
from bios_ws.domain.reference import ReferenceError, ReferenceMeasurements
from bios_ws.errors import AttestationUnavailable, InvalidRequest, VbiosError
from bios_ws.service.audit import audit_refusal, summarize_refusals
from bios_ws.service.bios import outcome_of
from bios_ws.service.integrity import (
    REFERENCE_KEY,
    EventLogReader,
    IntegrityMonitor,
    IntegrityStatus,
    TpmAccess,
    untrusted,
)
from bios_ws.tpm import port
from bios_ws.tpm.port import BOOT_PCRS, PCR_COUNT, QUOTE_BANK, Quote

BANKS = ("sha1", "sha256")
DIAGNOSTIC_AUDIT_ENTRIES = 50
MAX_REFERENCE_DESCRIPTION = 1024
NO_TPM = "this installation runs without a TPM (development only): nothing is measured"


@dataclass(frozen=True)
class BootMeasurements:
    bank: str
    pcrs: dict[int, bytes]
    event_log: bytes
    events: list[Event]


@dataclass(frozen=True)
class QuoteEvidence:
    """What a guest needs to check the host by itself."""

    quote: Quote
    ak_certificate: bytes  # DER
    event_log: bytes


@dataclass(frozen=True)
class ReferenceView:
    version: int
    updated_at: datetime
    reference: ReferenceMeasurements


@dataclass(frozen=True)
class Diagnostics:
    collected_at: datetime
    status: IntegrityStatus
    measurements: BootMeasurements | None
    unavailable: str | None  # why there are no measurements
    audit: list[SeenEntry]  # the last entries the caller may see (audit.visible_to)


def check_nonce(nonce: bytes) -> bytes:
    """The TPM port's nonce rule, refused as the caller's mistake."""
    try:
        return port.check_nonce(nonce)
    except ValueError:
        size = len(nonce) if isinstance(nonce, bytes) else "no"
        raise InvalidRequest(
            f"a nonce is {port.NONCE_MIN} to {port.NONCE_MAX} bytes, not {size}") from None


def check_selection(pcrs: Sequence[int] | None, bank: str | None) -> tuple[tuple[int, ...], str]:
    """The PCR indexes (default 0-7) and bank (default sha256) asked for, or InvalidRequest."""
    bank = bank or QUOTE_BANK
    if bank not in BANKS:
        raise InvalidRequest(f"PCR bank must be one of {', '.join(BANKS)}, not {bank!r}")
    if not pcrs:
        return BOOT_PCRS, bank
    try:
        return port.check_pcr_indexes(pcrs), bank
    except ValueError:
        raise InvalidRequest(
            f"PCR indexes must be distinct numbers from 0 to {PCR_COUNT - 1}") from None


def reference_from(event_log: bytes | None, manifest: str | None,
                   description: str | None) -> ReferenceMeasurements:
    """Exactly one of a known-good event log and a manifest, or InvalidRequest."""
    if (event_log is None) == (manifest is None):
        raise InvalidRequest("give exactly one of EventLog and Manifest")
    if description is not None and len(description) > MAX_REFERENCE_DESCRIPTION:
        raise InvalidRequest(f"a description is at most {MAX_REFERENCE_DESCRIPTION} characters")
    try:
        if event_log is not None:
            return ReferenceMeasurements.from_events(
                parse_event_log(event_log), source="event log",
                description=description or "")
        reference = ReferenceMeasurements.from_manifest(manifest or "")
        if description is not None:
            reference = ReferenceMeasurements(reference.pcrs, reference.source, description)
    except (EventLogError, ReferenceError) as exc:
        raise InvalidRequest(f"invalid reference: {exc}") from None
    return reference



class AttestationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        monitor: IntegrityMonitor | None,
        tpm_access: TpmAccess | None,
        read_log: EventLogReader,
        ak_certificate: Callable[[], bytes | None],
        read_served_log: EventLogReader | None = None,
        host: str | None = None,
    ) -> None:
        self._uow = uow
        self._reference_key = host_key(REFERENCE_KEY, host)  # the host's own reference
        self._clock = clock
        self.monitor = monitor
        self._tpm_access = tpm_access
        self._read_log = read_log
        self._read_served_log = read_served_log or read_log
        self._ak_certificate = ak_certificate

    # -- guests and admin --------------------------------------------------------

    def boot_measurements(self, principal: Principal, bank: str | None = None
                          ) -> BootMeasurements:
        _, bank = check_selection(None, bank)
        tpm_access = self._require_tpm()
        log = self._served_log()
        with tpm_access() as tpm:
            pcrs = tpm.pcr_read(range(PCR_COUNT), bank)
        try:
            events = parse_event_log(log)
        except EventLogError:
            events = []  # the raw log still goes out: the guest judges it
        return BootMeasurements(bank, pcrs, log, events)

    def quote(self, principal: Principal, nonce: bytes, pcrs: Sequence[int] | None = None,
              bank: str | None = None) -> QuoteEvidence:
        check_nonce(nonce)
        selected, bank = check_selection(pcrs, bank)
        tpm_access = self._require_tpm()
        certificate = self._ak_certificate()
        if certificate is None:
            raise AttestationUnavailable(
                "this host has no enrolled attestation key: the admin runs vbios ak enroll")
        with tpm_access() as tpm:
            quote = tpm.quote(nonce, selected, bank)
        return QuoteEvidence(quote, certificate, self._served_log())

    def integrity(self, principal: Principal) -> IntegrityStatus:
        """Measured now (an on-demand check)."""
        if self.monitor is None:
            return IntegrityStatus(untrusted("no-tpm", NO_TPM), False, self._clock())
        return self.monitor.status(force=True)

    def reference(self, principal: Principal) -> ReferenceView | None:
        with self._uow() as uow:
            record = uow.records.get(self._reference_key)
        if record is None:
            return None
        return ReferenceView(record.version, record.updated_at,
                             ReferenceMeasurements.from_manifest(record.value))

    def diagnostics(self, principal: Principal) -> Diagnostics:
        """Everything useful to find out why a host is Untrusted; allowed in restricted mode."""
        status = self.integrity(principal)
        measurements, unavailable = None, None
        try:
            measurements = self.boot_measurements(principal)
        except VbiosError as exc:
            unavailable = f"{exc.code}: {exc.message}"
        summarize_refusals(self._uow, self._clock())  # counted refusals show as counts
        with self._uow() as uow:
            if principal.domain_id is None:  # the admin sees the log as it is
                audit = [SeenEntry(e.seq, e) for e in uow.audit.recent(DIAGNOSTIC_AUDIT_ENTRIES)]
            else:  # a guest: its own and host-wide entries, numbered among themselves
                audit = uow.audit.seen_by(principal.domain_id, DIAGNOSTIC_AUDIT_ENTRIES)
        return Diagnostics(self._clock(), status, measurements, unavailable, audit)

    # -- admin -------------------------------------------------------------------

    def set_reference(
        self, principal: Principal, build: Callable[[], ReferenceMeasurements]
    ) -> tuple[int, ReferenceMeasurements, IntegrityStatus]:
        """Authorize, ``build`` the reference (it may refuse), store it (audited either way),
        then re-check: the new status comes back."""
        try:
            principal.require_admin()
            reference = build()
            changes = {"reference": reference.digest(), "source": reference.source,
                       "pcrs": list(reference.pcr_indexes)}
            with self._uow() as uow:
                record = uow.records.put(self._reference_key, reference.to_json(),
                                         self._clock())
                uow.audit.append(self._record(principal, "ok", changes))
                uow.commit()
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, outcome_of(exc), {}))
            raise
        return record.version, reference, self.integrity(principal)

    # -- helpers -----------------------------------------------------------------

    def _require_tpm(self) -> TpmAccess:
        if self._tpm_access is None:
            raise AttestationUnavailable(NO_TPM)
        return self._tpm_access

    def current_event_log(self) -> bytes:
        """The live boot event log (for the admin taking it as the reference)."""
        return self._event_log()

    def _event_log(self) -> bytes:
        return self._readable(self._read_log())

    def _served_log(self) -> bytes:
        return self._readable(self._read_served_log())

    @staticmethod
    def _readable(log: bytes | None) -> bytes:
        if log is None:
            raise AttestationUnavailable("the host's boot event log cannot be read")
        return log

    def _record(self, principal: Principal, outcome: str, changes: Mapping[str, object]
                ) -> AuditRecord:
        return AuditRecord(time=self._clock(), principal=str(principal),
                           operation="SetReferenceMeasurements", domain_id=None,
                           outcome=outcome, changes_digest=digest_changes(changes))
