"""Every refused write leaves the stored domain as it was and is audited as refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bios_ws.domain.audit import verify_chain
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.domain.state import DEFAULT_BOOT_OPTIONS, SETUP_PASSWORD, ApplyTime
from bios_ws.errors import VbiosError
from bios_ws.platform.simulated import in_memory_machines
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService

SECRET = "correct horse"
IDS = [o.id for o in DEFAULT_BOOT_OPTIONS]
GUEST = Principal.guest("vm1")
ADMIN = Principal.admin("root")

Call = Callable[[BiosService], object]

#: (refused call, expected code) on a domain without a setup password.
OPEN_REFUSALS: list[tuple[str, Call, str]] = [
    ("unknown attribute", lambda b: b.set_attributes(GUEST, {"Counter": 1, "Nope": 1}),
     "UnknownAttribute"),
    ("read-only", lambda b: b.set_attributes(GUEST, {"Counter": 1, "BiosVersion": "9"}),
     "ReadOnlyAttribute"),
    ("wrong type", lambda b: b.set_attributes(GUEST, {"Counter": "1"}), "InvalidAttributeValue"),
    ("bool for int", lambda b: b.set_attributes(GUEST, {"Counter": True}),
     "InvalidAttributeValue"),
    ("out of range", lambda b: b.set_attributes(GUEST, {"WakeOnLan": True, "Counter": -1}),
     "InvalidAttributeValue"),
    ("off step", lambda b: b.set_attributes(GUEST, {"Delay": 21}), "InvalidAttributeValue"),
    ("too long", lambda b: b.set_attributes(GUEST, {"AssetTag": "x" * 9}),
     "InvalidAttributeValue"),
    ("password by set", lambda b: b.set_attributes(GUEST, {SETUP_PASSWORD: SECRET}),
     "InvalidAttributeValue"),
    ("reset required", lambda b: b.set_attributes(GUEST, {"Counter": 1, "BootMode": "Bios"}),
     "ResetRequired"),
    ("nothing to set", lambda b: b.set_attributes(GUEST, {}), "InvalidRequest"),
    ("stale version", lambda b: b.set_attributes(GUEST, {"Counter": 1}, expected_version=9),
     "VersionConflict"),
    ("stale cancel", lambda b: b.cancel_pending(GUEST, expected_version=0), "VersionConflict"),
    ("stale reset", lambda b: b.reset_to_defaults(GUEST, expected_version=2),
     "VersionConflict"),
    ("boot order short", lambda b: b.set_boot_order(GUEST, IDS[:-1]), "InvalidBootOrder"),
    ("boot order twice", lambda b: b.set_boot_order(GUEST, [*IDS, IDS[0]]),
     "InvalidBootOrder"),
    ("boot order unknown", lambda b: b.set_boot_order(GUEST, [*IDS[:-1], "Usb.0"]),
     "UnknownBootOption"),
    ("boot next unknown", lambda b: b.set_boot_next(GUEST, "Usb.0"), "UnknownBootOption"),
    ("short password", lambda b: b.change_password(GUEST, SETUP_PASSWORD, None, "short"),
     "InvalidAttributeValue"),
    ("not a password", lambda b: b.change_password(GUEST, "AssetTag", None, SECRET),
     "InvalidAttributeValue"),
    ("guest applies", lambda b: b.apply_pending(GUEST, "vm1"), "AccessDenied"),
    ("admin sets", lambda b: b.set_attributes(ADMIN, {"Counter": 1}), "AccessDenied"),
    ("apply unknown domain", lambda b: b.apply_pending(ADMIN, "ghost"), "DomainNotFound"),
]

#: Refused calls once a setup password is set.
LOCKED_REFUSALS: list[tuple[str, Call, str]] = [
    ("set without", lambda b: b.set_attributes(GUEST, {"Counter": 1}), "PasswordRequired"),
    ("set wrong", lambda b: b.set_attributes(GUEST, {"Counter": 1}, password="wrong one"),
     "InvalidPassword"),
    ("cancel without", lambda b: b.cancel_pending(GUEST), "PasswordRequired"),
    ("reset without", lambda b: b.reset_to_defaults(GUEST, password=""), "PasswordRequired"),
    ("order wrong", lambda b: b.set_boot_order(GUEST, IDS, password="nope"), "InvalidPassword"),
    ("next without", lambda b: b.set_boot_next(GUEST, "Cd.Sata.0"), "PasswordRequired"),
    ("change without old", lambda b: b.change_password(GUEST, SETUP_PASSWORD, None, "next-one1"),
     "PasswordRequired"),
    ("change wrong old",
     lambda b: b.change_password(GUEST, SETUP_PASSWORD, "wrong-old", "next-one1"),
     "InvalidPassword"),
    ("clear wrong old", lambda b: b.change_password(GUEST, SETUP_PASSWORD, "wrong-old", ""),
     "InvalidPassword"),
    ("power-on without setup",
     lambda b: b.change_password(GUEST, "PowerOnPassword", None, "power-on-1"),
     "PasswordRequired"),
    ("power-on wrong setup",
     lambda b: b.change_password(GUEST, "PowerOnPassword", None, "power-on-1", password="x"),
     "InvalidPassword"),
    ("good password, bad value",
     lambda b: b.set_attributes(GUEST, {"Counter": -5}, password=SECRET),
     "InvalidAttributeValue"),
]


def _prepare(bios: BiosService, locked: bool) -> None:
    """Give vm1 some history: pending values, a boot next, maybe a setup password."""
    password = None
    if locked:
        bios.change_password(GUEST, SETUP_PASSWORD, None, SECRET)
        password = SECRET
    bios.set_attributes(GUEST, {"Counter": 3}, password=password)
    bios.set_attributes(GUEST, {"BootMode": "Bios"}, ApplyTime.ON_RESET, password=password)
    bios.set_boot_next(GUEST, "Pxe.Nic.0", password=password)


def _assert_refused_without_change(
    bios: BiosService, store: MemoryStore, call: Call, code: str
) -> None:
    before = {d: s.copy() for d, (s, _) in store.domains.items()}
    entries = len(store.audit)
    with pytest.raises(VbiosError) as caught:
        call(bios)
    assert caught.value.code == code, repr(caught.value)
    after = {d: s for d, (s, _) in store.domains.items()}
    assert after == before
    assert len(store.audit) == entries + 1
    assert store.audit[-1].outcome == f"refused:{code}"
    assert verify_chain(store.audit) is None


@pytest.mark.parametrize(("why", "call", "code"), OPEN_REFUSALS, ids=[r[0] for r in OPEN_REFUSALS])
def test_open_domain_refusals(
    bios: BiosService, store: MemoryStore, why: str, call: Call, code: str
) -> None:
    _prepare(bios, locked=False)
    _assert_refused_without_change(bios, store, call, code)


@pytest.mark.parametrize(("why", "call", "code"), LOCKED_REFUSALS,
                         ids=[r[0] for r in LOCKED_REFUSALS])
def test_locked_domain_refusals(
    bios: BiosService, store: MemoryStore, why: str, call: Call, code: str
) -> None:
    _prepare(bios, locked=True)
    _assert_refused_without_change(bios, store, call, code)


def test_refusal_audit_names_principal_operation_and_domain(
    bios: BiosService, store: MemoryStore
) -> None:
    with pytest.raises(VbiosError):
        bios.set_boot_next(GUEST, "Usb.0")
    entry = store.audit[-1]
    assert (entry.principal, entry.operation, entry.domain_id) == (
        "guest:vm1", "SetBootNext", "vm1")


def test_refusal_digest_carries_no_request_data(bios: BiosService, store: MemoryStore) -> None:
    with pytest.raises(VbiosError):
        bios.set_attributes(GUEST, {"AssetTag": "secret-tag-too-long"})
    with pytest.raises(VbiosError):
        bios.set_attributes(GUEST, {"AssetTag": "another-secret-tag"})
    assert store.audit[-1].changes_digest == store.audit[-2].changes_digest


def test_domain_service_refusals_are_audited(store: MemoryStore, bios: BiosService) -> None:
    domains = DomainService(store.unit_of_work, bios.registry, in_memory_machines())
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: domains.create(ADMIN, "vm1"), "DomainExists"),
        (lambda: domains.create(ADMIN, "Bad Id"), "InvalidRequest"),
        (lambda: domains.create(GUEST, "vm3"), "AccessDenied"),
        (lambda: domains.delete(GUEST, "vm1"), "AccessDenied"),
        (lambda: domains.delete(ADMIN, "ghost"), "DomainNotFound"),
    ]
    for call, code in cases:
        before = {d: s.copy() for d, (s, _) in store.domains.items()}
        with pytest.raises(VbiosError) as caught:
            call()
        assert caught.value.code == code
        assert {d: s for d, (s, _) in store.domains.items()} == before
        assert store.audit[-1].outcome == f"refused:{code}"
