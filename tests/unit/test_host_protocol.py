"""The host protocol's codec (``server.host_protocol``) and the choice of where a boot's
settings come from (``service.boot_settings.RoutedBootSettings``)."""

from __future__ import annotations

import json

import pytest

from bios_ws.capabilities import routable_capabilities
from bios_ws.domain.boot_settings import SETTINGS, pending_at_boot
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.power import ResetCause
from bios_ws.domain.principal import Principal
from bios_ws.domain.routing import Remote, Route, RoutingTable
from bios_ws.domain.state import ApplyTime, DomainState
from bios_ws.errors import InvalidRequest, RemoteUnavailable
from bios_ws.server import host_protocol as wire
from bios_ws.service.bios import BiosService
from bios_ws.service.boot_settings import LocalBootSettings, RoutedBootSettings
from bios_ws.soap.testing import ManualClock, sample_registry

ADMIN = Principal.admin()
GUEST = Principal.guest("d1")
REMOTE = Remote("b", "https://b.example:8443/vbios", b"cert", b"ca")


def state(**changes: object) -> DomainState:
    found = DomainState("d1", 4, {"NumLock": True, "SecureBoot": "Enabled"},
                        pending={"NumLock": False}, boot_next="Shell.Uefi",
                        secure_boot_keys=KeyDatabases((b"pk",), (b"kek",), (), ()))
    for name, value in changes.items():
        setattr(found, name, value)
    return found


def test_a_state_goes_there_and_back_in_the_stores_own_layout() -> None:
    sent = state()
    body = wire.encode_state(sent, applied=True)
    assert json.loads(body)["state"]["format"] == 1
    assert wire.decode_state("d1", body, boot=True) == (True, sent)
    assert wire.decode_state("d1", wire.encode_state(sent), boot=False) == (True, sent)


def test_requests_go_there_and_back() -> None:
    request = wire.BootRequest(ResetCause.WATCHDOG, apply=False, consume_boot_next=True)
    assert wire.decode_boot(wire.encode_boot(request)) == request
    assert wire.decode_boot_next(wire.encode_boot_next("Pxe.Nic.0")) == "Pxe.Nic.0"
    wire.decode_state_request(wire.encode_state_request())


@pytest.mark.parametrize("body", [
    b"", b"{", b"null", b'"x"', b"[]", b'{"domain":"d1"}', b"\xc3",
    b'{"a":NaN}', b'{"a":1,"a":2}',
])
def test_a_body_that_is_no_protocol_object_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        wire.decode_boot(body)
    with pytest.raises(InvalidRequest):
        wire.decode_state("d1", body, boot=False)


def test_an_oversized_body_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(InvalidRequest, match="larger"):
        wire.decode_state_request(b"{" + b" " * wire.MAX_REQUEST + b"}")
    with pytest.raises(InvalidRequest, match="larger"):
        wire.decode_state("d1", b" " * (wire.MAX_ANSWER + 1), boot=False)


@pytest.mark.parametrize("edit", [
    {"domain": "d2"}, {"version": 0}, {"version": True}, {"version": "4"},
    {"applied": "yes"}, {"state": {"format": 99}}, {"state": {"format": 1}},
    {"state": []},
])
def test_an_answer_about_another_domain_or_malformed_is_refused(edit: dict[str, object]
                                                                ) -> None:
    body = json.loads(wire.encode_state(state(), applied=True))
    body.update(edit)
    with pytest.raises(InvalidRequest):
        wire.decode_state("d1", json.dumps(body).encode(), boot=True)


def test_paths_are_under_the_remotes_url_path() -> None:
    assert wire.path_for("/vbios/", wire.BOOT) == "/vbios/host/v1/boot"
    assert wire.path_for("", wire.BOOT_NEXT_CONSUMED) == "/host/v1/boot-next-consumed"
    assert wire.call_of("/vbios/host/v1/state") == wire.STATE
    assert wire.call_of("/host/v1/boot") == wire.BOOT
    assert wire.call_of("/host/v1/boots") is None and wire.call_of("/") is None


def test_settings_names_the_routable_capability() -> None:
    assert SETTINGS in routable_capabilities()


def test_pending_at_boot_counts_values_and_boot_next() -> None:
    assert pending_at_boot(state())
    assert pending_at_boot(state(pending={}))
    assert not pending_at_boot(state(pending={}, boot_next=None))


def _settings_of() -> BiosService:
    store = MemoryStore()
    registry = sample_registry()
    clock = ManualClock()
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState.new("d1", registry), clock.now())
        uow.commit()
    return BiosService(store.unit_of_work, registry, clock.now)


def test_the_route_in_force_chooses_per_call_and_per_domain() -> None:
    here, there = _settings_of(), _settings_of()  # two installations' settings
    there.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    table = RoutingTable()
    asked: list[Remote] = []

    def remote(found: Remote) -> LocalBootSettings:
        asked.append(found)
        return LocalBootSettings(there)

    routed = RoutedBootSettings(LocalBootSettings(here), lambda: table, remote)
    assert routed.state_of("d1") == here.state_of("d1")
    table = RoutingTable((Route(SETTINGS, "d1", "b"),), {"b": REMOTE})
    assert routed.state_of("d1").pending == {"NumLock": False}
    after = routed.at_boot("d1", ResetCause.MANAGEMENT_COMMAND, consume_boot_next=True)
    assert after.current["NumLock"] is False and there.state_of("d1") == after
    assert not here.state_of("d1").pending and asked == [REMOTE, REMOTE]
    table = RoutingTable((Route(SETTINGS, "d2", "b"), Route("events", None, "b")),
                         {"b": REMOTE})
    assert routed.source("d1") is not None and len(asked) == 2  # d1's settings: here
    table = RoutingTable((Route(SETTINGS, None, "b"),), {"b": REMOTE})
    routed.source("d1")
    assert len(asked) == 3  # the route for every domain


def test_a_route_to_a_remote_the_store_does_not_hold_is_never_answered_here() -> None:
    here = _settings_of()
    routed = RoutedBootSettings(LocalBootSettings(here), lambda: RoutingTable(
        (Route(SETTINGS, "d1", "gone"),), {}), lambda found: LocalBootSettings(here))
    with pytest.raises(RemoteUnavailable):
        routed.at_boot("d1", ResetCause.MANAGEMENT_COMMAND, consume_boot_next=False)


class _AwayRemote(LocalBootSettings):
    """The remote's settings, counting its reads; ``away`` makes them unavailable."""

    def __init__(self, bios: BiosService) -> None:
        super().__init__(bios)
        self.reads = 0
        self.away = False

    def state_of(self, domain_id: str) -> DomainState:
        if self.away:
            raise RemoteUnavailable("remote b is unavailable")
        self.reads += 1
        return super().state_of(domain_id)


def test_the_machines_rules_read_a_routed_domains_values_at_most_once_per_ttl() -> None:
    from bios_ws.service.boot_settings import REMOTE_VALUES_TTL
    here, there = _settings_of(), _settings_of()
    here.set_attributes(GUEST, {"NumLock": False}, ApplyTime.IMMEDIATE)
    remote = _AwayRemote(there)
    now = [100.0]
    table = RoutingTable((Route(SETTINGS, "d1", "b"),), {"b": REMOTE})
    routed = RoutedBootSettings(LocalBootSettings(here), lambda: table,
                                lambda found: remote, clock=lambda: now[0])
    remote.away = True
    assert routed.setting("d1", "NumLock") is None  # never seen: the registry's default
    remote.away = False
    assert routed.setting("d1", "NumLock") is True  # the remote's value, not here's False
    there.set_attributes(GUEST, {"NumLock": False}, ApplyTime.IMMEDIATE)
    now[0] += REMOTE_VALUES_TTL / 2
    assert routed.setting("d1", "NumLock") is True and remote.reads == 1  # within the TTL
    now[0] += REMOTE_VALUES_TTL
    assert routed.setting("d1", "NumLock") is False and remote.reads == 2
    remote.away = True
    there.set_attributes(GUEST, {"NumLock": True}, ApplyTime.IMMEDIATE)
    now[0] += REMOTE_VALUES_TTL
    assert routed.setting("d1", "NumLock") is False  # away: the last value seen
    table = RoutingTable()
    assert routed.setting("d1", "NumLock") is False and remote.reads == 2  # local: here's
