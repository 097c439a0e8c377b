"""The event operations through XML, in-process (``build_endpoint``: memory store, manual
clock): Subscribe, GetEvents, Renew, Unsubscribe, who sees what, cursors and pages, the
typed faults; and GetEvents in a front that parks requests (``blocking.parking``)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bios_ws.blocking import WaitForEvents, parking
from bios_ws.domain.events import EXPIRED_KEPT, EventMark, EventRetention, EventType
from bios_ws.domain.principal import Principal
from bios_ws.service.event_subscriptions import EventService
from bios_ws.service.integrity import IntegrityMonitor, untrusted
from bios_ws.soap.testing import NS, Endpoint, WsgiResult, build_endpoint

T = "{urn:bios-ws:vbios:v1}"


@pytest.fixture
def ep() -> Endpoint:
    endpoint = build_endpoint()
    endpoint.domains.create(endpoint.admin, "vm2")
    return endpoint


def ok(result: WsgiResult) -> WsgiResult:
    assert result.status == 200, result.body
    return result


def fault(result: WsgiResult) -> tuple[str | None, str | None]:
    assert result.status == 500, result.body
    return result.detail("Code"), result.detail("Attribute")


def subscribe(ep: Endpoint, inner: str = "", as_: Principal | None = None) -> str:
    reply = ok(ep.call("Subscribe", inner, as_=as_))
    found = reply.text("soap:Body/tns:SubscribeResponse/tns:SubscriptionId")
    assert found and re.fullmatch("[0-9a-f]{32}", found)
    return found


def get_events(ep: Endpoint, subscription: str, extra: str = "",
               as_: Principal | None = None) -> WsgiResult:
    return ep.call("GetEvents", f"<tns:SubscriptionId>{subscription}</tns:SubscriptionId>"
                   f"{extra}", as_=as_)


def event_ids(reply: WsgiResult) -> list[int]:
    return [int(str(e.findtext(f"{T}EventId")))
            for e in reply.xml().iterfind(".//tns:Events/tns:Event", NS)]


def next_cursor(reply: WsgiResult) -> int:
    return int(str(reply.text("soap:Body/tns:GetEventsResponse/tns:NextCursor")))


def touch(ep: Endpoint, who: str = "vm1", value: str = "x") -> None:
    ep.bios.set_attributes(Principal.guest(who), {"AssetTag": value})


def service(ep: Endpoint) -> EventService:
    return ep.use_cases.use(EventService)


def test_a_guest_subscribes_and_reads_its_events_in_redfish_fields(ep: Endpoint) -> None:
    touch(ep, value="before")  # not seen: the subscription starts after the newest event
    reply = ok(ep.call("Subscribe"))
    body = "soap:Body/tns:SubscribeResponse"
    assert reply.text(f"{body}/tns:Expires") == "2026-01-01T01:00:00.000Z"
    start = int(str(reply.text(f"{body}/tns:Cursor")))
    subscription = str(reply.text(f"{body}/tns:SubscriptionId"))
    touch(ep, value="after")
    events = ok(get_events(ep, subscription))
    [event] = events.xml().iterfind(".//tns:Events/tns:Event", NS)
    fields = {child.tag.removeprefix(T): child for child in event}
    assert list(fields) == ["EventId", "EventType", "EventTimestamp", "Severity", "Message",
                            "MessageId", "MessageArgs", "OriginOfCondition", "Domain"]
    assert int(str(fields["EventId"].text)) == start + 1
    assert (fields["EventType"].text, fields["Severity"].text, fields["MessageId"].text) == (
        "SettingsChanged", "OK", "VbiosEvent.1.0.SettingsChanged")
    assert fields["EventTimestamp"].text == "2026-01-01T00:00:00.000Z"
    assert [a.text for a in fields["MessageArgs"]] == ["vm1", "SetAttributes", "3"]
    assert fields["Message"].text == ("The settings of domain vm1 changed (SetAttributes);"
                                      " they are at version 3.")
    assert (fields["OriginOfCondition"].text, fields["Domain"].text) == (
        "/vbios/domains/vm1/Bios", "vm1")
    assert next_cursor(events) == start + 1
    assert events.text("soap:Body/tns:GetEventsResponse/tns:EventsLost") == "false"


def test_a_guest_sees_its_domain_and_the_host_never_another_domain(ep: Endpoint) -> None:
    subscription = subscribe(ep)
    touch(ep, "vm2")
    touch(ep, "vm1")
    monitor = IntegrityMonitor(ep.store.unit_of_work, lambda: None,  # type: ignore[arg-type]
                               lambda: None, ep.clock.now)
    monitor._record(untrusted("pcr-mismatch", "PCR 0 differs"), ep.clock.now())
    reply = ok(get_events(ep, subscription))
    types = [e.text for e in reply.xml().iterfind(".//tns:Event/tns:EventType", NS)]
    assert types == ["SettingsChanged", "IntegrityChanged"]
    host = reply.xml().findall(".//tns:Event", NS)[1]
    assert host.find("tns:Domain", NS) is None  # host-wide: no Domain
    assert host.findtext("tns:Severity", namespaces=NS) == "Critical"


def test_types_filter_what_a_subscription_gets(ep: Endpoint) -> None:
    subscription = subscribe(
        ep, "<tns:EventTypes><tns:EventType>PowerStateChanged</tns:EventType></tns:EventTypes>")
    touch(ep)
    ok(ep.call("Reset", "<tns:ResetType>On</tns:ResetType>"))
    reply = ok(get_events(ep, subscription))
    assert [e.text for e in reply.xml().iterfind(".//tns:EventType", NS)] == [
        "PowerStateChanged"]
    assert fault(ep.call("Subscribe", "<tns:EventTypes><tns:EventType>Nope</tns:EventType>"
                                      "</tns:EventTypes>"))[0] == "InvalidRequest"


def test_the_cursor_reads_on_in_pages_and_never_repeats(ep: Endpoint) -> None:
    subscription = subscribe(ep)
    for n in range(5):
        touch(ep, value=str(n))
    first = ok(get_events(ep, subscription, "<tns:MaxEvents>2</tns:MaxEvents>"))
    assert len(event_ids(first)) == 2
    seen = event_ids(first)
    cursor = next_cursor(first)
    while True:
        page = ok(get_events(ep, subscription, f"<tns:Cursor>{cursor}</tns:Cursor>"
                                               "<tns:MaxEvents>2</tns:MaxEvents>"))
        if not event_ids(page):
            break
        seen += event_ids(page)
        cursor = next_cursor(page)
    assert seen == sorted(set(seen)) and len(seen) == 5
    assert next_cursor(page) == cursor


def test_an_older_cursor_reads_again_and_one_ahead_is_refused(ep: Endpoint) -> None:
    subscription = subscribe(ep)
    touch(ep)
    assert event_ids(ok(get_events(ep, subscription, "<tns:Cursor>0</tns:Cursor>")))
    assert fault(get_events(ep, subscription, "<tns:Cursor>999</tns:Cursor>")) == (
        "InvalidRequest", "Cursor")
    assert fault(get_events(ep, subscription, "<tns:Cursor>-1</tns:Cursor>")) == (
        "InvalidRequest", "Cursor")


def test_in_process_a_wait_answers_at_once_and_a_long_one_is_not_refused(
        ep: Endpoint) -> None:
    subscription = subscribe(ep)
    reply = ok(get_events(ep, subscription, "<tns:Wait>3600</tns:Wait>"))
    assert event_ids(reply) == [] and next_cursor(reply) >= 0
    assert fault(get_events(ep, subscription, "<tns:Wait>-1</tns:Wait>")) == (
        "InvalidRequest", "Wait")


def test_a_subscription_is_its_guests_and_the_admins_alone(ep: Endpoint) -> None:
    subscription = subscribe(ep)
    other = Principal.guest("vm2")
    assert fault(get_events(ep, subscription, as_=other))[0] == "UnknownSubscription"
    assert fault(get_events(ep, "f" * 32))[0] == "UnknownSubscription"
    assert fault(get_events(ep, "not an id"))[0] == "UnknownSubscription"
    ok(get_events(ep, subscription, as_=ep.admin))
    assert fault(ep.call("Unsubscribe", f"<tns:SubscriptionId>{subscription}"
                                        "</tns:SubscriptionId>", as_=other))[0] == \
        "UnknownSubscription"


def test_expiry_renewal_and_the_end_of_a_subscription(ep: Endpoint) -> None:
    subscription = subscribe(ep, "<tns:ExpiresIn>60</tns:ExpiresIn>")
    ep.clock.advance(50)
    renewed = ok(ep.call("Renew", f"<tns:SubscriptionId>{subscription}</tns:SubscriptionId>"
                                  "<tns:ExpiresIn>100</tns:ExpiresIn>"))
    assert renewed.text("soap:Body/tns:RenewResponse/tns:Expires") == \
        "2026-01-01T00:02:30.000Z"
    ep.clock.advance(99)
    ok(get_events(ep, subscription))
    ep.clock.advance(1)
    assert fault(get_events(ep, subscription))[0] == "SubscriptionExpired"
    assert fault(ep.call("Renew", f"<tns:SubscriptionId>{subscription}"
                                  "</tns:SubscriptionId>"))[0] == "SubscriptionExpired"
    ok(ep.call("Unsubscribe", f"<tns:SubscriptionId>{subscription}</tns:SubscriptionId>"))
    assert fault(get_events(ep, subscription))[0] == "UnknownSubscription"


def test_an_expired_subscription_is_forgotten_by_the_retention(ep: Endpoint) -> None:
    subscription = subscribe(ep, "<tns:ExpiresIn>10</tns:ExpiresIn>")
    ep.clock.advance(10)
    service(ep).prune()
    assert fault(get_events(ep, subscription))[0] == "SubscriptionExpired"
    ep.clock.advance(EXPIRED_KEPT.total_seconds() + 1)
    service(ep).prune()
    assert fault(get_events(ep, subscription))[0] == "UnknownSubscription"


def test_events_lost_to_retention_are_said(ep: Endpoint) -> None:
    subscription = subscribe(ep)
    for n in range(4):
        touch(ep, value=str(n))
    service(ep).retention = EventRetention(max_events=1)
    assert service(ep).prune() >= 3
    reply = ok(get_events(ep, subscription, "<tns:Cursor>0</tns:Cursor>"))
    assert len(event_ids(reply)) == 1
    assert reply.text("soap:Body/tns:GetEventsResponse/tns:EventsLost") == "true"
    again = ok(get_events(ep, subscription, f"<tns:Cursor>{next_cursor(reply)}</tns:Cursor>"))
    assert again.text("soap:Body/tns:GetEventsResponse/tns:EventsLost") == "false"


def test_the_admin_subscribes_to_every_domain_or_one(ep: Endpoint) -> None:
    every = subscribe(ep, as_=ep.admin)
    only_vm2 = subscribe(ep, "<tns:Domain>vm2</tns:Domain>", as_=ep.admin)
    touch(ep, "vm1")
    touch(ep, "vm2")
    assert len(event_ids(ok(get_events(ep, every, as_=ep.admin)))) == 2
    [vm2] = ok(get_events(ep, only_vm2, as_=ep.admin)).xml().iterfind(".//tns:Domain", NS)
    assert vm2.text == "vm2"
    assert fault(ep.call("Subscribe", "<tns:Domain>vm9</tns:Domain>", as_=ep.admin))[0] == \
        "DomainNotFound"
    assert fault(ep.call("Subscribe", "<tns:Domain>vm2</tns:Domain>"))[0] == "AccessDenied"
    ok(ep.call("Subscribe", "<tns:Domain>vm1</tns:Domain>"))  # its own: as naming none


def test_subscriptions_are_audited_refusals_too(ep: Endpoint) -> None:
    subscription = subscribe(ep)
    ok(ep.call("Unsubscribe", f"<tns:SubscriptionId>{subscription}</tns:SubscriptionId>"))
    ep.call("Subscribe", "<tns:Domain>vm2</tns:Domain>")
    audited = [(e.operation, e.outcome) for e in ep.store.audit[-3:]]
    assert audited == [("Subscribe", "ok"), ("Unsubscribe", "ok"),
                       ("Subscribe", "refused:AccessDenied")]


# -- in a front that parks requests --------------------------------------------------------


def test_nothing_new_in_a_parking_front_raises_wait_for_events(ep: Endpoint) -> None:
    subscription = subscribe(ep)
    touch(ep, "vm1")
    head = service(ep).get_events(ep.guest, subscription).next_cursor
    with pytest.raises(WaitForEvents) as parked, parking(True):
        get_events(ep, subscription, f"<tns:Cursor>{head}</tns:Cursor><tns:Wait>90</tns:Wait>")
    wait = parked.value
    assert (wait.after, wait.seconds) == (head, 30)
    assert wait.feed(0, 10) == service(ep).marks_after(0, 10)
    assert wait.wanted(EventMark(head + 1, "vm1", EventType.SETTINGS_CHANGED))
    assert wait.wanted(EventMark(head + 1, "", EventType.INTEGRITY_CHANGED))
    assert not wait.wanted(EventMark(head + 1, "vm2", EventType.SETTINGS_CHANGED))


def test_in_a_parking_front_events_or_no_wait_or_waiting_off_answer(ep: Endpoint) -> None:
    subscription = subscribe(ep)
    with parking(True):
        assert event_ids(ok(get_events(ep, subscription))) == []  # no Wait
        touch(ep)
        assert len(event_ids(ok(get_events(ep, subscription, "<tns:Wait>5</tns:Wait>")))) == 1
        cursor = next_cursor(ok(get_events(ep, subscription)))
    with parking(False):  # the wait is over: what there is (nothing new), and the cursor
        reply = ok(get_events(ep, subscription,
                              f"<tns:Cursor>{cursor}</tns:Cursor><tns:Wait>5</tns:Wait>"))
    assert (event_ids(reply), next_cursor(reply)) == ([], cursor)


def test_expires_is_in_every_answer(ep: Endpoint) -> None:
    subscription = subscribe(ep, "<tns:ExpiresIn>120</tns:ExpiresIn>")
    reply = ok(get_events(ep, subscription))
    assert reply.text("soap:Body/tns:GetEventsResponse/tns:Expires") == \
        (ep.clock.now() + timedelta(seconds=120)).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
