"""Forwarding (``bios_ws.server.forwarding``) against a real HTTPS server on loopback that
stands for the remote vBIOS: it requires this host's credential (its CA's client
certificate naming ``urn:vbios:host:host-a``), checks ``X-Vbios-On-Behalf-Of`` and
answers canned SOAP. The routes come from a store through the per-call keeper, so a
route change applies to the next call."""

from __future__ import annotations

import asyncio
import io
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.capabilities import operation_capabilities
from bios_ws.domain.routing import Remote, Route, RoutingTable
from bios_ws.errors import RemoteUnavailable, StoreUnavailable
from bios_ws.pki.certs import cert_pem
from bios_ws.server.forwarding import Forwarder, RemotePools
from bios_ws.soap.guard import FAULT_ENVIRON_KEY, OPERATION_ENVIRON_KEY
from tests.forwarding_support import (  # the fixtures too: installation, stand, canned, host
    ADMIN,
    FAULT,
    VALUE,
    CannedRemote,
    Host,
    canned,
    host,
    installation,
    remote_unavailable,
    request,
    stand,
)
from tests.routing_support import NOW, RemoteInstallation, host_credential

__all__ = ["canned", "host", "installation", "stand"]  # fixtures, used by name


def add_remote(host: Host, url: str) -> None:
    host.add_remote(url)


def test_a_routed_read_is_answered_by_the_remote_for_the_domain(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1")
    status, body, environ = host.call("GetAttributes")
    assert (status, body) == ("200 OK", VALUE)
    assert environ["headers"]["Content-Type"] == "text/xml; charset=utf-8"
    assert environ[OPERATION_ENVIRON_KEY] == "GetAttributes"
    [seen] = remote.seen
    assert (seen.path, seen.on_behalf_of, seen.host_uri) == (
        "/vbios", "vm1", "urn:vbios:host:host-a")
    assert seen.body == request("GetAttributes")
    assert host.local_calls == []


def test_a_typed_fault_is_relayed_unchanged(host: Host, canned: tuple[CannedRemote, str]
                                            ) -> None:
    remote, url = canned
    remote.answer = "fault"
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    status, body, _ = host.call("SetAttributes", domain="vm2")
    assert (status, body) == ("500 Internal Server Error", FAULT)
    assert remote.seen[0].on_behalf_of == "vm2"


def test_on_the_event_loop_a_routed_call_is_awaited_there_once_its_credential_is_loaded(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    """The worker's loop makes a routed call's round trip itself (``AwaitOnLoop``), with
    no thread; only loading the credential (the first call) goes to a thread."""

    from bios_ws.blocking import AwaitOnLoop, WouldBlock, on_event_loop
    host.loop = None  # this test plays the worker's loop itself
    remote, url = canned
    host.add_remote(url)
    host.routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1")

    def on_loop(operation: str, domain: str = "vm1") -> AwaitOnLoop:
        with on_event_loop(), pytest.raises(AwaitOnLoop) as pending:
            host.call(operation, domain)
        return pending.value

    with on_event_loop():
        assert host.call("GetAttributes", domain="vm2")[1] == b"local"  # no route: here
        assert host.call("GetEvents")[1] == b"local"  # not routed: answered on the loop
        with pytest.raises(WouldBlock):  # the credential is not loaded yet
            host.call("GetAttributes")
    assert remote.seen == []
    assert host.call("GetAttributes")[1] == VALUE  # on a thread: loads it, forwards

    async def awaited() -> list[object]:
        answers = [await on_loop(op).answer() for op in ("GetAttributes", "SetAttributes")]
        remote.answer = "fault"
        answers.append(await on_loop("GetAttributes").answer())
        return answers

    read, write, fault = asyncio.run(awaited())
    assert (read.status, read.body) == (200, VALUE)  # type: ignore[attr-defined]
    assert (write.status, write.body) == (200, VALUE)  # type: ignore[attr-defined]
    assert fault.status == 500 and FAULT in fault.body  # type: ignore[attr-defined]
    assert len(remote.seen) == 4 and all(s.on_behalf_of == "vm1" for s in remote.seen)


def test_a_call_a_host_forwarded_here_is_never_forwarded_again(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    """No chains: this installation holds vm1's settings for another host, and routes
    them onward: that host's call is refused, not sent on, nor answered from here."""
    from bios_ws.domain.principal import Principal, Role
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1")
    via = Principal(Role.HOST, "rack1-a", host="rack1-a").on_behalf_of("vm1")
    for who in (via, Principal(Role.HOST, "rack1-a", host="rack1-a").on_behalf_of(
            "vm1", acting_as="platform")):
        status, body, environ = host.call("GetAttributes", principal=who)
        assert status.startswith("500") and b"forwarded call is not forwarded again" in body
        assert environ[FAULT_ENVIRON_KEY] == "RemoteUnavailable"
    assert remote.seen == [] and host.local_calls == []
    assert host.call("GetEvents", principal=via)[1] == b"local"  # not routed: served here


def test_other_capabilities_and_domains_stay_local(host: Host,
                                                   canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1")
    assert host.call("GetEvents")[1] == b"local"  # events: not routed
    assert host.call("GetAttributes", domain="vm2")[1] == b"local"  # another domain
    assert host.call("GetQuote")[1] == b"local"  # attestation: local by nature
    assert host.call("GetPowerState")[1] == b"local"  # power: the machine's, local
    assert host.local_calls == [request("GetEvents").decode(),
                                request("GetAttributes").decode(),
                                request("GetQuote").decode(),
                                request("GetPowerState").decode()]  # the body handed on whole
    assert host.call("GetSecureBoot")[1] == VALUE  # Secure Boot goes with settings
    assert len(remote.seen) == 1


def test_route_changes_apply_to_the_next_call(host: Host, canned: tuple[CannedRemote, str]
                                              ) -> None:
    remote, url = canned
    add_remote(host, url)
    assert host.call("GetEvents")[1] == b"local"
    host.routing.set_route(ADMIN, "events", "cloud-b")
    assert host.call("GetEvents")[1] == VALUE
    host.routing.set_route(ADMIN, "events", "local", domain="vm1")  # no such route: kept
    assert host.call("GetEvents")[1] == VALUE
    host.routing.set_route(ADMIN, "events", "local")
    assert host.call("GetEvents")[1] == b"local"
    assert len(remote.seen) == 2


def test_a_remote_that_is_down_gives_remote_unavailable(host: Host,
                                                        canned: tuple[CannedRemote, str]
                                                        ) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nobody listens on it once closed
    add_remote(host, f"https://127.0.0.1:{port}/")
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    started = time.monotonic()
    remote_unavailable(*host.call("GetAttributes"))
    assert time.monotonic() - started < 1.0
    assert host.local_calls == []  # never a silent local answer


def test_a_slow_remote_gives_remote_unavailable_within_the_bound(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    remote.delay = 3.0
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    started = time.monotonic()
    remote_unavailable(*host.call("GetAttributes"))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0, elapsed  # the pools' timeout is 1 s (a busy machine: margin)
    assert host.local_calls == []
    assert len(remote.seen) == 1  # a read too: never sent again after a timeout


def test_a_remote_refusing_the_credential_gives_remote_unavailable(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    _, url = canned
    other = RemoteInstallation()  # a CA the remote does not trust, and not its server's
    host.routing.add_remote(ADMIN, Remote("cloud-b", url, cert_pem(
        host_credential(other.ca, "host-a").cert), cert_pem(other.ca.cert)))
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    remote_unavailable(*host.call("GetAttributes"))


class _Peer:
    def __init__(self, der: bytes) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self._der


def test_a_serving_graph_forwards_with_the_home_s_kept_credential(
        run: Any, tmp_path: Path, installation: RemoteInstallation,
        canned: tuple[CannedRemote, str]) -> None:
    """The whole path of `vbios serve`'s application: the guest's certificate through
    PeerIdentity, the route and remote set by the command line, the key decrypted from
    the home with the server key's passphrase."""
    from bios_ws.bootstrap import bootstrap
    from bios_ws.config import Config
    from bios_ws.home import Home
    from bios_ws.server.identity import SOCKET_ENVIRON_KEY
    from tests.routing_support import write_bundle

    remote, url = canned
    path = tmp_path / "home-a"
    argv: tuple[str, ...]
    for argv in (("init", "--home", str(path), "--host-name", "host-a"),
                 ("domain", "create", "vm1", "--home", str(path))):
        code, _, err = run(*argv)
        assert code == 0, err
    write_bundle(tmp_path / "bundle", installation.ca, "host-a")
    for argv in (("remote", "add", "cloud-b", url, "--bundle", str(tmp_path / "bundle")),
                 ("route", "set", "settings", "cloud-b", "--domain", "vm1")):
        code, _, err = run(*argv, "--home", str(path))
        assert code == 0, err
    home = Home.open(path)
    guest = x509.load_pem_x509_certificate((home.bundles_dir / "vm1" / "cert.pem").read_bytes())
    body = request("GetAttributes")
    with bootstrap(Config.of(home)) as app:
        wsgi = app.wsgi()
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/", "CONTENT_TYPE": "text/xml",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            SOCKET_ENVIRON_KEY: _Peer(guest.public_bytes(Encoding.DER))}
        started: dict[str, Any] = {}
        data = b"".join(wsgi(environ, lambda status, headers, *_: started.update(
            status=status)))
    assert (started["status"], data) == ("200 OK", VALUE)
    [seen] = remote.seen
    assert (seen.on_behalf_of, seen.host_uri) == ("vm1", "urn:vbios:host:host-a")


def test_a_credential_that_cannot_be_loaded_is_not_tried_on_every_call() -> None:
    now = [100.0]
    tries: list[str] = []

    def context_for(remote: Remote) -> ssl.SSLContext:
        tries.append(remote.name)
        raise OSError("the key file is damaged")

    pools = RemotePools(context_for, clock=lambda: now[0])
    remote = Remote("cloud-b", "https://127.0.0.1:1/", b"c", b"a")
    for _ in range(3):
        with pytest.raises(RemoteUnavailable, match="credential there cannot be used"):
            pools.pool(remote)
    assert tries == ["cloud-b"]
    now[0] += 5.0
    with pytest.raises(RemoteUnavailable):
        pools.pool(remote)
    assert tries == ["cloud-b", "cloud-b"]


def test_a_route_to_a_remote_the_store_lacks_is_never_answered_here(host: Host) -> None:
    with host.store.unit_of_work() as uow:  # what `remote remove` refuses to leave behind
        uow.routing.set_route("host-a", Route("settings", None, "gone"))
        uow.records.put(host.routing.record_key, "", NOW)
        uow.commit()
    remote_unavailable(*host.call("GetAttributes"))
    assert host.local_calls == []


def test_a_store_that_cannot_say_the_routes_gives_its_fault(host: Host) -> None:
    def table() -> RoutingTable:
        raise StoreUnavailable("the state store is unavailable")

    forwarder = Forwarder(lambda environ, start: [b"local"], table=table,
                          operations=operation_capabilities(), pools=host.pools)
    host.forwarder = forwarder
    status, body, environ = host.call("GetAttributes")
    assert status.startswith("500") and b"StoreUnavailable" in body
    assert environ[FAULT_ENVIRON_KEY] == "StoreUnavailable"
