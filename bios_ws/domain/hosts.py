"""Hosts: the installations sharing one state store, and which one runs each machine.

A host is one home (``vbios init``): its own TPM, CA and server, registered in the
store under a name unique in it, with the SHA-256 fingerprint of its CA certificate as
its proof of identity (a second home may not take a registered name). Each domain's
machine is assigned to one host (``MachineRecord.host``): only that host drives the
machine (power, firmware apply, thermal readings, wake alarms) and serves the domain's
guest, since the guest's certificate and the machine's files are that host's. The
state itself (settings, boot order, credentials, audit) is the fleet's, in the store.

The records that are a host's own (its integrity verdict, its reference measurements)
are kept under the host's name (``host_key``).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from bios_ws.errors import AccessDenied, AdminError, DomainElsewhere

MAX_HOST_NAME = 40
_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,38}[a-z0-9])?")
#: The fingerprint recorded for a host is the lower-case hex SHA-256 of its CA's DER.
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def is_host_name(name: str) -> bool:
    """Whether ``name`` can name a host (``check_host_name`` would accept it)."""
    return isinstance(name, str) and _HOST_NAME.fullmatch(name) is not None


def check_host_name(name: str) -> str:
    """``name`` if it can name a host: 1 to 40 of a-z, 0-9, '.', '-', starting and
    ending with a letter or digit (a DNS label's alphabet); else AdminError."""
    if not is_host_name(name):
        raise AdminError(f"invalid host name {name!r}: 1 to {MAX_HOST_NAME} characters of"
                         " a-z, 0-9, '.' and '-', starting and ending with a letter or digit")
    return name


def default_host_name(machine_name: str) -> str:
    """A host name made from the machine's name (``socket.gethostname()``): lower case,
    other characters dropped; ``localhost`` if nothing valid is left."""
    kept = "".join(c for c in machine_name.lower() if c.isascii() and (c.isalnum() or c in ".-"))
    kept = kept[:MAX_HOST_NAME].strip(".-")
    return kept if _HOST_NAME.fullmatch(kept) else "localhost"


def host_key(key: str, host: str | None) -> str:
    """The key of a host's own record (``None``: a process that is no fleet host, e.g. a
    test's in-memory service, keeps the unscoped key)."""
    return key if host is None else f"{key}@{host}"


@dataclass(frozen=True)
class HostEntry:
    """One registered host."""

    name: str
    ca_fingerprint: str
    #: The home's TPM setting ("dev", a TCTI, or "none"): shown, not trusted.
    tpm: str
    registered_at: datetime
    started_at: datetime | None = None

    def __post_init__(self) -> None:
        check_host_name(self.name)
        if _FINGERPRINT.fullmatch(self.ca_fingerprint) is None:
            raise AdminError("a host's CA fingerprint is a lower-case hex SHA-256")


class HostRegistry(abc.ABC):
    """The hosts registered in the store."""

    @abc.abstractmethod
    def get(self, name: str) -> HostEntry | None: ...

    @abc.abstractmethod
    def list(self) -> list[HostEntry]:
        """Every host, by name."""

    @abc.abstractmethod
    def add(self, entry: HostEntry) -> None:
        """Register a new host (the caller checked that the name is free)."""

    @abc.abstractmethod
    def started(self, name: str, at: datetime) -> None:
        """Record that the host's server started at ``at``."""

    @abc.abstractmethod
    def claim_unassigned(self, name: str) -> int:
        """Assign every machine that has no host (a store from before hosts) to ``name``;
        how many."""


class Placed(Protocol):
    @property
    def domain_id(self) -> str: ...

    @property
    def host(self) -> str | None: ...


def runs_here(record: Placed, here: str | None) -> bool:
    """Whether the process of host ``here`` drives ``record``'s machine (``None``: a
    process that is no fleet host drives every machine; a machine without host, from
    a store older than hosts, runs wherever it is served)."""
    return here is None or record.host is None or record.host == here


P = TypeVar("P", bound=Placed)


def only_here(records: Iterable[P], here: str | None) -> list[P]:
    return [record for record in records if runs_here(record, here)]


def elsewhere_message(domain_id: str, host: str | None) -> str:
    return (f"domain {domain_id} runs on host {host}: its machine and its guest's calls are"
            f" served by that host's vBIOS")


def check_runs_here(record: Placed, here: str | None) -> None:
    """DomainElsewhere unless the process of host ``here`` drives ``record``'s machine."""
    if not runs_here(record, here):
        raise DomainElsewhere(elsewhere_message(record.domain_id, record.host))


def check_guest_here(record: Placed, here: str | None) -> None:
    """AccessDenied for a guest calling a host that does not run its domain."""
    if not runs_here(record, here):
        raise AccessDenied(elsewhere_message(record.domain_id, record.host))
