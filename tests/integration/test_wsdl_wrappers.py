"""Rules generated clients depend on, checked over the committed WSDL.

JAX-WS ``wsimport`` (wrapper style) turns the children of an operation's request and
response wrappers into one method's parameters: a child name in both with different
types is a "duplicate parameter name" and the whole contract fails to generate.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

COMMITTED = Path(__file__).resolve().parents[2] / "wsdl" / "vbios.wsdl"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
XS = "http://www.w3.org/2001/XMLSchema"
NS = {"wsdl": WSDL, "xs": XS}


def _schema() -> etree._Element:
    doc = etree.parse(str(COMMITTED), etree.XMLParser(resolve_entities=False, no_network=True))
    schema = doc.find("wsdl:types/xs:schema", NS)
    assert schema is not None
    return schema


def wrapper_children(schema: etree._Element, element_name: str) -> dict[str, str]:
    """The direct children of a global wrapper element: name -> type."""
    element = schema.find(f"xs:element[@name='{element_name}']", NS)
    assert element is not None, element_name
    complex_type = element.find("xs:complexType", NS)
    if complex_type is None:
        type_name = str(element.get("type")).split(":", 1)[1]
        complex_type = schema.find(f"xs:complexType[@name='{type_name}']", NS)
    assert complex_type is not None, element_name
    return {str(child.get("name")): str(child.get("type"))
            for child in complex_type.iterfind("xs:sequence/xs:element", NS)}


def operations() -> list[str]:
    doc = etree.parse(str(COMMITTED))
    return [str(op.get("name")) for op in doc.iterfind("wsdl:portType/wsdl:operation", NS)]


def clashes(schema: etree._Element, names: list[str]) -> list[str]:
    """Each child name of an operation's two wrappers that has two types."""
    found = []
    for operation in names:
        request = wrapper_children(schema, operation)
        response = wrapper_children(schema, f"{operation}Response")
        found += [f"{operation}: {name} is {request[name]} in the request and"
                  f" {response[name]} in the response"
                  for name in sorted(set(request) & set(response))
                  if request[name] != response[name]]
    return found


def test_a_name_in_both_wrappers_of_an_operation_has_one_type() -> None:
    assert clashes(_schema(), operations()) == []


def test_the_rule_finds_a_clash() -> None:
    """The check above would have caught GetQuote's Pcrs (an index list in, values out)."""
    schema = etree.fromstring(
        f'<xs:schema xmlns:xs="{XS}" xmlns:tns="urn:t">'
        '<xs:element name="Q" type="tns:Q"/><xs:element name="QResponse" type="tns:R"/>'
        '<xs:complexType name="Q"><xs:sequence><xs:element name="Pcrs" type="tns:A"/>'
        '<xs:element name="Bank" type="xs:string"/></xs:sequence></xs:complexType>'
        '<xs:complexType name="R"><xs:sequence><xs:element name="Pcrs" type="tns:B"/>'
        '<xs:element name="Bank" type="xs:string"/></xs:sequence></xs:complexType>'
        "</xs:schema>")
    assert clashes(schema, ["Q"]) == ["Q: Pcrs is tns:A in the request and tns:B in the response"]


def test_no_two_operations_share_a_request_or_response_wrapper() -> None:
    """WS-I R2710: the request element names the operation on the wire."""
    doc = etree.parse(str(COMMITTED))
    for direction in ("input", "output"):
        messages = [str(m.get("message")) for m in
                    doc.iterfind(f"wsdl:portType/wsdl:operation/wsdl:{direction}", NS)]
        elements = [str(doc.find(f"wsdl:message[@name='{m.split(':', 1)[1]}']/wsdl:part",
                                 NS).get("element")) for m in messages]  # type: ignore[union-attr]
        assert len(set(elements)) == len(elements), direction
