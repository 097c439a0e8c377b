"""Attestation operations: boot measurements, quotes, integrity status, references, diagnostics.

Guests and the admin may call all of them except ``SetReferenceMeasurements``
(admin only); they keep working in restricted mode.
"""

from __future__ import annotations

from typing import Any

from spyne import Integer64, Service, Unicode

from bios_ws.errors import AttestationUnavailable
from bios_ws.service.attestation import AttestationService, reference_from
from bios_ws.soap import attestation_codec as out
from bios_ws.soap import attestation_types as types
from bios_ws.soap.context import Call, call_of
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import operation, optional, required


def attestation_of(call: Call) -> AttestationService:
    attestation = call.find(AttestationService)
    if attestation is None:
        raise AttestationUnavailable("attestation is not configured on this server")
    return attestation


class AttestationSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(
        optional(Unicode),
        returns=(required(Unicode), required(types.PcrValueList), required(types.Base64),
                 required(types.MeasuredEventList)),
        names=("Bank", "Pcrs", "EventLog", "Events"),
    )
    def GetBootMeasurements(ctx: Any, Bank: str | None) -> tuple[Any, ...]:
        call = call_of(ctx)
        found = attestation_of(call).boot_measurements(call.principal, Bank)
        return found.bank, out.pcr_values(found.pcrs), found.event_log, out.events(found.events)

    @operation(
        required(types.Base64),
        optional(Unicode),
        optional(types.PcrIndexList),
        returns=(required(types.Base64), required(types.Base64), required(Unicode),
                 required(types.PcrValueList), required(types.Base64), required(types.Base64)),
        names=("Attest", "Signature", "Bank", "Pcrs", "AkCertificate", "EventLog"),
    )
    def GetQuote(ctx: Any, Nonce: Any, Bank: str | None,
                 PcrSelection: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        evidence = attestation_of(call).quote(
            call.principal, out.decode_bytes(Nonce), out.decode_indexes(PcrSelection), Bank)
        quote = evidence.quote
        return (quote.attest, quote.signature, quote.bank, out.pcr_values(quote.pcrs),
                evidence.ak_certificate, evidence.event_log)

    @operation(returns=required(types.IntegrityReport), names="Status")
    def GetIntegrityStatus(ctx: Any) -> Any:
        call = call_of(ctx)
        return out.integrity_report(attestation_of(call).integrity(call.principal))

    @operation(
        returns=(optional(Integer64), optional(Unicode), optional(Unicode), optional(Unicode)),
        names=("Version", "UpdatedAt", "ReferenceDigest", "Manifest"),
    )
    def GetReferenceMeasurements(ctx: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        view = attestation_of(call).reference(call.principal)
        if view is None:
            return None, None, None, None
        return (view.version, out.iso(view.updated_at), view.reference.digest(),
                view.reference.to_json())

    @operation(
        returns=(required(Unicode), required(types.IntegrityReport), optional(Unicode),
                 optional(types.PcrValueList), optional(types.Base64),
                 optional(types.MeasuredEventList), optional(Unicode),
                 required(types.AuditEntryList)),
        names=("CollectedAt", "Status", "Bank", "Pcrs", "EventLog", "Events", "Unavailable",
               "AuditEntries"),
    )
    def CollectDiagnostics(ctx: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        found = attestation_of(call).diagnostics(call.principal)
        m = found.measurements
        return (
            out.iso(found.collected_at), out.integrity_report(found.status),
            m.bank if m else None, out.pcr_values(m.pcrs) if m else None,
            m.event_log if m else None, out.events(m.events) if m else None,
            found.unavailable, out.audit_entries(found.audit),
        )

    @operation(
        optional(types.Base64),
        optional(Unicode),
        optional(Unicode),
        returns=(required(Integer64), required(Unicode), required(types.IntegrityReport)),
        names=("Version", "ReferenceDigest", "Status"),
    )
    def SetReferenceMeasurements(
        ctx: Any, EventLog: Any, Manifest: str | None, Description: str | None
    ) -> tuple[Any, ...]:
        # admin only: from a known-good boot's event log, or from a reference manifest
        call = call_of(ctx)
        log = out.decode_bytes(EventLog) if EventLog is not None else None
        version, reference, status = attestation_of(call).set_reference(
            call.principal, lambda: reference_from(log, Manifest, Description))
        return version, reference.digest(), out.integrity_report(status)

