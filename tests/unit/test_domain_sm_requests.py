"""The system-management request family: every kind with its privilege, the one rule of who
may act on which domain, the audit names, and the refusal of an unknown kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bios_ws.domain import sm_requests as sm
from bios_ws.domain.principal import Principal, Role
from bios_ws.domain.sel import OverWritePolicy
from bios_ws.errors import AccessDenied, InvalidRequest, UnknownRequestKind

GUEST, ADMIN = Principal.guest("vm1"), Principal.admin("root")
ANONYMOUS = Principal.anonymous("10.0.0.1")
WHEN = datetime(2027, 1, 1, tzinfo=UTC)


def every_request(domain_id: str | None = None) -> list[sm.SmRequest]:
    return [sm.GetSmbios(domain_id=domain_id), sm.GetEventLog(domain_id=domain_id),
            sm.ClearEventLog(domain_id=domain_id),
            sm.SetEventLogPolicy(domain_id=domain_id, max_entries=64,
                                 overwrite=OverWritePolicy.NEVER_OVERWRITES),
            sm.GetWakeAlarm(domain_id=domain_id), sm.SetWakeAlarm(domain_id=domain_id,
                                                                  wake_at=WHEN),
            sm.ClearWakeAlarm(domain_id=domain_id), sm.GetWatchdog(domain_id=domain_id),
            sm.SetWatchdog(domain_id=domain_id, enabled=True, timeout_seconds=30),
            sm.PetWatchdog(domain_id=domain_id)]


def test_the_table_knows_every_request_type() -> None:
    assert {type(r) for r in every_request()} == set(sm.KINDS)


def test_the_privileges_and_what_changes_state() -> None:
    table = {kind.name: (kind.privilege.value, kind.changes) for kind in sm.KINDS.values()}
    assert table == {
        "GetSmbios": ("own-domain", False), "GetSystemEventLog": ("own-domain", False),
        "ClearSystemEventLog": ("own-domain", True),
        "SetSystemEventLogPolicy": ("admin", True),
        "GetWakeAlarm": ("own-domain", False), "SetWakeAlarm": ("own-domain", True),
        "ClearWakeAlarm": ("own-domain", True), "GetWatchdog": ("own-domain", False),
        "SetWatchdog": ("own-domain", True), "PetWatchdog": ("guest", False)}


@pytest.mark.parametrize("request_", [r for r in every_request()
                                      if not isinstance(r, sm.SetEventLogPolicy)],
                         ids=lambda r: type(r).__name__)
def test_a_guest_acts_on_its_own_domain(request_: sm.SmRequest) -> None:
    assert sm.target_of(GUEST, request_) == "vm1"


@pytest.mark.parametrize("domain_id", ["vm2", "vm1"])
@pytest.mark.parametrize("index", range(10))
def test_a_guest_naming_a_domain_is_refused_even_its_own(domain_id: str, index: int) -> None:
    with pytest.raises(AccessDenied):
        sm.target_of(GUEST, every_request(domain_id)[index])


@pytest.mark.parametrize("request_", [r for r in every_request("vm2")
                                      if not isinstance(r, sm.PetWatchdog)],
                         ids=lambda r: type(r).__name__)
def test_the_admin_names_any_domain(request_: sm.SmRequest) -> None:
    assert sm.target_of(ADMIN, request_) == "vm2"


def test_the_admin_does_not_pet_a_guests_watchdog() -> None:
    for request in (sm.PetWatchdog(domain_id="vm2"), sm.PetWatchdog()):
        with pytest.raises(AccessDenied):
            sm.target_of(ADMIN, request)


@pytest.mark.parametrize("request_", [r for r in every_request()
                                      if not isinstance(r, sm.SetEventLogPolicy)],
                         ids=lambda r: type(r).__name__)
def test_the_admin_naming_no_domain_is_refused(request_: sm.SmRequest) -> None:
    with pytest.raises(AccessDenied):
        sm.target_of(ADMIN, request_)


def test_the_policy_names_its_domain() -> None:
    with pytest.raises(InvalidRequest):
        sm.target_of(ADMIN, every_request()[3])


def test_an_invalid_domain_id_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        sm.target_of(ADMIN, sm.GetSmbios(domain_id="Not A Domain"))


@pytest.mark.parametrize("request_", every_request() + every_request("vm1"),
                         ids=lambda r: type(r).__name__)
def test_an_anonymous_caller_is_refused(request_: sm.SmRequest) -> None:
    with pytest.raises(AccessDenied):
        sm.target_of(ANONYMOUS, request_)


def test_audit_names_follow_the_contract() -> None:
    assert sm.operation_of(sm.ClearEventLog()) == "ClearSystemEventLog"
    assert sm.operation_of(sm.ClearEventLog(domain_id="vm2")) == "ClearDomainSystemEventLog"
    assert sm.operation_of(every_request("vm2")[3]) == "SetDomainSystemEventLogPolicy"
    assert sm.operation_of(sm.SetWakeAlarm(domain_id="v", wake_at=WHEN)) == (
        "SetDomainWakeAlarm")
    assert sm.operation_of(sm.PetWatchdog(domain_id="v")) == "PetWatchdog"
    assert ADMIN.role is Role.ADMIN


def test_a_request_of_an_unknown_kind_is_refused() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Reboot(sm.SmRequest):
        pass

    for unknown in (Reboot(), object(), "GetSmbios"):
        with pytest.raises(UnknownRequestKind):
            sm.kind_of(unknown)
        with pytest.raises(UnknownRequestKind):
            sm.target_of(GUEST, unknown)  # type: ignore[arg-type]
