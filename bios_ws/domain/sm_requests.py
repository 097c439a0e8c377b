"""System-management requests: what a guest's BIOS would have handled in SMM, as typed
requests to the privileged domain, each with the privilege it needs.

A request names the domain it acts on, or None for the caller's own. ``KINDS`` is the one
table of the family: each request type's name (the guest's operation in the contract;
the admin's names the domain after the verb), the privilege it needs, and whether it
changes state (audited when it does; every refusal is audited). ``target_of`` is the one
authorization rule, the contract's: a guest acts on its own domain and names none, the
admin names the domain it acts on.

- ``OWN_DOMAIN``: a guest on its own domain, or the admin on the domain it names (a guest
  naming any domain, the admin naming none: AccessDenied);
- ``GUEST``: only the guest of the domain (the admin does not pet a guest's watchdog);
- ``ADMIN``: only the admin, naming the domain.

A request of a type the table does not know is refused with ``UnknownRequestKind``.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from bios_ws.domain.principal import Principal, check_domain_id
from bios_ws.domain.sel import OverWritePolicy
from bios_ws.errors import AccessDenied, InvalidRequest, UnknownRequestKind


class Privilege(StrEnum):
    OWN_DOMAIN = "own-domain"
    GUEST = "guest"
    ADMIN = "admin"


@dataclass(frozen=True, kw_only=True)
class SmRequest:
    """A system-management request on ``domain_id`` (None: the caller's own domain)."""

    domain_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class GetSmbios(SmRequest):
    pass


@dataclass(frozen=True, kw_only=True)
class GetEventLog(SmRequest):
    pass


@dataclass(frozen=True, kw_only=True)
class ClearEventLog(SmRequest):
    pass


@dataclass(frozen=True, kw_only=True)
class SetEventLogPolicy(SmRequest):
    max_entries: int
    overwrite: OverWritePolicy


@dataclass(frozen=True, kw_only=True)
class GetWakeAlarm(SmRequest):
    pass


@dataclass(frozen=True, kw_only=True)
class SetWakeAlarm(SmRequest):
    wake_at: datetime


@dataclass(frozen=True, kw_only=True)
class ClearWakeAlarm(SmRequest):
    pass


@dataclass(frozen=True, kw_only=True)
class GetWatchdog(SmRequest):
    pass


@dataclass(frozen=True, kw_only=True)
class SetWatchdog(SmRequest):
    """Arm (``enabled``, with ``timeout_seconds`` or the one it had) or disarm."""

    enabled: bool
    timeout_seconds: int | None = None


@dataclass(frozen=True, kw_only=True)
class PetWatchdog(SmRequest):
    pass


@dataclass(frozen=True)
class RequestKind:
    #: The guest's operation (the admin's is named with ``Domain`` after the verb).
    name: str
    privilege: Privilege
    #: Whether it changes state (audited when done; refusals are audited anyway).
    changes: bool


KINDS: Final[Mapping[type[SmRequest], RequestKind]] = MappingProxyType({
    GetSmbios: RequestKind("GetSmbios", Privilege.OWN_DOMAIN, changes=False),
    GetEventLog: RequestKind("GetSystemEventLog", Privilege.OWN_DOMAIN, changes=False),
    ClearEventLog: RequestKind("ClearSystemEventLog", Privilege.OWN_DOMAIN, changes=True),
    SetEventLogPolicy: RequestKind("SetSystemEventLogPolicy", Privilege.ADMIN, changes=True),
    GetWakeAlarm: RequestKind("GetWakeAlarm", Privilege.OWN_DOMAIN, changes=False),
    SetWakeAlarm: RequestKind("SetWakeAlarm", Privilege.OWN_DOMAIN, changes=True),
    ClearWakeAlarm: RequestKind("ClearWakeAlarm", Privilege.OWN_DOMAIN, changes=True),
    GetWatchdog: RequestKind("GetWatchdog", Privilege.OWN_DOMAIN, changes=False),
    SetWatchdog: RequestKind("SetWatchdog", Privilege.OWN_DOMAIN, changes=True),
    # a pet only moves a deadline: not audited (every few seconds), like a read
    PetWatchdog: RequestKind("PetWatchdog", Privilege.GUEST, changes=False),
})


def kind_of(request: object) -> RequestKind:
    """The kind of ``request``; UnknownRequestKind for anything else."""
    kind = KINDS.get(type(request)) if isinstance(request, SmRequest) else None
    if kind is None:
        raise UnknownRequestKind(f"no system-management request of kind"
                                 f" {type(request).__name__[:64]!r}")
    return kind


def operation_of(request: SmRequest) -> str:
    """The operation an audit entry names: the contract's, which names the domain after the
    verb when the request names one (``ClearDomainSystemEventLog``)."""
    name = kind_of(request).name
    if request.domain_id is not None:
        for verb in ("Get", "Set", "Clear"):
            if name.startswith(verb):
                return f"{verb}Domain{name[len(verb):]}"
    return name


def target_of(principal: Principal, request: SmRequest) -> str:
    """The domain ``principal`` may act on with ``request`` (see the module docstring)."""
    kind = kind_of(request)
    named = request.domain_id
    if kind.privilege is Privilege.ADMIN or (named is not None
                                             and kind.privilege is Privilege.OWN_DOMAIN):
        principal.require_admin()  # a request naming a domain is the admin's
        if named is None:
            raise InvalidRequest(f"{kind.name} names the domain it acts on")
        return check_domain_id(named)
    if named is not None:
        raise AccessDenied(f"{kind.name} acts on the caller's own domain and names none")
    return principal.own_domain()  # AccessDenied for the admin and anonymous callers
