"""The remote's side of the host protocol in-process (``server.host_route``): the front
as ``vbios serve`` builds it (``PeerIdentity``, ``HostRoute``, the SOAP application),
the peer certificate in the environ. Only a host speaking for a domain it was granted
is answered; every refusal is a short JSON error, and audited as other refusals are."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bios_ws.domain.principal import Principal
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import ServiceRestricted
from bios_ws.registry_file import load_registry
from bios_ws.server.host_protocol import MAX_REQUEST
from bios_ws.server.host_route import HostRoute
from bios_ws.server.identity import SOCKET_ENVIRON_KEY, PeerIdentity
from bios_ws.service.bios import BiosService
from bios_ws.service.credentials import CredentialService
from bios_ws.service.delegates import DelegateService
from bios_ws.service.host_boot import HostBoot
from bios_ws.soap.testing import Endpoint, WsgiResult, build_endpoint, call_wsgi
from tests.integration.test_soap_via_host import _Peer, der_of

ADMIN = Principal.admin()
GUEST = Principal.guest("vm1")
HEADER = "HTTP_X_VBIOS_ON_BEHALF_OF"
BOOT = b'{"apply":true,"cause":"ManagementCommand","consume_boot_next":true}'


@dataclass
class Remote:
    ep: Endpoint
    front: PeerIdentity
    host: bytes
    guest: bytes
    admin: bytes

    def post(self, path: str, body: bytes, cert: bytes | None = None,
             domain: str | None = "vm1", *, content_type: str = "application/json",
             method: str = "POST", acting_as: str | None = None) -> WsgiResult:
        extra: dict[str, Any] = {"PATH_INFO": path}
        if acting_as is not None:
            extra["HTTP_X_VBIOS_ACTING_AS"] = acting_as
        if cert is not None:
            extra[SOCKET_ENVIRON_KEY] = _Peer(cert)
        if domain is not None:
            extra[HEADER] = domain
        return call_wsgi(self.front, body, content_type=content_type, method=method,
                         extra=extra)

    def as_host(self, call: str, body: bytes, domain: str = "vm1") -> WsgiResult:
        return self.post(f"/host/v1/{call}", body, self.host, domain)

    def audit(self) -> list[tuple[str, str, str | None, str]]:
        with self.ep.store.unit_of_work() as uow:
            return [(e.principal, e.operation, e.domain_id, e.outcome)
                    for e in uow.audit.recent(100)]


def _remote(bios: BiosService | None = None, ep: Endpoint | None = None,
            served_here: Callable[[str], bool] = lambda domain: True) -> Remote:
    """B: vm1 and vm2, host rack1-a granted vm1 (``bios``: the settings use case the
    host protocol uses, over ``ep``'s store)."""
    ep = ep or build_endpoint("vm1")
    ep.domains.create(ADMIN, "vm2")
    credentials = ep.use_cases.use(CredentialService)
    host = ep.use_cases.use(DelegateService).add(ADMIN, "rack1-a", ["vm1"])
    admin = credentials.issuer().issue(ADMIN.role, None, None, ep.clock.now(),
                                       credentials.guest_validity)
    with ep.store.unit_of_work() as uow:
        uow.credentials.add(admin.record)
        uow.commit()
    route = HostRoute(ep.app, HostBoot(bios or ep.bios),
                      audit_refused=credentials.audit_refused, served_here=served_here)
    front = PeerIdentity(route, authenticate=credentials.authenticate)
    return Remote(ep, front, der_of(host), der_of(credentials.issue_guest(ADMIN, "vm1")),
                  der_of(admin))


@pytest.fixture
def remote() -> Remote:
    return _remote()


def _json(result: WsgiResult) -> dict[str, Any]:
    assert result.content_type == "application/json"
    found = json.loads(result.body)
    assert isinstance(found, dict)
    return found


def test_a_boot_applies_the_pending_values_audited_as_the_host_for_the_domain(
        remote: Remote) -> None:
    remote.ep.bios.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    remote.ep.bios.set_boot_next(GUEST, "Shell.Uefi")
    before = remote.ep.bios.state_of("vm1").version
    answer = remote.post("/vbios/host/v1/boot", BOOT, remote.host)  # under the URL's path
    assert answer.status == 200, answer.body
    found = _json(answer)
    assert (found["domain"], found["version"], found["applied"]) == ("vm1", before + 1, True)
    assert found["state"]["current"]["NumLock"] is False and found["state"]["pending"] == {}
    assert found["state"]["boot_next"] is None  # consumed: a machine without firmware
    assert found["state"]["passwords"] == {}
    assert ("host:rack1-a for guest:vm1", "ApplyPendingAttributes", "vm1", "ok") \
        in remote.audit()
    again = _json(remote.as_host("boot", BOOT))  # nothing pending: no new version
    assert again["version"] == before + 1


def test_a_domain_whose_settings_are_routed_onward_is_refused_untouched() -> None:
    """No chains: B routing vm1's settings to a third installation does not answer A's
    boot from its own copy."""
    remote = _remote(served_here=lambda domain: domain != "vm1")
    remote.ep.bios.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    before = remote.ep.bios.state_of("vm1")
    answer = remote.as_host("boot", BOOT)
    assert answer.status == 503 and _json(answer)["error"] == "RemoteUnavailable"
    assert remote.ep.bios.state_of("vm1") == before


def test_password_hashes_stay_on_the_remote(remote: Remote) -> None:
    remote.ep.bios.change_password(GUEST, "SetupPassword", None, "correct-horse-9")
    found = _json(remote.as_host("state", b"{}"))
    assert found["state"]["passwords"] == {} and "applied" not in found


def test_boot_next_consumed_only_clears_the_option_named(remote: Remote) -> None:
    remote.ep.bios.set_boot_next(GUEST, "Shell.Uefi")
    assert remote.as_host("boot-next-consumed", b'{"boot_next":"Pxe.Nic.0"}').status == 200
    assert remote.ep.bios.state_of("vm1").boot_next == "Shell.Uefi"  # a new one meanwhile
    done = _json(remote.as_host("boot-next-consumed", b'{"boot_next":"Shell.Uefi"}'))
    assert remote.ep.bios.state_of("vm1").boot_next is None
    assert done == {"domain": "vm1", "version": remote.ep.bios.state_of("vm1").version}


def test_restricted_mode_keeps_the_values_pending_and_answers_the_state() -> None:
    restricted = False

    def gate() -> None:
        if restricted:
            raise ServiceRestricted("the host is in restricted mode")

    plain = build_endpoint("vm1")
    bios = BiosService(plain.store.unit_of_work, plain.bios.registry, plain.clock.now,
                       gate=gate)
    remote = _remote(bios, plain)
    remote.ep.bios.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    restricted = True
    found = _json(remote.as_host("boot", BOOT))
    assert found["applied"] is False and found["state"]["pending"] == {"NumLock": False}
    assert ("host:rack1-a for guest:vm1", "ApplyPendingAttributes", "vm1",
            "refused:ServiceRestricted") in remote.audit()
    asked_not_to = _json(remote.as_host("boot", BOOT.replace(b"true,", b"false,", 1)))
    assert asked_not_to["applied"] is False  # the host itself is restricted: a read


@pytest.mark.parametrize(("who", "domain", "principal", "audited_domain"), [
    ("guest", None, "guest:vm1", "vm1"),  # a guest's own certificate
    ("admin", None, "admin:", None),
    ("host", "vm2", "host:rack1-a", "vm2"),  # not granted
    ("host", None, "host:rack1-a", None),  # no header
    ("guest", "vm1", "guest:vm1", "vm1"),  # a header on a guest's certificate
])
def test_anyone_but_a_granted_host_is_refused_and_audited(
        remote: Remote, who: str, domain: str | None, principal: str,
        audited_domain: str | None) -> None:
    cert = {"guest": remote.guest, "admin": remote.admin, "host": remote.host}[who]
    before = remote.ep.bios.state_of("vm1")
    answer = remote.post("/host/v1/boot", BOOT, cert, domain)
    assert answer.status == 403
    assert _json(answer)["error"] == "AccessDenied"
    [entry] = [e for e in remote.audit() if e[1] == "HostBoot"]
    assert entry[0].startswith(principal) and entry[2] == audited_domain
    assert entry[3] == "refused:AccessDenied"
    assert remote.ep.bios.state_of("vm1") == before


def test_no_certificate_is_refused_and_not_audited(remote: Remote) -> None:
    answer = remote.post("/host/v1/state", b"{}", None, None)
    assert answer.status == 403 and _json(answer)["error"] == "AccessDenied"
    assert not [e for e in remote.audit() if e[1] == "HostBootState"]


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400),
    (b"[1, 2]", 400),
    (b'{"apply":true,"cause":"ManagementCommand"}', 400),  # a key missing
    (b'{"apply":true,"cause":"ManagementCommand","consume_boot_next":true,"x":1}', 400),
    (b'{"apply":1,"cause":"ManagementCommand","consume_boot_next":true}', 400),
    (b'{"apply":true,"cause":"Sunrise","consume_boot_next":true}', 400),
    (b'{"apply":true,"apply":false,"cause":"ManagementCommand","consume_boot_next":true}', 400),
    (b"\xff\xfe", 400),
    (b" " * (MAX_REQUEST + 1), 413),
])
def test_malformed_bodies_are_refused(remote: Remote, body: bytes, status: int) -> None:
    remote.ep.bios.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    before = remote.ep.bios.state_of("vm1")
    answer = remote.as_host("boot", body)
    assert answer.status == status
    assert _json(answer)["error"] == "InvalidRequest"
    assert remote.ep.bios.state_of("vm1") == before


def test_method_and_content_type_are_checked(remote: Remote) -> None:
    wrong_type = remote.post("/host/v1/state", b"{}", remote.host, content_type="text/xml")
    assert wrong_type.status == 415
    get = remote.post("/host/v1/state", b"", remote.host, method="GET")
    assert get.status == 405 and get.headers["Allow"] == "POST"
    assert remote.as_host("boot-next-consumed", b'{"boot_next":""}').status == 400


def test_other_paths_still_reach_the_soap_endpoint(remote: Remote) -> None:
    answer = remote.post("/host/v1/other", b"{}", remote.host)
    assert answer.content_type.startswith("text/xml")  # the SOAP guard's answer


@pytest.fixture
def full() -> Remote:
    """B with the installation's registry (it has OsWatchdogTimer)."""
    return _remote(ep=build_endpoint("vm1", registry=load_registry()))


def test_the_platform_sets_the_watchdog_setting_audited_as_its_set_watchdog(
        full: Remote) -> None:
    remote = full
    before = remote.ep.bios.state_of("vm1").version
    armed = remote.post("/host/v1/watchdog-setting", b'{"enabled":true}', remote.host,
                        acting_as="platform")
    assert armed.status == 200, armed.body
    state = remote.ep.bios.state_of("vm1")
    assert state.current["OsWatchdogTimer"] == "Enabled"
    assert _json(armed) == {"domain": "vm1", "version": before + 1} and \
        state.version == before + 1
    assert ("host:rack1-a platform of vm1", "SetWatchdog", "vm1", "ok") in remote.audit()
    again = _json(remote.post("/host/v1/watchdog-setting", b'{"enabled":true}',
                              remote.host, acting_as="platform"))
    assert again["version"] == before + 1  # as it was: no new version, no entry
    assert len([e for e in remote.audit() if e[1] == "SetWatchdog"]) == 1
    _json(remote.post("/host/v1/watchdog-setting", b'{"enabled":false}', remote.host,
                      acting_as="platform"))
    assert remote.ep.bios.state_of("vm1").current["OsWatchdogTimer"] == "Disabled"


def test_the_watchdog_setting_is_the_platforms_only(remote: Remote) -> None:
    before = remote.ep.bios.state_of("vm1")
    answer = remote.as_host("watchdog-setting", b'{"enabled":true}')  # no marker
    assert answer.status == 403 and _json(answer)["error"] == "AccessDenied"
    assert ("host:rack1-a for guest:vm1", "SetWatchdog", "vm1",
            "refused:AccessDenied") in remote.audit()
    assert remote.ep.bios.state_of("vm1") == before


@pytest.mark.parametrize("body", [b"{}", b'{"enabled":1}', b'{"enabled":"true"}',
                                  b'{"enabled":true,"timeout":5}'])
def test_a_malformed_watchdog_setting_is_refused(remote: Remote, body: bytes) -> None:
    before = remote.ep.bios.state_of("vm1")
    answer = remote.post("/host/v1/watchdog-setting", body, remote.host,
                         acting_as="platform")
    assert answer.status == 400 and _json(answer)["error"] == "InvalidRequest"
    assert remote.ep.bios.state_of("vm1") == before
