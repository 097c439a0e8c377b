"""The WSDL checks can fail: each runs over a copy of the published WSDL broken on purpose
and must report the right requirement id and the element it broke."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from tests.conformance.wsdl_rules import NS, SOAPBIND, WSDL, XS, violations
from tests.conformance.wsdl_schema import schema_violations, types_violations

PUBLISHED = Path(__file__).resolve().parents[2] / "wsdl" / "vbios.wsdl"
OP = "GetAttributes"


@dataclass(frozen=True)
class Mutation:
    rule: str
    shows: str
    """A fragment the report must hold (the element it names)."""
    apply: Callable[[etree._Element], None]


def one(doc: etree._Element, path: str) -> etree._Element:
    found = doc.find(path, NS)
    assert found is not None, path
    return found


def op_path(kind: str) -> str:
    return f"wsdl:{kind}/wsdl:operation[@name='{OP}']"


def add_part(doc: etree._Element) -> None:
    message = one(doc, f"wsdl:message[@name='{OP}']")
    etree.SubElement(message, f"{{{WSDL}}}part", name="extra", element="tns:GetAttributes")


def retype_part(doc: etree._Element) -> None:
    part = one(doc, f"wsdl:message[@name='{OP}']/wsdl:part")
    del part.attrib["element"]
    part.set("type", "tns:GetAttributes")


def dangle_part(doc: etree._Element) -> None:
    one(doc, f"wsdl:message[@name='{OP}']/wsdl:part").set("element", "tns:NoSuchElement")


def use_encoded(doc: etree._Element) -> None:
    one(doc, op_path("binding") + "/wsdl:input/soapbind:body").set("use", "encoded")


def rpc_style(doc: etree._Element) -> None:
    one(doc, op_path("binding") + "/soapbind:operation").set("style", "rpc")


def drop_operation(doc: etree._Element) -> None:
    operation = one(doc, op_path("binding"))
    binding = operation.getparent()
    assert binding is not None
    binding.remove(operation)


def same_signature(doc: etree._Element) -> None:
    one(doc, "wsdl:message[@name='GetPendingAttributes']/wsdl:part").set(
        "element", "tns:GetAttributes")


def overload(doc: etree._Element) -> None:
    port_type = one(doc, "wsdl:portType")
    port_type.append(copy.deepcopy(one(doc, op_path("portType"))))


def relative_namespace(doc: etree._Element) -> None:
    one(doc, "wsdl:types/xs:schema").set("targetNamespace", "vbios-v1")


def unbound_type(doc: etree._Element) -> None:
    element = one(doc, "wsdl:types/xs:schema/xs:complexType[@name='GetAttributes']//xs:element")
    element.set("type", "tns:NoSuchType")


def unbound_message(doc: etree._Element) -> None:
    one(doc, op_path("portType") + "/wsdl:input").set("message", "tns:NoSuchMessage")


def drop_soap_fault(doc: etree._Element) -> None:
    fault = one(doc, op_path("binding") + "/wsdl:fault")
    fault.remove(one(fault, "soapbind:fault"))


def rename_soap_fault(doc: etree._Element) -> None:
    one(doc, op_path("binding") + "/wsdl:fault/soapbind:fault").set("name", "OtherFault")


def unbind_fault(doc: etree._Element) -> None:
    operation = one(doc, op_path("binding"))
    operation.remove(one(operation, "wsdl:fault"))


def typed_fault_part(doc: etree._Element) -> None:
    part = one(doc, "wsdl:message[@name='VbiosFault']/wsdl:part")
    del part.attrib["element"]
    part.set("type", "tns:VbiosFaultDetail")


def http_address(doc: etree._Element) -> None:
    one(doc, "wsdl:service/wsdl:port/soapbind:address").set("location", "http://vbios.example/")


def other_transport(doc: etree._Element) -> None:
    one(doc, "wsdl:binding/soapbind:binding").set("transport", "http://example.org/smtp")


def namespace_attribute(doc: etree._Element) -> None:
    one(doc, op_path("binding") + "/wsdl:input/soapbind:body").set("namespace", "urn:x")


MUTATIONS = {
    "R2201 two parts": Mutation("R2201", f"wsdl:message {OP}", add_part),
    "R2204 part by type": Mutation("R2204", f"wsdl:part {OP} of message {OP}",
                                   retype_part),
    "R2206 part to no element": Mutation("R2206", "NoSuchElement", dangle_part),
    "R2702 transport": Mutation("R2702", "http://example.org/smtp", other_transport),
    "R2706 encoded": Mutation("R2706", f"soapbind:body of operation {OP}", use_encoded),
    "R2705 rpc": Mutation("R2705", f"operation {OP}", rpc_style),
    "R2716 namespace": Mutation("R2716", f"soapbind:body of operation {OP} (input)",
                                namespace_attribute),
    "R2718 operation unbound": Mutation("R2718", f"operation {OP} of portType", drop_operation),
    "R2710 same signature": Mutation("R2710", "GetPendingAttributes", same_signature),
    "R2304 overloaded": Mutation("R2304", f"operation {OP} is overloaded", overload),
    "R2105 relative namespace": Mutation("R2105", "'vbios-v1'", relative_namespace),
    "R2102 unresolved type": Mutation("R2102", "tns:NoSuchType", unbound_type),
    "R2101 unresolved message": Mutation("R2101", "tns:NoSuchMessage", unbound_message),
    "R2740 no soapbind:fault": Mutation("R2740", f"VbiosFault of operation {OP}",
                                        drop_soap_fault),
    "R2740 fault not bound": Mutation("R2740", f"VbiosFault of operation {OP} is not bound",
                                      unbind_fault),
    "R2754 renamed soapbind:fault": Mutation("R2754", "'OtherFault'", rename_soap_fault),
    "R2205 fault part by type": Mutation("R2205", "fault VbiosFault", typed_fault_part),
    "R5001 http address": Mutation("R5001", "http://vbios.example/", http_address),
}


@pytest.fixture(scope="module")
def published() -> etree._Element:
    return etree.parse(str(PUBLISHED)).getroot()


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_broken_copy_is_reported_with_its_requirement_id(
    published: etree._Element, name: str
) -> None:
    mutation = MUTATIONS[name]
    doc = copy.deepcopy(published)
    mutation.apply(doc)
    reported = violations(doc)
    matching = [p for p in reported if p.startswith(f"{mutation.rule}: ")]
    assert matching, f"{name}: expected a {mutation.rule} report, got {reported}"
    assert any(mutation.shows in p for p in matching), (mutation.shows, matching)


def test_R2028_schema_validation_reports_a_wsdl_element(published: etree._Element) -> None:
    doc = copy.deepcopy(published)
    del one(doc, "wsdl:portType").attrib["name"]  # tPortType requires a name
    reported = schema_violations(doc)
    assert any(p.startswith("R2028: ") and f"{{{WSDL}}}portType" in p for p in reported), reported


def test_R2029_schema_validation_reports_a_soap_binding_element(
    published: etree._Element,
) -> None:
    doc = copy.deepcopy(published)
    one(doc, op_path("binding") + "/wsdl:input/soapbind:body").set("use", "literally")
    reported = schema_violations(doc)
    assert any(p.startswith("R2029: ") and f"{{{SOAPBIND}}}body" in p for p in reported), reported


def test_R2801_an_invalid_types_schema_is_reported(published: etree._Element) -> None:
    doc = copy.deepcopy(published)
    schema = one(doc, "wsdl:types/xs:schema")
    etree.SubElement(schema, f"{{{XS}}}complexType", name="GetAttributes")  # a duplicate
    reported = types_violations(doc)
    assert reported and reported[0].startswith("R2801: "), reported


def test_the_published_wsdl_itself_is_clean(published: etree._Element) -> None:
    assert violations(published) == []
