"""Two hosts of one fleet on one store, in-process: each drives only the machines it runs
and serves only their guests; the other's domains are refused with its name; a host
takes a domain over (a stopped one, or with --force one whose host is down)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.power import PowerState, ResetType
from bios_ws.domain.principal import Principal
from bios_ws.errors import AccessDenied, DomainElsewhere, InvalidPowerTransition
from bios_ws.server.identity import identity_of
from bios_ws.service.credentials import CredentialService
from bios_ws.service.thermal import ThermalService
from bios_ws.soap.testing import Endpoint, ManualClock, build_endpoint

ADMIN = Principal.admin()


@pytest.fixture
def fleet() -> tuple[Endpoint, Endpoint]:
    """Host a runs vm1, host b runs vm2; one store, one clock."""
    store, clock = MemoryStore(), ManualClock()
    return (build_endpoint("vm1", host="a", store=store, clock=clock),
            build_endpoint("vm2", host="b", store=store, clock=clock))


def settle(ep: Endpoint) -> None:
    for _ in range(3):
        ep.clock.advance(ep.platform.boot_seconds)
        ep.platform.advance_due()


def guest_of(ep: Endpoint, domain_id: str) -> Principal:
    """The principal of a real certificate issued to ``domain_id``'s guest by ``ep``."""
    bundle = ep.use_cases.use(CredentialService).issue_guest(ADMIN, domain_id)
    der = x509.load_pem_x509_certificate(bundle.cert_pem).public_bytes(Encoding.DER)
    principal = identity_of(der)
    assert isinstance(principal, Principal)
    return principal


def test_each_domain_runs_on_the_host_that_created_it(fleet: tuple[Endpoint, Endpoint]) -> None:
    a, _ = fleet
    with a.store.unit_of_work() as uow:
        assert {m.domain_id: m.host for m in uow.machines.list()} == {"vm1": "a", "vm2": "b"}


def test_a_guest_is_served_only_by_the_host_running_its_domain(
        fleet: tuple[Endpoint, Endpoint]) -> None:
    a, b = fleet
    guest = guest_of(a, "vm1")
    a.use_cases.use(CredentialService).authenticate(guest)  # its host serves it
    with pytest.raises(AccessDenied, match="domain vm1 runs on host a: its machine and its"
                                           " guest's calls are served by that host's vBIOS"):
        b.use_cases.use(CredentialService).authenticate(guest)


def test_a_host_refuses_to_drive_another_hosts_machine(fleet: tuple[Endpoint, Endpoint]) -> None:
    a, b = fleet
    with pytest.raises(DomainElsewhere, match="domain vm1 runs on host a"):
        b.power.reset_domain(ADMIN, "vm1", ResetType.ON)
    with pytest.raises(DomainElsewhere, match="runs on host a"):
        b.power.get_domain_power(ADMIN, "vm1")
    with pytest.raises(DomainElsewhere, match="runs on host a"):
        b.domains.delete(ADMIN, "vm1")
    with pytest.raises(DomainElsewhere, match="runs on host a"):
        b.use_cases.use(ThermalService).thermal(ADMIN, "vm1")
    assert a.power.get_domain_power(ADMIN, "vm1").state is PowerState.OFF
    refused = [e for e in a.store.audit if e.operation == "ResetDomain" and e.domain_id == "vm1"]
    assert [e.outcome for e in refused] == ["refused:PlatformUnavailable"]
    # the settings are the fleet's, in the one store: what a's guest writes, b reads
    a.bios.set_attributes(a.guest, {"AssetTag": "rack-7"})
    assert b.bios.state_of("vm1").current["AssetTag"] == "rack-7"


def test_the_periodic_work_of_a_host_touches_its_own_machines_only(
        fleet: tuple[Endpoint, Endpoint]) -> None:
    a, b = fleet
    a.power.reset_domain(ADMIN, "vm1", ResetType.ON)
    settle(a)
    b.power.reset_domain(ADMIN, "vm2", ResetType.ON)
    settle(b)
    thermal_b = b.use_cases.use(ThermalService)
    thermal_b.evaluate()
    with a.store.unit_of_work() as uow:
        assert uow.thermal.get("vm1") is None and uow.thermal.get("vm2") is not None
    assert not any(line.startswith("vm1") for line in b.power.restore_power())
    assert a.power.get_domain_power(ADMIN, "vm1").state is PowerState.ON  # b left it alone


def test_a_host_takes_a_stopped_domain_over(fleet: tuple[Endpoint, Endpoint]) -> None:
    a, b = fleet
    guest = guest_of(a, "vm1")
    assert b.domains.take(ADMIN, "vm1") == "a"
    assert b.domains.take(ADMIN, "vm1") is None  # it runs here already
    b.power.reset_domain(ADMIN, "vm1", ResetType.ON)
    settle(b)
    assert b.power.get_domain_power(ADMIN, "vm1").state is PowerState.ON
    with pytest.raises(DomainElsewhere, match="domain vm1 runs on host b"):
        a.power.get_domain_power(ADMIN, "vm1")
    with pytest.raises(AccessDenied, match="runs on host b"):
        a.use_cases.use(CredentialService).authenticate(guest)
    taken = [e for e in a.store.audit if e.operation == "TakeDomain"]
    assert [(e.principal, e.domain_id, e.outcome) for e in taken] == [
        (str(ADMIN), "vm1", "ok")]


def test_a_running_domain_is_taken_only_with_force(fleet: tuple[Endpoint, Endpoint]) -> None:
    a, b = fleet
    a.power.reset_domain(ADMIN, "vm1", ResetType.ON)
    settle(a)
    with pytest.raises(InvalidPowerTransition, match=r"vm1 is \w+ on host a: turn it off there"
                                                     r" first \(or --force"):
        b.domains.take(ADMIN, "vm1")
    with a.store.unit_of_work() as uow:
        assert uow.machines.get("vm1").host == "a"
    assert b.domains.take(ADMIN, "vm1", force=True) == "a"  # host a is down, say
    assert b.power.get_domain_power(ADMIN, "vm1").state is PowerState.OFF


def test_each_host_keeps_its_own_reference_and_restricted_mode() -> None:
    """Host a's boot is tampered with: a refuses writes (restricted mode, its own record),
    host b on the same store goes on accepting them."""
    from bios_ws.domain.hosts import host_key
    from bios_ws.service.integrity import INTEGRITY_KEY, REFERENCE_KEY
    from tests.attested_host import build_attested_host
    from tests.integration.test_restricted_mode import SET_TAG, state, tamper

    store = MemoryStore()
    a = build_attested_host(host="a", store=store, domain_id="vm1")
    b = build_attested_host(host="b", store=store, domain_id="vm2")
    b.guest = Principal.guest("vm2")
    for host in (a, b):
        host.set_reference_from_log()
    assert {host_key(REFERENCE_KEY, "a"), host_key(REFERENCE_KEY, "b")} <= set(store.records)
    tamper(a)
    assert state(a.call("GetIntegrityStatus")) == "Untrusted"
    assert state(b.call("GetIntegrityStatus")) == "Trusted"
    b.monotonic.now += 60  # b measures again: still its own boot, still trusted
    assert b.call("SetAttributes", SET_TAG).fault_code() is None
    a.monotonic.now += 60
    assert a.call("SetAttributes", SET_TAG).detail("Code") == "ServiceRestricted"
    verdicts = {name: store.records[host_key(INTEGRITY_KEY, name)].value for name in "ab"}
    assert '"trusted": false' in verdicts["a"] and '"trusted": true' in verdicts["b"]
    with store.unit_of_work() as uow:  # only the domains of host a are told, in their logs
        logged = {domain: [str(e) for e in uow.sel.entries(domain)] for domain in ("vm1", "vm2")}
    assert any("RestrictedModeEntered" in entry for entry in logged["vm1"])
    assert not any("RestrictedMode" in entry for entry in logged["vm2"])


def test_a_host_issues_no_credential_for_another_hosts_domain(
        fleet: tuple[Endpoint, Endpoint]) -> None:
    from bios_ws.service.enrollment import EnrollmentService

    a, b = fleet
    with pytest.raises(DomainElsewhere, match="domain vm1 runs on host a"):
        b.use_cases.use(CredentialService).issue_guest(ADMIN, "vm1")
    with pytest.raises(DomainElsewhere, match="domain vm1 runs on host a"):
        b.use_cases.use(EnrollmentService).ticket(ADMIN, "vm1", "https://b.example:8443/")
    with a.store.unit_of_work() as uow:
        assert [r.domain_id for r in uow.credentials.issued()] == []
    issued = [e for e in a.store.audit if e.operation == "IssueCertificate"]
    assert [e.outcome for e in issued] == ["refused:PlatformUnavailable"]


def test_a_hosts_timers_fire_for_its_own_machines_only(fleet: tuple[Endpoint, Endpoint]) -> None:
    a, b = fleet
    assert b.power.here(["vm1", "vm2", "gone"]) == {"vm2"}
    assert a.power.here(["vm1", "vm2"]) == {"vm1"}
