"""Long polls through the real front (``Worker`` on loopback, TLS, h11) and the SOAP
endpoint: parked GetEvents hold no thread, so a worker with two pool threads still
answers other guests' reads and writes while a hundred wait; each parked request is
answered once an event for it is appended (through this worker, or by another process:
straight into the store), with every event of its domain in order; a wait that is over
answers empty, whatever the front's idle and write bounds; a stopping worker answers the
parked requests at once."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from bios_ws.bootstrap import initialize_home
from bios_ws.domain.principal import Principal
from bios_ws.home import Home
from bios_ws.server.options import Bounds
from bios_ws.service.event_subscriptions import EventService
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY
from bios_ws.soap.testing import Endpoint, build_endpoint, soap_envelope
from tests.front_support import RunningFront, read_response, request, running_front
from tests.waiting import wait_for

T = "{urn:bios-ws:vbios:v1}"
DOMAINS = ("vm0", "vm1", "vm2", "vm3")


class AsCaller:
    """The endpoint behind a stand-in for the TLS identity: the caller is the guest the
    X-Guest header names."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[PRINCIPAL_ENVIRON_KEY] = Principal.guest(environ["HTTP_X_GUEST"])
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return initialize_home(Path(tmp_path_factory.mktemp("events")) / "home")


@pytest.fixture
def ep() -> Endpoint:
    endpoint = build_endpoint(DOMAINS[0])
    for domain in DOMAINS[1:]:
        endpoint.domains.create(endpoint.admin, domain)
    return endpoint


def call(sock: socket.socket, guest: str, operation: str, inner: str = "") -> None:
    sock.sendall(request(body=soap_envelope(operation, inner), headers=(
        "Content-Type: text/xml; charset=utf-8", f"X-Guest: {guest}")))


def answer(sock: socket.socket) -> etree._Element:
    status, _, body = read_response(sock)
    assert status == 200, body
    return etree.fromstring(body)


def get_events(sock: socket.socket, guest: str, subscription: str, cursor: int,
               wait: int = 30) -> None:
    call(sock, guest, "GetEvents", f"<tns:SubscriptionId>{subscription}</tns:SubscriptionId>"
         f"<tns:Cursor>{cursor}</tns:Cursor><tns:Wait>{wait}</tns:Wait>")


def events_of(reply: etree._Element) -> list[tuple[int, str | None]]:
    return [(int(str(e.findtext(f"{T}EventId"))), e.findtext(f"{T}Domain"))
            for e in reply.iter(f"{T}Event")]


def parked(front: RunningFront) -> int:
    return int(front.in_loop(lambda: front.worker.parking.parked))


def write(ep: Endpoint, guest: str, value: str) -> None:
    """A guest's write straight into the store, as another process makes it."""
    ep.bios.set_attributes(Principal.guest(guest), {"AssetTag": value})


def test_a_hundred_parked_long_polls_hold_no_thread_and_miss_no_event(
        home: Home, ep: Endpoint) -> None:
    service = ep.use_cases.use(EventService)
    guests = [DOMAINS[n % 4] for n in range(100)]
    subscriptions = [service.subscribe(Principal.guest(g)) for g in guests]
    cursors = [s.start_cursor for s in subscriptions]
    received: list[list[int]] = [[] for _ in guests]
    with running_front(home, AsCaller(ep.app), Bounds(), threads=2) as front:
        socks = [front.tls() for _ in guests]
        try:
            for n, sock in enumerate(socks):
                get_events(sock, guests[n], subscriptions[n].subscription_id, cursors[n])
            wait_for(lambda: parked(front) == 100, "a hundred long polls parked", 20)

            # other guests are served meanwhile, reads on the loop and writes on a thread
            with front.tls() as other:
                call(other, "vm1", "GetAttributes")
                assert answer(other).find(f".//{T}Version") is not None
                call(other, "vm1", "SetAttributes", "<tns:Attributes><tns:AttributeValue>"
                     "<tns:Name>AssetTag</tns:Name><tns:StringValue>one</tns:StringValue>"
                     "</tns:AttributeValue></tns:Attributes><tns:ApplyTime>Immediate"
                     "</tns:ApplyTime>")
                assert answer(other).find(f".//{T}Version") is not None
            # the write woke vm1's 25 subscribers at once (this worker ran it)
            for n in (n for n, g in enumerate(guests) if g == "vm1"):
                reply = answer(socks[n])
                assert [d for _, d in events_of(reply)] == ["vm1"]
                received[n] += [i for i, _ in events_of(reply)]
                cursors[n] = int(str(reply.findtext(f".//{T}NextCursor")))
            assert parked(front) == 75

            # ten events per domain from "another process": found by the worker's polling
            for round_ in range(10):
                for domain in DOMAINS:
                    write(ep, domain, f"{domain}-{round_}")
            for n, sock in enumerate(socks):
                if guests[n] == "vm1":
                    get_events(sock, guests[n], subscriptions[n].subscription_id, cursors[n])
                while len(received[n]) < (11 if guests[n] == "vm1" else 10):
                    reply = answer(sock)
                    assert {d for _, d in events_of(reply)} <= {guests[n]}
                    received[n] += [i for i, _ in events_of(reply)]
                    cursors[n] = int(str(reply.findtext(f".//{T}NextCursor")))
                    if len(received[n]) < (11 if guests[n] == "vm1" else 10):
                        get_events(sock, guests[n], subscriptions[n].subscription_id,
                                   cursors[n])
        finally:
            for sock in socks:
                sock.close()
    with ep.store.unit_of_work() as uow:
        every = uow.events.marks_after(0, 10_000)
    for n, guest in enumerate(guests):
        expected = [m.event_id for m in every
                    if m.scope == guest and m.event_id > subscriptions[n].start_cursor]
        assert received[n] == expected  # in order, none missing, none twice


def test_a_wait_that_is_over_answers_empty_whatever_the_front_bounds(
        home: Home, ep: Endpoint) -> None:
    subscription = ep.use_cases.use(EventService).subscribe(Principal.guest("vm0"))
    tight = Bounds(handshake_timeout=1.0, head_timeout=0.5, idle_timeout=0.3,
                   write_timeout=0.5)
    with running_front(home, AsCaller(ep.app), tight) as front, front.tls() as sock:
        get_events(sock, "vm0", subscription.subscription_id, subscription.start_cursor,
                   wait=2)
        reply = answer(sock)  # past the head, idle and write bounds, still answered
    assert events_of(reply) == []
    assert int(str(reply.findtext(f".//{T}NextCursor"))) == subscription.start_cursor


def test_a_stopping_worker_answers_its_parked_long_polls_at_once(
        home: Home, ep: Endpoint) -> None:
    service = ep.use_cases.use(EventService)
    subscriptions = [service.subscribe(Principal.guest("vm2")) for _ in range(3)]
    with running_front(home, AsCaller(ep.app), Bounds(), drain_timeout=30) as front:
        socks = [front.tls() for _ in subscriptions]
        for sock, subscription in zip(socks, subscriptions, strict=True):
            get_events(sock, "vm2", subscription.subscription_id, subscription.start_cursor)
        wait_for(lambda: parked(front) == 3, "three long polls parked", 20)
        front.stop()
        for sock in socks:
            status, headers, body = read_response(sock)
            assert (status, headers["connection"]) == (200, "close")
            assert events_of(etree.fromstring(body)) == []
            sock.close()
