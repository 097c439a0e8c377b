"""Event operations: pull subscriptions (WS-Eventing's Subscribe, Renew, Unsubscribe) and
GetEvents, which long-polls: with a Wait (seconds, at most 30: a longer one is cut to
30) it answers once an event the subscription wants comes or the wait is over, an empty
list then. A guest subscribes to its own domain's events (and the host-wide ones); the
admin to one Domain's or, naming none, to every domain's."""

from __future__ import annotations

from types import SimpleNamespace as Out
from typing import Any

from spyne import Boolean, Integer32, Integer64, Service, Unicode

from bios_ws.domain.events import Event
from bios_ws.domain.events import Subscription as SubscriptionValue
from bios_ws.service.event_subscriptions import EventBatch, EventService
from bios_ws.soap.attestation_codec import iso
from bios_ws.soap.context import call_of
from bios_ws.soap.events_types import EventList, EventTypeList
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import operation, optional, required

_SUBSCRIBED = {"returns": (required(Unicode), required(Unicode), required(Integer64)),
               "names": ("SubscriptionId", "Expires", "Cursor")}
_BATCH = {"returns": (required(EventList), required(Integer64), required(Boolean),
                      required(Unicode)),
          "names": ("Events", "NextCursor", "EventsLost", "Expires")}


def event_out(event: Event) -> Any:
    record = event.record
    return Out(EventId=event.event_id, EventType=record.event_type.value,
               EventTimestamp=iso(record.timestamp), Severity=record.severity.value,
               Message=record.message, MessageId=record.message_id,
               MessageArgs=Out(Arg=list(record.message_args)),
               OriginOfCondition=record.origin, Domain=record.domain_id)


def _subscribed(subscription: SubscriptionValue) -> tuple[Any, ...]:
    return (subscription.subscription_id, iso(subscription.expires_at),
            subscription.start_cursor)


def _batch(batch: EventBatch) -> tuple[Any, ...]:
    return (Out(Event=[event_out(event) for event in batch.events]), batch.next_cursor,
            batch.events_lost, iso(batch.expires_at))


def _types(value: Any) -> list[str]:
    return [] if value is None else [str(kind) for kind in (value.EventType or [])]


class EventsSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(optional(EventTypeList), optional(Integer32), optional(Unicode), **_SUBSCRIBED)
    def Subscribe(ctx: Any, EventTypes: Any, ExpiresIn: int | None,
                  Domain: str | None) -> tuple[Any, ...]:
        call = call_of(ctx)
        return _subscribed(call.use(EventService).subscribe(
            call.principal, _types(EventTypes), ExpiresIn,
            None if Domain is None else str(Domain)))

    @operation(required(Unicode), optional(Integer64), optional(Integer32),
               optional(Integer32), **_BATCH)
    def GetEvents(ctx: Any, SubscriptionId: str, Cursor: int | None, Wait: int | None,
                  MaxEvents: int | None) -> tuple[Any, ...]:
        call = call_of(ctx)
        return _batch(call.use(EventService).get_events(
            call.principal, str(SubscriptionId), Cursor, Wait, MaxEvents))

    @operation(required(Unicode), optional(Integer32), returns=required(Unicode),
               names="Expires")
    def Renew(ctx: Any, SubscriptionId: str, ExpiresIn: int | None) -> str:
        call = call_of(ctx)
        renewed = call.use(EventService).renew(call.principal, str(SubscriptionId), ExpiresIn)
        return iso(renewed.expires_at)

    @operation(required(Unicode), returns=required(Unicode), names="SubscriptionId")
    def Unsubscribe(ctx: Any, SubscriptionId: str) -> str:
        call = call_of(ctx)
        call.use(EventService).unsubscribe(call.principal, str(SubscriptionId))
        return str(SubscriptionId)
