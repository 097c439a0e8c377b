"""The admin's platform operations in the forwarder (``server.forwarding``), against the
real HTTPS stand-in remote of ``tests.forwarding_support``: an admin's call of one of
them for a Domain whose settings are routed goes to the remote, body unchanged, with
``X-Vbios-On-Behalf-Of: <Domain>`` and ``X-Vbios-Acting-As: platform``; every other admin
call, and any guest's call of one of them, is the local application's."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY
from bios_ws.soap.guard import OPERATION_ENVIRON_KEY
from tests.forwarding_support import ADMIN, Host, StandIn, host_a, request, stand_in
from tests.routing_support import RemoteInstallation

APPLY = "<tns:Domain>vm1</tns:Domain>"


@pytest.fixture
def installation() -> RemoteInstallation:
    return RemoteInstallation()


@pytest.fixture
def stand(installation: RemoteInstallation, tmp_path: Path) -> Iterator[StandIn]:
    with stand_in(installation, tmp_path) as remote:
        yield remote


@pytest.fixture(params=["thread", "loop"])
def host(installation: RemoteInstallation, tmp_path: Path, stand: StandIn,
         request: pytest.FixtureRequest) -> Iterator[Host]:
    """Host A, its calls run on a thread, or first on an event loop as a worker runs
    them."""
    with host_a(installation, tmp_path, on_loop=request.param == "loop") as made:
        made.add_remote(stand.url)
        made.routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1")
        yield made


@pytest.mark.parametrize(("operation", "inner"), [
    ("ApplyPendingAttributes", APPLY),
    ("AddSecureBootCertificate", "<tns:Domain>vm1</tns:Domain><tns:Database>db"
     "</tns:Database><tns:Certificate>PEM</tns:Certificate>"),
    ("RemoveSecureBootCertificate", "<tns:Domain>vm1</tns:Domain><tns:Database>db"
     "</tns:Database><tns:Sha256>00</tns:Sha256>"),
])
def test_the_admins_platform_operation_of_a_routed_domain_goes_to_the_remote(
        host: Host, stand: StandIn, operation: str, inner: str) -> None:
    status, _, environ = host.call(operation, inner=inner, principal=ADMIN)
    assert status.startswith("200") and not host.local_calls
    [seen] = stand.remote.seen
    assert (seen.on_behalf_of, seen.acting_as) == ("vm1", "platform")
    assert seen.body == request(operation, inner)  # unchanged
    assert seen.host_uri == "urn:vbios:host:host-a"
    assert environ[OPERATION_ENVIRON_KEY] == operation


@pytest.mark.parametrize(("operation", "inner"), [
    ("ApplyPendingAttributes", "<tns:Domain>vm2</tns:Domain>"),  # not routed
    ("ApplyPendingAttributes", ""),  # no Domain: the local application says what is wrong
    ("ApplyPendingAttributes", APPLY + APPLY),  # two
    ("ApplyPendingAttributes", "<tns:Domain>VM 1</tns:Domain>"),  # no domain id
    ("ResetDomain", APPLY + "<tns:ResetType>On</tns:ResetType>"),  # no platform operation
    ("GetDomainPowerState", APPLY),
    ("Subscribe", APPLY),  # events are not routed for vm1 here; and no platform operation
])
def test_every_other_admin_call_stays_local(host: Host, stand: StandIn, operation: str,
                                            inner: str) -> None:
    status, data, _ = host.call(operation, inner=inner, principal=ADMIN)
    assert (status, data) == ("200 OK", b"local")
    assert host.local_calls == [request(operation, inner).decode()]  # the body, handed on
    assert not stand.remote.seen


@pytest.mark.parametrize("operation", ["ApplyPendingAttributes", "AddSecureBootCertificate",
                                       "RemoveSecureBootCertificate"])
def test_a_guests_call_of_a_platform_operation_is_never_forwarded(
        host: Host, stand: StandIn, operation: str) -> None:
    status, data, _ = host.call(operation, inner=APPLY)  # vm1's guest, settings routed
    assert (status, data) == ("200 OK", b"local")  # the local application refuses it
    assert not stand.remote.seen


def test_without_any_route_an_admins_body_is_not_read_here(host: Host, stand: StandIn
                                                           ) -> None:
    host.routing.set_route(ADMIN, "settings", "local", domain="vm1")
    body = request("ApplyPendingAttributes", APPLY)
    stream = io.BytesIO(body)
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
                               "CONTENT_TYPE": "text/xml", "wsgi.input": stream,
                               PRINCIPAL_ENVIRON_KEY: ADMIN}
    seen: list[object] = []

    def local(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(env["wsgi.input"])
        start_response("200 OK", [])
        return [b""]

    host.forwarder.app = local
    list(host.forwarder(environ, lambda *args: None))
    assert seen == [stream] and stream.tell() == 0  # the caller's stream, untouched
    assert not stand.remote.seen
