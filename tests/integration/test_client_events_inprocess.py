"""The guest library's event calls and its iterator, through its own codec and bundled
WSDL, against the in-process endpoint (memory store, manual clock; a sender that hands
each request to the WSGI app as the guest). In-process nothing waits: an empty answer
comes at once, and the iterator's pause (replaced here) is where the test makes events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import vbios_client as vc
from vbios_client import _events
from vbios_client._channel import SoapChannel
from vbios_client.exceptions import TransportError

from bios_ws.domain.principal import Principal
from bios_ws.soap.testing import Endpoint, build_endpoint, call_wsgi

URL = "https://vbios.test:8443/"


class InProcess:
    """A sender to the endpoint as ``principal``; ``fail`` calls in a row raise first."""

    def __init__(self, ep: Endpoint, principal: Principal) -> None:
        self.ep, self.principal = ep, principal
        self.calls: list[tuple[str, float]] = []
        self.fail = 0

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
             operation: str) -> tuple[int, bytes]:
        self.calls.append((operation, timeout))
        if self.fail:
            self.fail -= 1
            raise TransportError(f"{url}: connection refused")
        result = call_wsgi(self.ep.app, body, principal=self.principal)
        return result.status, result.body

    def close(self) -> None:
        pass

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]


def client_of(sender: InProcess) -> vc.BiosClient:
    client = vc.BiosClient.__new__(vc.BiosClient)
    client._current = SoapChannel(URL, sender, timeout=10)
    client._paths = client._ca_path = client._renewal = None
    client._clocks = {}
    return client


@pytest.fixture
def ep(monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    endpoint = build_endpoint()
    endpoint.domains.create(endpoint.admin, "vm2")
    monkeypatch.setattr(_events, "_now", endpoint.clock.now)  # the client's clock, the same
    return endpoint


@pytest.fixture
def sender(ep: Endpoint) -> InProcess:
    return InProcess(ep, ep.guest)


@pytest.fixture
def bios(sender: InProcess) -> vc.BiosClient:
    return client_of(sender)


def touch(ep: Endpoint, who: str = "vm1", value: str = "x") -> None:
    ep.bios.set_attributes(Principal.guest(who), {"AssetTag": value})


def pauses(monkeypatch: pytest.MonkeyPatch, then: Callable[[int], None]) -> list[float]:
    """Replace the iterator's pauses: each calls ``then(n)`` (n: pauses so far)."""
    seen: list[float] = []

    def pause(seconds: float) -> None:
        seen.append(seconds)
        then(len(seen))
    monkeypatch.setattr(_events, "_sleep", pause)
    return seen


def test_subscribe_read_renew_and_unsubscribe(ep: Endpoint, bios: vc.BiosClient,
                                              sender: InProcess) -> None:
    subscription = bios.subscribe(["SettingsChanged"], expires_in=600)
    assert isinstance(subscription, vc.EventSubscription)
    assert subscription.expires == datetime.fromisoformat("2026-01-01T00:10:00+00:00")
    touch(ep)
    batch = bios.get_events(subscription.subscription_id, wait=25)
    assert isinstance(batch, vc.EventBatch) and not batch.events_lost
    [event] = batch.events
    assert event == vc.Event(
        event_id=subscription.cursor + 1, event_type="SettingsChanged",
        timestamp=ep.clock.now(), severity="OK",
        message="The settings of domain vm1 changed (SetAttributes); they are at version 2.",
        message_id="VbiosEvent.1.0.SettingsChanged",
        message_args=("vm1", "SetAttributes", "2"), origin="/vbios/domains/vm1/Bios",
        domain="vm1")
    assert batch.next_cursor == event.event_id
    assert sender.calls[-1] == ("GetEvents", 35.0)  # the wait is added to the call's timeout
    assert bios.renew_subscription(subscription.subscription_id, expires_in=60) == \
        datetime.fromisoformat("2026-01-01T00:01:00+00:00")
    bios.unsubscribe(subscription.subscription_id)
    with pytest.raises(vc.UnknownSubscription):
        bios.get_events(subscription.subscription_id)


def test_arguments_are_checked_before_anything_is_sent(bios: vc.BiosClient,
                                                       sender: InProcess) -> None:
    with pytest.raises(ValueError, match="unknown event types Nope"):
        bios.subscribe(["Nope"])
    with pytest.raises(TypeError):
        bios.subscribe("SettingsChanged")
    for bad in ({"wait": -1}, {"max_events": 0}, {"cursor": -2}):
        with pytest.raises(ValueError):
            bios.get_events("a" * 32, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bios.events(wait=31)
    assert sender.calls == []


def test_the_iterator_yields_each_event_once_in_order_as_they_come(
        ep: Endpoint, bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(ep, value="before")  # before the subscription: not seen
    pauses(monkeypatch, lambda n: [touch(ep, "vm2", f"{n}"), touch(ep, "vm1", f"{n}")])
    with bios.events(["SettingsChanged"], wait=20) as stream:
        seen = [next(stream) for _ in range(5)]
        assert stream.cursor == seen[-1].event_id
    assert [e.domain for e in seen] == ["vm1"] * 5
    assert [e.event_id for e in seen] == sorted({e.event_id for e in seen})
    assert [e.message_args[2] for e in seen] == ["3", "4", "5", "6", "7"]  # none missed


def test_closing_the_stream_ends_its_subscription(
        ep: Endpoint, bios: vc.BiosClient, sender: InProcess,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pauses(monkeypatch, lambda n: touch(ep, value=str(n)))
    stream = bios.events()
    next(stream)
    stream.close()
    assert sender.operations()[-1] == "Unsubscribe"
    with ep.store.unit_of_work() as uow:
        assert uow.events.subscriptions() == []
    with pytest.raises(StopIteration):
        next(stream)


def test_the_iterator_renews_and_subscribes_again_from_its_cursor(
        ep: Endpoint, bios: vc.BiosClient, sender: InProcess,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def later(n: int) -> None:
        ep.clock.advance(200)  # the subscription lasts 600 s: renewed, then let expire
        touch(ep, value=str(n))
    pauses(monkeypatch, later)
    stream = bios.events(expires_in=600, wait=10)
    seen = [next(stream).event_id for _ in range(3)]
    assert "Renew" in sender.operations()
    with ep.store.unit_of_work() as uow:  # the vBIOS forgets the subscription
        uow.events.remove_subscription(str(stream.subscription_id))
        uow.commit()
    touch(ep, value="while gone")
    seen += [next(stream).event_id for _ in range(2)]
    assert sender.operations().count("Subscribe") == 2
    assert seen == sorted(set(seen)) and len(seen) == 5
    with ep.store.unit_of_work() as uow:
        marks = [m.event_id for m in uow.events.marks_after(seen[0] - 1, 100)
                 if m.scope == "vm1"]
    assert seen == marks[:5]  # nothing skipped while it subscribed again
    stream.close()


def test_the_iterator_survives_a_few_failed_calls_not_more(
        ep: Endpoint, bios: vc.BiosClient, sender: InProcess,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = pauses(monkeypatch, lambda n: None)
    touch(ep)
    stream = bios.events(cursor=0)
    sender.fail = 3
    assert next(stream).event_type == "SettingsChanged"
    assert seen[:3] == [0.5, 1.0, 2.0]  # backing off between failures
    sender.fail = _events.MAX_FAILURES + 1
    with pytest.raises(TransportError):
        next(stream)


def test_an_early_empty_answer_is_followed_by_a_pause_not_a_call_at_once(
        ep: Endpoint, bios: vc.BiosClient, sender: InProcess,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = pauses(monkeypatch, lambda n: touch(ep, value=str(n)) if n == 3 else None)
    stream = bios.events(wait=30)
    next(stream)
    assert seen == [_events.EARLY_PAUSE] * 3
    assert sender.operations().count("GetEvents") == 4
    stream.close()


def test_a_cursor_given_reads_from_there(ep: Endpoint, bios: vc.BiosClient,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(3):
        touch(ep, value=str(n))
    pauses(monkeypatch, lambda n: None)
    with ep.store.unit_of_work() as uow:
        first = uow.events.marks_after(0, 100)[0].event_id
    with bios.events(cursor=first) as stream:
        assert [next(stream).event_id for _ in range(2)] == [first + 1, first + 2]


def test_the_admin_sees_every_domain(ep: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = client_of(InProcess(ep, ep.admin))
    pauses(monkeypatch, lambda n: [touch(ep, "vm1"), touch(ep, "vm2")])
    with admin.events() as stream:
        assert {next(stream).domain for _ in range(2)} == {"vm1", "vm2"}


def test_event_of_reads_a_host_wide_event_without_domain() -> None:
    class Wire:
        EventId, EventType, EventTimestamp, Severity = 9, "IntegrityChanged", \
            "2026-01-01T00:00:00.000Z", "Critical"
        Message, MessageId, OriginOfCondition = "m", "VbiosEvent.1.0.IntegrityChanged", "/h"
        MessageArgs: Any = None
    event = _events.event_of(Wire())
    assert (event.domain, event.message_args, event.severity) == (None, (), "Critical")
