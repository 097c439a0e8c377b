"""System-management requests through their use case, in-process on a manual clock: SMBIOS
from the domain (and in every boot plan), the event log read, cleared and its policy, the
wake alarm and the watchdog fired by ``SystemTimers.tick`` (one claim among workers), and
every refusal typed and audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from bios_ws.domain import sm_requests as sm
from bios_ws.domain.audit import AuditEntry
from bios_ws.domain.power import PowerState, ResetCause, ResetType
from bios_ws.domain.principal import Principal
from bios_ws.domain.sel import OverWritePolicy
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import (
    AccessDenied,
    DomainNotFound,
    InvalidRequest,
    ServiceRestricted,
    UnknownRequestKind,
    WatchdogNotArmed,
)
from bios_ws.registry_file import load_registry
from bios_ws.service.system_management import SystemManagementService
from bios_ws.service.timers import SystemTimers
from bios_ws.soap.testing import Endpoint, build_endpoint

NEVER = OverWritePolicy.NEVER_OVERWRITES


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint(registry=load_registry())


def service(ep: Endpoint) -> SystemManagementService:
    return ep.use_cases.use(SystemManagementService)


def handle(ep: Endpoint, request: sm.SmRequest, as_: Principal | None = None) -> object:
    return service(ep).handle(ep.guest if as_ is None else as_, request)


def audit(ep: Endpoint, operation: str) -> list[AuditEntry]:
    return [e for e in ep.store.audit if e.operation == operation]


def messages(ep: Endpoint, domain_id: str = "vm1") -> list[str]:
    with ep.store.unit_of_work() as uow:
        return [e.message_id.removeprefix("VbiosSel.1.0.") for e in uow.sel.entries(domain_id)]


def boot(ep: Endpoint, reset: ResetType = ResetType.ON) -> None:
    ep.power.reset(ep.guest, reset)
    settle(ep)


def settle(ep: Endpoint) -> None:
    for _ in range(3):
        ep.clock.advance(ep.platform.boot_seconds)
        ep.platform.advance_due()


def last_reset(ep: Endpoint) -> tuple[PowerState, ResetCause | None]:
    view = ep.power.get_power(ep.guest)
    return view.state, view.last_reset_cause


# -- SMBIOS -------------------------------------------------------------------------------

def test_smbios_comes_from_the_domain(ep: Endpoint) -> None:
    tables = handle(ep, sm.GetSmbios())
    assert tables == handle(ep, sm.GetSmbios(domain_id="vm1"), ep.admin)
    bios = tables.bios  # type: ignore[attr-defined]
    assert (bios.vendor, bios.version, bios.release_date_text) == (
        "bios-ws", "vbios-1", "01/01/2026")  # the installation's image: created that day
    system = tables.system  # type: ignore[attr-defined]
    assert (system.manufacturer, system.product_name, system.sku_number) == (
        "bios-ws", "Virtual Trusted Runtime BIOS", "VBIOS00")


def test_the_guests_asset_tag_reaches_the_tables(ep: Endpoint) -> None:
    ep.bios.set_attributes(ep.guest, {"AssetTag": "rack-7"}, ApplyTime.IMMEDIATE)
    tables = handle(ep, sm.GetSmbios())
    assert tables.chassis.asset_tag == tables.baseboard.asset_tag == "rack-7"  # type: ignore


def test_every_boot_plan_carries_the_tables(ep: Endpoint) -> None:
    plan = ep.observer.before_boot("vm1", ResetCause.MANAGEMENT_COMMAND)
    assert plan is not None and plan.smbios == handle(ep, sm.GetSmbios())


def test_smbios_of_an_unknown_domain_is_refused(ep: Endpoint) -> None:
    with pytest.raises(DomainNotFound):
        handle(ep, sm.GetSmbios(domain_id="nope"), ep.admin)


# -- the event log ------------------------------------------------------------------------

def test_a_clear_leaves_one_entry_and_is_audited(ep: Endpoint) -> None:
    boot(ep)
    assert handle(ep, sm.ClearEventLog()) == 1
    view = handle(ep, sm.GetEventLog())
    assert [(e.entry_id, e.message_id) for e in view.entries] == [  # type: ignore
        (2, "VbiosSel.1.0.LogCleared")]
    assert view.entries[0].message_args == ("guest:vm1", "1")  # type: ignore[attr-defined]
    assert handle(ep, sm.ClearEventLog(domain_id="vm1"), ep.admin) == 1
    assert [e.outcome for e in audit(ep, "ClearSystemEventLog")] == ["ok"]
    assert [e.outcome for e in audit(ep, "ClearDomainSystemEventLog")] == ["ok"]


def test_the_admin_sets_the_policy_and_the_guest_cannot(ep: Endpoint) -> None:
    for _ in range(20):
        boot(ep, ResetType.FORCE_RESTART if _ else ResetType.ON)
    log = handle(ep, sm.SetEventLogPolicy(domain_id="vm1", max_entries=16, overwrite=NEVER),
                 ep.admin)
    assert (log.policy.max_entries, log.policy.overwrite, log.entries) == (16, NEVER, 16)
    with pytest.raises(AccessDenied):
        handle(ep, sm.SetEventLogPolicy(domain_id="vm1", max_entries=32, overwrite=NEVER))
    with pytest.raises(InvalidRequest):
        handle(ep, sm.SetEventLogPolicy(domain_id="vm1", max_entries=8, overwrite=NEVER),
               ep.admin)
    boot(ep, ResetType.FORCE_RESTART)  # full and never overwrites: refused, counted
    view = handle(ep, sm.GetEventLog())
    assert (len(view.entries), view.log.dropped) == (16, 1)  # type: ignore[attr-defined]
    assert [e.outcome for e in audit(ep, "SetDomainSystemEventLogPolicy")] == [
        "ok", "refused:AccessDenied", "refused:InvalidRequest"]


def test_a_guest_naming_another_domain_is_refused_and_audited(ep: Endpoint) -> None:
    ep.domains.create(ep.admin, "vm2")
    for request in (sm.GetEventLog(domain_id="vm2"), sm.ClearEventLog(domain_id="vm2"),
                    sm.ClearEventLog(domain_id="vm1")):
        with pytest.raises(AccessDenied):
            handle(ep, request)
    assert [e.outcome for e in audit(ep, "GetDomainSystemEventLog")
            + audit(ep, "ClearDomainSystemEventLog")] == ["refused:AccessDenied"] * 3


def test_an_unknown_request_kind_is_refused_and_audited(ep: Endpoint) -> None:
    @dataclass(frozen=True, kw_only=True)
    class SmmCall(sm.SmRequest):
        pass

    with pytest.raises(UnknownRequestKind):
        handle(ep, SmmCall())
    with pytest.raises(UnknownRequestKind):
        handle(ep, "GetSmbios")  # type: ignore[arg-type]
    entries = audit(ep, "SystemManagementRequest")
    assert [e.outcome for e in entries] == ["refused:UnknownRequestKind"] * 2
    with pytest.raises(InvalidRequest):
        handle(ep, sm.GetSmbios(domain_id="Not/A Domain" * 10), ep.admin)
    assert audit(ep, "GetDomainSmbios")[0].domain_id is None  # never an invalid id


def test_changes_are_refused_in_restricted_mode_but_reads_and_pets_are_not(
        ep: Endpoint) -> None:
    handle(ep, sm.SetWatchdog(enabled=True, timeout_seconds=60))

    def untrusted() -> None:
        raise ServiceRestricted("the host is untrusted")

    restricted = SystemManagementService(ep.store.unit_of_work, ep.clock.now, ep.bios.registry,
                                         ep.power, gate=untrusted)
    for request in (sm.ClearEventLog(), sm.SetWakeAlarm(wake_at=ep.clock.now()
                                                        + timedelta(hours=1)),
                    sm.ClearWakeAlarm(), sm.SetWatchdog(enabled=False)):
        with pytest.raises(ServiceRestricted):
            restricted.handle(ep.guest, request)
    restricted.handle(ep.guest, sm.GetEventLog())
    restricted.handle(ep.guest, sm.GetSmbios())
    assert restricted.handle(ep.guest, sm.PetWatchdog()).enabled


# -- the wake alarm -----------------------------------------------------------------------

def test_an_alarm_powers_the_domain_on_with_rtc_wakeup(ep: Endpoint) -> None:
    at = ep.clock.now() + timedelta(minutes=10)
    alarm = handle(ep, sm.SetWakeAlarm(wake_at=at))
    assert handle(ep, sm.GetWakeAlarm()) == alarm and alarm.set_by == "guest:vm1"  # type: ignore
    ep.clock.advance(599)
    assert service(ep).timers.tick() == []
    ep.clock.advance(1)
    assert service(ep).timers.tick() == [
        "vm1: wake alarm of 2026-01-01T00:10:00Z: powered on (the domain is PoweringOn)"]
    assert last_reset(ep) == (PowerState.POWERING_ON, ResetCause.RTC_WAKEUP)
    assert handle(ep, sm.GetWakeAlarm()) is None
    assert messages(ep) == ["PowerStateChanged", "WakeAlarm"]
    assert service(ep).timers.tick() == []  # consumed
    assert [e.principal for e in audit(ep, "WakeAlarm")] == ["admin:platform"]


def test_an_alarm_of_a_domain_already_on_is_consumed(ep: Endpoint) -> None:
    boot(ep)
    handle(ep, sm.SetWakeAlarm(wake_at=ep.clock.now() + timedelta(seconds=30)))
    ep.clock.advance(30)
    assert service(ep).timers.tick() == [
        "vm1: wake alarm of 2026-01-01T00:00:36Z: the domain was not off (On)"]
    assert last_reset(ep) == (PowerState.ON, ResetCause.MANAGEMENT_COMMAND)
    assert handle(ep, sm.GetWakeAlarm()) is None


def test_an_alarm_fires_once_whatever_the_number_of_workers(ep: Endpoint) -> None:
    handle(ep, sm.SetWakeAlarm(wake_at=ep.clock.now() + timedelta(seconds=5)))
    workers = [SystemTimers(ep.store.unit_of_work, ep.clock.now, ep.power) for _ in range(3)]
    ep.clock.advance(5)
    assert [len(worker.tick()) for worker in workers] == [1, 0, 0]
    assert len(audit(ep, "WakeAlarm")) == 1


def test_an_alarm_due_while_the_service_was_down_fires_at_start(ep: Endpoint) -> None:
    handle(ep, sm.SetWakeAlarm(wake_at=ep.clock.now() + timedelta(minutes=1)))
    ep.clock.advance(3600)  # the service was down
    assert [line for line in service(ep).timers.at_start() if "wake alarm" in line]
    assert last_reset(ep)[1] is ResetCause.RTC_WAKEUP


def test_a_new_alarm_replaces_the_old_and_clear_removes_it(ep: Endpoint) -> None:
    now = ep.clock.now()
    handle(ep, sm.SetWakeAlarm(wake_at=now + timedelta(minutes=1)))
    handle(ep, sm.SetWakeAlarm(domain_id="vm1", wake_at=now + timedelta(hours=2)), ep.admin)
    assert handle(ep, sm.GetWakeAlarm()).wake_at == now + timedelta(hours=2)  # type: ignore
    ep.clock.advance(120)
    assert service(ep).timers.tick() == []
    assert handle(ep, sm.ClearWakeAlarm()) is True
    assert handle(ep, sm.ClearWakeAlarm()) is False
    assert [e.outcome for e in audit(ep, "SetWakeAlarm") + audit(ep, "SetDomainWakeAlarm")
            + audit(ep, "ClearWakeAlarm")] == ["ok"] * 4


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=-1), timedelta(days=367)])
def test_a_wake_time_in_the_past_or_too_far_is_refused(ep: Endpoint,
                                                       offset: timedelta) -> None:
    with pytest.raises(InvalidRequest):
        handle(ep, sm.SetWakeAlarm(wake_at=ep.clock.now() + offset))
    assert handle(ep, sm.GetWakeAlarm()) is None
    assert [e.outcome for e in audit(ep, "SetWakeAlarm")] == ["refused:InvalidRequest"]


def test_an_alarm_that_cannot_power_on_says_why(ep: Endpoint) -> None:
    ep.domains.create(ep.admin, "bare", firmware=False)
    handle(ep, sm.SetWakeAlarm(domain_id="bare", wake_at=ep.clock.now()
                               + timedelta(seconds=5)), ep.admin)
    ep.clock.advance(5)
    [line] = service(ep).timers.tick()
    assert line.startswith("bare: wake alarm of") and "not powered on" in line
    with ep.store.unit_of_work() as uow:
        [entry] = uow.sel.entries("bare")
    assert (entry.message_id, entry.severity.value) == ("VbiosSel.1.0.WakeAlarm", "Warning")


# -- the watchdog -------------------------------------------------------------------------

def test_a_watchdog_not_petted_resets_the_domain(ep: Endpoint) -> None:
    boot(ep)
    view = handle(ep, sm.SetWatchdog(enabled=True, timeout_seconds=30))
    assert (view.enabled, view.timeout_seconds) == (True, 30)  # type: ignore[attr-defined]
    assert ep.bios.setting("vm1", "OsWatchdogTimer") == "Enabled"
    ep.clock.advance(20)
    handle(ep, sm.PetWatchdog())
    ep.clock.advance(29)
    assert service(ep).timers.tick() == []  # petted 29 s ago
    ep.clock.advance(1)
    assert service(ep).timers.tick() == ["vm1: watchdog bit after 30 s: reset"]
    assert last_reset(ep) == (PowerState.POWERING_ON, ResetCause.WATCHDOG)
    assert messages(ep)[-2:] == ["WatchdogExpired", "PowerStateChanged"]
    assert handle(ep, sm.GetWatchdog()).expirations == 1  # type: ignore[attr-defined]
    assert [e.principal for e in audit(ep, "WatchdogExpired")] == ["admin:platform"]
    settle(ep)
    ep.clock.advance(30)  # a guest that never pets is reset once per timeout
    assert service(ep).timers.tick() == ["vm1: watchdog bit after 30 s: reset"]


def test_a_boot_restarts_the_countdown_and_an_off_domain_is_never_bitten(
        ep: Endpoint) -> None:
    handle(ep, sm.SetWatchdog(enabled=True, timeout_seconds=30))
    ep.clock.advance(3600)
    assert service(ep).timers.tick() == []  # off: not counting
    assert handle(ep, sm.GetWatchdog()).deadline is None  # type: ignore[attr-defined]
    boot(ep)
    deadline = handle(ep, sm.GetWatchdog()).deadline  # type: ignore[attr-defined]
    assert deadline == ep.power.get_power(ep.guest).last_reset_time + timedelta(seconds=30)
    ep.clock.advance(20)
    assert service(ep).timers.tick() == []


def test_one_worker_bites(ep: Endpoint) -> None:
    boot(ep)
    handle(ep, sm.SetWatchdog(enabled=True, timeout_seconds=10))
    workers = [SystemTimers(ep.store.unit_of_work, ep.clock.now, ep.power) for _ in range(3)]
    ep.clock.advance(10)
    assert [len(worker.tick()) for worker in workers] == [1, 0, 0]


def test_a_disarmed_watchdog_cannot_be_petted_and_the_admin_does_not_pet(
        ep: Endpoint) -> None:
    with pytest.raises(WatchdogNotArmed):
        handle(ep, sm.PetWatchdog())
    handle(ep, sm.SetWatchdog(enabled=True))
    assert handle(ep, sm.GetWatchdog()).timeout_seconds == 300  # type: ignore[attr-defined]
    with pytest.raises(AccessDenied):
        handle(ep, sm.PetWatchdog(domain_id="vm1"), ep.admin)
    handle(ep, sm.SetWatchdog(domain_id="vm1", enabled=False), ep.admin)
    assert ep.bios.setting("vm1", "OsWatchdogTimer") == "Disabled"
    with pytest.raises(WatchdogNotArmed):
        handle(ep, sm.PetWatchdog())
    assert [e.operation for e in ep.store.audit if "Watchdog" in e.operation] == [
        "PetWatchdog", "SetWatchdog", "PetWatchdog", "SetDomainWatchdog", "PetWatchdog"]
    # PetWatchdog has no admin form: the admin's attempt is audited under its name
    assert [e.outcome for e in audit(ep, "PetWatchdog")] == [
        "refused:WatchdogNotArmed", "refused:AccessDenied", "refused:WatchdogNotArmed"]


@pytest.mark.parametrize("seconds", [4, 0, 86_401])
def test_a_timeout_out_of_bounds_is_refused(ep: Endpoint, seconds: int) -> None:
    with pytest.raises(InvalidRequest):
        handle(ep, sm.SetWatchdog(enabled=True, timeout_seconds=seconds))
    assert ep.bios.setting("vm1", "OsWatchdogTimer") == "Disabled"


def test_disabling_the_attribute_through_the_settings_disarms_it(ep: Endpoint) -> None:
    boot(ep)
    handle(ep, sm.SetWatchdog(enabled=True, timeout_seconds=10))
    ep.bios.set_attributes(ep.guest, {"OsWatchdogTimer": "Disabled"}, ApplyTime.IMMEDIATE)
    ep.clock.advance(60)
    assert service(ep).timers.tick() == ["vm1: watchdog disarmed (OsWatchdogTimer is Disabled)"]
    assert last_reset(ep)[1] is ResetCause.MANAGEMENT_COMMAND
    with pytest.raises(WatchdogNotArmed):
        handle(ep, sm.PetWatchdog())


def test_the_countdown_starts_again_when_the_service_starts(ep: Endpoint) -> None:
    boot(ep)
    handle(ep, sm.SetWatchdog(enabled=True, timeout_seconds=30))
    ep.clock.advance(600)  # the service was down: the guest could not pet
    assert service(ep).timers.at_start() == ["vm1: watchdog countdown restarted (30 s)"]
    assert last_reset(ep)[1] is ResetCause.MANAGEMENT_COMMAND
    ep.clock.advance(30)
    assert service(ep).timers.tick() == ["vm1: watchdog bit after 30 s: reset"]


def test_a_deleted_domain_takes_its_timers_and_log_along(ep: Endpoint) -> None:
    boot(ep)
    handle(ep, sm.SetWatchdog(enabled=True, timeout_seconds=10))
    handle(ep, sm.SetWakeAlarm(wake_at=ep.clock.now() + timedelta(seconds=5)))
    ep.domains.delete(ep.admin, "vm1")
    ep.clock.advance(60)
    assert service(ep).timers.tick() == []
    with ep.store.unit_of_work() as uow:
        assert (uow.sel.entries("vm1"), uow.timers.watchdog("vm1"),
                uow.timers.alarm("vm1")) == ([], None, None)
