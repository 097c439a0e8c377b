"""The contract's attestation types (target namespace ``urn:bios-ws:vbios:v1``).

Binary values (nonces, TPM structures, digests, certificates, event logs) are
``xs:base64Binary``; times are ISO 8601 UTC strings.
"""

from __future__ import annotations

from spyne import Boolean, ComplexModel, Enum, Integer32, Integer64, Unicode
from spyne.model.binary import ByteArray

from bios_ws.soap.types import TNS, optional, repeated, required

Base64 = ByteArray

IntegrityState = Enum("Trusted", "Untrusted", type_name="IntegrityState").customize(
    __namespace__=TNS
)


class PcrIndexList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Index", repeated(Integer32))]


class PcrValue(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Index", required(Integer32)), ("Value", required(Base64))]


class PcrValueList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("PcrValue", repeated(PcrValue))]


class BankDigest(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Bank", required(Unicode)), ("Digest", required(Base64))]


class BankDigestList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("BankDigest", repeated(BankDigest))]


class MeasuredEvent(ComplexModel):  # type: ignore[misc]
    """One event of the boot event log, as the server parsed it (the guest re-parses the log)."""

    __namespace__ = TNS
    _type_info = [
        ("Index", required(Integer32)),
        ("Pcr", required(Integer32)),
        ("Type", required(Unicode)),
        ("Digests", required(BankDigestList)),
        ("DataSize", required(Integer32)),
    ]


class MeasuredEventList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("MeasuredEvent", repeated(MeasuredEvent))]


class IntegrityFinding(ComplexModel):  # type: ignore[misc]
    """Why the host is Untrusted: a PCR (absent for host-wide findings), an event, a message."""

    __namespace__ = TNS
    _type_info = [
        ("Kind", required(Unicode)),
        ("Pcr", optional(Integer32)),
        ("EventIndex", optional(Integer32)),
        ("Message", required(Unicode)),
    ]


class IntegrityFindingList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Finding", repeated(IntegrityFinding))]


class IntegrityReport(ComplexModel):  # type: ignore[misc]
    """The verdict; ``Restricted`` says whether state-changing operations are refused."""

    __namespace__ = TNS
    _type_info = [
        ("State", required(IntegrityState)),
        ("Restricted", required(Boolean)),
        ("CheckedAt", required(Unicode)),
        ("Bank", required(Unicode)),
        ("CheckedPcrs", required(PcrIndexList)),
        ("ReferenceDigest", optional(Unicode)),
        ("Findings", required(IntegrityFindingList)),
    ]


class AuditEntryInfo(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("Seq", required(Integer64)),
        ("Time", required(Unicode)),
        ("Principal", required(Unicode)),
        ("Operation", required(Unicode)),
        ("Domain", optional(Unicode)),
        ("Outcome", required(Unicode)),
    ]


class AuditEntryList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("AuditEntry", repeated(AuditEntryInfo))]
