"""The thermal operations through XML, in-process: Redfish-shaped readings with decimals on
the wire, the admin's thresholds and overrides, refusals as typed faults, and the policy's
alerts and shutdown seen through the answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lxml import etree

from bios_ws.domain.ports import UnitOfWork
from bios_ws.service.thermal import ThermalService
from bios_ws.service.thermal_alerts import ThermalAlert, ThermalAlerts
from bios_ws.soap.testing import NS, Endpoint, WsgiResult, build_endpoint

TNS = "{urn:bios-ws:vbios:v1}"


@pytest.fixture
def raised() -> list[ThermalAlert]:
    return []


@pytest.fixture
def ep(raised: list[ThermalAlert]) -> Endpoint:
    def keep(uow: UnitOfWork, alert: ThermalAlert) -> None:
        raised.append(alert)

    return build_endpoint(thermal_alerts=ThermalAlerts(critical=keep, fatal=keep,
                                                       cleared=keep))


def answer(result: WsgiResult, op: str) -> etree._Element:
    assert result.status == 200 and result.fault_code() is None, result.body
    found = result.find(f"soap:Body/tns:{op}Response")
    assert found is not None
    return found


def text(element: etree._Element, path: str) -> str:
    value = element.findtext(path, namespaces=NS)
    assert value is not None, path
    return value


def sensor(element: etree._Element, name: str) -> etree._Element:
    for item in element.iterfind("tns:Temperatures/tns:Sensor", NS):
        if item.findtext("tns:Name", namespaces=NS) == name:
            return item
    raise AssertionError(f"no sensor {name}")


def thresholds(ep: Endpoint, inner: str) -> WsgiResult:
    return ep.call("SetThermalThresholds", f"<tns:Domain>vm1</tns:Domain>{inner}", as_=ep.admin)


def override(ep: Endpoint, inner: str) -> WsgiResult:
    return ep.call("OverrideSensor", f"<tns:Domain>vm1</tns:Domain>{inner}", as_=ep.admin)


def fault(result: WsgiResult) -> tuple[str | None, str | None]:
    assert result.status == 500, result.body
    return result.detail("Code"), result.detail("Attribute")


def test_a_guest_reads_its_sensors_and_fans_in_redfish_shapes(ep: Endpoint) -> None:
    got = answer(ep.call("GetThermal"), "GetThermal")
    assert [child.tag.removeprefix(TNS) for child in got] == [
        "State", "Health", "PowerState", "LoadPercent", "PowerWatts", "AmbientSource",
        "ReadingTime", "Temperatures", "Fans"]
    assert (text(got, "tns:State"), text(got, "tns:Health"), text(got, "tns:PowerState"),
            text(got, "tns:AmbientSource")) == ("Normal", "OK", "Off", "Default")
    assert text(got, "tns:ReadingTime") == "2026-01-01T00:00:00.000Z"
    cpu = sensor(got, "CPU")
    assert (text(cpu, "tns:PhysicalContext"), text(cpu, "tns:Reading"),
            text(cpu, "tns:ReadingUnits")) == ("CPU", "25.0", "Cel")
    assert [(text(t, "tns:Reading"), text(t, "tns:HysteresisReading"))
            for t in cpu.find("tns:Thresholds", NS)] == [("80.0", "2.0"), ("90.0", "2.0"),
                                                         ("100.0", "2.0")]
    assert [t.tag.removeprefix(TNS) for t in cpu.find("tns:Thresholds", NS)] == [
        "UpperCaution", "UpperCritical", "UpperFatal"]
    inlet = sensor(got, "Inlet")
    assert text(inlet, "tns:PhysicalContext") == "Intake"
    assert inlet.find("tns:Thresholds", NS) is None and inlet.find("tns:Override", NS) is None
    assert [(text(f, "tns:Name"), text(f, "tns:SpeedPercent"), text(f, "tns:SpeedRPM"))
            for f in got.iterfind("tns:Fans/tns:Fan", NS)] == [
        ("Fan1", "0.0", "0.0"), ("Fan2", "0.0", "0.0")]


def test_decimals_survive_the_wire(ep: Endpoint) -> None:
    got = answer(thresholds(ep, "<tns:UpperCaution>70.5</tns:UpperCaution>"
                                "<tns:UpperCritical>85.25</tns:UpperCritical>"
                                "<tns:UpperFatal>9.5125e1</tns:UpperFatal>"
                                "<tns:Hysteresis>1.75</tns:Hysteresis>"),
                 "SetThermalThresholds")
    cpu = sensor(got, "CPU")
    assert [text(t, "tns:Reading") for t in cpu.find("tns:Thresholds", NS)] == [
        "70.5", "85.25", "95.125"]
    ep.call("Reset", "<tns:ResetType>On</tns:ResetType>")
    ep.clock.advance(1.5)
    got = answer(ep.call("GetDomainThermal", "<tns:Domain>vm1</tns:Domain>", as_=ep.admin),
                 "GetDomainThermal")
    reading = text(sensor(got, "CPU"), "tns:Reading")
    assert "." in reading and float(reading) > 25.0
    assert (text(got, "tns:PowerState"), text(got, "tns:LoadPercent")) == ("PoweringOn",
                                                                           "100.0")
    assert float(text(got, "tns:PowerWatts")) == 100.0


def test_an_override_is_shown_until_cleared(ep: Endpoint) -> None:
    got = answer(override(ep, "<tns:Sensor>CPU</tns:Sensor><tns:Reading>91.3</tns:Reading>"
                              "<tns:DurationSeconds>600</tns:DurationSeconds>"),
                 "OverrideSensor")
    cpu = sensor(got, "CPU")
    assert text(cpu, "tns:Reading") == "91.3"
    assert (text(got, "tns:State"), text(got, "tns:Health")) == ("Critical", "Critical")
    assert (text(cpu, "tns:Override/tns:Reading"), text(cpu, "tns:Override/tns:Expires"),
            text(cpu, "tns:Override/tns:SetBy")) == (
        "91.3", "2026-01-01T00:10:00.000Z", "admin:admin")
    guest = answer(ep.call("GetThermal"), "GetThermal")  # the guest sees the drill too
    assert text(sensor(guest, "CPU"), "tns:Override/tns:Reading") == "91.3"
    cleared = answer(override(ep, "<tns:Sensor>CPU</tns:Sensor>"), "OverrideSensor")
    assert sensor(cleared, "CPU").find("tns:Override", NS) is None
    assert text(cleared, "tns:State") == "Normal"


@pytest.mark.parametrize(("inner", "expected"), [
    ("<tns:UpperCaution>90</tns:UpperCaution><tns:UpperCritical>80</tns:UpperCritical>"
     "<tns:UpperFatal>100</tns:UpperFatal>", "UpperCritical"),
    ("<tns:UpperCaution>70</tns:UpperCaution><tns:UpperCritical>80</tns:UpperCritical>"
     "<tns:UpperFatal>NaN</tns:UpperFatal>", "UpperFatal"),
    ("<tns:UpperCaution>70</tns:UpperCaution><tns:UpperCritical>80</tns:UpperCritical>"
     "<tns:UpperFatal>INF</tns:UpperFatal>", "UpperFatal"),
    ("<tns:UpperCaution>70</tns:UpperCaution><tns:UpperCritical>80</tns:UpperCritical>"
     "<tns:UpperFatal>90</tns:UpperFatal><tns:Hysteresis>-1</tns:Hysteresis>", "Hysteresis"),
])
def test_thresholds_that_make_no_sense_are_typed_faults(ep: Endpoint, inner: str,
                                                        expected: str) -> None:
    assert fault(thresholds(ep, inner)) == ("InvalidRequest", expected)


@pytest.mark.parametrize(("inner", "expected"), [
    ("<tns:Sensor>GPU</tns:Sensor><tns:Reading>90</tns:Reading>"
     "<tns:DurationSeconds>60</tns:DurationSeconds>", "Sensor"),
    ("<tns:Sensor>CPU</tns:Sensor><tns:Reading>90</tns:Reading>", "DurationSeconds"),
    ("<tns:Sensor>CPU</tns:Sensor><tns:Reading>90</tns:Reading>"
     "<tns:DurationSeconds>3601</tns:DurationSeconds>", "DurationSeconds"),
    ("<tns:Sensor>CPU</tns:Sensor><tns:Reading>90</tns:Reading>"
     "<tns:DurationSeconds>0</tns:DurationSeconds>", "DurationSeconds"),
    ("<tns:Sensor>CPU</tns:Sensor><tns:Reading>-NaN</tns:Reading>"
     "<tns:DurationSeconds>60</tns:DurationSeconds>", None),  # not an xs:double
    ("<tns:Sensor>Inlet</tns:Sensor><tns:DurationSeconds>60</tns:DurationSeconds>",
     "DurationSeconds"),
])
def test_overrides_that_make_no_sense_are_typed_faults(ep: Endpoint, inner: str,
                                                       expected: str | None) -> None:
    code, attribute = fault(override(ep, inner))
    assert code == "InvalidRequest" and attribute == expected


def test_an_unknown_domain_is_a_typed_fault(ep: Endpoint) -> None:
    result = ep.call("GetDomainThermal", "<tns:Domain>vm9</tns:Domain>", as_=ep.admin)
    assert fault(result) == ("DomainNotFound", None)


def test_the_policy_raises_critical_then_shuts_a_fatal_domain_down(
    ep: Endpoint, raised: list[ThermalAlert]
) -> None:
    policy = ep.use_cases.use(ThermalService)
    ep.call("Reset", "<tns:ResetType>On</tns:ResetType>")
    ep.clock.advance(ep.platform.boot_seconds)
    answer(override(ep, "<tns:Sensor>CPU</tns:Sensor><tns:Reading>92</tns:Reading>"
                        "<tns:DurationSeconds>60</tns:DurationSeconds>"), "OverrideSensor")
    ep.clock.advance(1)
    policy.evaluate()
    assert [(a.level.label, a.reading) for a in raised] == [("Critical", 92.0)]
    answer(override(ep, "<tns:Sensor>CPU</tns:Sensor><tns:Reading>100.5</tns:Reading>"
                        "<tns:DurationSeconds>60</tns:DurationSeconds>"), "OverrideSensor")
    ep.clock.advance(1)
    policy.evaluate()
    assert [a.level.label for a in raised] == ["Critical", "Fatal"]
    power = answer(ep.call("GetPowerState"), "GetPowerState")
    assert (text(power, "tns:PowerState"), text(power, "tns:LastResetCause")) == (
        "PoweringOff", "ThermalEvent")
    ep.clock.advance(timedelta(minutes=1).total_seconds())
    policy.evaluate()
    power = answer(ep.call("GetPowerState"), "GetPowerState")
    assert (text(power, "tns:PowerState"), text(power, "tns:LastResetCause")) == (
        "Off", "ThermalEvent")
    got = answer(ep.call("GetThermal"), "GetThermal")
    assert text(got, "tns:State") == "Normal" and text(got, "tns:PowerState") == "Off"
    assert [a.level.label for a in raised] == ["Critical", "Fatal", "Normal"]  # cleared
    crossings = [e for e in ep.store.audit if e.operation == "ThermalCrossing"]
    assert len(crossings) == 3
