"""Forwarding's connections to the remote (``server.remote_pool``, and
``server.remote_pool_async`` on a worker's loop), against the stand-in remote of
``tests.forwarding_support``: kept alive and reused, an idle one the remote closed seen
before reuse, and the resend rule (a request goes once more only when running it twice
is running it once)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bios_ws.domain.routing import Remote
from bios_ws.errors import RemoteUnavailable
from bios_ws.server.forwarding import ON_BEHALF_OF
from bios_ws.server.remote_pool import _quiet
from tests.forwarding_support import (  # the fixtures too
    ADMIN,
    VALUE,
    CannedRemote,
    Host,
    StandIn,
    canned,
    host,
    installation,
    remote_unavailable,
    request,
    stand,
)

__all__ = ["canned", "host", "installation", "stand"]  # fixtures, used by name


def add_remote(host: Host, url: str) -> None:
    host.add_remote(url)


def test_calls_reuse_one_kept_alive_connection(host: Host, canned: tuple[CannedRemote, str]
                                               ) -> None:
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "events", "cloud-b")
    for _ in range(5):
        assert host.call("GetEvents")[1] == VALUE
    # on a worker, the first call loads the credential on a thread (its pool's
    # connection); the loop's own pool keeps one for every call after it
    assert len(remote.seen) == 5 and len(remote.connections) == (1 if host.loop is None
                                                                  else 2)


def test_a_kept_alive_connection_the_remote_closed_is_replaced(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    remote.drop_after_answer = True
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    for _ in range(3):
        assert host.call("GetAttributes")[1] == VALUE
    assert len(remote.seen) == 3 and len(remote.connections) == 3


def test_an_idle_connection_the_remote_closed_is_seen_before_a_write_uses_it(
        host: Host, stand: StandIn) -> None:
    """The remote closed a kept-alive connection while it was idle (its idle bound): the
    write goes on a new connection, once (seen before reuse, or its writing failed)."""
    remote = stand.remote
    add_remote(host, stand.url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    assert host.call("GetAttributes")[1] == VALUE
    stand.end_connections()
    assert remote.closed.acquire(timeout=10)  # the remote has closed that connection
    assert host.call("SetAttributes")[:2] == ("200 OK", VALUE)
    assert [s.body for s in remote.seen] == [request("GetAttributes"),
                                             request("SetAttributes")]
    assert len(remote.connections) == 2


def test_the_probe_tells_an_idle_connection_the_remote_closed(host: Host,
                                                             stand: StandIn) -> None:
    """What the pool checks before reusing a connection: on a network, a request on a
    connection the remote closed can be written whole before the reset comes back."""
    add_remote(host, stand.url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    assert host.call("GetAttributes")[1] == VALUE
    pool = host.pools.pool(Remote("cloud-b", stand.url, host.remote_cert, host.ca_pem))
    if host.loop is not None:  # the loop's pool: its transport saw the remote's end
        loop = host.loop

        async def idle_connection() -> Any:
            from bios_ws.server.remote_pool_async import pools_of_loop
            [found] = pools_of_loop().pool(pool)._idle
            return found

        assert host.call("GetAttributes")[1] == VALUE  # the first on the loop
        conn = loop.run_until_complete(idle_connection())
        assert conn.idle_and_open() and conn.idle_and_open()
        assert host.call("GetAttributes")[1] == VALUE and len(stand.remote.connections) == 2
        stand.end_connections()
        assert stand.remote.closed.acquire(timeout=10)
        loop.run_until_complete(asyncio.sleep(0.2))  # the loop reads the end
        assert not conn.idle_and_open()
        return
    [idle] = pool._idle
    assert idle.sock is not None
    assert _quiet(idle.sock) and _quiet(idle.sock)  # alive, and the look changes nothing
    assert host.call("GetAttributes")[1] == VALUE and len(stand.remote.connections) == 1
    stand.end_connections()
    assert stand.remote.closed.acquire(timeout=10)
    assert not _quiet(idle.sock)


def test_a_write_the_remote_read_and_left_unanswered_is_not_sent_again(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    assert host.call("GetAttributes")[1] == VALUE  # a kept-alive connection
    remote.close_without_answer = 1
    remote_unavailable(*host.call("SetAttributes"))
    assert [s.body for s in remote.seen] == [request("GetAttributes"),
                                             request("SetAttributes")]  # once
    assert host.local_calls == []
    assert host.call("SetAttributes")[:2] == ("200 OK", VALUE)  # the next call: a new one


def test_a_read_the_remote_left_unanswered_is_sent_once_more(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    remote.close_without_answer = 1
    assert host.call("GetAttributes")[:2] == ("200 OK", VALUE)
    assert len(remote.seen) == 2 and len(remote.connections) == 2
    remote.close_without_answer = 5
    remote_unavailable(*host.call("GetAttributes"))
    assert len(remote.seen) == 4  # once more, and no more
    assert remote.close_without_answer == 3


def test_a_write_whose_sending_failed_on_a_kept_alive_connection_goes_once_more(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    """The remote reset the connection before reading the body: the request was not
    written whole, so it was not run, and goes again on a new connection."""
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    assert host.call("GetAttributes")[1] == VALUE  # a kept-alive connection
    remote.reset_before_body = 1
    pool = host.pools.pool(Remote("cloud-b", url, host.remote_cert, host.ca_pem))
    big = b"x" * (16 * 1_048_576)  # more than the socket buffers: still being written
    answer = pool.post(big, {"Content-Type": "text/xml", ON_BEHALF_OF: "vm1"})
    assert (answer.status, answer.body) == (200, VALUE)
    assert len(remote.seen) == 2 and remote.seen[1].body == big  # run once
    assert len(remote.connections) == 2
    remote.reset_before_body = 1  # on a new connection: the remote refusing, said at once
    pool.close()
    with pytest.raises(RemoteUnavailable):
        pool.post(big, {"Content-Type": "text/xml", ON_BEHALF_OF: "vm1"})
    assert len(remote.seen) == 2
