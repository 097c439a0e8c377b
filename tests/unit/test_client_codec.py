"""The fast path follows the WSDL: the compiled contract against zeep's reading of the same
file, and every operation's request bytes against zeep's, as canonical XML (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree
from vbios_client import _codec, _contract

from tests.unit.client_samples import (
    HOSTILE_TEXT,
    canonical,
    sample,
    zeep_binding,
    zeep_client,
    zeep_service,
)

CONTRACT = _contract.contract()
OPERATIONS = sorted(CONTRACT.operations)
XS = "{http://www.w3.org/2001/XMLSchema}"


def test_every_operation_of_the_binding_is_compiled() -> None:
    assert len(OPERATIONS) == 66
    assert set(OPERATIONS) == set(zeep_binding()._operations)


@pytest.mark.parametrize("name", OPERATIONS)
def test_operation_matches_zeep(name: str) -> None:
    mine = CONTRACT.operations[name]
    theirs = zeep_binding()._operations[name]
    assert mine.soap_action == theirs.soapaction
    assert f"{{{_contract.NAMESPACE}}}{mine.input_element}" == theirs.input.body.qname.text
    assert f"{{{_contract.NAMESPACE}}}{mine.output_element}" == theirs.output.body.qname.text


def test_every_field_matches_zeep() -> None:
    """Name, namespace, type and occurrences of each field of each complex type."""
    client = zeep_client()
    for name, ctype in CONTRACT.types.items():
        theirs = client.get_type(f"{{{_contract.NAMESPACE}}}{name}")
        elements = theirs.elements
        assert [f.name for f in ctype.fields] == [n for n, _ in elements], name
        for field, (_, element) in zip(ctype.fields, elements, strict=True):
            assert field.tag == element.qname.text
            assert field.required == (element.min_occurs == 1), (name, field.name)
            assert field.repeated == (element.max_occurs == "unbounded"), (name, field.name)
            zeep_type = element.type
            if field.kind in ("complex", "enum"):
                assert zeep_type.qname.text == f"{{{_contract.NAMESPACE}}}{field.type}"
            else:
                assert zeep_type.qname.text == f"{XS}{field.kind}", (name, field.name)


def test_enumerations_are_the_wsdl_s() -> None:
    root = etree.fromstring(_contract.bundled_wsdl())
    declared = {
        node.get("name"): {e.get("value") for e in node.iter(f"{XS}enumeration")}
        for node in root.iter(f"{XS}simpleType")
    }
    seen = {f.type: set(f.values) for t in CONTRACT.types.values() for f in t.fields
            if f.kind == "enum"}
    assert seen and all(declared[name] == values for name, values in seen.items())


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (('<xs:element name="Version" type="xs:long"/>',
          '<xs:element name="Version" type="xs:dateTime"/>'), "xs:dateTime"),
        (('<xs:element name="Name" type="xs:string"/>',
          '<xs:element name="Name" type="xs:string" nillable="true"/>'), "unsupported"),
        (('<xs:element name="Value" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>',
          '<xs:choice><xs:element name="Value" type="xs:string"/></xs:choice>'), "unsupported"),
        (('<xs:element name="Value" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>',
          '<xs:element name="Value" type="xs:string" maxOccurs="3"/>'), "occurrences"),
        (('<xs:complexType name="AllowedValueList">',
          '<xs:complexType name="AllowedValueList"><xs:attribute name="a" type="xs:string"/>'),
         "plain sequence"),
        (('<xs:complexType name="GetAttributes">',
          '<xs:complexType name="GetAttributes" mixed="true">'), "plain sequence"),
        (('type="tns:AttributeValueList"', 'type="tns:NoSuchList"'), "unknown type"),
        (('<wsdlsoap11:binding style="document"', '<wsdlsoap11:binding style="rpc"'),
         "document style"),
        (('<wsdlsoap11:body use="literal"/>', '<wsdlsoap11:body use="encoded"/>'),
         "document/literal"),
        (('targetNamespace="urn:bios-ws:vbios:v1" name=', 'targetNamespace="urn:x" name='),
         "wsdl:definitions"),
    ],
)
def test_a_wsdl_the_codec_cannot_follow_is_refused(change: tuple[str, str], error: str) -> None:
    wsdl = _contract.bundled_wsdl().decode()
    assert change[0] in wsdl
    with pytest.raises(_contract.ContractError, match=error):
        _contract.compile_contract(wsdl.replace(change[0], change[1], 1).encode())


# -- requests ---------------------------------------------------------------------------


def _zeep_request(name: str, params: dict[str, Any]) -> bytes:
    message = zeep_client().create_message(zeep_service(), name, **params)
    return bytes(etree.tostring(message))


@pytest.mark.parametrize("name", OPERATIONS)
@pytest.mark.parametrize("optional", [True, False], ids=["all-fields", "required-only"])
def test_request_is_what_zeep_writes(name: str, optional: bool) -> None:
    params = sample(CONTRACT.operations[name].input_type, optional=optional)
    mine = _codec.request(name, params)
    assert mine.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n")
    assert canonical(mine) == canonical(_zeep_request(name, params))


@pytest.mark.parametrize("name", OPERATIONS)
def test_soap_action_header_is_quoted(name: str) -> None:
    assert _codec.headers(name) == {"Content-Type": "text/xml; charset=utf-8",
                                    "SOAPAction": f'"{CONTRACT.operations[name].soap_action}"'}


def test_empty_request_element_and_lists() -> None:
    assert _codec.request("GetAttributes", {}).endswith(
        b'<soap-env:Body><ns0:GetAttributes xmlns:ns0="urn:bios-ws:vbios:v1"/>'
        b"</soap-env:Body></soap-env:Envelope>")
    empty_list = _codec.request("SetAttributes", {"Attributes": {"AttributeValue": []},
                                                  "ApplyTime": "Immediate"})
    assert b"<ns0:Attributes/>" in empty_list


def test_text_is_escaped_not_interpreted() -> None:
    body = _codec.request("ChangePassword", {
        "PasswordName": "</ns0:PasswordName><ns0:Injected>", "NewPassword": HOSTILE_TEXT})
    root = etree.fromstring(body)
    fields = {etree.QName(e).localname: e.text for e in root.iter() if len(e) == 0}
    assert fields["PasswordName"] == "</ns0:PasswordName><ns0:Injected>"
    assert fields["NewPassword"] == HOSTILE_TEXT
    assert "Injected" not in fields


@pytest.mark.parametrize("text", ["\x00", "a\x01b", "\x0b", "\ud800", "\ufffe"])
def test_a_character_xml_cannot_carry_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="character XML cannot carry"):
        _codec.request("SetBootNext", {"BootNext": text})


@pytest.mark.parametrize(
    ("name", "params", "error", "match"),
    [
        ("SetBootNext", {"BootNext": 3}, TypeError, "must be a str"),
        ("SetBootNext", {"ExpectedVersion": "3"}, TypeError, "must be an int"),
        ("SetBootNext", {"ExpectedVersion": True}, TypeError, "must be an int"),
        ("SetBootNext", {"ExpectedVersion": 2**63}, ValueError, "range of xs:long"),
        ("GetQuote", {"Nonce": b"n" * 16, "PcrSelection": {"Index": [2**31]}}, ValueError,
         "range of xs:int"),
        ("GetQuote", {"Nonce": "not bytes"}, TypeError, "must be bytes"),
        ("SetSecureBoot", {"Enabled": 1}, TypeError, "must be a bool"),
        ("Reset", {"ResetType": "Explode"}, ValueError, "must be one of"),
        ("Reset", {}, ValueError, "Reset.ResetType is missing"),
        ("SetBootNext", {"Bootnext": "x"}, TypeError, "has no field Bootnext"),
        ("SetBootOrder", {"Order": {"OptionId": "a"}}, TypeError, "must be a list"),
        ("SetBootOrder", {"Order": ["a"]}, TypeError, "must be a mapping"),
        ("NoSuchOperation", {}, ValueError, "no operation"),
        ("OverrideSensor", {"Domain": "vm1", "Sensor": "CPU", "Reading": "90"}, TypeError,
         "must be a float"),
        ("OverrideSensor", {"Domain": "vm1", "Sensor": "CPU", "Reading": True}, TypeError,
         "must be a float"),
    ],
)
def test_bad_values_are_refused_before_sending(name: str, params: dict[str, Any],
                                               error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _codec.request(name, params)


@pytest.mark.parametrize(("value", "written"), [
    (70.5, "70.5"), (85, "85.0"), (0.1 + 0.2, "0.30000000000000004"), (-2.5e-05, "-2.5e-05"),
    (1e300, "1e+300"), (float("inf"), "INF"), (float("-inf"), "-INF"), (float("nan"), "NaN"),
])
def test_a_double_is_written_in_its_xml_schema_form(value: float, written: str) -> None:
    body = _codec.request("OverrideSensor", {"Domain": "vm1", "Sensor": "CPU",
                                              "Reading": value}).decode()
    assert f"<ns0:Reading>{written}</ns0:Reading>" in body
