"""The platform's admin operations and watchdog setting of a routed domain, in-process
(``docs/routing.md``, "Admin operations on a routed domain"): host A's forwarder in
front of A's SOAP application, A's system management use case, and B's real front
behind HTTPS on loopback (``test_routed_boot.make_pair``). A runs d1's machine and routes
d1's settings to B: the admin's Secure Boot certificates and pending values of d1 go to
B as d1's platform, the guest's watchdog setting is B's, and nothing lands in A's copy."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from bios_ws.capabilities import operation_capabilities, platform_operations, read_operations
from bios_ws.domain import sm_requests as sm
from bios_ws.domain.power import ResetType
from bios_ws.domain.principal import Principal
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import RemoteUnavailable, WatchdogNotArmed
from bios_ws.registry_file import load_registry
from bios_ws.server.forwarding import Forwarder
from bios_ws.server.remote_boot import RemoteBootSettings
from bios_ws.service.boot_settings import LocalBootSettings, RoutedBootSettings
from bios_ws.service.secureboot import SecureBootService
from bios_ws.service.system_management import SystemManagementService
from bios_ws.soap.testing import Endpoint, WsgiResult, call_wsgi, soap_envelope
from tests.integration.test_routed_boot import ADMIN, GUEST, Pair, make_pair
from tests.integration.test_soap_operations import fault, version
from tests.unit.test_service_secureboot import certificate, pem

PLATFORM_OF_D1 = "host:host-a platform of d1"
WATCHDOG = "OsWatchdogTimer"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with make_pair(tmp_path, load_registry()) as made:
        made.a.domains.create(ADMIN, "d2")  # A's own: not routed
        yield made


def forwarder(pair: Pair) -> Forwarder:
    return Forwarder(pair.a.app, table=pair.table, operations=operation_capabilities(),
                     reads=read_operations(), platform=platform_operations(),
                     pools=pair.pools)


def call_a(pair: Pair, principal: Principal, operation: str, inner: str) -> WsgiResult:
    return call_wsgi(forwarder(pair), soap_envelope(operation, inner), principal=principal)


def add(domain: str, der: bytes) -> str:
    return (f"<tns:Domain>{domain}</tns:Domain><tns:Database>db</tns:Database>"
            f"<tns:Certificate>{escape(pem(der))}</tns:Certificate>")


def remove(domain: str, der: bytes) -> str:
    return (f"<tns:Domain>{domain}</tns:Domain><tns:Database>db</tns:Database>"
            f"<tns:Sha256>{hashlib.sha256(der).hexdigest()}</tns:Sha256>")


def db(endpoint: Endpoint, domain: str) -> tuple[bytes, ...]:
    secure: SecureBootService = endpoint.use_cases.use(SecureBootService)
    return secure._keys(endpoint.bios.state_of(domain)).db


def a_audit(pair: Pair) -> list[tuple[str, str, str | None, str]]:
    with pair.a.store.unit_of_work() as uow:
        return [(e.principal, e.operation, e.domain_id, e.outcome)
                for e in uow.audit.recent(100)]


def test_the_admins_certificates_of_a_routed_domain_are_bs_by_its_platform(
        pair: Pair) -> None:
    der = certificate("admin db key")
    a_before = pair.a_state()
    added = call_a(pair, ADMIN, "AddSecureBootCertificate", add("d1", der))
    assert version(added, "AddSecureBootCertificate") == pair.b_state().version
    assert der in db(pair.b, "d1") and der not in db(pair.a, "d1")
    version(call_a(pair, ADMIN, "RemoveSecureBootCertificate", remove("d1", der)),
            "RemoveSecureBootCertificate")
    assert der not in db(pair.b, "d1")
    assert [e for e in pair.b_audit() if e[0] == PLATFORM_OF_D1] == [
        (PLATFORM_OF_D1, "AddSecureBootCertificate", "d1", "ok"),
        (PLATFORM_OF_D1, "RemoveSecureBootCertificate", "d1", "ok")]
    assert pair.a_state() == a_before
    assert not [e for e in a_audit(pair) if "SecureBootCertificate" in e[1]]


def test_the_admins_apply_of_a_routed_domain_applies_bs_pending_values(pair: Pair) -> None:
    pair.b.bios.set_attributes(GUEST, {"NumLock": False}, ApplyTime.ON_RESET)
    applied = call_a(pair, ADMIN, "ApplyPendingAttributes", "<tns:Domain>d1</tns:Domain>")
    assert version(applied, "ApplyPendingAttributes") == pair.b_state().version
    assert pair.b_state().current["NumLock"] is False and not pair.b_state().pending
    assert (PLATFORM_OF_D1, "ApplyPendingAttributes", "d1", "ok") in pair.b_audit()


def test_an_admin_call_for_a_domain_not_routed_stays_here(pair: Pair) -> None:
    der = certificate("local db key")
    b_before = pair.b_audit()
    version(call_a(pair, ADMIN, "AddSecureBootCertificate", add("d2", der)),
            "AddSecureBootCertificate")
    assert der in db(pair.a, "d2")
    assert ("admin:admin", "AddSecureBootCertificate", "d2", "ok") in a_audit(pair)
    assert pair.b_audit() == b_before


def test_a_guest_of_the_routed_domain_gets_as_own_refusal_and_b_sees_nothing(
        pair: Pair) -> None:
    b_before, b_state = pair.b_audit(), pair.b_state()
    for operation, inner in (("AddSecureBootCertificate", add("d1", certificate("x"))),
                             ("ApplyPendingAttributes", "<tns:Domain>d1</tns:Domain>")):
        fault(call_a(pair, GUEST, operation, inner), "AccessDenied")
        assert ("guest:d1", operation, "d1", "refused:AccessDenied") in a_audit(pair)
    assert pair.b_audit() == b_before and pair.b_state() == b_state


def test_b_down_the_admins_call_is_remote_unavailable_and_nothing_changes_here(
        pair: Pair) -> None:
    a_before = pair.a_state()
    pair.server.shutdown()
    pair.server.server_close()
    fault(call_a(pair, ADMIN, "AddSecureBootCertificate", add("d1", certificate("y"))),
          "RemoteUnavailable", "Server")
    assert pair.a_state() == a_before


# -- the watchdog's setting ---------------------------------------------------------------

def system(pair: Pair, settings: RoutedBootSettings | None = None
           ) -> SystemManagementService:
    """A's system management use case (``settings``: its process's routed settings)."""
    return SystemManagementService(pair.a.store.unit_of_work, pair.a.clock.now,
                                   pair.a.bios.registry, pair.power,
                                   settings=settings or pair.settings)


def other_worker(pair: Pair) -> RoutedBootSettings:
    """The routed settings of another process of A (its own view of B's values)."""
    return RoutedBootSettings(LocalBootSettings(pair.a.bios), pair.table,
                              lambda remote: RemoteBootSettings(pair.pools, remote))


def test_set_watchdog_of_a_routed_domain_sets_bs_setting_and_a_pet_reads_it(
        pair: Pair) -> None:
    sm_a = system(pair)
    a_before, b_version = pair.a_state(), pair.b_state().version
    pair.power.reset(GUEST, ResetType.ON)
    sm_a.handle(GUEST, sm.SetWatchdog(enabled=True, timeout_seconds=60))
    assert pair.b_state().current[WATCHDOG] == "Enabled"
    assert pair.b_state().version == b_version + 1
    assert (PLATFORM_OF_D1, "SetWatchdog", "d1", "ok") in pair.b_audit()
    assert pair.a.bios.setting("d1", WATCHDOG) == "Disabled"  # A's copy: untouched
    assert pair.a_state().version == a_before.version
    assert sm_a.handle(GUEST, sm.PetWatchdog()).deadline is not None  # B's Enabled
    sm_a.handle(GUEST, sm.SetWatchdog(enabled=False))
    assert pair.b_state().current[WATCHDOG] == "Disabled"
    with pytest.raises(WatchdogNotArmed):
        sm_a.handle(GUEST, sm.PetWatchdog())


def test_b_down_set_watchdog_is_remote_unavailable_and_the_watchdog_unchanged(
        pair: Pair) -> None:
    sm_a = system(pair)
    pair.server.shutdown()
    pair.server.server_close()
    with pytest.raises(RemoteUnavailable):
        sm_a.handle(GUEST, sm.SetWatchdog(enabled=True, timeout_seconds=60))
    watchdog = sm_a.handle(GUEST, sm.GetWatchdog())
    assert watchdog.enabled is False
    assert ("guest:d1", "SetWatchdog", "d1", "failed:RemoteUnavailable") in a_audit(pair)


def test_another_workers_older_view_neither_refuses_a_pet_nor_disarms(pair: Pair) -> None:
    second = other_worker(pair)
    assert second.setting("d1", WATCHDOG) == "Disabled"  # its view: B's, before the arm
    pair.power.reset(GUEST, ResetType.ON)
    system(pair).handle(GUEST, sm.SetWatchdog(enabled=True, timeout_seconds=60))
    sm_b = system(pair, second)
    assert sm_b.handle(GUEST, sm.PetWatchdog()).enabled is True
    sm_b.timers.tick()
    assert sm_b.handle(GUEST, sm.GetWatchdog()).enabled is True


def test_a_setting_disabled_on_b_disarms_the_watchdog_here(pair: Pair) -> None:
    sm_a = system(pair)
    pair.power.reset(GUEST, ResetType.ON)
    sm_a.handle(GUEST, sm.SetWatchdog(enabled=True, timeout_seconds=60))
    pair.b.bios.set_attributes(GUEST, {WATCHDOG: "Disabled"})  # the guest, through B
    sm_a.timers.tick()
    assert sm_a.handle(GUEST, sm.GetWatchdog()).enabled is False
