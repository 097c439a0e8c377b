"""Refusals of every use case go through the refusal limit; diagnostics show a guest only
its own and host-wide entries, numbered without the others' gaps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bios_ws.domain.audit import AuditEntry
from bios_ws.domain.audit_limit import DEFAULT_REFUSAL_LIMIT, SUMMARY_OPERATION
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.power import MachineKind, ResetType
from bios_ws.domain.principal import Principal
from bios_ws.domain.reference import ReferenceMeasurements
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.errors import VbiosError
from bios_ws.platform.simulated import SimulatedPlatform, StateShelf
from bios_ws.service.attestation import AttestationService
from bios_ws.service.bios import BiosService
from bios_ws.service.boot import MachineObserver
from bios_ws.service.domains import DomainService
from bios_ws.service.power import PowerService
from bios_ws.soap.testing import ManualClock

VM1, VM2 = Principal.guest("vm1"), Principal.guest("vm2")
ADMIN = Principal.admin("root")
THRESHOLD = DEFAULT_REFUSAL_LIMIT.threshold
WINDOW = DEFAULT_REFUSAL_LIMIT.window.total_seconds()


@dataclass
class World:
    store: MemoryStore
    clock: ManualClock
    bios: BiosService
    domains: DomainService
    power: PowerService
    attestation: AttestationService

    def rows(self, principal: Principal, outcome_prefix: str = "refused:") -> list[AuditEntry]:
        return [e for e in self.store.audit
                if e.principal == str(principal) and e.outcome.startswith(outcome_prefix)]


@pytest.fixture
def world(shipped_registry: AttributeRegistry) -> World:
    store = MemoryStore()
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    bios = BiosService(store.unit_of_work, shipped_registry, clock.now)
    observer = MachineObserver(store.unit_of_work, bios, clock.now, KeyDatabases)
    platform = SimulatedPlatform(StateShelf(), observer.hooks(), clock=clock.seconds)
    platforms = {MachineKind.SIMULATED: platform}
    domains = DomainService(store.unit_of_work, shipped_registry, platforms, clock.now)
    power = PowerService(store.unit_of_work, clock.now, platforms, bios)
    attestation = AttestationService(store.unit_of_work, clock.now, monitor=None,
                                     tpm_access=None, read_log=lambda: None,
                                     ak_certificate=lambda: None)
    domains.create(ADMIN, "vm1")
    domains.create(ADMIN, "vm2")
    return World(store, clock, bios, domains, power, attestation)


def no_reference() -> ReferenceMeasurements:
    raise AssertionError("never built: the guest is refused first")


REFUSALS: dict[str, tuple[Principal, Callable[[World], object]]] = {
    "settings": (VM2, lambda w: w.bios.set_attributes(VM2, {"Nope": 1})),
    "admin apply": (VM2, lambda w: w.bios.apply_pending(VM2, "vm1")),
    "power": (VM2, lambda w: w.power.reset(VM2, ResetType.FORCE_OFF)),
    "domains": (ADMIN, lambda w: w.domains.create(ADMIN, "vm1")),
    "reference": (VM2, lambda w: w.attestation.set_reference(VM2, no_reference)),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_every_use_case_audits_refusals_under_the_limit(world: World, case: str) -> None:
    principal, call = REFUSALS[case]
    for _ in range(THRESHOLD + 5):
        with pytest.raises(VbiosError):
            call(world)
    assert len(world.rows(principal)) == THRESHOLD
    assert [w.counted for w in world.store.refusals.values()] == [5]
    world.clock.advance(WINDOW)
    with pytest.raises(VbiosError):
        call(world)
    summary, refusal = world.store.audit[-2:]
    assert (summary.principal, summary.operation, summary.outcome) == (
        str(principal), SUMMARY_OPERATION, "summarized:5")
    assert refusal.principal == str(principal) and refusal.outcome.startswith("refused:")


def test_successes_are_never_limited(world: World) -> None:
    for _ in range(THRESHOLD + 5):
        with pytest.raises(VbiosError):
            world.bios.set_attributes(VM1, {"Nope": 1})
    for n in range(3 * THRESHOLD):
        world.bios.set_attributes(VM1, {"AssetTag": f"t{n}"})
    assert len(world.rows(VM1, "ok")) == 3 * THRESHOLD


def test_a_guests_diagnostics_hide_other_guests_and_their_volume(world: World) -> None:
    world.bios.set_attributes(VM1, {"AssetTag": "mine"})
    for n in range(7):
        world.bios.set_attributes(VM2, {"AssetTag": f"t{n}"})
    for _ in range(3):
        with pytest.raises(VbiosError):
            world.attestation.set_reference(VM2, no_reference)  # host-wide, by vm2
        with pytest.raises(VbiosError):
            world.bios.apply_pending(VM2, "vm1")  # about vm1, by vm2
    with pytest.raises(VbiosError):
        world.attestation.set_reference(VM1, no_reference)
    seen = world.attestation.diagnostics(VM1).audit
    assert [(s.entry.principal, s.entry.operation, s.entry.domain_id) for s in seen] == [
        ("admin:root", "CreateDomain", "vm1"),
        ("guest:vm1", "SetAttributes", "vm1"),
        ("guest:vm1", "SetReferenceMeasurements", None),
    ]
    assert [s.number for s in seen] == [1, 2, 3]
    everything = world.attestation.diagnostics(ADMIN).audit
    assert [s.number for s in everything] == [s.entry.seq for s in everything]
    assert len(everything) == len(world.store.audit)


def test_diagnostics_write_the_counts_of_windows_that_are_over(world: World) -> None:
    for _ in range(100):
        with pytest.raises(VbiosError):
            world.attestation.set_reference(VM2, no_reference)
    world.clock.advance(WINDOW)
    theirs = world.attestation.diagnostics(VM2).audit
    assert theirs[-1].entry.outcome == f"summarized:{100 - THRESHOLD}"
    assert world.store.refusals == {}
    mine = world.attestation.diagnostics(VM1).audit
    assert all(s.entry.principal != str(VM2) for s in mine)
