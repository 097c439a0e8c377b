"""Events, the guest's calls (a part of ``BiosClient``): pull subscriptions, GetEvents that
long-polls, and ``events``, an iterator over the events as they come.

``events(types)`` subscribes, then asks for the events after its cursor, each call
waiting on the vBIOS's side up to ``wait`` seconds for one (a long poll: the answer comes
as soon as an event does). It renews the subscription before it expires, subscribes
again from its cursor when the subscription is gone (expired, or the vBIOS forgot it),
and survives a few failed calls in a row (the vBIOS restarting); it never returns an
event twice nor skips one it could read. ``EventStream.cursor`` says where it is: give
it to ``events(cursor=...)`` later to go on from there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vbios_client._wire import check_str, items, utc_time
from vbios_client.exceptions import (
    SubscriptionExpired,
    TransportError,
    UnknownSubscription,
    VbiosClientError,
)
from vbios_client.models import EVENT_TYPES, Event, EventBatch, EventSubscription

if TYPE_CHECKING:
    from vbios_client._channel import SoapChannel

#: The longest wait the vBIOS grants one GetEvents (a longer one is cut to it).
MAX_WAIT = 30.0
#: Failed calls in a row (connection, TLS, timeout) ``events`` survives, waiting between.
MAX_FAILURES = 5
#: A subscription is renewed once less than this part of its life is left.
RENEW_WHEN_LEFT = 1 / 3
#: An empty answer that came before half its wait (a front that cannot wait, a server
#: stopping) is followed by this pause, not by a call at once.
EARLY_PAUSE = 1.0

_sleep = time.sleep  # tests replace it
_monotonic = time.monotonic


def _now() -> datetime:
    return datetime.now(UTC)


def event_of(wire: Any) -> Event:
    domain = getattr(wire, "Domain", None)
    return Event(
        event_id=int(wire.EventId), event_type=str(wire.EventType),
        timestamp=utc_time(str(wire.EventTimestamp)), severity=str(wire.Severity),
        message=str(wire.Message or ""), message_id=str(wire.MessageId or ""),
        message_args=tuple(str(arg) for arg in items(wire.MessageArgs, "Arg")),
        origin=str(wire.OriginOfCondition or ""), domain=None if not domain else str(domain))


def check_types(types: Iterable[str] | None) -> list[str]:
    if types is None:
        return []
    if isinstance(types, str):
        raise TypeError("types must be an iterable of event type names, not one string")
    names = list(types)
    unknown = [name for name in names if name not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types {', '.join(map(str, unknown))}; known:"
                         f" {', '.join(EVENT_TYPES)}")
    return names


class EventCalls:
    """The event operations of ``BiosClient``."""

    @property
    def _channel(self) -> SoapChannel:  # BiosClient's
        raise NotImplementedError

    def subscribe(self, types: Iterable[str] | None = None, *,
                  expires_in: int | None = None) -> EventSubscription:
        """A subscription to the domain's events of ``types`` (``EVENT_TYPES``; None: every
        type) and the host-wide ones, lasting ``expires_in`` seconds (default one hour, at
        most a day), starting after the newest event."""
        params: dict[str, Any] = {}
        names = check_types(types)
        if names:
            params["EventTypes"] = {"EventType": names}
        if expires_in is not None:
            params["ExpiresIn"] = _positive("expires_in", expires_in)
        wire = self._channel.call("Subscribe", **params)
        return EventSubscription(str(wire.SubscriptionId), utc_time(str(wire.Expires)),
                                 int(wire.Cursor))

    def get_events(self, subscription_id: str, cursor: int | None = None, *,
                   wait: float = 0, max_events: int | None = None) -> EventBatch:
        """The events after ``cursor`` (None: where the subscription started); with
        ``wait`` (seconds, at most 30), the vBIOS answers once one comes or the wait is
        over (an empty batch then)."""
        check_str("subscription_id", subscription_id, empty=False)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not wait >= 0:
            raise ValueError(f"wait must be a number of seconds, 0 or more, not {wait!r}")
        seconds = int(min(wait, MAX_WAIT) + 0.999)
        params: dict[str, Any] = {"SubscriptionId": subscription_id}
        if cursor is not None:
            params["Cursor"] = _positive("cursor", cursor, zero=True)
        if seconds:
            params["Wait"] = seconds
        if max_events is not None:
            params["MaxEvents"] = _positive("max_events", max_events)
        channel = self._channel
        wire = channel.call("GetEvents", timeout=channel.timeout + seconds, **params)
        return EventBatch(tuple(event_of(e) for e in items(wire.Events, "Event")),
                          int(wire.NextCursor), bool(wire.EventsLost),
                          utc_time(str(wire.Expires)))

    def renew_subscription(self, subscription_id: str, *,
                           expires_in: int | None = None) -> datetime:
        """Push the subscription's expiry to ``expires_in`` seconds from now; the new one."""
        check_str("subscription_id", subscription_id, empty=False)
        params: dict[str, Any] = {"SubscriptionId": subscription_id}
        if expires_in is not None:
            params["ExpiresIn"] = _positive("expires_in", expires_in)
        wire = self._channel.call("Renew", **params)
        return utc_time(str(getattr(wire, "Expires", wire)))

    def unsubscribe(self, subscription_id: str) -> None:
        check_str("subscription_id", subscription_id, empty=False)
        self._channel.call("Unsubscribe", SubscriptionId=subscription_id)

    def events(self, types: Iterable[str] | None = None, *, wait: float = MAX_WAIT,
               cursor: int | None = None, expires_in: int | None = None,
               max_failures: int = MAX_FAILURES) -> EventStream:
        """The domain's events of ``types`` as they come, in order, until the iteration
        stops (``EventStream.close()``, or leaving a ``with`` block, ends the
        subscription). It subscribes now: every event from now on comes, however late
        the iteration begins; ``cursor``: go on after that event instead."""
        names = check_types(types)
        if cursor is not None:
            _positive("cursor", cursor, zero=True)
        if not 0 < wait <= MAX_WAIT:
            raise ValueError(f"wait must be more than 0 and at most {MAX_WAIT:g} seconds")
        stream = EventStream(self, names, wait=wait, cursor=cursor, expires_in=expires_in,
                             max_failures=max_failures)
        stream.subscribe()
        return stream


class EventStream(Iterator[Event]):
    """The iterator ``BiosClient.events`` returns (see the module docstring)."""

    def __init__(self, calls: EventCalls, types: list[str], *, wait: float,
                 cursor: int | None, expires_in: int | None, max_failures: int) -> None:
        self._calls = calls
        self._types = types
        self._wait = wait
        self._expires_in = expires_in
        self._max_failures = max_failures
        #: The id of the last event returned (or the cursor it starts after).
        self.cursor = cursor
        self.subscription_id: str | None = None
        self._renew_at = _now()
        self._ready: list[Event] = []
        #: The cursor the last batch said to read after once its events are returned.
        self._next = 0
        self._closed = False

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __next__(self) -> Event:
        if self._closed:
            raise StopIteration
        failures = 0
        while not self._ready:
            try:
                self._fill()
                failures = 0
            except TransportError:
                failures += 1
                if failures > self._max_failures:
                    raise
                _sleep(min(2.0 ** (failures - 1) / 2, 8.0))
        event = self._ready.pop(0)
        self.cursor = event.event_id if self._ready else max(event.event_id, self._next)
        return event

    def _fill(self) -> None:
        if self.subscription_id is None:
            self.subscribe()
        elif _now() >= self._renew_at:
            self._renew()
        assert self.subscription_id is not None
        asked = _monotonic()
        try:
            batch = self._calls.get_events(self.subscription_id, self.cursor, wait=self._wait)
        except (SubscriptionExpired, UnknownSubscription):
            self.subscription_id = None  # subscribed again from the cursor next time
            return
        self._ready.extend(event for event in batch.events
                           if self.cursor is None or event.event_id > self.cursor)
        self._next = batch.next_cursor
        if not self._ready:
            self.cursor = batch.next_cursor if self.cursor is None \
                else max(self.cursor, batch.next_cursor)
            if _monotonic() - asked < self._wait / 2:
                _sleep(min(EARLY_PAUSE, self._wait))

    def subscribe(self) -> None:
        """Subscribe (again), from the cursor if there is one."""
        subscription = self._calls.subscribe(self._types or None, expires_in=self._expires_in)
        self.subscription_id = subscription.subscription_id
        if self.cursor is None:
            self.cursor = subscription.cursor
        self._expiring(subscription.expires)

    def _renew(self) -> None:
        assert self.subscription_id is not None
        try:
            expires = self._calls.renew_subscription(self.subscription_id,
                                                     expires_in=self._expires_in)
        except (SubscriptionExpired, UnknownSubscription):
            self.subscribe()
            return
        self._expiring(expires)

    def _expiring(self, expires: datetime) -> None:
        """Renew once less than a third of the life is left, and before the next wait."""
        now = _now()
        left = max(expires - now, timedelta(0))
        self._renew_at = min(expires - left * RENEW_WHEN_LEFT,
                             expires - timedelta(seconds=self._wait * 2))

    def close(self) -> None:
        """End the subscription (the vBIOS would forget it once expired anyway)."""
        if self._closed:
            return
        self._closed = True
        subscription, self.subscription_id = self.subscription_id, None
        if subscription is not None:
            with contextlib.suppress(VbiosClientError):
                self._calls.unsubscribe(subscription)


def _positive(name: str, value: int, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise ValueError(f"{name} must be an integer of {0 if zero else 1} or more,"
                         f" not {value!r}")
    return value
