"""WS-I Basic Profile 1.1 on the wire, against a live deployment over mutual TLS.

Safe against a production installation: every request is a read (GetAttributes,
GET ?wsdl) or is refused before any processing (see ``wire.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.conformance import wsdl_rules
from tests.conformance.wire import SOAP12_ENV, SOAP_ENV, TNS, Deployment, Reply, envelope

PUBLISHED = Path(__file__).resolve().parents[2] / "wsdl" / "vbios.wsdl"
FAULT_CHILDREN = {"faultcode", "faultstring", "faultactor", "detail"}
STANDARD_CODES = {"VersionMismatch", "MustUnderstand", "Client", "Server"}
MANDATORY = '<h:Trace xmlns:h="urn:example:unknown" s:mustUnderstand="1">x</h:Trace>'


@pytest.fixture(scope="module")
def response_schema() -> etree.XMLSchema:
    """The contract's types, to check that a response is an instance of its part (R2712)."""
    schema = etree.parse(str(PUBLISHED)).getroot().find("wsdl:types/xs:schema", wsdl_rules.NS)
    assert schema is not None
    return etree.XMLSchema(etree.fromstring(etree.tostring(schema)))


def assert_fault(reply: Reply, code: str, status: int = 500) -> None:
    """A SOAP 1.1 fault: HTTP 500 (R1126), text/xml, only the four unqualified children
    (R1000, R1001), a faultcode in the envelope namespace without dots (R1004, R1031)."""
    assert reply.status == status, f"R1126: HTTP {reply.status} for a fault: {reply.body[:300]!r}"
    assert reply.content_type.split(";")[0].strip() == "text/xml", reply.content_type
    fault = reply.fault
    assert fault is not None, f"not a SOAP fault: {reply.body[:300]!r}"
    for child in fault:
        qname = etree.QName(child)
        assert qname.namespace is None, f"R1001: fault child {qname} is qualified"
        assert qname.localname in FAULT_CHILDREN, f"R1000: fault child {qname.localname}"
    namespace, local = reply.faultcode
    assert "." not in local, f"R1031: faultcode {local!r} uses dot notation"
    assert namespace == SOAP_ENV and local in STANDARD_CODES, f"R1004: faultcode {local!r}"
    assert local == code, f"expected faultcode {code}, got {local}"


def assert_answers_get_attributes(reply: Reply) -> None:
    assert reply.status == 200, reply.body[:500]
    children = reply.body_children()
    assert [child.tag for child in children] == [f"{{{TNS}}}GetAttributesResponse"]


# -- faults, status codes, media types ----------------------------------------------


def test_R1126_R1000_R1001_R1004_R1031_a_client_fault(deployment: Deployment) -> None:
    reply = deployment.post(envelope("<v:NoSuchOperation/>"), action='"NoSuchOperation"')
    assert_fault(reply, "Client")
    assert reply.detail_code() == "InvalidRequest"


def test_R1132_R1114_methods_other_than_post_are_refused_with_405(
    deployment: Deployment,
) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        reply = deployment.exchange(method, b"" if method != "GET" else None)
        assert reply.status == 405, f"R1114: {method} answered {reply.status}"
        assert "POST" in reply.headers.get("allow", ""), f"{method}: Allow is missing POST"
        assert_fault(reply, "Client", status=405)


def test_R1115_a_content_type_other_than_text_xml_is_refused_with_415(
    deployment: Deployment,
) -> None:
    for content_type in ("application/soap+xml; charset=utf-8", "application/json",
                         "text/plain"):
        reply = deployment.post(envelope(), content_type=content_type)
        assert reply.status == 415, f"R1115: {content_type} answered {reply.status}"
        assert_fault(reply, "Client", status=415)


def test_R1012_responses_are_text_xml_in_utf8_as_declared(deployment: Deployment) -> None:
    reply = deployment.post(envelope())
    assert_answers_get_attributes(reply)
    media_type, _, params = reply.content_type.partition(";")
    assert media_type.strip() == "text/xml"
    assert params.replace(" ", "").lower() == "charset=utf-8", reply.content_type
    reply.body.decode("utf-8")
    assert str(reply.root.getroottree().docinfo.encoding).upper() == "UTF-8"


# -- the envelope ---------------------------------------------------------------------


def test_R9981_R2712_R1014_the_response_body_is_one_qualified_instance_of_the_part(
    deployment: Deployment, response_schema: etree.XMLSchema,
) -> None:
    children = deployment.post(envelope()).body_children()
    assert len(children) == 1, f"R9981: {len(children)} children in the response body"
    assert etree.QName(children[0]).namespace == TNS, "R1014: unqualified body child"
    valid = response_schema.validate(etree.ElementTree(children[0]))
    assert valid, f"R2712: {response_schema.error_log}"


def test_R9981_a_request_body_with_two_children_or_none_is_a_client_fault(
    deployment: Deployment,
) -> None:
    assert_fault(deployment.post(envelope("<v:GetAttributes/><v:GetAttributes/>")), "Client")
    assert_fault(deployment.post(envelope("")), "Client")


def test_R1014_an_unqualified_request_body_child_is_a_client_fault(
    deployment: Deployment,
) -> None:
    assert_fault(deployment.post(envelope('<GetAttributes xmlns=""/>')), "Client")


def test_R1008_a_document_type_declaration_is_a_client_fault(deployment: Deployment) -> None:
    prolog = '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE s:Envelope [<!ENTITY e "x">]>'
    assert_fault(deployment.post(envelope(prolog=prolog)), "Client")


def test_R1009_a_processing_instruction_is_a_client_fault(deployment: Deployment) -> None:
    assert_fault(deployment.post(envelope("<?vbios x?><v:GetAttributes/>")), "Client")
    prolog = '<?xml version="1.0" encoding="UTF-8"?><?xml-stylesheet href="a.xsl"?>'
    assert_fault(deployment.post(envelope(prolog=prolog)), "Client")


def test_R1008_R1009_responses_carry_no_dtd_and_no_processing_instruction(
    deployment: Deployment,
) -> None:
    for reply in (deployment.post(envelope()), deployment.post(envelope("<v:Nope/>"))):
        tree = reply.root.getroottree()
        assert tree.docinfo.internalDTD is None and b"<!DOCTYPE" not in reply.body, (
            "R1008: a DOCTYPE in a response")
        assert not tree.xpath("//processing-instruction()"), "R1009: a PI in a response"


def test_R1012_R1018_utf8_and_utf16_requests_with_their_charset(deployment: Deployment) -> None:
    utf16 = envelope(prolog='<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16")
    assert_answers_get_attributes(deployment.post(utf16, content_type="text/xml; charset=utf-16"))
    assert_answers_get_attributes(deployment.post(envelope(), content_type="text/xml"))
    mismatch = deployment.post(utf16, content_type="text/xml; charset=utf-8")
    assert_fault(mismatch, "Client")
    latin = envelope(prolog='<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert_fault(deployment.post(latin, content_type="text/xml; charset=iso-8859-1"), "Client")


# -- SOAPAction ----------------------------------------------------------------------


def test_R1109_R2744_the_quoted_soap_action_of_the_wsdl_is_accepted(
    deployment: Deployment,
) -> None:
    assert_answers_get_attributes(deployment.post(envelope(), action='"GetAttributes"'))


def test_R2744_R2745_the_server_dispatches_on_the_body_not_on_soap_action(
    deployment: Deployment,
) -> None:
    """R1109/R2744/R2745 bind the request MESSAGE (the client: see test_wsdl_profile.py).
    A receiver may be lenient, and we promise to be: the operation is the body's element
    (R2710 makes it unique), so a missing, unquoted, empty or different SOAPAction is
    answered exactly as the right one would be."""
    for action in (None, "GetAttributes", '""', '"SetAttributes"', '"urn:other"'):
        assert_answers_get_attributes(deployment.post(envelope(), action=action))


# -- header and version checks ---------------------------------------------------------


def test_R1027_a_mandatory_header_not_understood_is_a_must_understand_fault(
    deployment: Deployment,
) -> None:
    assert_fault(deployment.post(envelope(header=MANDATORY)), "MustUnderstand")
    optional = MANDATORY.replace('s:mustUnderstand="1"', 's:mustUnderstand="0"')
    assert_answers_get_attributes(deployment.post(envelope(header=optional)))
    elsewhere = MANDATORY.replace("s:mustUnderstand", 's:actor="urn:example:other" '
                                  "s:mustUnderstand")
    assert_answers_get_attributes(deployment.post(envelope(header=elsewhere)))


def test_R1025_mandatory_headers_are_checked_before_any_processing(
    deployment: Deployment,
) -> None:
    """A body that would be refused (two children, an unknown operation) or a write that
    the contract refuses anyway: the MustUnderstand fault comes first, nothing runs."""
    for body in ("<v:GetAttributes/><v:GetAttributes/>", "<v:NoSuchOperation/>",
                 "<v:SetBootNext><v:BootNext>no-such-option-conformance</v:BootNext>"
                 "<v:ExpectedVersion>-1</v:ExpectedVersion></v:SetBootNext>"):
        assert_fault(deployment.post(envelope(body, header=MANDATORY)), "MustUnderstand")


def test_R1015_R2725_another_envelope_namespace_is_a_version_mismatch_fault(
    deployment: Deployment,
) -> None:
    assert_fault(deployment.post(envelope(namespace=SOAP12_ENV)), "VersionMismatch")


def test_R1015_R1025_the_envelope_version_is_checked_before_mandatory_headers(
    deployment: Deployment,
) -> None:
    """In a SOAP 1.2 envelope even mustUnderstand cannot be read as SOAP 1.1's: the
    version is the first check, then mandatory headers, then the body."""
    header = MANDATORY.replace('s:mustUnderstand="1"', 's:mustUnderstand="true"')
    reply = deployment.post(envelope(header=header, namespace=SOAP12_ENV))
    assert_fault(reply, "VersionMismatch")


# -- the published contract ----------------------------------------------------------


def test_R5001_the_served_wsdl_has_an_https_address_and_meets_the_profile(
    deployment: Deployment,
) -> None:
    reply = deployment.exchange("GET", query="wsdl")
    assert reply.status == 200 and reply.content_type.startswith("text/xml"), reply.status
    served = reply.root
    assert wsdl_rules.violations(served) == []
    published = etree.parse(str(PUBLISHED)).getroot()
    operations = {o.get("name") for o in published.iterfind("wsdl:portType/wsdl:operation",
                                                             wsdl_rules.NS)}
    assert operations <= {o.get("name") for o in served.iterfind(
        "wsdl:portType/wsdl:operation", wsdl_rules.NS)}, "the deployment lacks operations"
