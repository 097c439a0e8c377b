"""Events: what changed in the vBIOS, for guests and tools that would rather be told than
read everything again (issue 14, docs/events.md).

An event is a Redfish-style record (EventType, EventId, EventTimestamp, Severity,
Message, MessageId, MessageArgs, OriginOfCondition) about one domain or the whole host.
The store numbers events at append with a monotonically increasing integer id, in
commit order: a reader's cursor is the last id it has seen, and it reads the events
after it.

Who sees what (``scope_of``, ``EventFilter``): a guest sees its own domain's events and
the host-wide ones, never another domain's nor an admin-only one (an admin certificate
revoked); the admin sees every event, or, subscribed to one domain, what that domain's
guest sees and the admin-only ones. The events of a deleted domain are retired: only
the admin's subscriptions to every domain still see them.

Pull subscriptions (WS-Eventing's names, pull delivery): a subscription has an owner,
the domain it watches (none: the admin's to every domain), the event types it wants
(none named: every type), an expiry, and the cursor it started at. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bios_ws.domain.principal import Principal, Role, guest_of
from bios_ws.errors import AccessDenied, InvalidRequest


class EventType(StrEnum):
    SETTINGS_CHANGED = "SettingsChanged"
    PENDING_CHANGES_APPLIED = "PendingChangesApplied"
    POWER_STATE_CHANGED = "PowerStateChanged"
    THERMAL_THRESHOLD_CROSSED = "ThermalThresholdCrossed"
    INTEGRITY_CHANGED = "IntegrityChanged"
    FIRMWARE_JOB_CHANGED = "FirmwareJobChanged"
    CREDENTIAL_REVOKED = "CredentialRevoked"


class Severity(StrEnum):
    """Redfish's Health values, as event severities."""

    OK = "OK"
    WARNING = "Warning"
    CRITICAL = "Critical"


#: Scopes: a domain id (its guest sees the event), or one of these (no domain id is empty
#: or has '#' or '~').
HOST_WIDE = ""
ADMIN_ONLY = "#admin"
RETIRED = "~"

#: Every MessageId is this prefix and the event type (a Redfish message registry's style).
MESSAGE_REGISTRY = "VbiosEvent.1.0"


@dataclass(frozen=True)
class MessageDefinition:
    """A message of the registry: its text with ``%1``, ``%2``... for its arguments."""

    template: str
    severity: Severity
    args: int


MESSAGES: Mapping[EventType, MessageDefinition] = {
    EventType.SETTINGS_CHANGED: MessageDefinition(
        "The settings of domain %1 changed (%2); they are at version %3.", Severity.OK, 3),
    EventType.PENDING_CHANGES_APPLIED: MessageDefinition(
        "The pending settings of domain %1 were applied (%2); they are at version %3.",
        Severity.OK, 3),
    EventType.POWER_STATE_CHANGED: MessageDefinition(
        "Domain %1 is %2 (it was %3; cause: %4).", Severity.OK, 4),
    EventType.THERMAL_THRESHOLD_CROSSED: MessageDefinition(
        "Sensor %2 of domain %1 crossed its %3 threshold: %4 Cel.", Severity.WARNING, 4),
    EventType.INTEGRITY_CHANGED: MessageDefinition(
        "The host %1 restricted mode: %2", Severity.CRITICAL, 2),
    EventType.FIRMWARE_JOB_CHANGED: MessageDefinition(
        "Firmware job %2 of domain %1 is %3: %4", Severity.OK, 4),
    EventType.CREDENTIAL_REVOKED: MessageDefinition(
        "Certificate %1 (%2) was revoked: %3.", Severity.WARNING, 3),
}

#: Bounds of what an event carries (its args and origin are short by construction).
MAX_ARG_CHARS = 512
MAX_ORIGIN_CHARS = 256
_PLACEHOLDER = re.compile(r"%([1-9])")


@dataclass(frozen=True)
class EventRecord:
    """What a use case says happened, in the transaction of the change; the store numbers it."""

    event_type: EventType
    severity: Severity
    message: str
    message_id: str
    message_args: tuple[str, ...]
    #: The resource the event is about (Redfish's OriginOfCondition), as a path.
    origin: str
    #: The domain it is about; None for the host.
    domain_id: str | None
    timestamp: datetime
    #: Seen by the admin alone (a host-wide event no guest should see).
    admin_only: bool = False

    @property
    def scope(self) -> str:
        return scope_of(self.domain_id, admin_only=self.admin_only)


@dataclass(frozen=True)
class Event:
    """A stored event: its id is the cursor of whoever has read it."""

    event_id: int
    record: EventRecord


@dataclass(frozen=True)
class EventMark:
    """What a waiting reader needs of a new event to tell whether it is for it."""

    event_id: int
    scope: str
    event_type: EventType


def scope_of(domain_id: str | None, *, admin_only: bool = False) -> str:
    if admin_only:
        return ADMIN_ONLY
    return HOST_WIDE if domain_id is None else domain_id


def make_event(event_type: EventType, *args: object, domain_id: str | None, origin: str,
               at: datetime, severity: Severity | None = None,
               admin_only: bool = False) -> EventRecord:
    """An event of the registry's message for ``event_type`` with ``args``; ValueError when
    the arguments do not fit the message."""
    definition = MESSAGES[event_type]
    texts = tuple(str(arg)[:MAX_ARG_CHARS] for arg in args)
    if len(texts) != definition.args:
        raise ValueError(f"{event_type} takes {definition.args} message arguments,"
                         f" not {len(texts)}")
    if not origin.startswith("/") or len(origin) > MAX_ORIGIN_CHARS:
        raise ValueError(f"an event's origin is a path of at most {MAX_ORIGIN_CHARS}"
                         f" characters, not {origin[:80]!r}")
    return EventRecord(event_type, severity or definition.severity,
                       render(definition.template, texts), f"{MESSAGE_REGISTRY}.{event_type}",
                       texts, origin, domain_id, at, admin_only)


def render(template: str, args: tuple[str, ...]) -> str:
    """``template`` with ``%n`` replaced by the n-th argument (Redfish's message style)."""
    return _PLACEHOLDER.sub(lambda found: args[int(found.group(1)) - 1], template)


@dataclass(frozen=True)
class EventFilter:
    """Which events a reader wants: by scope (None: every scope) and by type (empty: every
    type)."""

    scopes: frozenset[str] | None
    types: frozenset[EventType] = frozenset()

    def admits(self, scope: str, event_type: EventType) -> bool:
        return ((self.scopes is None or scope in self.scopes)
                and (not self.types or event_type in self.types))

    def wants(self, mark: EventMark) -> bool:
        return self.admits(mark.scope, mark.event_type)


# -- subscriptions -------------------------------------------------------------------------

#: How long a GetEvents may wait for an event; a longer wait asked for is cut to this.
MAX_WAIT_SECONDS = 30.0
#: A subscription's life when the subscriber names none, and the longest it may ask for.
DEFAULT_EXPIRES = timedelta(hours=1)
MAX_EXPIRES = timedelta(days=1)
#: An expired subscription is still known this long (GetEvents says SubscriptionExpired),
#: then forgotten (UnknownSubscription).
EXPIRED_KEPT = timedelta(days=1)
#: Events one GetEvents returns when the caller names no number, and at most.
DEFAULT_PAGE = 100
MAX_PAGE = 1000


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    #: Who made it, as ``str(Principal)`` writes it ("guest:vm1", "host:h1 for guest:vm1",
    #: "admin:admin").
    owner: str
    #: The domain it watches: a guest's own; the one the admin named; None: every domain.
    domain_id: str | None
    #: The event types it wants; empty: every type.
    event_types: frozenset[EventType]
    created_at: datetime
    expires_at: datetime
    #: The newest event when it was made: GetEvents without a cursor reads after it.
    start_cursor: int

    @property
    def for_guest(self) -> bool:
        """A guest's: its domain's own guest, or a host speaking for that guest (the
        owner ``host:H for guest:D`` of a routed guest's subscription)."""
        return guest_of(self.owner) is not None

    @property
    def filter(self) -> EventFilter:
        if self.for_guest:
            assert self.domain_id is not None
            return EventFilter(frozenset({self.domain_id, HOST_WIDE}), self.event_types)
        if self.domain_id is None:
            return EventFilter(None, self.event_types)
        return EventFilter(frozenset({self.domain_id, HOST_WIDE, ADMIN_ONLY}),
                           self.event_types)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def forgotten(self, now: datetime) -> bool:
        """Expired long enough ago to be removed."""
        return now >= self.expires_at + EXPIRED_KEPT

    def owned_by(self, principal: Principal) -> bool:
        """Whether ``principal`` may use it: a guest its own domain's subscriptions, the
        admin any (it sees every event anyway)."""
        if principal.role is Role.ADMIN:
            return True
        return (principal.role is Role.GUEST and self.for_guest
                and principal.domain_id == self.domain_id)


def watched_domain(principal: Principal, domain_id: str | None) -> str | None:
    """The domain a new subscription of ``principal`` watches: a guest's own (it names
    none), the admin's named one or, naming none, every domain (None)."""
    if principal.role is Role.GUEST:
        if domain_id is not None and domain_id != principal.domain_id:
            raise AccessDenied("a guest subscribes to its own domain's events: name no domain")
        return principal.own_domain()
    principal.require_admin()
    return domain_id


def event_types(names: Iterable[str]) -> frozenset[EventType]:
    """The types named; InvalidRequest for a name that is none."""
    try:
        return frozenset(EventType(name) for name in names)
    except ValueError:
        raise InvalidRequest("unknown event type; known: " + ", ".join(EventType),
                             attribute="EventTypes") from None


def expiry(now: datetime, seconds: int | None) -> datetime:
    """When a subscription made or renewed now for ``seconds`` expires (cut to
    ``MAX_EXPIRES``); InvalidRequest for a life that is not positive."""
    if seconds is None:
        return now + DEFAULT_EXPIRES
    if seconds <= 0:
        raise InvalidRequest("ExpiresIn is a positive number of seconds", attribute="ExpiresIn")
    return now + min(timedelta(seconds=seconds), MAX_EXPIRES)


def wait_seconds(seconds: float | None) -> float:
    """How long a GetEvents waits: 0 when not asked, at most ``MAX_WAIT_SECONDS`` (a longer
    wait is cut); InvalidRequest when negative."""
    if seconds is None:
        return 0.0
    if seconds < 0:
        raise InvalidRequest("Wait is a number of seconds, 0 or more", attribute="Wait")
    return min(float(seconds), MAX_WAIT_SECONDS)


def page_size(requested: int | None) -> int:
    if requested is None:
        return DEFAULT_PAGE
    if requested < 1:
        raise InvalidRequest("MaxEvents is at least 1", attribute="MaxEvents")
    return min(requested, MAX_PAGE)


def check_cursor(cursor: int) -> int:
    if cursor < 0:
        raise InvalidRequest("a cursor is an event id, 0 or more", attribute="Cursor")
    return cursor


@dataclass(frozen=True)
class EventPage:
    """The events after a cursor that a reader wants, and the cursor to read after next."""

    events: tuple[Event, ...]
    next_cursor: int
    #: The newest event when it was read.
    head: int

    @classmethod
    def of(cls, events: Iterable[Event], *, cursor: int, limit: int, head: int) -> EventPage:
        """``events`` (in id order, at most ``limit``) read after ``cursor`` when the newest
        event was ``head``: the next cursor is the last event returned when the page is
        full (more may follow), else ``head`` (every event up to it has been looked at);
        never behind ``cursor``."""
        found = tuple(events)
        last = found[-1].event_id if found else cursor
        return cls(found, max(cursor, last if len(found) >= limit else max(head, last)), head)


@dataclass(frozen=True)
class EventRetention:
    """How long events are kept: those older than ``max_age`` and all but the newest
    ``max_events`` are removed."""

    max_age: timedelta = timedelta(days=7)
    max_events: int = 100_000

    def __post_init__(self) -> None:
        if self.max_age <= timedelta(0) or self.max_events < 1:
            raise ValueError("event retention keeps a positive age and at least one event")
