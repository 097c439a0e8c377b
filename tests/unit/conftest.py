"""Fixtures of the unit tier: registries, domain states and services over in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import DomainState
from bios_ws.platform.simulated import in_memory_machines
from bios_ws.registry_file import load_registry
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService


def attribute(name: str, kind: str, **fields: Any) -> dict[str, Any]:
    """One registry entry as the JSON document spells it."""
    return {"name": name, "type": kind, "display_name": name, **fields}


#: A small registry whose every rule a test can reason about.
SMALL_ATTRIBUTES: list[dict[str, Any]] = [
    attribute("BootMode", "Enumeration", allowed_values=["Uefi", "Bios"], default="Uefi",
              reset_required=True),
    attribute("Counter", "Integer", lower_bound=0, upper_bound=1_000_000, default=0),
    attribute("Delay", "Integer", lower_bound=10, upper_bound=100, scalar_increment=5,
              default=20),
    attribute("AssetTag", "String", max_length=8, default=""),
    attribute("WakeOnLan", "Boolean", default=False),
    attribute("BiosVersion", "String", read_only=True, default="1.0.0"),
    attribute("SetupPassword", "Password", min_length=8, max_length=32),
    attribute("PowerOnPassword", "Password", min_length=8, max_length=32),
]


@pytest.fixture(scope="session")
def shipped_registry() -> AttributeRegistry:
    return load_registry()


@pytest.fixture
def registry() -> AttributeRegistry:
    return AttributeRegistry.from_dict(
        {"registry_version": "test-1", "attributes": [dict(a) for a in SMALL_ATTRIBUTES]}
    )


@pytest.fixture
def state(registry: AttributeRegistry) -> DomainState:
    return DomainState.new("vm1", registry)


class StepClock:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def admin() -> Principal:
    return Principal.admin("root")


@pytest.fixture
def guest() -> Principal:
    return Principal.guest("vm1")


@pytest.fixture
def domains(store: MemoryStore, registry: AttributeRegistry) -> DomainService:
    return DomainService(store.unit_of_work, registry, in_memory_machines(), StepClock())


@pytest.fixture
def bios(
    store: MemoryStore, registry: AttributeRegistry, domains: DomainService, admin: Principal
) -> BiosService:
    """A BiosService whose store already holds the domains vm1 and vm2."""
    domains.create(admin, "vm1")
    domains.create(admin, "vm2")
    return BiosService(store.unit_of_work, registry, StepClock())


@pytest.fixture
def stored(store: MemoryStore) -> Callable[[str], DomainState]:
    """Read a domain's committed state straight from the store."""

    def read(domain_id: str) -> DomainState:
        return store.domains[domain_id][0].copy()

    return read
