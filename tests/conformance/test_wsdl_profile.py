"""WS-I Basic Profile 1.1 over the published WSDL (``wsdl/vbios.wsdl``), without network.

One test per requirement group of ``../shared/REFERENCE.md``; each fails with the
requirement id and the offending element (see ``wsdl_rules.py``).
``test_wsdl_selftest.py`` shows that each of them can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.conformance import wsdl_rules
from tests.conformance.wsdl_schema import schema_violations, types_violations

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "wsdl" / "vbios.wsdl"


@pytest.fixture(scope="module")
def doc() -> etree._Element:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.parse(str(PUBLISHED), parser).getroot()


def assert_meets(problems: list[str]) -> None:
    assert problems == [], "\n".join(problems)


def test_R2028_R2029_valid_against_the_wsdl_and_soap_binding_schemas(
    doc: etree._Element,
) -> None:
    assert_meets(schema_violations(doc))


def test_R2801_types_are_a_valid_xml_schema(doc: etree._Element) -> None:
    assert_meets(types_violations(doc))


def test_R2201_R2210_at_most_one_part_per_message(doc: etree._Element) -> None:
    assert_meets(wsdl_rules.check_one_part(doc))


def test_R2204_R2206_parts_reference_global_elements(doc: etree._Element) -> None:
    assert_meets(wsdl_rules.check_parts_are_global_elements(doc))


def test_R2701_R2702_soap_binding_over_the_http_transport(doc: etree._Element) -> None:
    assert_meets(wsdl_rules.check_soap_http_transport(doc))


def test_R2705_R2706_document_literal(doc: etree._Element) -> None:
    assert_meets(wsdl_rules.check_literal_use(doc))


def test_R2716_no_namespace_attribute_on_document_literal_soapbind(
    doc: etree._Element,
) -> None:
    assert_meets(wsdl_rules.check_no_namespace_attribute(doc))


def test_R2718_binding_and_port_type_have_the_same_operations(doc: etree._Element) -> None:
    assert_meets(wsdl_rules.check_same_operations(doc))


def test_R2710_R2304_distinct_wire_signatures(doc: etree._Element) -> None:
    assert_meets(wsdl_rules.check_distinct_wire_signatures(doc))


def test_R2105_R2101_R2102_absolute_target_namespaces_and_resolving_qnames(
    doc: etree._Element,
) -> None:
    assert_meets(wsdl_rules.check_schemas_and_qnames(doc))


def test_R2740_R2721_R2754_R2205_a_soapbind_fault_per_wsdl_fault(doc: etree._Element) -> None:
    assert_meets(wsdl_rules.check_soap_faults(doc))


def test_R5001_the_address_is_https(doc: etree._Element) -> None:
    assert_meets(wsdl_rules.check_https_address(doc))


def test_R1109_R2744_soap_action_values_are_plain_and_present(doc: etree._Element) -> None:
    """What a client must send (R2744: the soapAction of the binding, quoted; R2745 the
    quoted empty string when there is none): every operation declares one, and no value
    holds a quote that would break the quoted-string form (R1109)."""
    problems = []
    for operation in doc.iterfind("wsdl:binding/wsdl:operation", wsdl_rules.NS):
        soap_operation = operation.find("soapbind:operation", wsdl_rules.NS)
        action = None if soap_operation is None else soap_operation.get("soapAction")
        if not action:
            problems.append(f"R2744: operation {operation.get('name')} declares no soapAction")
        elif '"' in action or "\\" in action:
            problems.append(f"R1109: soapAction {action!r} of {operation.get('name')} "
                            "cannot travel as a plain quoted string")
    assert_meets(problems)


def test_R1109_R2744_our_client_sends_the_quoted_soap_action_of_the_wsdl(
    doc: etree._Element,
) -> None:
    """R1109/R2744 are requirements on the request MESSAGE: the Python client is checked
    here (the server's leniency is in ``test_wire_profile.py``)."""
    from vbios_client import _codec

    problems = []
    for operation in doc.iterfind("wsdl:binding/wsdl:operation", wsdl_rules.NS):
        soap_operation = operation.find("soapbind:operation", wsdl_rules.NS)
        assert soap_operation is not None
        expected = f'"{soap_operation.get("soapAction")}"'
        sent = _codec.headers(str(operation.get("name"))).get("SOAPAction")
        if sent != expected:
            problems.append(f"R2744: vbios_client sends SOAPAction {sent!r} for "
                            f"{operation.get('name')}, the WSDL says {expected}")
    assert_meets(problems)
