"""Records of the attestation types for the response encoder, built from the use cases' values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import SimpleNamespace as Out
from typing import Any

from bios_ws.domain.audit import SeenEntry
from bios_ws.domain.eventlog import Event
from bios_ws.errors import InvalidRequest
from bios_ws.service.integrity import IntegrityStatus


def decode_bytes(value: Any) -> bytes:
    """Spyne hands base64Binary over as a sequence of byte chunks."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, bytes) for v in value):
        return b"".join(value)
    raise InvalidRequest("a binary value is not base64")


def decode_indexes(wrapper: Any) -> list[int]:
    if wrapper is None:
        return []
    return [int(i) for i in (getattr(wrapper, "Index", None) or [])]


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pcr_values(values: Mapping[int, bytes]) -> Any:
    return Out(PcrValue=[Out(Index=i, Value=v) for i, v in sorted(values.items())])


def events(items: Iterable[Event]) -> Any:
    return Out(MeasuredEvent=[
        Out(Index=e.index, Pcr=e.pcr, Type=e.type_name, DataSize=len(e.data),
            Digests=Out(BankDigest=[Out(Bank=b, Digest=d) for b, d in sorted(e.digests.items())]))
        for e in items
    ])


def integrity_report(status: IntegrityStatus) -> Any:
    verdict = status.verdict
    return Out(
        State="Trusted" if verdict.trusted else "Untrusted",
        Restricted=status.restricted,
        CheckedAt=iso(status.checked_at),
        Bank=verdict.bank,
        CheckedPcrs=Out(Index=list(verdict.checked_pcrs)),
        ReferenceDigest=verdict.reference_digest,
        Findings=Out(Finding=[
            Out(Kind=f.kind, Pcr=f.pcr, EventIndex=f.event_index, Message=f.message)
            for f in verdict.findings
        ]),
    )


def audit_entries(entries: Sequence[SeenEntry]) -> Any:
    """``Seq`` is the entry's number as the caller sees the log (``SeenEntry``): a guest's
    count its own and host-wide entries only, so their gaps show nothing of others."""
    return Out(AuditEntry=[
        Out(Seq=s.number, Time=iso(s.entry.time), Principal=s.entry.principal,
            Operation=s.entry.operation, Domain=s.entry.domain_id, Outcome=s.entry.outcome)
        for s in entries
    ])
