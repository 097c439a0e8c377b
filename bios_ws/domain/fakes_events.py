"""The in-memory fake of the event log (``bios_ws.domain.ports.EventLog``): the events in id
order, each with its scope, and the subscriptions.

A unit of work reads the committed events and appends its own beside them; they join
the committed ones at commit (in place: the memory store runs one unit at a time).
Standard library only.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Iterator
from datetime import datetime

from bios_ws.domain.events import (
    RETIRED,
    Event,
    EventFilter,
    EventMark,
    EventPage,
    EventRecord,
    Subscription,
)
from bios_ws.domain.ports import EventLog

#: An event and the scope it has now (a deleted domain's are retired).
Stored = tuple[Event, str]


@dataclasses.dataclass
class EventData:
    events: list[Stored] = dataclasses.field(default_factory=list)
    last_id: int = 0
    pruned_through: int = 0
    subscriptions: dict[str, Subscription] = dataclasses.field(default_factory=dict)


class MemoryEvents(EventLog):
    def __init__(self, data: EventData) -> None:
        self._committed = data
        self._events = data.events  # the committed list until a removal copies it
        self._appended: list[Stored] = []
        self._last_id = data.last_id
        self._pruned = data.pruned_through
        self._subscriptions = dict(data.subscriptions)

    def committed(self) -> EventData:
        """What this unit leaves, for the store to publish at commit."""
        events = self._events
        if self._appended:
            if events is self._committed.events:
                events.extend(self._appended)  # no other unit reads it meanwhile
            else:
                events = events + self._appended
        return EventData(events, self._last_id, self._pruned, self._subscriptions)

    def _all(self) -> Iterator[Stored]:
        return itertools.chain(self._events, self._appended)

    def append(self, record: EventRecord) -> Event:
        self._last_id += 1
        event = Event(self._last_id, record)
        self._appended.append((event, record.scope))
        return event

    def _after(self, cursor: int) -> Iterator[Stored]:
        start = bisect.bisect_right(self._events, cursor, key=lambda s: s[0].event_id)
        return itertools.chain(itertools.islice(self._events, start, None),
                               (s for s in self._appended if s[0].event_id > cursor))

    def after(self, cursor: int, wanted: EventFilter, limit: int) -> EventPage:
        found = itertools.islice((event for event, scope in self._after(cursor)
                                  if wanted.admits(scope, event.record.event_type)),
                                 max(limit, 0))
        return EventPage.of(found, cursor=cursor, limit=limit, head=self.head())

    def marks_after(self, cursor: int, limit: int) -> list[EventMark]:
        return [EventMark(event.event_id, scope, event.record.event_type)
                for event, scope in itertools.islice(self._after(cursor), max(limit, 0))]

    def head(self) -> int:
        return self._last_id

    def pruned_through(self) -> int:
        return self._pruned

    def prune(self, older_than: datetime, keep: int) -> int:
        stored = list(self._all())
        cut = max(len(stored) - max(keep, 0), 0)
        kept = [s for n, s in enumerate(stored)
                if n >= cut and s[0].record.timestamp >= older_than]
        kept_ids = {event.event_id for event, _ in kept}
        removed = [event.event_id for event, _ in stored if event.event_id not in kept_ids]
        self._replace(kept)
        if removed:
            self._pruned = max(self._pruned, *removed)
        return len(removed)

    def retire_domain(self, domain_id: str) -> None:
        self._replace([(event, RETIRED if scope == domain_id else scope)
                       for event, scope in self._all()])
        for subscription in list(self._subscriptions.values()):
            if subscription.domain_id == domain_id:
                del self._subscriptions[subscription.subscription_id]

    def _replace(self, events: list[Stored]) -> None:
        self._events, self._appended = events, []

    def add_subscription(self, subscription: Subscription) -> None:
        if subscription.subscription_id in self._subscriptions:
            raise ValueError(f"subscription {subscription.subscription_id} exists")
        self._subscriptions[subscription.subscription_id] = subscription

    def subscription(self, subscription_id: str) -> Subscription | None:
        return self._subscriptions.get(subscription_id)

    def save_subscription(self, subscription: Subscription) -> bool:
        if subscription.subscription_id not in self._subscriptions:
            return False
        self._subscriptions[subscription.subscription_id] = subscription
        return True

    def remove_subscription(self, subscription_id: str) -> bool:
        return self._subscriptions.pop(subscription_id, None) is not None

    def remove_subscriptions_expired(self, before: datetime) -> int:
        gone = [key for key, s in self._subscriptions.items() if s.expires_at < before]
        for key in gone:
            del self._subscriptions[key]
        return len(gone)

    def subscriptions(self) -> list[Subscription]:
        return sorted(self._subscriptions.values(),
                      key=lambda s: (s.created_at, s.subscription_id))
