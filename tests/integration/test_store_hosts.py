"""The hosts sharing a store, on memory, SQLite and PostgreSQL alike (one contract), and
their registration (``service.hosts``): names held by one CA, the first host claiming a
store from before hosts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bios_ws.domain.hosts import HostEntry, host_key
from bios_ws.domain.power import MachineKind, MachineRecord
from bios_ws.domain.principal import Principal
from bios_ws.errors import AdminError
from bios_ws.service.hosts import HostService
from bios_ws.service.integrity import INTEGRITY_KEY, REFERENCE_KEY

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)
T1 = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
CA_A, CA_B = "a" * 64, "b" * 64
ADMIN = Principal.admin()


def test_hosts_are_kept_by_name_with_their_start(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.hosts.add(HostEntry("host-b", CA_B, "dev", T0))
        uow.hosts.add(HostEntry("host-a", CA_A, "device:/dev/tpmrm0", T0))
        uow.commit()
    with store.unit_of_work() as uow:
        uow.hosts.started("host-a", T1)
        uow.hosts.started("nobody", T1)  # nothing to record
        uow.commit()
    with store.unit_of_work() as uow:
        assert [h.name for h in uow.hosts.list()] == ["host-a", "host-b"]
        assert uow.hosts.get("host-a") == HostEntry("host-a", CA_A, "device:/dev/tpmrm0",
                                                    T0, T1)
        assert uow.hosts.get("host-b") == HostEntry("host-b", CA_B, "dev", T0)
        assert uow.hosts.get("nobody") is None


def test_a_machine_keeps_its_host_and_unassigned_ones_are_claimed_once(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.machines.add(MachineRecord("old", MachineKind.SIMULATED))
        uow.machines.add(MachineRecord("mine", MachineKind.QEMU, host="host-b"))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.hosts.claim_unassigned("host-a") == 1
        uow.commit()
    with store.unit_of_work() as uow:
        old, mine = uow.machines.get("old"), uow.machines.get("mine")
        assert (old.host, old.version) == ("host-a", 2)  # a change others compare against
        assert (mine.host, mine.version) == ("host-b", 1)
        assert uow.hosts.claim_unassigned("host-b") == 0


def test_the_first_host_claims_the_machines_and_records_of_a_store_before_hosts(
        store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.machines.add(MachineRecord("old", MachineKind.SIMULATED))
        uow.records.put(REFERENCE_KEY, '{"ref": 1}', T0)
        uow.records.put(INTEGRITY_KEY, '{"trusted": true}', T0)
        uow.commit()
    hosts = HostService(store.unit_of_work, lambda: T1)
    said = hosts.register(ADMIN, "host-a", CA_A, "dev")
    assert said == "registered as host host-a; it runs the 1 domains already here"
    assert hosts.register(ADMIN, "host-b", CA_B, "none") == "registered as host host-b"
    with store.unit_of_work() as uow:
        assert uow.machines.get("old").host == "host-a"
        reference = uow.records.get(host_key(REFERENCE_KEY, "host-a"))
        assert reference is not None and reference.value == '{"ref": 1}'
        assert uow.records.get(host_key(INTEGRITY_KEY, "host-a")) is not None
        assert uow.records.get(host_key(REFERENCE_KEY, "host-b")) is None  # its own to set
        assert [e.operation for e in uow.audit.recent(2)] == ["RegisterHost", "RegisterHost"]
    summaries = {s.entry.name: s.domains for s in hosts.list(ADMIN)}
    assert summaries == {"host-a": 1, "host-b": 0}


def test_a_name_is_held_by_the_ca_that_registered_it(store: Any) -> None:
    hosts = HostService(store.unit_of_work, lambda: T0)
    hosts.register(ADMIN, "host-a", CA_A, "dev")
    with pytest.raises(AdminError, match=r"host name host-a is registered in this store by"
                                         r" another installation.*--host-name"):
        hosts.register(ADMIN, "host-a", CA_B, "dev", starting=True)
    with store.unit_of_work() as uow:
        entry = uow.hosts.get("host-a")
        assert entry is not None and (entry.ca_fingerprint, entry.started_at) == (CA_A, None)
    later = HostService(store.unit_of_work, lambda: T1)
    assert later.register(ADMIN, "host-a", CA_A, "dev", starting=True) is None
    with store.unit_of_work() as uow:
        entry = uow.hosts.get("host-a")
        assert entry is not None and entry.started_at == T1
        assert [e.operation for e in uow.audit.recent(5)] == ["RegisterHost"]  # one, no more


@pytest.mark.parametrize("name", ["", "Host", "-a", "a-", "a" * 41, "a b", "a_b", "é"])
def test_a_bad_host_name_is_refused(store: Any, name: str) -> None:
    with pytest.raises(AdminError, match="invalid host name"):
        HostService(store.unit_of_work, lambda: T0).register(ADMIN, name, CA_A, "dev")
    with store.unit_of_work() as uow:
        assert uow.hosts.list() == []


def test_only_an_admin_registers_a_host(store: Any) -> None:
    from bios_ws.errors import AccessDenied

    with pytest.raises(AccessDenied):
        HostService(store.unit_of_work, lambda: T0).register(
            Principal.guest("d1"), "host-a", CA_A, "dev")


def test_a_delegate_hosts_name_is_no_homes(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.host_grants.replace("rack1-a", ["vm1"], T0)
        uow.commit()
    with pytest.raises(AdminError, match="rack1-a is a delegate host"):
        HostService(store.unit_of_work, lambda: T0).register(ADMIN, "rack1-a", CA_A, "dev")
    with store.unit_of_work() as uow:
        assert uow.hosts.list() == []
