"""What the host says about its own integrity: status, measurements, references, diagnostics.

These are the server's word. ``BiosClient.attest`` does not rely on them: it
checks a TPM quote by itself (``vbios_client.attestation``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IntegrityFinding:
    kind: str
    message: str
    pcr: int | None = None
    event_index: int | None = None


@dataclass(frozen=True)
class IntegrityStatus:
    """Trusted, or Untrusted with findings; ``restricted``: the host refuses state changes."""

    trusted: bool
    restricted: bool
    checked_at: str
    bank: str
    checked_pcrs: tuple[int, ...]
    reference_digest: str | None
    findings: tuple[IntegrityFinding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": "Trusted" if self.trusted else "Untrusted",
            "restricted": self.restricted,
            "checked_at": self.checked_at,
            "bank": self.bank,
            "checked_pcrs": list(self.checked_pcrs),
            "reference_digest": self.reference_digest,
            "findings": [
                {"kind": f.kind, "pcr": f.pcr, "event_index": f.event_index,
                 "message": f.message}
                for f in self.findings
            ],
        }


@dataclass(frozen=True)
class MeasuredEvent:
    index: int
    pcr: int
    type: str
    digests: dict[str, bytes]
    data_size: int


@dataclass(frozen=True)
class BootMeasurements:
    bank: str
    pcrs: dict[int, bytes]
    event_log: bytes
    events: tuple[MeasuredEvent, ...]


@dataclass(frozen=True)
class ReferenceMeasurements:
    """The admin's reference as a manifest (JSON text, see docs/reference-manifest.md)."""

    version: int
    updated_at: str
    digest: str
    manifest: str


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry of ``collect_diagnostics``. For a guest, ``seq`` numbers the entries
    that guest may see (its own and host-wide ones) without gaps; the admin gets the log's
    own sequence numbers. ``outcome`` is ``ok``, ``refused:<Code>``, ``failed:<Code>``, or
    ``summarized:<count>`` for an entry that counts refusals beyond the audit log's limit."""

    seq: int
    time: str
    principal: str
    operation: str
    domain: str | None
    outcome: str


@dataclass(frozen=True)
class Diagnostics:
    collected_at: str
    status: IntegrityStatus
    measurements: BootMeasurements | None
    unavailable: str | None
    audit_entries: tuple[AuditEntry, ...]


# -- from the wire ---------------------------------------------------------------


def _items(wrapper: Any, name: str) -> list[Any]:
    return list(getattr(wrapper, name, None) or []) if wrapper is not None else []


def pcr_values(wrapper: Any) -> dict[int, bytes]:
    return {int(item.Index): bytes(item.Value) for item in _items(wrapper, "PcrValue")}


def integrity_status(wire: Any) -> IntegrityStatus:
    return IntegrityStatus(
        trusted=str(wire.State) == "Trusted",
        restricted=bool(wire.Restricted),
        checked_at=str(wire.CheckedAt),
        bank=str(wire.Bank),
        checked_pcrs=tuple(int(i) for i in _items(wire.CheckedPcrs, "Index")),
        reference_digest=wire.ReferenceDigest,
        findings=tuple(
            IntegrityFinding(str(f.Kind), str(f.Message), f.Pcr, f.EventIndex)
            for f in _items(wire.Findings, "Finding")
        ),
    )


def measured_events(wrapper: Any) -> tuple[MeasuredEvent, ...]:
    return tuple(
        MeasuredEvent(
            int(e.Index), int(e.Pcr), str(e.Type),
            {str(d.Bank): bytes(d.Digest) for d in _items(e.Digests, "BankDigest")},
            int(e.DataSize),
        )
        for e in _items(wrapper, "MeasuredEvent")
    )


def boot_measurements(wire: Any) -> BootMeasurements:
    return BootMeasurements(str(wire.Bank), pcr_values(wire.Pcrs), bytes(wire.EventLog),
                            measured_events(wire.Events))


def reference(wire: Any) -> ReferenceMeasurements | None:
    if wire.Version is None:
        return None
    return ReferenceMeasurements(int(wire.Version), str(wire.UpdatedAt),
                                 str(wire.ReferenceDigest), str(wire.Manifest))


def diagnostics(wire: Any) -> Diagnostics:
    measurements = None
    if wire.Bank is not None and wire.EventLog is not None:
        measurements = BootMeasurements(str(wire.Bank), pcr_values(wire.Pcrs),
                                        bytes(wire.EventLog), measured_events(wire.Events))
    return Diagnostics(
        collected_at=str(wire.CollectedAt),
        status=integrity_status(wire.Status),
        measurements=measurements,
        unavailable=wire.Unavailable,
        audit_entries=tuple(
            AuditEntry(int(a.Seq), str(a.Time), str(a.Principal), str(a.Operation),
                       a.Domain, str(a.Outcome))
            for a in _items(wire.AuditEntries, "AuditEntry")
        ),
    )
