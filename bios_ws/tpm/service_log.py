"""The service PCR's event log: what a measured launch extended into PCR 23.

A measured launch (``bios_ws.launch.sealing.launch``) resets PCR 23 and extends
it once with the service digest. It records that extend as one TCG event in a
crypto-agile log of its own (``<home>/tpm/service-events.log``, rewritten at
every launch, since the reset starts PCR 23's history afresh):

- PCR index 23, event type ``EV_EVENT_TAG`` (0x6, the PC Client type for the
  PCRs an operating system or application uses);
- event data a ``TCG_PCClientTaggedEvent``: taggedEventID ``0x7662696F``
  ("vbio" in ASCII, little-endian UINT32 like every field), taggedEventDataSize,
  then the ASCII text ``vbios service <sha256 hex of the service digest>``;
- digests: the service digest itself in the sha256 bank, and the bank's own
  hash of the service digest in every other bank (what the launch extends).

What a guest receives (``served_event_log``) is the boot log followed by these
records, re-encoded for the banks the boot log's Spec ID event declares, so a
guest replays PCR 23 with the same parser as PCRs 0-7. If PCR 23 was extended
by anything else, or reset since (``vbios tpm reboot`` without a new launch),
the replay gives another value and the guest's check fails, as it should.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path

from bios_ws.domain.eventlog import (
    SPEC_ID_SIGNATURE,
    Event,
    EventLogError,
    parse_event_log,
    parse_spec_id,
    write_event_log,
)
from bios_ws.domain.eventlog_types import EVENT_TYPES_BY_NAME, bank_name
from bios_ws.tpm.port import SEAL_BANK, SERVICE_PCR

__all__ = [
    "SERVICE_EVENT_TAG_ID",
    "SERVICE_EVENT_TYPE",
    "SERVICE_LOG_NAME",
    "read_service_log",
    "served_event_log",
    "service_event",
    "service_event_log",
    "service_event_text",
    "service_extend_digests",
]

SERVICE_LOG_NAME = "service-events.log"
SERVICE_EVENT_TYPE = EVENT_TYPES_BY_NAME["EV_EVENT_TAG"]
SERVICE_EVENT_TAG_ID = 0x7662696F  # "vbio"
_MAX_SERVICE_LOG = 64 * 1024


def service_event_text(digest: bytes) -> bytes:
    return b"vbios service " + digest.hex().encode("ascii")


def service_extend_digests(digest: bytes, banks: Sequence[str]) -> dict[str, bytes]:
    """What a launch extends into PCR 23 per bank: the digest in sha256, its hash elsewhere."""
    return {bank: digest if bank == SEAL_BANK else hashlib.new(bank, digest).digest()
            for bank in banks}


def service_event(digest: bytes, banks: Sequence[str], index: int = 1) -> Event:
    """The event recording one launch's extend of PCR 23 with the service ``digest``."""
    text = service_event_text(digest)
    data = struct.pack("<II", SERVICE_EVENT_TAG_ID, len(text)) + text
    return Event(index, SERVICE_PCR, SERVICE_EVENT_TYPE, "EV_EVENT_TAG",
                 service_extend_digests(digest, banks), data)


def service_event_log(digest: bytes, banks: Sequence[str]) -> bytes:
    """A crypto-agile log of one launch: the Spec ID event, then the service event."""
    return write_event_log([service_event(digest, banks)], banks)


def read_service_log(path: Path) -> bytes | None:
    """The recorded service log at ``path``, or None (missing, unreadable or too large)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_SERVICE_LOG + 1)
    except OSError:
        return None
    return data if len(data) <= _MAX_SERVICE_LOG else None


def served_event_log(boot_log: bytes, service_log: bytes | None) -> bytes:
    """The boot log followed by the service log's PCR 23 events.

    The boot log is returned as it is when there is nothing to add, when it is
    not crypto-agile (records of another format cannot follow), or when a
    service event lacks a digest in a bank the boot log declares: the guest's
    replay of PCR 23 then fails, which tells the truth (the log does not
    explain PCR 23) rather than a malformed log.
    """
    if not service_log:
        return boot_log
    try:
        boot = parse_event_log(boot_log)
        service = parse_event_log(service_log)
    except EventLogError:
        return boot_log
    algorithms = _spec_id_algorithms(boot[0]) if boot else None
    if algorithms is None:
        return boot_log
    records = []
    for event in service[1:]:
        if event.pcr != SERVICE_PCR or not all(bank in event.digests for bank, _ in algorithms):
            return boot_log
        records.append(_record(event, algorithms))
    return boot_log + b"".join(records)


def _spec_id_algorithms(first: Event) -> list[tuple[str, int]] | None:
    """(bank, TPM_ALG_ID) in the order a crypto-agile log's Spec ID event declares them."""
    if first.index != 0 or not first.data.startswith(SPEC_ID_SIGNATURE):
        return None
    try:
        spec = parse_spec_id(first.data)
    except EventLogError:
        return None
    return [(bank_name(alg), alg) for alg, _ in spec.algorithms]


def _record(event: Event, algorithms: Sequence[tuple[str, int]]) -> bytes:
    """One TCG_PCR_EVENT2 with the digests of ``algorithms``, in their order."""
    out = [struct.pack("<III", event.pcr, event.type, len(algorithms))]
    for bank, alg in algorithms:
        out.append(struct.pack("<H", alg) + event.digests[bank])
    out.append(struct.pack("<I", len(event.data)) + event.data)
    return b"".join(out)
