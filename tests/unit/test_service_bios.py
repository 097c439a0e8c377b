"""BiosService over the in-memory store: every operation, versions and authorization."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.password import verify_password
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import DEFAULT_BOOT_OPTIONS, SETUP_PASSWORD, ApplyTime, DomainState
from bios_ws.errors import (
    AccessDenied,
    DomainNotFound,
    InvalidRequest,
    UnknownAttribute,
    VersionConflict,
)
from bios_ws.service.bios import BiosService

Stored = Callable[[str], DomainState]
IDS = [o.id for o in DEFAULT_BOOT_OPTIONS]
SECRET = "correct horse"


def _outcomes(store: MemoryStore) -> list[tuple[str, str | None, str, str]]:
    return [(e.operation, e.domain_id, e.principal, e.outcome) for e in store.audit]


def test_get_registry_for_guests(bios: BiosService, guest: Principal,
                                 registry: AttributeRegistry) -> None:
    assert bios.get_registry(guest) is registry


def test_get_attributes_all_and_named(bios: BiosService, guest: Principal,
                                      registry: AttributeRegistry) -> None:
    view = bios.get_attributes(guest)
    assert view.version == 1
    assert view.values == registry.defaults()
    assert view.setup_password_set is False
    named = bios.get_attributes(guest, ["Counter", "SetupPassword", "BootMode"])
    assert named.values == {"Counter": 0, "BootMode": "Uefi"}  # passwords hold no value


def test_get_attributes_unknown_name(bios: BiosService, guest: Principal) -> None:
    with pytest.raises(UnknownAttribute) as caught:
        bios.get_attributes(guest, ["Counter", "Nope"])
    assert caught.value.attribute == "Nope"


def test_reads_do_not_write_or_audit(bios: BiosService, guest: Principal,
                                     store: MemoryStore, stored: Stored) -> None:
    entries = len(store.audit)
    bios.get_attributes(guest)
    bios.get_pending(guest)
    bios.get_boot(guest)
    assert len(store.audit) == entries
    assert stored("vm1").version == 1


def test_views_are_copies(bios: BiosService, guest: Principal, stored: Stored) -> None:
    bios.get_attributes(guest).values["Counter"] = 99
    assert stored("vm1").current["Counter"] == 0


def test_set_attributes_immediate(bios: BiosService, guest: Principal, stored: Stored,
                                  store: MemoryStore) -> None:
    version = bios.set_attributes(guest, {"Counter": 7, "AssetTag": "rack4"})
    assert version == 2 == stored("vm1").version
    assert bios.get_attributes(guest, ["Counter"]).values == {"Counter": 7}
    assert stored("vm2").current["Counter"] == 0  # the other domain is untouched
    assert _outcomes(store)[-1] == ("SetAttributes", "vm1", "guest:vm1", "ok")


def test_set_attributes_on_reset_then_apply(bios: BiosService, guest: Principal,
                                            admin: Principal, store: MemoryStore) -> None:
    assert bios.set_attributes(guest, {"BootMode": "Bios"}, ApplyTime.ON_RESET) == 2
    assert bios.set_boot_next(guest, "Pxe.Nic.0") == 3
    pending = bios.get_pending(guest)
    assert (pending.version, pending.values) == (3, {"BootMode": "Bios"})
    assert bios.get_attributes(guest, ["BootMode"]).values == {"BootMode": "Uefi"}
    assert bios.apply_pending(admin, "vm1") == 4
    assert bios.get_attributes(guest, ["BootMode"]).values == {"BootMode": "Bios"}
    assert bios.get_pending(guest).values == {}
    assert bios.get_boot(guest).boot_next == "Pxe.Nic.0"  # no boot happened: not consumed
    assert _outcomes(store)[-1] == ("ApplyPendingAttributes", "vm1", "admin:root", "ok")


def test_cancel_pending(bios: BiosService, guest: Principal) -> None:
    bios.set_attributes(guest, {"BootMode": "Bios"}, ApplyTime.ON_RESET)
    assert bios.cancel_pending(guest, expected_version=2) == 3
    assert bios.get_pending(guest).values == {}


def test_reset_to_defaults(bios: BiosService, guest: Principal, admin: Principal,
                           registry: AttributeRegistry) -> None:
    bios.set_attributes(guest, {"Counter": 5, "WakeOnLan": True})
    assert bios.reset_to_defaults(guest) == 3
    assert bios.get_pending(guest).values == registry.writable_defaults()
    assert bios.get_attributes(guest, ["Counter"]).values == {"Counter": 5}
    bios.apply_pending(admin, "vm1")
    assert bios.get_attributes(guest).values == registry.defaults()


def test_boot_order_and_next(bios: BiosService, guest: Principal) -> None:
    order = list(reversed(IDS))
    assert bios.set_boot_order(guest, order) == 2
    assert bios.set_boot_next(guest, "Shell.Uefi") == 3
    view = bios.get_boot(guest)
    assert (view.version, view.order, view.boot_next) == (3, tuple(order), "Shell.Uefi")
    assert view.options == DEFAULT_BOOT_OPTIONS
    assert bios.set_boot_next(guest, None) == 4
    assert bios.get_boot(guest).boot_next is None


def test_passwords_through_the_service(bios: BiosService, guest: Principal, stored: Stored,
                                       store: MemoryStore) -> None:
    assert bios.change_password(guest, SETUP_PASSWORD, None, SECRET) == 2
    assert bios.get_attributes(guest).setup_password_set is True
    hashed = stored("vm1").passwords[SETUP_PASSWORD]
    assert hashed != SECRET and verify_password(SECRET, hashed)
    # every write now carries the setup password
    assert bios.set_attributes(guest, {"Counter": 1}, password=SECRET) == 3
    assert bios.set_boot_order(guest, IDS[::-1], password=SECRET) == 4
    assert bios.set_boot_next(guest, "Cd.Sata.0", password=SECRET) == 5
    assert bios.set_attributes(guest, {"Counter": 2}, ApplyTime.ON_RESET,
                               password=SECRET) == 6
    assert bios.cancel_pending(guest, password=SECRET) == 7
    assert bios.reset_to_defaults(guest, password=SECRET) == 8
    assert bios.change_password(guest, "PowerOnPassword", None, "power-on-1",
                                password=SECRET) == 9
    assert bios.change_password(guest, SETUP_PASSWORD, SECRET, "") == 10
    assert bios.get_attributes(guest).setup_password_set is False
    assert bios.set_attributes(guest, {"Counter": 2}) == 11
    for entry in store.audit:  # the digest of a password change holds no secret
        assert SECRET not in repr(entry)


def test_version_increments_on_every_write(bios: BiosService, guest: Principal,
                                           admin: Principal, stored: Stored) -> None:
    writes: list[Callable[[], int]] = [
        lambda: bios.set_attributes(guest, {"Counter": 1}),
        lambda: bios.set_attributes(guest, {"Counter": 2}, ApplyTime.ON_RESET),
        lambda: bios.cancel_pending(guest),
        lambda: bios.set_attributes(guest, {"Counter": 3}),
        lambda: bios.reset_to_defaults(guest),
        lambda: bios.apply_pending(admin, "vm1"),
        lambda: bios.set_boot_order(guest, IDS[::-1]),
        lambda: bios.set_boot_next(guest, "Pxe.Nic.0"),
        lambda: bios.set_boot_next(guest, None),
        lambda: bios.change_password(guest, "PowerOnPassword", None, "power-on-1"),
    ]
    for expected, write in enumerate(writes, start=2):
        assert write() == expected
        assert stored("vm1").version == expected


def test_writes_that_change_nothing_keep_the_version_and_audit_nothing(
        bios: BiosService, guest: Principal, admin: Principal, stored: Stored,
        store: MemoryStore) -> None:
    assert bios.set_attributes(guest, {"Counter": 4}) == 2
    assert bios.set_attributes(guest, {"BootMode": "Bios"}, ApplyTime.ON_RESET) == 3
    audited = len(store.audit)
    no_ops: list[Callable[[], int]] = [
        lambda: bios.set_attributes(guest, {"Counter": 4}),
        lambda: bios.set_attributes(guest, {"Counter": 4}, expected_version=3),
        lambda: bios.set_attributes(guest, {"BootMode": "Bios"}, ApplyTime.ON_RESET),
        lambda: bios.set_attributes(guest, {"Counter": 4}, ApplyTime.ON_RESET),
        lambda: bios.set_boot_order(guest, IDS),
        lambda: bios.set_boot_next(guest, None),
        lambda: bios.change_password(guest, "PowerOnPassword", None, ""),
    ]
    for write in no_ops:
        assert write() == 3
    assert stored("vm1").version == 3 and len(store.audit) == audited
    assert bios.cancel_pending(guest) == 4
    assert bios.cancel_pending(guest, expected_version=4) == 4  # nothing pending
    assert bios.apply_pending(admin, "vm1") == 4
    assert len(store.audit) == audited + 1


def test_on_reset_back_to_the_current_value_cancels_that_pending_change(
        bios: BiosService, guest: Principal) -> None:
    bios.set_attributes(guest, {"BootMode": "Bios", "Counter": 9}, ApplyTime.ON_RESET)
    assert bios.set_attributes(guest, {"BootMode": "Uefi"}, ApplyTime.ON_RESET) == 3
    assert bios.get_pending(guest).values == {"Counter": 9}


def test_expected_version_is_if_match(bios: BiosService, guest: Principal,
                                      stored: Stored, store: MemoryStore) -> None:
    assert bios.set_attributes(guest, {"Counter": 1}, expected_version=1) == 2
    before = stored("vm1")
    with pytest.raises(VersionConflict):
        bios.set_attributes(guest, {"Counter": 2}, expected_version=1)
    with pytest.raises(VersionConflict):
        bios.set_boot_next(guest, "Cd.Sata.0", expected_version=3)
    assert stored("vm1") == before
    assert [e.outcome for e in store.audit[-2:]] == ["refused:VersionConflict"] * 2
    assert bios.set_attributes(guest, {"Counter": 2}, expected_version=2) == 3


def test_guest_cannot_apply_pending(bios: BiosService, guest: Principal, stored: Stored,
                                    store: MemoryStore) -> None:
    bios.set_attributes(guest, {"BootMode": "Bios"}, ApplyTime.ON_RESET)
    before = stored("vm1")
    for domain_id in ("vm1", "vm2"):
        with pytest.raises(AccessDenied):
            bios.apply_pending(guest, domain_id)
    assert stored("vm1") == before
    assert _outcomes(store)[-1] == (
        "ApplyPendingAttributes", "vm2", "guest:vm1", "refused:AccessDenied")


def test_admin_cannot_call_guest_operations(bios: BiosService, admin: Principal,
                                            store: MemoryStore, stored: Stored) -> None:
    before = [stored("vm1"), stored("vm2")]
    reads: list[Callable[[], object]] = [
        lambda: bios.get_registry(admin),
        lambda: bios.get_attributes(admin),
        lambda: bios.get_pending(admin),
        lambda: bios.get_boot(admin),
    ]
    writes: list[Callable[[], object]] = [
        lambda: bios.set_attributes(admin, {"Counter": 1}),
        lambda: bios.cancel_pending(admin),
        lambda: bios.reset_to_defaults(admin),
        lambda: bios.change_password(admin, SETUP_PASSWORD, None, SECRET),
        lambda: bios.set_boot_order(admin, IDS),
        lambda: bios.set_boot_next(admin, None),
    ]
    for call in reads + writes:
        entries = len(store.audit)
        with pytest.raises(AccessDenied):
            call()
        assert len(store.audit) == entries + (1 if call in writes else 0)
    assert [stored("vm1"), stored("vm2")] == before
    refused = store.audit[-len(writes):]
    assert {(e.principal, e.domain_id, e.outcome) for e in refused} == {
        ("admin:root", None, "refused:AccessDenied")}


def test_unknown_domain(store: MemoryStore, registry: AttributeRegistry,
                        admin: Principal) -> None:
    bios = BiosService(store.unit_of_work, registry)
    ghost = Principal.guest("ghost")
    with pytest.raises(DomainNotFound):
        bios.get_attributes(ghost)
    with pytest.raises(DomainNotFound):
        bios.set_attributes(ghost, {"Counter": 1})
    with pytest.raises(DomainNotFound):
        bios.apply_pending(admin, "ghost")
    assert [e.outcome for e in store.audit] == ["refused:DomainNotFound"] * 2
    assert store.domains == {}


def test_apply_pending_audits_an_invalid_domain_id_without_it(
    bios: BiosService, admin: Principal, store: MemoryStore,
) -> None:
    with pytest.raises(InvalidRequest):
        bios.apply_pending(admin, "../../etc\n" * 50)
    assert _outcomes(store)[-1] == (
        "ApplyPendingAttributes", None, "admin:root", "refused:InvalidRequest")
