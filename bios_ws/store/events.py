"""The event tables: the events, numbered in commit order, and their pull subscriptions.

Ids are the readers' cursors, so an id must never become visible before a smaller one:
a reader that saw id 8 would skip a 7 committed after it. On SQLite the writers are
serialized (``BEGIN IMMEDIATE``, one writing transaction at a time) and AUTOINCREMENT
hands out ids inside that transaction, so ids commit in their order and a read
snapshot holds every id up to its newest. On PostgreSQL ids come from a sequence, taken
by concurrent transactions that may commit in another order: an append there first
takes the audit log's lock row (``FOR UPDATE``, held to commit), which serializes the
appenders as SQLite does (docs/events.md, "PostgreSQL"). Readers never take it.

Retention removes old events (``prune``) and records the largest id it removed in the
``meta`` table, so that a reader whose cursor lies before it learns it missed events
and ``head`` never goes back, even once every event is gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from bios_ws.domain.events import (
    ADMIN_ONLY,
    RETIRED,
    Event,
    EventFilter,
    EventMark,
    EventPage,
    EventRecord,
    EventType,
    Severity,
    Subscription,
)
from bios_ws.domain.ports import EventLog
from bios_ws.errors import StoreUnavailable
from bios_ws.store import schema, schema_runtime
from bios_ws.store.audit import _lock_audit
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors
from bios_ws.store.prepared import Prepared

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_events = schema_runtime.events
_subscriptions = schema_runtime.event_subscriptions
_meta = schema.meta
_COLUMNS = ("time", "event_type", "severity", "scope", "domain_id", "origin", "message_id",
            "message", "message_args")
#: Statements of the hot paths (an append per state change, reads per GetEvents).
_INSERT = Prepared(insert(_events).values({name: bindparam(name) for name in _COLUMNS}))
_NEWEST = Prepared(select(func.max(_events.c.event_id)))
_PRUNED = Prepared(select(_meta.c.value).where(_meta.c.key == schema.EVENTS_PRUNED_KEY))
_MARKS = Prepared(select(_events.c.event_id, _events.c.scope, _events.c.event_type)
                  .where(_events.c.event_id > bindparam("cursor"))
                  .order_by(_events.c.event_id).limit(bindparam("limit")))
_IN_SCOPE = Prepared(select(_events).where(_events.c.scope == bindparam("scope"))
                     .where(_events.c.event_id > bindparam("cursor"))
                     .order_by(_events.c.event_id).limit(bindparam("limit")))
_EVERY_SCOPE = Prepared(select(_events).where(_events.c.event_id > bindparam("cursor"))
                        .order_by(_events.c.event_id).limit(bindparam("limit")))
_SUBSCRIPTION = Prepared(select(_subscriptions).where(
    _subscriptions.c.subscription_id == bindparam("subscription_id")))
#: Rows read per query when the reader wants some types only (the others are skipped).
_SCAN_PAGE = 500


class SqlEvents(EventLog):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def append(self, record: EventRecord) -> Event:
        uow = self._uow
        conn = uow.connection(write=True)
        row = {
            "time": time_to_text(record.timestamp), "event_type": record.event_type.value,
            "severity": record.severity.value, "scope": record.scope,
            "domain_id": record.domain_id, "origin": record.origin,
            "message_id": record.message_id, "message": record.message,
            "message_args": json.dumps(list(record.message_args)),
        }
        with store_errors():
            _lock_audit(conn, uow.sqlite)  # PostgreSQL: ids commit in order (module doc)
            event_id = _INSERT.insert(conn, uow.sqlite, row)
        return Event(event_id, record)

    def after(self, cursor: int, wanted: EventFilter, limit: int) -> EventPage:
        uow = self._uow
        conn = uow.connection(write=False)
        found: list[Event] = []
        with store_errors():
            head = self._head(conn)  # first: every event read below is at most this
            scopes = [None] if wanted.scopes is None else sorted(wanted.scopes)
            for scope in scopes:
                found.extend(self._read(conn, scope, cursor, head, wanted, limit))
        found.sort(key=lambda event: event.event_id)
        return EventPage.of(found[:max(limit, 0)], cursor=cursor, limit=limit, head=head)

    def _read(self, conn: Any, scope: str | None, cursor: int, head: int,
              wanted: EventFilter, limit: int) -> Iterable[Event]:
        """The first ``limit`` events of ``scope`` (None: every scope) after ``cursor`` up
        to ``head`` that ``wanted`` admits; rows of other types are skipped page by page."""
        uow = self._uow
        query = _EVERY_SCOPE if scope is None else _IN_SCOPE
        taken: list[Event] = []
        after = cursor
        page = limit if not wanted.types else max(limit, _SCAN_PAGE)
        while len(taken) < limit and after < head:
            params: dict[str, Any] = {"cursor": after, "limit": page}
            if scope is not None:
                params["scope"] = scope
            rows = query.rows(conn, uow.sqlite, params)
            for row in rows:
                event_id = int(row[0])
                if event_id > head:
                    return taken
                if wanted.admits(str(row[4]), _type(row[2], event_id)):
                    taken.append(_event(row))
                    if len(taken) >= limit:
                        return taken
                after = event_id
            if len(rows) < page:
                break
        return taken

    def marks_after(self, cursor: int, limit: int) -> list[EventMark]:
        uow = self._uow
        conn = uow.connection(write=False)
        with store_errors():
            rows = _MARKS.rows(conn, uow.sqlite, {"cursor": cursor, "limit": max(limit, 0)})
        return [EventMark(int(event_id), str(scope), _type(kind, int(event_id)))
                for event_id, scope, kind in rows]

    def head(self) -> int:
        conn = self._uow.connection(write=False)
        with store_errors():
            return self._head(conn)

    def _head(self, conn: Any) -> int:
        newest = _NEWEST.rows(conn, self._uow.sqlite, {})[0][0]
        return max(0 if newest is None else int(newest), self._pruned(conn))

    def pruned_through(self) -> int:
        conn = self._uow.connection(write=False)
        with store_errors():
            return self._pruned(conn)

    def _pruned(self, conn: Any) -> int:
        rows = _PRUNED.rows(conn, self._uow.sqlite, {})
        try:
            return int(rows[0][0]) if rows else 0
        except ValueError:
            raise StoreUnavailable("the events' pruning mark is damaged") from None

    def prune(self, older_than: datetime, keep: int) -> int:
        conn = self._uow.connection(write=True)
        with store_errors():
            beyond = conn.scalar(select(_events.c.event_id).order_by(_events.c.event_id.desc())
                                 .offset(max(keep, 0)).limit(1))
            condition = _events.c.time < time_to_text(older_than)
            if beyond is not None:
                condition = or_(condition, _events.c.event_id <= int(beyond))
            last = conn.scalar(select(func.max(_events.c.event_id)).where(condition))
            if last is None:
                return 0
            removed = conn.execute(delete(_events).where(condition)).rowcount
            mark = max(self._pruned(conn), int(last))
            changed = conn.execute(update(_meta).where(_meta.c.key == schema.EVENTS_PRUNED_KEY)
                                   .values(value=str(mark))).rowcount
            if not changed:
                conn.execute(insert(_meta).values(key=schema.EVENTS_PRUNED_KEY,
                                                  value=str(mark)))
        return int(removed)

    def retire_domain(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(update(_events).where(_events.c.scope == domain_id)
                         .values(scope=RETIRED))
            conn.execute(delete(_subscriptions).where(_subscriptions.c.domain_id == domain_id))

    def add_subscription(self, subscription: Subscription) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            taken = conn.scalar(select(_subscriptions.c.subscription_id).where(
                _subscriptions.c.subscription_id == subscription.subscription_id))
            if taken is None:
                conn.execute(insert(_subscriptions).values(**_subscription_row(subscription)))
        if taken is not None:
            raise ValueError(f"subscription {subscription.subscription_id} exists")

    def subscription(self, subscription_id: str) -> Subscription | None:
        uow = self._uow
        conn = uow.connection(write=False)
        with store_errors():
            rows = _SUBSCRIPTION.rows(conn, uow.sqlite, {"subscription_id": subscription_id})
        return _subscription(rows[0]) if rows else None

    def save_subscription(self, subscription: Subscription) -> bool:
        conn = self._uow.connection(write=True)
        row = _subscription_row(subscription)
        with store_errors():
            result = conn.execute(update(_subscriptions).where(
                _subscriptions.c.subscription_id == row.pop("subscription_id")).values(**row))
        return bool(result.rowcount)

    def remove_subscription(self, subscription_id: str) -> bool:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(delete(_subscriptions).where(
                _subscriptions.c.subscription_id == subscription_id))
        return bool(result.rowcount)

    def remove_subscriptions_expired(self, before: datetime) -> int:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(delete(_subscriptions).where(
                _subscriptions.c.expires_at < time_to_text(before)))
        return int(result.rowcount)

    def subscriptions(self) -> list[Subscription]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_subscriptions).order_by(
                _subscriptions.c.created_at, _subscriptions.c.subscription_id)).all()
        return [_subscription(tuple(row)) for row in rows]


_TYPES = {kind.value: kind for kind in EventType}


def _type(name: Any, event_id: int) -> EventType:
    found = _TYPES.get(name)
    if found is None:
        raise _damaged(f"event {event_id}")
    return found


def _event(row: Any) -> Event:
    """An event from its row (the columns in the table's order)."""
    event_id, time, kind, severity, scope, domain_id, origin, message_id, message, args = row
    try:
        arguments = json.loads(args)
        if not isinstance(arguments, list):
            raise ValueError("not a list")
        record = EventRecord(
            event_type=EventType(kind), severity=Severity(severity), message=str(message),
            message_id=str(message_id), message_args=tuple(str(a) for a in arguments),
            origin=str(origin), domain_id=None if domain_id is None else str(domain_id),
            timestamp=time_from_text(time), admin_only=scope == ADMIN_ONLY)
    except ValueError:
        raise _damaged(f"event {event_id}") from None
    return Event(int(event_id), record)


def _subscription_row(subscription: Subscription) -> dict[str, Any]:
    return {
        "subscription_id": subscription.subscription_id, "owner": subscription.owner,
        "domain_id": subscription.domain_id,
        "event_types": ",".join(sorted(subscription.event_types)),
        "created_at": time_to_text(subscription.created_at),
        "expires_at": time_to_text(subscription.expires_at),
        "start_cursor": subscription.start_cursor,
    }


def _subscription(row: Any) -> Subscription:
    key, owner, domain_id, types, created_at, expires_at, start_cursor = row
    try:
        return Subscription(
            subscription_id=str(key), owner=str(owner),
            domain_id=None if domain_id is None else str(domain_id),
            event_types=frozenset(EventType(name) for name in str(types).split(",") if name),
            created_at=time_from_text(created_at), expires_at=time_from_text(expires_at),
            start_cursor=int(start_cursor))
    except ValueError:
        raise _damaged(f"the event subscription {key!r}") from None


def _damaged(what: str) -> StoreUnavailable:
    return StoreUnavailable(f"{what} is damaged in the store")
