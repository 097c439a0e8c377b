"""Cached reads through the forwarder (``server.forwarding``, ``server.answer_cache``), with
the stand-in remote of ``tests.forwarding_support`` on loopback: a route with a cache
answers a read from the remote's last answer while the remote is down, slow or
refusing, saying so (Age, X-Vbios-Cached), only while that answer is young enough;
never a write, never without the route's cache. The cache's clock is the test's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bios_ws.soap.guard import FAULT_ENVIRON_KEY
from tests.forwarding_support import ADMIN, Host, StandIn, host_a, stand_in, value
from tests.routing_support import RemoteInstallation


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[tuple[StandIn, Host]]:
    installation = RemoteInstallation()
    with stand_in(installation, tmp_path) as remote, host_a(installation, tmp_path) as host:
        host.add_remote(remote.url)
        yield remote, host


def cached(result: tuple[str, bytes, dict[str, Any]], body: bytes, age: int) -> None:
    status, data, environ = result
    assert (status, data) == ("200 OK", body)
    headers = environ["headers"]
    assert headers["Age"] == str(age)
    assert headers["X-Vbios-Cached"] == f"remote=cloud-b; age={age}"
    assert headers["Cache-Control"] == "no-store"
    assert FAULT_ENVIRON_KEY not in environ


def fresh(result: tuple[str, bytes, dict[str, Any]], body: bytes) -> None:
    status, data, environ = result
    assert (status, data) == ("200 OK", body)
    assert "Age" not in environ["headers"] and "X-Vbios-Cached" not in environ["headers"]


def unavailable(result: tuple[str, bytes, dict[str, Any]]) -> None:
    status, data, environ = result
    assert status.startswith("500") and b"RemoteUnavailable" in data
    assert environ[FAULT_ENVIRON_KEY] == "RemoteUnavailable"
    assert "Age" not in environ["headers"]


def test_a_read_is_answered_from_the_cache_while_the_remote_is_down(
        stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "settings", "cloud-b", cache_seconds=60)
    fresh(host.call("GetAttributes"), value(7))
    remote.remote.version = 8
    fresh(host.call("GetAttributes"), value(8))  # the newest answer is kept
    fresh(host.call("GetBootOrder"), value(8))
    remote.stop()
    host.clock.now += 12.5
    cached(host.call("GetAttributes"), value(8), 12)
    cached(host.call("GetBootOrder"), value(8), 12)
    unavailable(host.call("GetAttributes", inner="<tns:Names/>"))  # another question
    unavailable(host.call("GetPendingAttributes"))  # never asked: nothing to serve
    unavailable(host.call("GetAttributes", domain="vm2"))  # another domain's
    host.clock.now += 47
    cached(host.call("GetAttributes"), value(8), 59)
    host.clock.now += 1  # 60 s old: as old as the route allows, not younger
    unavailable(host.call("GetAttributes"))
    assert host.local_calls == []


def test_a_slow_or_refusing_remote_gives_the_cached_answer_too(
        stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1", cache_seconds=30)
    fresh(host.call("GetAttributes"), value(7))
    remote.remote.close_without_answer = 2  # read, then the connection closed: twice
    cached(host.call("GetAttributes"), value(7), 0)
    assert len(remote.remote.seen) == 3  # the read went once more, then the cache
    remote.remote.delay = 3.0  # longer than the bound (1 s)
    host.clock.now += 5
    cached(host.call("GetAttributes"), value(7), 5)


def test_writes_are_never_cached_and_a_write_drops_the_domain_s_answers(
        stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "settings", "cloud-b", cache_seconds=60)
    fresh(host.call("GetAttributes"), value(7))
    fresh(host.call("GetAttributes", domain="vm2"), value(7))
    fresh(host.call("SetAttributes"), value(7))  # vm1's state changed on the remote
    remote.stop()
    unavailable(host.call("SetAttributes"))  # a write: never from the cache
    unavailable(host.call("GetAttributes"))  # vm1's answer went with its write
    cached(host.call("GetAttributes", domain="vm2"), value(7), 0)  # vm2's stays


def test_a_write_that_never_reached_the_remote_keeps_the_answers(
        stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "settings", "cloud-b", cache_seconds=60)
    fresh(host.call("GetSecureBoot"), value(7))
    remote.stop()
    unavailable(host.call("SetSecureBoot"))  # refused connection: not run there
    cached(host.call("GetSecureBoot"), value(7), 0)


def test_a_write_whose_answer_was_lost_drops_the_answers(stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "settings", "cloud-b", cache_seconds=60)
    fresh(host.call("GetAttributes"), value(7))
    remote.remote.close_without_answer = 1  # the write arrived: it may have been run
    unavailable(host.call("SetAttributes"))
    remote.stop()
    unavailable(host.call("GetAttributes"))


def test_a_write_the_remote_refused_keeps_the_answers(stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "settings", "cloud-b", cache_seconds=60)
    fresh(host.call("GetAttributes"), value(7))
    remote.remote.answer = "fault"
    status, _, _ = host.call("SetAttributes")  # VersionConflict: nothing changed there
    assert status.startswith("500")
    remote.stop()
    cached(host.call("GetAttributes"), value(7), 0)


def test_a_read_the_remote_answers_with_a_fault_drops_its_cached_answer(
        stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "events", "cloud-b", cache_seconds=60)
    fresh(host.call("GetEvents"), value(7))
    remote.remote.answer = "fault"  # e.g. the remote no longer lets the host read it
    status, _, environ = host.call("GetEvents")
    assert status.startswith("500") and "Age" not in environ["headers"]
    remote.stop()
    unavailable(host.call("GetEvents"))


def test_without_a_cache_on_the_route_nothing_is_served_from_one(
        stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    fresh(host.call("GetAttributes"), value(7))
    remote.stop()
    unavailable(host.call("GetAttributes"))
    assert len(host.forwarder.cache) == 0  # nor kept


def test_a_cache_set_after_the_answers_came_has_none_and_local_routes_drop_it(
        stand: tuple[StandIn, Host]) -> None:
    remote, host = stand
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    fresh(host.call("GetAttributes"), value(7))
    host.routing.set_route(ADMIN, "settings", "cloud-b", cache_seconds=60)
    remote.stop()
    unavailable(host.call("GetAttributes"))
    host.routing.set_route(ADMIN, "settings", "local")
    assert host.call("GetAttributes")[1] == b"local"  # served here, as routed
