"""Every operation of the contract through XML, in-process through the WSGI callable."""

from __future__ import annotations

import logging

import pytest

from bios_ws.domain.principal import Principal
from bios_ws.service.bios import BiosService
from bios_ws.soap.testing import Endpoint, WsgiResult, build_endpoint, call_wsgi, soap_envelope

ATTRS = "soap:Body/tns:{op}Response/tns:Attributes/tns:AttributeValue"


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint()


def ok(result: WsgiResult) -> WsgiResult:
    assert result.status == 200, result.body
    assert result.content_type.startswith("text/xml")
    assert result.fault_code() is None
    return result


def version(result: WsgiResult, op: str) -> int:
    text = ok(result).text(f"soap:Body/tns:{op}Response/tns:Version")
    assert text is not None
    return int(text)


def values(result: WsgiResult, op: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in ok(result).xml().iterfind(ATTRS.format(op=op), {"soap": _SOAP, "tns": _TNS}):
        name = item.findtext(f"{{{_TNS}}}Name")
        children = {child.tag.split("}")[1]: child.text for child in item}
        assert sum(k.endswith("Value") for k in children) == 1
        if "IntegerValue" in children:
            out[str(name)] = int(str(children["IntegerValue"]))
        elif "BooleanValue" in children:
            out[str(name)] = children["BooleanValue"] == "true"
        else:
            out[str(name)] = children["StringValue"] or ""
    return out


_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
_TNS = "urn:bios-ws:vbios:v1"


def fault(result: WsgiResult, code: str, kind: str = "Client") -> WsgiResult:
    assert result.status == 500, result.body
    assert result.content_type.startswith("text/xml")
    assert result.fault_code() == f"soap11env:{kind}"
    assert result.detail("Code") == code
    assert result.detail("Message")
    return result


def av(name: str, kind: str, value: str) -> str:
    return (f"<tns:AttributeValue><tns:Name>{name}</tns:Name>"
            f"<tns:{kind}>{value}</tns:{kind}></tns:AttributeValue>")


def set_attrs(ep: Endpoint, *items: str, apply_time: str = "Immediate", extra: str = "",
              as_: Principal | None = None) -> WsgiResult:
    inner = (f"<tns:Attributes>{''.join(items)}</tns:Attributes>"
             f"<tns:ApplyTime>{apply_time}</tns:ApplyTime>{extra}")
    return ep.call("SetAttributes", inner, as_=as_)


def test_get_attribute_registry_lists_every_definition_with_its_typed_fields(ep: Endpoint) -> None:
    result = ok(ep.call("GetAttributeRegistry"))
    base = "soap:Body/tns:GetAttributeRegistryResponse"
    assert result.text(f"{base}/tns:RegistryVersion") == "test-1.0"
    defs = {d.findtext(f"{{{_TNS}}}Name"): d for d in result.xml().iterfind(
        f"{base}/tns:Attributes/tns:AttributeDefinition", {"soap": _SOAP, "tns": _TNS})}
    assert set(defs) == {"BootMode", "NumLock", "WakeTimeout", "AssetTag", "SerialNumber",
                         "SetupPassword"}

    def field(name: str, path: str) -> str | None:
        return defs[name].findtext(path, namespaces={"tns": _TNS})

    assert field("BootMode", "tns:Type") == "Enumeration"
    assert field("BootMode", "tns:ResetRequired") == "true"
    assert [v.text for v in defs["BootMode"].iterfind("tns:AllowedValues/tns:Value",
                                                     {"tns": _TNS})] == ["Uefi", "Legacy"]
    assert field("BootMode", "tns:Default/tns:StringValue") == "Uefi"
    assert field("NumLock", "tns:Default/tns:BooleanValue") == "true"
    assert field("WakeTimeout", "tns:Default/tns:IntegerValue") == "30"
    assert field("WakeTimeout", "tns:LowerBound") == "0"
    assert field("WakeTimeout", "tns:UpperBound") == "600"
    assert field("WakeTimeout", "tns:ScalarIncrement") == "5"
    assert field("AssetTag", "tns:HelpText") == "Free text"
    assert field("SerialNumber", "tns:ReadOnly") == "true"
    assert field("SerialNumber", "tns:MinLength") == "1"
    assert field("SerialNumber", "tns:MaxLength") == "16"
    assert field("SetupPassword", "tns:Type") == "Password"
    assert defs["SetupPassword"].find("tns:Default", {"tns": _TNS}) is None


def test_get_attributes_returns_every_type_and_filters_by_names(ep: Endpoint) -> None:
    result = ep.call("GetAttributes")
    assert values(result, "GetAttributes") == {
        "BootMode": "Uefi", "NumLock": True, "WakeTimeout": 30, "AssetTag": "",
        "SerialNumber": "VM-0001",
    }
    assert result.text("soap:Body/tns:GetAttributesResponse/tns:SetupPasswordSet") == "false"
    assert version(result, "GetAttributes") == 1
    some = ep.call("GetAttributes",
                   "<tns:Names><tns:Name>NumLock</tns:Name><tns:Name>BootMode</tns:Name></tns:Names>")
    assert values(some, "GetAttributes") == {"NumLock": True, "BootMode": "Uefi"}


def test_get_attributes_of_an_unknown_name_is_refused_with_the_name(ep: Endpoint) -> None:
    result = fault(ep.call("GetAttributes", "<tns:Names><tns:Name>Nope</tns:Name></tns:Names>"),
                   "UnknownAttribute")
    assert result.detail("Attribute") == "Nope"


def test_set_attributes_immediate_changes_values_of_every_type(ep: Endpoint) -> None:
    v = version(set_attrs(ep, av("NumLock", "BooleanValue", "false"),
                          av("WakeTimeout", "IntegerValue", "45"),
                          av("AssetTag", "StringValue", "rack-7 &lt;b&gt;")), "SetAttributes")
    assert v == 2
    now = values(ep.call("GetAttributes"), "GetAttributes")
    assert now["NumLock"] is False and now["WakeTimeout"] == 45
    assert now["AssetTag"] == "rack-7 <b>"


def test_set_attributes_on_reset_goes_pending_then_admin_applies_it(ep: Endpoint) -> None:
    v = version(set_attrs(ep, av("BootMode", "StringValue", "Legacy"), apply_time="OnReset"),
                "SetAttributes")
    pending = ep.call("GetPendingAttributes")
    assert values(pending, "GetPendingAttributes") == {"BootMode": "Legacy"}
    assert version(pending, "GetPendingAttributes") == v
    applied = version(ep.call("ApplyPendingAttributes", "<tns:Domain>vm1</tns:Domain>",
                              as_=ep.admin), "ApplyPendingAttributes")
    assert applied == v + 1
    assert values(ep.call("GetAttributes"), "GetAttributes")["BootMode"] == "Legacy"
    assert values(ep.call("GetPendingAttributes"), "GetPendingAttributes") == {}


def test_cancel_pending_and_reset_to_defaults(ep: Endpoint) -> None:
    set_attrs(ep, av("NumLock", "BooleanValue", "false"))
    set_attrs(ep, av("WakeTimeout", "IntegerValue", "100"), apply_time="OnReset")
    v = version(ep.call("CancelPendingAttributes", "<tns:ExpectedVersion>3</tns:ExpectedVersion>"),
                "CancelPendingAttributes")
    assert v == 4
    assert values(ep.call("GetPendingAttributes"), "GetPendingAttributes") == {}
    v = version(ep.call("ResetAttributesToDefaults"), "ResetAttributesToDefaults")
    assert v == 5
    pending = values(ep.call("GetPendingAttributes"), "GetPendingAttributes")
    assert pending["NumLock"] is True and pending["WakeTimeout"] == 30
    assert "SerialNumber" not in pending


@pytest.mark.parametrize(
    ("items", "apply_time", "code", "attribute"),
    [
        ([av("Nope", "StringValue", "x")], "Immediate", "UnknownAttribute", "Nope"),
        ([av("WakeTimeout", "IntegerValue", "7")], "Immediate", "InvalidAttributeValue",
         "WakeTimeout"),
        ([av("WakeTimeout", "StringValue", "7")], "Immediate", "InvalidAttributeValue",
         "WakeTimeout"),
        ([av("BootMode", "StringValue", "Floppy")], "OnReset", "InvalidAttributeValue",
         "BootMode"),
        ([av("SerialNumber", "StringValue", "X")], "Immediate", "ReadOnlyAttribute",
         "SerialNumber"),
        ([av("BootMode", "StringValue", "Legacy")], "Immediate", "ResetRequired", "BootMode"),
        (["<tns:AttributeValue><tns:Name>NumLock</tns:Name></tns:AttributeValue>"], "Immediate",
         "InvalidRequest", "NumLock"),
        ([av("NumLock", "BooleanValue", "true"), av("NumLock", "BooleanValue", "false")],
         "Immediate", "InvalidRequest", "NumLock"),
        ([], "Immediate", "InvalidRequest", None),
    ],
)
def test_set_attributes_refusals_carry_code_and_attribute_and_change_nothing(
    ep: Endpoint, items: list[str], apply_time: str, code: str, attribute: str | None
) -> None:
    result = fault(set_attrs(ep, *items, apply_time=apply_time), code)
    assert result.detail("Attribute") == attribute
    assert version(ep.call("GetAttributes"), "GetAttributes") == 1


def test_set_attributes_with_two_values_for_one_attribute_is_refused(ep: Endpoint) -> None:
    item = ("<tns:AttributeValue><tns:Name>NumLock</tns:Name><tns:IntegerValue>1</tns:IntegerValue>"
            "<tns:BooleanValue>true</tns:BooleanValue></tns:AttributeValue>")
    assert fault(set_attrs(ep, item), "InvalidRequest").detail("Attribute") == "NumLock"


def test_schema_violations_are_invalid_request(ep: Endpoint) -> None:
    fault(set_attrs(ep, av("WakeTimeout", "IntegerValue", "forty")), "InvalidRequest")
    fault(set_attrs(ep, av("NumLock", "BooleanValue", "yes-please")), "InvalidRequest")
    fault(set_attrs(ep, av("NumLock", "BooleanValue", "true"), apply_time="Later"),
          "InvalidRequest")
    fault(ep.call("SetAttributes", "<tns:ApplyTime>Immediate</tns:ApplyTime>"), "InvalidRequest")
    fault(ep.call("SetBootOrder", ""), "InvalidRequest")
    fault(ep.call("ApplyPendingAttributes", "", as_=ep.admin), "InvalidRequest")


def test_version_conflict_refuses_a_stale_write(ep: Endpoint) -> None:
    set_attrs(ep, av("NumLock", "BooleanValue", "false"))
    stale = set_attrs(ep, av("NumLock", "BooleanValue", "true"),
                      extra="<tns:ExpectedVersion>1</tns:ExpectedVersion>")
    fault(stale, "VersionConflict")
    fresh = set_attrs(ep, av("NumLock", "BooleanValue", "true"),
                      extra="<tns:ExpectedVersion>2</tns:ExpectedVersion>")
    assert version(fresh, "SetAttributes") == 3


def test_setup_password_protects_writes_and_is_never_returned(ep: Endpoint) -> None:
    changed = ep.call("ChangePassword", "<tns:PasswordName>SetupPassword</tns:PasswordName>"
                      "<tns:NewPassword>s3cret-pw</tns:NewPassword>")
    assert version(changed, "ChangePassword") == 2
    got = ep.call("GetAttributes")
    assert got.text("soap:Body/tns:GetAttributesResponse/tns:SetupPasswordSet") == "true"
    assert b"s3cret-pw" not in got.body
    fault(set_attrs(ep, av("NumLock", "BooleanValue", "false")), "PasswordRequired")
    bad = set_attrs(ep, av("NumLock", "BooleanValue", "false"),
                    extra="<tns:Password>wrong-pw</tns:Password>")
    assert b"wrong-pw" not in fault(bad, "InvalidPassword").body
    good = set_attrs(ep, av("NumLock", "BooleanValue", "false"),
                     extra="<tns:Password>s3cret-pw</tns:Password>")
    assert version(good, "SetAttributes") == 3
    fault(ep.call("ChangePassword", "<tns:PasswordName>SetupPassword</tns:PasswordName>"
                  "<tns:NewPassword>other-pw</tns:NewPassword>"), "PasswordRequired")
    cleared = ep.call("ChangePassword", "<tns:PasswordName>SetupPassword</tns:PasswordName>"
                      "<tns:OldPassword>s3cret-pw</tns:OldPassword><tns:NewPassword/>")
    assert version(cleared, "ChangePassword") == 4
    fault(ep.call("ChangePassword", "<tns:PasswordName>NumLock</tns:PasswordName>"
                  "<tns:NewPassword>x</tns:NewPassword>"), "InvalidAttributeValue")


def test_boot_order_and_boot_next(ep: Endpoint) -> None:
    got = ok(ep.call("GetBootOrder"))
    base = "soap:Body/tns:GetBootOrderResponse"
    ns = {"soap": _SOAP, "tns": _TNS}
    order = [e.text for e in got.xml().iterfind(f"{base}/tns:Order/tns:OptionId", ns)]
    options = got.xml().findall(f"{base}/tns:Options/tns:BootOption", ns)
    assert len(options) == len(order) == 5
    assert options[0].findtext("tns:Enabled", namespaces=ns) == "true"
    assert got.find(f"{base}/tns:BootNext") is None
    new_order = list(reversed(order))
    inner = "<tns:Order>" + "".join(f"<tns:OptionId>{o}</tns:OptionId>" for o in new_order)
    assert version(ep.call("SetBootOrder", inner + "</tns:Order>"), "SetBootOrder") == 2
    again = ok(ep.call("GetBootOrder"))
    assert [e.text for e in again.xml().iterfind(f"{base}/tns:Order/tns:OptionId", ns)] == \
        new_order
    fault(ep.call("SetBootOrder", "<tns:Order><tns:OptionId>Pxe.Nic.0</tns:OptionId></tns:Order>"),
          "InvalidBootOrder")
    unknown = ep.call("SetBootOrder", "<tns:Order><tns:OptionId>Floppy</tns:OptionId></tns:Order>")
    assert fault(unknown, "UnknownBootOption").detail("Attribute") == "Floppy"
    assert version(ep.call("SetBootNext", "<tns:BootNext>Pxe.Nic.0</tns:BootNext>"),
                   "SetBootNext") == 3
    assert ok(ep.call("GetBootOrder")).text(f"{base}/tns:BootNext") == "Pxe.Nic.0"
    fault(ep.call("SetBootNext", "<tns:BootNext>Nope</tns:BootNext>"), "UnknownBootOption")
    assert version(ep.call("SetBootNext"), "SetBootNext") == 4
    assert ok(ep.call("GetBootOrder")).find(f"{base}/tns:BootNext") is None


def test_guest_may_not_call_admin_operations(ep: Endpoint) -> None:
    fault(ep.call("ApplyPendingAttributes", "<tns:Domain>vm1</tns:Domain>"), "AccessDenied")


def test_admin_may_not_call_guest_operations(ep: Endpoint) -> None:
    fault(ep.call("GetAttributes", as_=ep.admin), "AccessDenied")
    fault(set_attrs(ep, av("NumLock", "BooleanValue", "false"), as_=ep.admin), "AccessDenied")


def test_admin_on_a_missing_or_invalid_domain(ep: Endpoint) -> None:
    fault(ep.call("ApplyPendingAttributes", "<tns:Domain>vm9</tns:Domain>", as_=ep.admin),
          "DomainNotFound")
    fault(ep.call("ApplyPendingAttributes", "<tns:Domain>BAD ID</tns:Domain>", as_=ep.admin),
          "InvalidRequest")


def test_a_guest_whose_domain_is_gone_gets_domain_not_found(ep: Endpoint) -> None:
    fault(ep.call("GetAttributes", as_=Principal.guest("ghost")), "DomainNotFound")


def test_no_principal_is_access_denied(ep: Endpoint) -> None:
    result = call_wsgi(ep.app, soap_envelope("GetAttributes"))
    fault(result, "AccessDenied")
    result = call_wsgi(ep.app, soap_envelope("GetAttributes"),
                       extra={"vbios.principal": "guest:vm1"})
    fault(result, "AccessDenied")


def test_unexpected_exception_is_a_server_fault_with_correlation_id_logged_not_sent(
    ep: Endpoint, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(self: BiosService, *args: object, **kwargs: object) -> None:
        raise RuntimeError("secret-xyz")

    monkeypatch.setattr(BiosService, "get_attributes", boom)
    with caplog.at_level(logging.DEBUG):
        result = ep.call("GetAttributes")
    fault(result, "InternalError", kind="Server")
    correlation_id = result.detail("CorrelationId")
    assert correlation_id and len(correlation_id) == 32
    assert correlation_id in (result.text("soap:Body/soap:Fault/faultstring") or "")
    assert b"secret-xyz" not in result.body
    assert b"RuntimeError" not in result.body
    logged = [r for r in caplog.records if r.name == "bios_ws.soap"]
    assert any(correlation_id in r.getMessage() for r in logged)
    assert any(r.exc_info and "secret-xyz" in str(r.exc_info[1]) for r in logged)
    monkeypatch.undo()
    ok(ep.call("GetAttributes"))


def test_no_request_body_or_password_in_any_log(
    ep: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "MARKER-7f3a"
    password = "hunter2-pw-9q"
    caplog.set_level(logging.DEBUG)
    for name in ("spyne", "spyne.protocol.xml", "spyne.protocol.soap.soap11",
                 "spyne.application", "spyne.server.wsgi", "spyne.protocol._base",
                 "spyne.protocol._inbase", "spyne.server._base"):
        caplog.set_level(logging.DEBUG, logger=name)
    requests = [
        set_attrs(ep, av("AssetTag", "StringValue", marker),
                  extra=f"<tns:Password>{password}</tns:Password>"),
        set_attrs(ep, av("WakeTimeout", "IntegerValue", marker),
                  extra=f"<tns:Password>{password}</tns:Password>"),
        set_attrs(ep, av(marker, "StringValue", password)),
        ep.call("ChangePassword", f"<tns:PasswordName>SetupPassword</tns:PasswordName>"
                f"<tns:NewPassword>{password}</tns:NewPassword><tns:{marker}/>"),
        ep.call("ChangePassword", "<tns:PasswordName>SetupPassword</tns:PasswordName>"
                f"<tns:NewPassword>{password}</tns:NewPassword>"),
        set_attrs(ep, av("AssetTag", "StringValue", marker),
                  extra=f"<tns:Password>{password}x</tns:Password>"),
        call_wsgi(ep.app, f"<x>{marker}{password}".encode(), principal=ep.guest),
    ]
    assert [r.status for r in requests] == [200, 500, 500, 500, 200, 500, 500]
    text = caplog.text + "".join(str(r.args) + str(r.msg) for r in caplog.records)
    assert marker not in text
    assert password not in text
