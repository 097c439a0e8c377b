"""DomainService: creating, listing and deleting guest domains."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bios_ws.domain.audit import verify_chain
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware_job import ApplyTime, FirmwareJob, JobState
from bios_ws.domain.firmware_update import SYSTEM_FIRMWARE_CLASS, initial_inventory
from bios_ws.domain.firmware_upload import UPLOAD_LIFETIME, FirmwareUpload
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.errors import AccessDenied, DomainExists, DomainNotFound, InvalidRequest
from bios_ws.service.domains import DomainService

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_create_stores_a_fresh_domain(domains: DomainService, admin: Principal,
                                      store: MemoryStore, registry: AttributeRegistry) -> None:
    state = domains.create(admin, "web-01")
    assert (state.domain_id, state.version) == ("web-01", 1)
    assert state.current == registry.defaults()
    stored, created = store.domains["web-01"]
    assert stored == state and stored is not state
    assert created.tzinfo is not None
    entry = store.audit[-1]
    assert (entry.operation, entry.domain_id, entry.principal, entry.outcome) == (
        "CreateDomain", "web-01", "admin:root", "ok")


def test_list_is_ordered_by_id(domains: DomainService, admin: Principal) -> None:
    for name in ("zeta", "alpha", "mid"):
        domains.create(admin, name)
    listed = domains.list(admin)
    assert [s.domain_id for s in listed] == ["alpha", "mid", "zeta"]
    assert all(s.version == 1 for s in listed)
    assert listed[0].created_at > listed[2].created_at  # alpha was created after zeta


def test_delete(domains: DomainService, admin: Principal, store: MemoryStore) -> None:
    domains.create(admin, "vm1")
    domains.delete(admin, "vm1")
    assert domains.list(admin) == []
    assert [e.operation for e in store.audit] == ["CreateDomain", "DeleteDomain"]
    assert verify_chain(store.audit) is None


def test_delete_forgets_the_domains_firmware_in_the_same_unit(
        domains: DomainService, admin: Principal, store: MemoryStore) -> None:
    for name in ("vm1", "vm2"):
        domains.create(admin, name)
        with store.unit_of_work() as uow:
            uow.firmware.put_inventory(name, initial_inventory())
            uow.firmware.add_job(FirmwareJob(
                f"job-{name}", name, SYSTEM_FIRMWARE_CLASS, 2, 7, ApplyTime.ON_RESET,
                NOW, NOW, state=JobState.NEEDS_RESET))
            uow.firmware.add_upload(FirmwareUpload(
                name[-1] * 32, name, "admin:root", 4096, "a" * 64, NOW, NOW + UPLOAD_LIFETIME))
            uow.commit()
    domains.delete(admin, "vm1")
    with store.unit_of_work() as uow:
        assert uow.firmware.inventory("vm1") is None
        assert (uow.firmware.jobs("vm1"), uow.firmware.uploads("vm1")) == ([], [])
        assert uow.firmware.inventory("vm2") == initial_inventory()
        assert [j.job_id for j in uow.firmware.unfinished_jobs()] == ["job-vm2"]
        assert [u.domain_id for u in uow.firmware.uploads()] == ["vm2"]
    assert [e.operation for e in store.audit][-1] == "DeleteDomain"


def test_create_twice_is_refused(domains: DomainService, admin: Principal) -> None:
    first = domains.create(admin, "vm1")
    with pytest.raises(DomainExists):
        domains.create(admin, "vm1")
    assert [s.domain_id for s in domains.list(admin)] == ["vm1"]
    assert domains.list(admin)[0].version == first.version


@pytest.mark.parametrize("domain_id", ["", "Has Caps", "a/b", "vm1\n", "x" * 64])
def test_invalid_ids_are_refused(domains: DomainService, admin: Principal,
                                 store: MemoryStore, domain_id: str) -> None:
    with pytest.raises(InvalidRequest):
        domains.create(admin, domain_id)
    assert store.domains == {}


def test_guests_may_not_manage_domains(domains: DomainService, admin: Principal,
                                       guest: Principal, store: MemoryStore) -> None:
    domains.create(admin, "vm1")
    with pytest.raises(AccessDenied):
        domains.create(guest, "vm2")
    with pytest.raises(AccessDenied):
        domains.delete(guest, "vm1")
    with pytest.raises(AccessDenied):
        domains.list(guest)
    assert list(store.domains) == ["vm1"]


def test_delete_unknown(domains: DomainService, admin: Principal) -> None:
    with pytest.raises(DomainNotFound):
        domains.delete(admin, "ghost")
