"""The system-management operations through XML, in-process (``build_endpoint`` on a manual
clock): what each answers, the timers fired by the serving process's tick seen through
GetPowerState (RTCWakeup, Watchdog), and every refusal as its typed fault."""

from __future__ import annotations

import pytest

from bios_ws.registry_file import load_registry
from bios_ws.service.system_management import SystemManagementService
from bios_ws.soap.testing import Endpoint, WsgiResult, build_endpoint
from bios_ws.soap.types import TNS

T = f"{{{TNS}}}"
DOMAIN = "<tns:Domain>vm1</tns:Domain>"


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint(registry=load_registry())


def ok(result: WsgiResult) -> WsgiResult:
    assert result.status == 200, result.body
    return result


def refused(result: WsgiResult, code: str, attribute: str | None = None) -> None:
    assert result.status == 500, result.body
    assert result.detail("Code") == code, result.body
    if attribute is not None:
        assert result.detail("Attribute") == attribute


def texts(result: WsgiResult, name: str) -> list[str]:
    return [e.text or "" for e in result.xml().iter(f"{T}{name}")]


def tick(ep: Endpoint) -> list[str]:
    return ep.use_cases.use(SystemManagementService).timers.tick()


def power(ep: Endpoint) -> tuple[str, str]:
    reply = ok(ep.call("GetPowerState"))
    return texts(reply, "PowerState")[0], texts(reply, "LastResetCause")[0]


def test_get_smbios_answers_types_0_to_3(ep: Endpoint) -> None:
    reply = ok(ep.call("GetSmbios"))
    assert texts(reply, "Vendor") == ["bios-ws"]
    assert texts(reply, "Version") == ["vbios-1"]
    assert texts(reply, "ReleaseDate") == ["01/01/2026"]
    assert texts(reply, "Manufacturer") == ["bios-ws"] * 3
    assert texts(reply, "Family") == ["Virtual Machine"]
    assert len(texts(reply, "SerialNumber")) == 3 and len(texts(reply, "Uuid")[0]) == 36
    assert texts(reply, "AssetTag") == []  # empty: left out
    admin = ok(ep.call("GetDomainSmbios", DOMAIN, as_=ep.admin))
    assert texts(admin, "Uuid") == texts(reply, "Uuid")


def test_the_event_log_in_redfish_fields(ep: Endpoint) -> None:
    ok(ep.call("Reset", "<tns:ResetType>On</tns:ResetType>"))
    reply = ok(ep.call("GetSystemEventLog"))
    assert texts(reply, "MaxNumberOfRecords") == ["512"]
    assert texts(reply, "OverWritePolicy") == ["WrapsWhenFull"]
    assert texts(reply, "DroppedEntries") == ["0"]
    assert (texts(reply, "Id"), texts(reply, "Severity"), texts(reply, "MessageId")) == (
        ["1"], ["OK"], ["VbiosSel.1.0.PowerStateChanged"])
    assert texts(reply, "Arg") == ["PoweringOn", "ManagementCommand"]
    assert (texts(reply, "SensorType"), texts(reply, "EntryCode"), texts(reply, "Domain")) == (
        ["System ACPI PowerState"], ["State Asserted"], ["vm1"])
    assert texts(reply, "Created") == ["2026-01-01T00:00:00.000Z"]
    assert texts(ok(ep.call("ClearSystemEventLog")), "Removed") == ["1"]
    assert texts(ok(ep.call("GetDomainSystemEventLog", DOMAIN, as_=ep.admin)), "MessageId") == [
        "VbiosSel.1.0.LogCleared"]
    assert texts(ok(ep.call("ClearDomainSystemEventLog", DOMAIN, as_=ep.admin)),
                 "Removed") == ["1"]


def test_the_admin_sets_the_log_policy(ep: Endpoint) -> None:
    reply = ok(ep.call("SetDomainSystemEventLogPolicy", f"{DOMAIN}<tns:MaxNumberOfRecords>16"
                       "</tns:MaxNumberOfRecords><tns:OverWritePolicy>NeverOverWrites"
                       "</tns:OverWritePolicy>", as_=ep.admin))
    assert (texts(reply, "MaxNumberOfRecords"), texts(reply, "OverWritePolicy"),
            texts(reply, "EntryCount"), texts(reply, "DroppedEntries")) == (
        ["16"], ["NeverOverWrites"], ["0"], ["0"])
    refused(ep.call("SetDomainSystemEventLogPolicy", f"{DOMAIN}<tns:MaxNumberOfRecords>15"
                    "</tns:MaxNumberOfRecords><tns:OverWritePolicy>NeverOverWrites"
                    "</tns:OverWritePolicy>", as_=ep.admin),
            "InvalidRequest", "MaxNumberOfRecords")
    refused(ep.call("SetDomainSystemEventLogPolicy", f"{DOMAIN}<tns:MaxNumberOfRecords>64"
                    "</tns:MaxNumberOfRecords><tns:OverWritePolicy>Sometimes"
                    "</tns:OverWritePolicy>", as_=ep.admin), "InvalidRequest")


def test_a_wake_alarm_powers_on_with_rtc_wakeup(ep: Endpoint) -> None:
    assert ep.call("GetWakeAlarm").find("soap:Body/tns:GetWakeAlarmResponse/tns:Alarm") is None
    reply = ok(ep.call("SetWakeAlarm", "<tns:WakeTime>2026-01-01T01:00:30+01:00"
                       "</tns:WakeTime>"))  # any offset; answered in UTC
    assert (texts(reply, "WakeTime"), texts(reply, "SetBy"), texts(reply, "SetAt")) == (
        ["2026-01-01T00:00:30.000Z"], ["guest:vm1"], ["2026-01-01T00:00:00.000Z"])
    ok(ep.call("SetWakeAlarm", "<tns:WakeTime>2026-01-01T00:01:00Z</tns:WakeTime>"))
    assert texts(ok(ep.call("GetWakeAlarm")), "WakeTime") == ["2026-01-01T00:01:00.000Z"]
    ep.clock.advance(60)
    assert len(tick(ep)) == 1
    assert power(ep) == ("PoweringOn", "RTCWakeup")
    assert texts(ok(ep.call("ClearWakeAlarm")), "Cleared") == ["false"]


def test_the_admins_wake_alarm(ep: Endpoint) -> None:
    reply = ok(ep.call("SetDomainWakeAlarm", f"{DOMAIN}<tns:WakeTime>2026-03-01T00:00:00Z"
                       "</tns:WakeTime>", as_=ep.admin))
    assert texts(reply, "SetBy") == ["admin:admin"]
    assert texts(ok(ep.call("GetDomainWakeAlarm", DOMAIN, as_=ep.admin)), "WakeTime") == [
        "2026-03-01T00:00:00.000Z"]
    assert texts(ok(ep.call("ClearDomainWakeAlarm", DOMAIN, as_=ep.admin)), "Cleared") == [
        "true"]


@pytest.mark.parametrize("text", ["tomorrow", "2026-06-01T06:30:00", "2025-12-31T23:59:59Z",
                                  "2027-01-03T00:00:00Z", ""])
def test_a_bad_wake_time_is_invalid_request(ep: Endpoint, text: str) -> None:
    refused(ep.call("SetWakeAlarm", f"<tns:WakeTime>{text}</tns:WakeTime>"), "InvalidRequest",
            "WakeTime")


def test_a_watchdog_that_bites_restarts_with_cause_watchdog(ep: Endpoint) -> None:
    ok(ep.call("Reset", "<tns:ResetType>On</tns:ResetType>"))
    reply = ok(ep.call("SetWatchdog", "<tns:Enabled>true</tns:Enabled>"
                       "<tns:TimeoutSeconds>10</tns:TimeoutSeconds>"))
    assert (texts(reply, "Enabled"), texts(reply, "TimeoutSeconds"), texts(reply, "Deadline"),
            texts(reply, "Expirations")) == (["true"], ["10"], ["2026-01-01T00:00:10.000Z"],
                                             ["0"])
    ep.clock.advance(5)
    assert texts(ok(ep.call("PetWatchdog")), "Deadline") == ["2026-01-01T00:00:15.000Z"]
    ep.clock.advance(10)
    assert tick(ep) == ["vm1: watchdog bit after 10 s: reset"]
    assert power(ep) == ("PoweringOn", "Watchdog")
    assert texts(ok(ep.call("GetWatchdog")), "Expirations") == ["1"]
    admin = ok(ep.call("SetDomainWatchdog", f"{DOMAIN}<tns:Enabled>false</tns:Enabled>",
                       as_=ep.admin))
    assert (texts(admin, "Enabled"), texts(admin, "Deadline")) == (["false"], [])
    assert texts(ok(ep.call("GetDomainWatchdog", DOMAIN, as_=ep.admin)), "TimeoutSeconds") == [
        "10"]


@pytest.mark.parametrize("seconds", ["4", "86401", "-1"])
def test_a_bad_timeout_is_invalid_request(ep: Endpoint, seconds: str) -> None:
    refused(ep.call("SetWatchdog", "<tns:Enabled>true</tns:Enabled>"
                    f"<tns:TimeoutSeconds>{seconds}</tns:TimeoutSeconds>"),
            "InvalidRequest", "TimeoutSeconds")


def test_a_pet_of_a_disarmed_watchdog_is_watchdog_not_armed(ep: Endpoint) -> None:
    refused(ep.call("PetWatchdog"), "WatchdogNotArmed", "OsWatchdogTimer")


@pytest.mark.parametrize(("operation", "inner"), [
    ("GetDomainSmbios", DOMAIN), ("GetDomainSystemEventLog", "<tns:Domain>vm2</tns:Domain>"),
    ("ClearDomainSystemEventLog", DOMAIN), ("GetDomainWakeAlarm", DOMAIN),
    ("SetDomainWakeAlarm", f"{DOMAIN}<tns:WakeTime>2026-03-01T00:00:00Z</tns:WakeTime>"),
    ("ClearDomainWakeAlarm", DOMAIN), ("GetDomainWatchdog", DOMAIN),
    ("SetDomainWatchdog", f"{DOMAIN}<tns:Enabled>true</tns:Enabled>"),
    ("SetDomainSystemEventLogPolicy", f"{DOMAIN}<tns:MaxNumberOfRecords>64"
     "</tns:MaxNumberOfRecords><tns:OverWritePolicy>WrapsWhenFull</tns:OverWritePolicy>"),
])
def test_a_guest_calling_an_admin_operation_is_access_denied(ep: Endpoint, operation: str,
                                                             inner: str) -> None:
    refused(ep.call(operation, inner), "AccessDenied")


@pytest.mark.parametrize("operation", ["GetSmbios", "GetSystemEventLog", "ClearSystemEventLog",
                                       "GetWakeAlarm", "ClearWakeAlarm", "GetWatchdog",
                                       "PetWatchdog"])
def test_the_admin_calling_a_guest_operation_is_access_denied(ep: Endpoint,
                                                              operation: str) -> None:
    refused(ep.call(operation, as_=ep.admin), "AccessDenied")


def test_an_unknown_domain_is_domain_not_found(ep: Endpoint) -> None:
    refused(ep.call("GetDomainSystemEventLog", "<tns:Domain>nope</tns:Domain>", as_=ep.admin),
            "DomainNotFound")
    refused(ep.call("GetDomainSmbios", "<tns:Domain>Bad Name</tns:Domain>", as_=ep.admin),
            "InvalidRequest")
