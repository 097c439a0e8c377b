"""The events use case: pull subscriptions and the reads that long-poll them (issue 14).

``subscribe`` makes a subscription of the caller (a guest's watches its own domain; the
admin's one named domain or every domain) starting at the newest event; ``get_events``
reads the events after a cursor that the subscription wants; ``renew`` and
``unsubscribe`` as WS-Eventing has them. Subscriptions are audited; they are not state
of the BIOS, so restricted mode does not refuse them (its own events come through them).

``get_events`` is a read of the local store (loop-safe). When it finds nothing and the
caller asked to wait, it calls ``blocking.wait_for_events``: a worker parks the request,
holding no thread, and runs it again when an event it wants may have come
(``marks_after`` is the one read that tells, shared by every parked request of the
worker) or once the wait is over (``bios_ws.server.parking``). ``prune`` applies the
retention, periodically, in every serving process.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from bios_ws.blocking import wait_for_events
from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.events import (
    EXPIRED_KEPT,
    Event,
    EventMark,
    EventRetention,
    Subscription,
    check_cursor,
    event_types,
    expiry,
    page_size,
    wait_seconds,
    watched_domain,
)
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory, retrying
from bios_ws.domain.principal import Principal, check_domain_id, is_domain_id
from bios_ws.errors import (
    InvalidRequest,
    SubscriptionExpired,
    UnknownSubscription,
    VbiosError,
)
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import outcome_of

T = TypeVar("T")


@dataclass(frozen=True)
class EventBatch:
    """What a GetEvents answers: the events, the cursor to read after next, whether
    retention removed events after the cursor before they were read, and until when the
    subscription lasts."""

    events: tuple[Event, ...]
    next_cursor: int
    events_lost: bool
    expires_at: datetime


class EventService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 retention: EventRetention | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self.retention = retention or EventRetention()

    # -- subscriptions ------------------------------------------------------------------

    def subscribe(self, principal: Principal, types: Iterable[str] = (),
                  expires_in: int | None = None, domain_id: str | None = None
                  ) -> Subscription:
        """A new subscription of ``principal`` to the events ``types`` name (none: every
        type) of its domain (a guest) or of ``domain_id`` (the admin; None: every domain),
        starting after the newest event."""
        def run(uow: UnitOfWork) -> Subscription:
            watched = watched_domain(principal, domain_id)
            if domain_id is not None:
                uow.domains.get(check_domain_id(domain_id))  # DomainNotFound
            now = self._clock()
            subscription = Subscription(
                uuid.uuid4().hex, str(principal), watched, event_types(types), now,
                expiry(now, expires_in), uow.events.head())
            uow.events.add_subscription(subscription)
            return subscription

        return self._audited(principal, "Subscribe", domain_id, run, lambda s: {
            "subscription": s.subscription_id, "types": sorted(s.event_types),
            "domain": s.domain_id, "expires": s.expires_at.isoformat()})

    def renew(self, principal: Principal, subscription_id: str,
              expires_in: int | None = None) -> Subscription:
        """The subscription with a new expiry, counted from now (SubscriptionExpired once
        it has expired: subscribe again)."""
        def run(uow: UnitOfWork) -> Subscription:
            now = self._clock()
            renewed = dataclasses.replace(self._owned(uow, principal, subscription_id, now),
                                          expires_at=expiry(now, expires_in))
            uow.events.save_subscription(renewed)
            return renewed

        return self._audited(principal, "Renew", None, run, lambda s: {
            "subscription": s.subscription_id, "expires": s.expires_at.isoformat()})

    def unsubscribe(self, principal: Principal, subscription_id: str) -> None:
        """End the subscription (an expired one too)."""
        def run(uow: UnitOfWork) -> str:
            found = uow.events.subscription(subscription_id) if _is_id(subscription_id) \
                else None
            if found is None or not found.owned_by(principal):
                raise _unknown(subscription_id)
            uow.events.remove_subscription(subscription_id)
            return subscription_id

        self._audited(principal, "Unsubscribe", None, run, lambda s: {"subscription": s})

    def subscription(self, principal: Principal, subscription_id: str) -> Subscription:
        """The caller's subscription (UnknownSubscription, SubscriptionExpired)."""
        with self._uow() as uow:
            return self._owned(uow, principal, subscription_id, self._clock())

    def subscriptions(self, principal: Principal) -> list[Subscription]:
        """Every subscription (the admin's view)."""
        principal.require_admin()
        with self._uow() as uow:
            return uow.events.subscriptions()

    # -- reading ------------------------------------------------------------------------

    def get_events(self, principal: Principal, subscription_id: str, cursor: int | None = None,
                   wait: float | None = None, max_events: int | None = None) -> EventBatch:
        """The events after ``cursor`` (default: where the subscription started) that the
        subscription wants, at most ``max_events``; when there are none, after waiting up
        to ``wait`` seconds (at most 30) for one, where the front can park the request."""
        seconds = wait_seconds(wait)
        limit = page_size(max_events)
        if cursor is not None:
            check_cursor(cursor)
        with self._uow() as uow:
            subscription = self._owned(uow, principal, subscription_id, self._clock())
            after = subscription.start_cursor if cursor is None else cursor
            page = uow.events.after(after, subscription.filter, limit)
            lost = after < uow.events.pruned_through()
        if after > page.head:
            raise InvalidRequest(f"cursor {after} is ahead of the newest event ({page.head}):"
                                 " subscribe again and read without a cursor",
                                 attribute="Cursor")
        if not page.events:
            wait_for_events(after=page.next_cursor, seconds=seconds, feed=self.marks_after,
                            wanted=subscription.filter.wants)
        return EventBatch(page.events, page.next_cursor, lost, subscription.expires_at)

    def marks_after(self, cursor: int, limit: int) -> list[EventMark]:
        """What parked readers wait for: scope and type of the events after ``cursor``."""
        with self._uow() as uow:
            return uow.events.marks_after(cursor, limit)

    # -- retention ----------------------------------------------------------------------

    def prune(self) -> int:
        """Remove the events retention no longer keeps, and the subscriptions expired for
        longer than ``EXPIRED_KEPT``; how many events were removed."""
        now = self._clock()
        with self._uow() as uow:
            removed = uow.events.prune(now - self.retention.max_age, self.retention.max_events)
            uow.events.remove_subscriptions_expired(now - EXPIRED_KEPT)
            uow.commit()
        return removed

    # -- helpers ------------------------------------------------------------------------

    def _owned(self, uow: UnitOfWork, principal: Principal, subscription_id: str,
               now: datetime) -> Subscription:
        found = uow.events.subscription(subscription_id) if _is_id(subscription_id) else None
        if found is None or not found.owned_by(principal):
            raise _unknown(subscription_id)
        if found.expired(now):
            raise SubscriptionExpired(f"subscription {subscription_id} expired at"
                                      f" {found.expires_at.isoformat()}: subscribe again")
        return found

    def _audited(self, principal: Principal, operation: str, domain_id: str | None,
                 run: Callable[[UnitOfWork], T],
                 facts: Callable[[T], Mapping[str, object]]) -> T:
        if domain_id is not None and not is_domain_id(domain_id):
            domain_id = None  # only a valid id is recorded (the refusal says the rest)
        recorded = domain_id

        def unit(uow: UnitOfWork) -> T:  # store only: run again if it lost (ports.retrying)
            uow.begin_writing()  # each run reads, then writes
            result = run(uow)
            uow.audit.append(self._record(principal, operation, recorded, "ok",
                                          facts(result)))
            uow.commit()
            return result

        try:
            return retrying(self._uow, unit)
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, operation, domain_id,
                                                  outcome_of(exc), {}))
            raise

    def _record(self, principal: Principal, operation: str, domain_id: str | None,
                outcome: str, changes: Mapping[str, object]) -> AuditRecord:
        return AuditRecord(self._clock(), str(principal), operation, domain_id, outcome,
                           digest_changes(changes))


def _is_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def _unknown(subscription_id: str) -> UnknownSubscription:
    return UnknownSubscription(f"no event subscription {subscription_id[:64]!r} of this caller")
