"""The power operations through XML, in-process: guest's own, admin's, refusals as faults."""

from __future__ import annotations

import pytest

from bios_ws.domain.principal import Principal
from bios_ws.soap.testing import Endpoint, WsgiResult, build_endpoint

BODY = "soap:Body/tns:{op}Response/tns:{field}"


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint()


def ok(result: WsgiResult) -> WsgiResult:
    assert result.status == 200, result.body
    assert result.fault_code() is None
    return result


def field(result: WsgiResult, op: str, name: str) -> str | None:
    return ok(result).text(BODY.format(op=op, field=name))


def reset(ep: Endpoint, reset_type: str, *, as_: Principal | None = None,
          domain: str | None = None) -> WsgiResult:
    if domain is None:
        return ep.call("Reset", f"<tns:ResetType>{reset_type}</tns:ResetType>", as_=as_)
    return ep.call("ResetDomain", f"<tns:Domain>{domain}</tns:Domain>"
                   f"<tns:ResetType>{reset_type}</tns:ResetType>", as_=as_ or ep.admin)


def test_get_power_state_of_a_new_domain(ep: Endpoint) -> None:
    result = ep.call("GetPowerState")
    assert field(result, "GetPowerState", "PowerState") == "Off"
    assert field(result, "GetPowerState", "PendingChanges") == "false"
    assert result.find("soap:Body/tns:GetPowerStateResponse/tns:LastResetCause") is None


def test_reset_on_then_the_state_and_cause(ep: Endpoint) -> None:
    result = reset(ep, "On")
    assert field(result, "Reset", "PowerState") == "PoweringOn"
    assert "no changes were pending" in str(field(result, "Reset", "Message"))
    ep.clock.advance(ep.platform.boot_seconds)
    state = ep.call("GetPowerState")
    assert field(state, "GetPowerState", "PowerState") == "On"
    assert field(state, "GetPowerState", "LastResetCause") == "ManagementCommand"
    assert str(field(state, "GetPowerState", "LastResetTime")).endswith("Z")


def test_a_reset_that_makes_no_sense_is_a_typed_fault_naming_the_state(ep: Endpoint) -> None:
    result = reset(ep, "GracefulShutdown")
    assert result.status == 500 and result.fault_code() == "soap11env:Client"
    assert result.detail("Code") == "InvalidPowerTransition"
    assert result.detail("Attribute") == "Off"


@pytest.mark.parametrize("bad", ["Reboot", "on", "", "ForceOff ForceOn"])
def test_an_unknown_reset_type_is_a_contract_error(ep: Endpoint, bad: str) -> None:
    result = reset(ep, bad)
    assert result.status == 500 and result.detail("Code") == "InvalidRequest"


def test_the_reset_answer_says_pending_changes_were_applied(ep: Endpoint) -> None:
    ep.call("SetAttributes", "<tns:Attributes><tns:AttributeValue><tns:Name>BootMode</tns:Name>"
            "<tns:StringValue>Legacy</tns:StringValue></tns:AttributeValue></tns:Attributes>"
            "<tns:ApplyTime>OnReset</tns:ApplyTime>")
    assert field(ep.call("GetPowerState"), "GetPowerState", "PendingChanges") == "true"
    result = reset(ep, "On")
    assert field(result, "Reset", "PendingChanges") == "false"
    assert "pending changes were applied" in str(field(result, "Reset", "Message"))


def test_admin_operations_name_the_domain(ep: Endpoint) -> None:
    result = reset(ep, "ForceOn", domain="vm1")
    assert field(result, "ResetDomain", "PowerState") == "PoweringOn"
    state = ep.call("GetDomainPowerState", "<tns:Domain>vm1</tns:Domain>", as_=ep.admin)
    assert field(state, "GetDomainPowerState", "Machine") == "simulated"
    assert field(state, "GetDomainPowerState", "PowerState") == "PoweringOn"
    missing = reset(ep, "On", domain="nobody")
    assert missing.detail("Code") == "DomainNotFound"


def test_guests_and_admins_keep_to_their_operations(ep: Endpoint) -> None:
    assert reset(ep, "On", as_=ep.admin).detail("Code") == "AccessDenied"
    assert reset(ep, "On", domain="vm1", as_=ep.guest).detail("Code") == "AccessDenied"
    denied = ep.call("GetDomainPowerState", "<tns:Domain>vm1</tns:Domain>")
    assert denied.detail("Code") == "AccessDenied"
    assert ep.call("GetPowerState", as_=ep.admin).detail("Code") == "AccessDenied"


def test_every_power_request_is_audited(ep: Endpoint) -> None:
    reset(ep, "On")
    reset(ep, "On")
    reset(ep, "ForceOff", domain="vm1")
    outcomes = [(e.operation, e.principal, e.outcome) for e in ep.store.audit
                if e.operation in ("Reset", "ResetDomain")]
    assert outcomes == [("Reset", "guest:vm1", "ok"),
                        ("Reset", "guest:vm1", "refused:InvalidPowerTransition"),
                        ("ResetDomain", "admin:admin", "ok")]
