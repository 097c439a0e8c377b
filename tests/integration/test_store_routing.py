"""A host's remotes and routes (``domain.routing``), on memory, SQLite and PostgreSQL
alike (one contract), and the admin's use cases over them (``service.routing``): names,
refusals with their reasons, and the per-call table that follows every change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bios_ws.capabilities import CAPABILITIES, routable_capabilities
from bios_ws.domain.principal import Principal
from bios_ws.domain.routing import Remote, Route
from bios_ws.domain.state import DomainState
from bios_ws.errors import AccessDenied, AdminError, DomainNotFound
from bios_ws.service.routing import RouteKeeper, RoutingService

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADMIN = Principal.admin()
B = Remote("cloud-b", "https://b.example:8443/", b"CERT-B", b"CA-B")
C = Remote("cloud-c", "https://c.example/vbios", b"CERT-C", b"CA-C")


def service(store: Any, host: str | None = "host-a") -> RoutingService:
    reasons = {c.name: None if c.routable else c.why_local() for c in CAPABILITIES}
    return RoutingService(store.unit_of_work, lambda: T0, reasons, host=host)


def with_domains(store: Any, *names: str) -> None:
    with store.unit_of_work() as uow:
        for name in names:
            uow.domains.add(DomainState(name, 1, {"A": 1}), T0)
        uow.commit()


def test_remotes_and_routes_are_kept_per_host(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.routing.add_remote("host-a", C)
        uow.routing.add_remote("host-a", B)
        uow.routing.add_remote("host-b", B)
        uow.routing.set_route("host-a", Route("settings", None, "cloud-b"))
        uow.routing.set_route("host-a", Route("settings", "vm1", "cloud-c"))
        uow.routing.set_route("host-a", Route("power", "vm1", "cloud-b"))
        uow.routing.set_route("host-a", Route("power", "vm1", "cloud-c"))  # replaced
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.routing.remotes("host-a") == [B, C]
        assert uow.routing.remotes("host-b") == [B]
        assert uow.routing.remotes("host-c") == []
        assert uow.routing.routes("host-a") == [
            Route("power", "vm1", "cloud-c"), Route("settings", None, "cloud-b"),
            Route("settings", "vm1", "cloud-c")]
        assert uow.routing.routes("host-b") == []
    with store.unit_of_work() as uow:
        assert uow.routing.clear_route("host-a", "settings", None)
        assert not uow.routing.clear_route("host-a", "settings", None)
        assert uow.routing.remove_remote("host-b", "cloud-b")
        assert not uow.routing.remove_remote("host-b", "cloud-b")
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.routing.routes("host-a") == [Route("power", "vm1", "cloud-c"),
                                                Route("settings", "vm1", "cloud-c")]
        assert uow.routing.remotes("host-b") == []
        assert uow.routing.remotes("host-a") == [B, C]


def test_a_route_keeps_its_cache_age_and_a_replacement_sets_or_clears_it(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.routing.set_route("host-a", Route("settings", None, "cloud-b", 60))
        uow.routing.set_route("host-a", Route("events", "vm1", "cloud-b"))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.routing.routes("host-a") == [Route("events", "vm1", "cloud-b", None),
                                                Route("settings", None, "cloud-b", 60)]
        uow.routing.set_route("host-a", Route("settings", None, "cloud-c"))  # cleared
        uow.routing.set_route("host-a", Route("events", "vm1", "cloud-b", 86_400))  # set
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.routing.routes("host-a") == [Route("events", "vm1", "cloud-b", 86_400),
                                                Route("settings", None, "cloud-c")]


def test_an_uncommitted_change_is_not_kept(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.routing.add_remote("host-a", B)
    with store.unit_of_work() as uow:
        assert uow.routing.remotes("host-a") == []


def test_a_domain_route_wins_over_the_route_for_all_domains(store: Any) -> None:
    with_domains(store, "vm1", "vm2")
    routing = service(store)
    routing.add_remote(ADMIN, B)
    routing.add_remote(ADMIN, C)
    routing.set_route(ADMIN, "settings", "cloud-b")
    routing.set_route(ADMIN, "settings", "cloud-c", domain="vm1")
    routing.set_route(ADMIN, "events", "cloud-c", domain="vm2")
    keeper = RouteKeeper(routing)
    with store.unit_of_work() as uow:
        table = keeper.table(uow)
    assert table.target_for("settings", "vm1") == "cloud-c"
    assert table.target_for("settings", "vm2") == "cloud-b"
    assert table.target_for("events", "vm2") == "cloud-c"
    assert table.target_for("events", "vm1") is None
    assert table.target_for("power", "vm1") is None
    assert table.remotes["cloud-c"] == C


def test_the_keeper_follows_every_change_and_reads_only_the_record_otherwise(
        store: Any) -> None:
    with_domains(store, "vm1")
    routing = service(store)
    keeper = RouteKeeper(routing)
    with store.unit_of_work() as uow:
        assert keeper.table(uow).target_for("events", "vm1") is None
    routing.add_remote(ADMIN, B)
    routing.set_route(ADMIN, "events", "cloud-b", domain="vm1")
    with store.unit_of_work() as uow:
        first = keeper.table(uow)
    assert first.target_for("events", "vm1") == "cloud-b"
    with store.unit_of_work() as uow:
        assert keeper.table(uow) is first  # unchanged: not read again
    routing.set_route(ADMIN, "events", "local", domain="vm1")
    with store.unit_of_work() as uow:
        assert keeper.table(uow).target_for("events", "vm1") is None
        assert not keeper.table(uow).routes_any("vm1")


def test_each_host_has_its_own_table(store: Any) -> None:
    with_domains(store, "vm1")
    service(store, "host-a").add_remote(ADMIN, B)
    service(store, "host-a").set_route(ADMIN, "events", "cloud-b")
    with store.unit_of_work() as uow:
        assert RouteKeeper(service(store, "host-b")).table(uow).routes == ()
        assert RouteKeeper(service(store, "host-a")).table(uow).routes == (
            Route("events", None, "cloud-b"),)


@pytest.mark.parametrize("capability, reason", [
    ("attestation", "this host's own TPM"),
    ("power", "machines stay where they run .*start, stop and reset"),
    ("thermal", "machines stay where they run .*sensors"),
    ("system-management", "machines stay where they run .*watchdog"),
    ("firmware-update", "machines stay where they run .*capsule"),
    ("firmware-upload", "feeds a firmware update"),
    ("secure-boot", "part of the domain's settings state .*route set settings"),
    ("enrollment", "CA of the host that runs its domain"),
    ("credentials", "serves no guest operation"),
    ("domains", "serves no guest operation"),
])
def test_what_stays_local_is_refused_with_its_reason(store: Any, capability: str,
                                                      reason: str) -> None:
    routing = service(store)
    routing.add_remote(ADMIN, B)
    name = capability.replace("-", " ")
    with pytest.raises(AdminError, match=f"{name} stays local: .*{reason}"):
        routing.set_route(ADMIN, capability, "cloud-b")


def test_every_routable_capability_can_be_routed_and_comes_from_the_registry(
        store: Any) -> None:
    assert set(routable_capabilities()) == {"settings", "events"}
    routing = service(store)
    routing.add_remote(ADMIN, B)
    for name in routable_capabilities():
        routing.set_route(ADMIN, name.replace(" ", "-"), "cloud-b")
    assert {r.capability for r in routing.view(ADMIN).routes} == set(routable_capabilities())


def test_refusals(store: Any) -> None:
    with_domains(store, "vm1")
    routing = service(store)
    routing.add_remote(ADMIN, B)
    with pytest.raises(AdminError, match="exists already"):
        routing.add_remote(ADMIN, B)
    with pytest.raises(AdminError, match="no capability named 'bogus'; routable: settings"):
        routing.set_route(ADMIN, "bogus", "cloud-b")
    with pytest.raises(AdminError, match="no remote named nowhere"):
        routing.set_route(ADMIN, "events", "nowhere")
    with pytest.raises(DomainNotFound):
        routing.set_route(ADMIN, "events", "cloud-b", domain="vm9")
    with pytest.raises(AdminError, match="invalid remote name"):
        routing.add_remote(ADMIN, Remote("Bad_Name", B.url, b"c", b"a"))
    with pytest.raises(AdminError, match="names this installation"):
        routing.add_remote(ADMIN, Remote("local", B.url, b"c", b"a"))
    with pytest.raises(AdminError, match="invalid remote URL"):
        routing.add_remote(ADMIN, Remote("plain", "http://b.example/", b"c", b"a"))
    with pytest.raises(AccessDenied):
        routing.set_route(Principal.guest("vm1"), "events", "cloud-b")


def test_a_route_with_a_cache_is_in_the_table_and_its_refusals(store: Any) -> None:
    with_domains(store, "vm1")
    routing = service(store)
    routing.add_remote(ADMIN, B)
    route = routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1", cache_seconds=30)
    assert route == Route("settings", "vm1", "cloud-b", 30)
    with store.unit_of_work() as uow:
        assert RouteKeeper(routing).table(uow).route_for("settings", "vm1") == route
    for seconds in (0, -5, 86_401, 10**12):
        with pytest.raises(AdminError, match=f"invalid cache age {seconds}: a whole number"
                                             " of seconds from 1 to 86400"):
            routing.set_route(ADMIN, "settings", "cloud-b", cache_seconds=seconds)
    with pytest.raises(AdminError, match="a capability served here is never answered from"
                                         " one"):
        routing.set_route(ADMIN, "settings", "local", domain="vm1", cache_seconds=30)
    assert routing.view(ADMIN).routes == (route,)  # the refusals changed nothing
    routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1")  # again, without: none
    assert routing.view(ADMIN).routes == (Route("settings", "vm1", "cloud-b"),)


def test_a_remote_in_use_is_not_removed(store: Any) -> None:
    with_domains(store, "vm1")
    routing = service(store)
    routing.add_remote(ADMIN, B)
    routing.set_route(ADMIN, "events", "cloud-b", domain="vm1")
    with pytest.raises(AdminError, match="remote cloud-b serves events of vm1: route them"):
        routing.remove_remote(ADMIN, "cloud-b")
    routing.set_route(ADMIN, "events", "local", domain="vm1")
    routing.remove_remote(ADMIN, "cloud-b")
    assert routing.view(ADMIN).remotes == ()
    with pytest.raises(AdminError, match="no remote named cloud-b"):
        routing.remove_remote(ADMIN, "cloud-b")


def test_changes_are_audited(store: Any) -> None:
    with_domains(store, "vm1")
    routing = service(store)
    routing.add_remote(ADMIN, B)
    routing.set_route(ADMIN, "events", "cloud-b", domain="vm1")
    with store.unit_of_work() as uow:
        entries = [(e.operation, e.domain_id) for e in uow.audit.entries()]
    assert entries[-2:] == [("AddRemote", None), ("SetRoute", "vm1")]


def test_a_store_of_the_version_before_gets_empty_routing_tables(empty_url: str) -> None:
    from bios_ws.store import SCHEMA_VERSION, open_store
    from bios_ws.store.migrations import MIGRATIONS
    from bios_ws.store.sql import store_status
    from tests.integration.test_store_migrations import run_sql

    routing_version = next(m.version for m in MIGRATIONS if "routes" in m.summary)
    open_store(empty_url, upgrade=True).dispose()
    run_sql(empty_url, "DROP TABLE routes", "DROP TABLE remotes",
            f"UPDATE meta SET value = '{routing_version - 1}' WHERE key = 'schema_version'")
    assert [m.version for m in store_status(empty_url).pending] == [routing_version]
    upgraded = open_store(empty_url, upgrade=True)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.unit_of_work() as uow:
            assert uow.routing.remotes("host-a") == [] and uow.routing.routes("host-a") == []
    finally:
        upgraded.dispose()
