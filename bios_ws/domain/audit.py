"""The append-only, hash-chained audit log: entries, the chain rule, who may see what.

Each entry's hash covers its own fields and the previous entry's hash, so an
altered entry breaks its own hash and a removed one breaks the next entry's
link (or the sequence numbering).

A guest sees its own entries and host-wide ones, never another guest's (``scope_of``),
and numbers them among themselves (``SeenEntry``): the log's sequence numbers would
show, by their gaps, how much the other domains did.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bios_ws.domain.principal import guest_of, host_of

GENESIS_HASH = "0" * 64

#: The scope of an entry every guest may see (no domain id is empty).
HOST_WIDE = ""


@dataclass(frozen=True)
class AuditRecord:
    """What a use case says happened; the log numbers and chains it."""

    time: datetime
    principal: str
    operation: str
    domain_id: str | None
    outcome: str  # "ok" or "refused:<Code>" or "failed:<Code>"
    changes_digest: str


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: datetime
    principal: str
    operation: str
    domain_id: str | None
    outcome: str
    changes_digest: str
    prev_hash: str
    entry_hash: str

    @classmethod
    def chain(cls, record: AuditRecord, seq: int, prev_hash: str) -> AuditEntry:
        return cls(
            seq=seq,
            **_record_fields(record),
            prev_hash=prev_hash,
            entry_hash=_entry_hash(seq, record, prev_hash),
        )

    def record(self) -> AuditRecord:
        return AuditRecord(**_record_fields(self))


def scope_of(principal: str, domain_id: str | None) -> str:
    """Which guest may see an entry made by ``principal`` about ``domain_id``: a guest's
    entries are its own whatever domain they name (another guest's refused attempt on
    a domain stays that guest's), and so are those of a host speaking for it
    (``host:H for guest:D``: D's, as if D's guest had called); a host's own (a refused
    call, ``host:H``) are that host's, a scope no guest has; the admin's and the
    platform's are the domain's they are about, or ``HOST_WIDE`` when about none."""
    guest = guest_of(principal)
    if guest is not None:
        return guest
    if host_of(principal) is not None:
        return principal
    return domain_id if domain_id is not None else HOST_WIDE


def visible_to(domain_id: str, entry: AuditEntry) -> bool:
    """Whether the guest of ``domain_id`` may see ``entry``."""
    return scope_of(entry.principal, entry.domain_id) in (domain_id, HOST_WIDE)


@dataclass(frozen=True)
class SeenEntry:
    """An entry as one viewer sees it: ``number`` is its place among the entries that
    viewer may see (1, 2, 3 ... without gaps); for the admin, the entry's own seq."""

    number: int
    entry: AuditEntry


def _record_fields(source: AuditRecord | AuditEntry) -> dict[str, Any]:
    """The fields an entry shares with its record, taken from either."""
    return {f.name: getattr(source, f.name) for f in dataclasses.fields(AuditRecord)}


def _entry_hash(seq: int, record: AuditRecord, prev_hash: str) -> str:
    body = json.dumps(
        [
            seq,
            record.time.isoformat(),
            record.principal,
            record.operation,
            record.domain_id,
            record.outcome,
            record.changes_digest,
            prev_hash,
        ],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(body.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def verify_chain(entries: Iterable[AuditEntry]) -> ChainBreak | None:
    """Return the first entry that was altered or removed, or None if the chain holds."""
    chain = list(entries)
    prev_hash = GENESIS_HASH
    expected_seq = 1
    for position, entry in enumerate(chain):
        if entry.seq != expected_seq:
            if any(later.seq == expected_seq for later in chain[position + 1:]):
                return ChainBreak(expected_seq, f"entry {expected_seq} is out of order")
            return ChainBreak(expected_seq, f"entry {expected_seq} was removed")
        if entry.prev_hash != prev_hash:
            return ChainBreak(entry.seq, f"entry {entry.seq} does not follow its predecessor")
        if _entry_hash(entry.seq, entry.record(), prev_hash) != entry.entry_hash:
            return ChainBreak(entry.seq, f"entry {entry.seq} was altered")
        prev_hash = entry.entry_hash
        expected_seq += 1
    return None


def digest_changes(changes: Mapping[str, object]) -> str:
    """A digest of what changed; callers leave secret values out before calling."""
    body = json.dumps(changes, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
