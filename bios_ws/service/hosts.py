"""The hosts of a fleet sharing one store (``domain.hosts``): registering this one, listing
them.

A home registers at `vbios init` and again (its start recorded) each time its server
starts: a name registered by another home (another CA) is refused, so two installations
never act as one host. The first host a store ever has claims what was there before
hosts existed: every machine, and the host-wide records (the integrity verdict, the
reference measurements) the store kept unscoped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.hosts import HostEntry, check_host_name, host_key
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.principal import Principal
from bios_ws.errors import AdminError
from bios_ws.service.delegates import is_delegate
from bios_ws.service.integrity import INTEGRITY_KEY, REFERENCE_KEY

#: The host-wide records a store kept before hosts, claimed by its first host.
_HOST_OWN_KEYS = (INTEGRITY_KEY, REFERENCE_KEY)


@dataclass(frozen=True)
class HostSummary:
    entry: HostEntry
    #: How many domains' machines it runs.
    domains: int


class HostService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def register(self, principal: Principal, name: str, ca_fingerprint: str, tpm: str, *,
                 starting: bool = False) -> str | None:
        """Register this home as host ``name`` (or, already registered by this same CA,
        record that its server is ``starting``); AdminError if another home holds the
        name. A line saying what was done for the admin, or None."""
        principal.require_admin()
        check_host_name(name)
        now = self._clock()
        with self._uow() as uow:
            uow.begin_writing()
            known = uow.hosts.get(name)
            if known is not None:
                if known.ca_fingerprint != ca_fingerprint:
                    raise AdminError(
                        f"host name {name} is registered in this store by another installation"
                        f" (its CA is SHA-256 {known.ca_fingerprint[:16]}...): give this home"
                        " its own name (vbios init --host-name NAME)")
                if not starting:
                    return None
                uow.hosts.started(name, now)
                uow.commit()
                return None
            if is_delegate(uow, name):
                raise AdminError(delegate_message(name))
            first = not uow.hosts.list()
            uow.hosts.add(HostEntry(name, ca_fingerprint, tpm, now, now if starting else None))
            claimed = _claim_the_past(uow, name) if first else 0
            uow.audit.append(AuditRecord(now, str(principal), "RegisterHost", None, "ok",
                                         digest_changes({"host": name, "tpm": tpm,
                                                         "ca_sha256": ca_fingerprint,
                                                         "claimed": claimed})))
            uow.commit()
        if claimed:
            return f"registered as host {name}; it runs the {claimed} domains already here"
        return f"registered as host {name}"

    def list(self, principal: Principal) -> list[HostSummary]:
        principal.require_admin()
        with self._uow() as uow:
            entries = uow.hosts.list()
            counts = Counter(record.host for record in uow.machines.list())
        return [HostSummary(entry, counts[entry.name]) for entry in entries]


def delegate_message(name: str) -> str:
    return (f"host name {name} is a delegate host of this installation (vbios host list):"
            " give this home its own name (vbios init --host-name NAME)")


def _claim_the_past(uow: UnitOfWork, name: str) -> int:
    """The first host takes the machines and the host records of a store from before hosts."""
    for key in _HOST_OWN_KEYS:
        old = uow.records.get(key)
        if old is not None and uow.records.get(host_key(key, name)) is None:
            uow.records.put(host_key(key, name), old.value, old.updated_at)
    return uow.hosts.claim_unassigned(name)
