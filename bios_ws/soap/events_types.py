"""The events contract's types: Redfish-style events and the names of their types.

An event carries EventId (the cursor of whoever read it), EventType, EventTimestamp (ISO
8601 UTC), Severity (OK, Warning, Critical), Message, MessageId, MessageArgs,
OriginOfCondition (the resource it is about, as a path) and the Domain it is about
(absent for a host-wide event).
"""

from __future__ import annotations

from spyne import ComplexModel, Enum, Integer64, Unicode

from bios_ws.domain.events import EventType as EventTypeValue
from bios_ws.domain.events import Severity
from bios_ws.soap.types import TNS, optional, repeated, required

EventTypeType = Enum(*(kind.value for kind in EventTypeValue), type_name="EventType"
                     ).customize(__namespace__=TNS)
EventSeverityType = Enum(*(severity.value for severity in Severity),
                         type_name="EventSeverity").customize(__namespace__=TNS)


class EventTypeList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("EventType", repeated(EventTypeType))]


class MessageArgList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Arg", repeated(Unicode))]


class Event(ComplexModel):  # type: ignore[misc]
    """One event, as a Redfish event record describes it."""

    __namespace__ = TNS
    _type_info = [
        ("EventId", required(Integer64)),
        ("EventType", required(EventTypeType)),
        ("EventTimestamp", required(Unicode)),
        ("Severity", required(EventSeverityType)),
        ("Message", required(Unicode)),
        ("MessageId", required(Unicode)),
        ("MessageArgs", required(MessageArgList)),
        ("OriginOfCondition", required(Unicode)),
        ("Domain", optional(Unicode)),
    ]


class EventList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Event", repeated(Event))]
