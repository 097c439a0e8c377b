"""R2028, R2029: the WSDL validates against the WSDL 1.1 and WSDL SOAP 1.1 binding schemas.

Offline: the two published schemas are shipped in ``schemas/`` (see its README). A
small wrapper schema imports both by local file URI; the SOAP binding schema's own
``<xs:import namespace="http://schemas.xmlsoap.org/wsdl/"/>`` carries no location and
resolves to the WSDL schema the wrapper already loaded, so nothing is fetched. The
WSDL schema does not import the XML Schema for Schemas: it admits the content of
``wsdl:types`` as lax ``##other`` content, which the validator skips. That content is
checked on its own instead: the embedded ``xs:schema`` is compiled by lxml, which
refuses a schema that is not valid XML Schema 1.0 (R2801).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from lxml import etree

from tests.conformance.wsdl_rules import NS, SOAPBIND

SCHEMAS = Path(__file__).resolve().parent / "schemas"
WSDL_XSD = SCHEMAS / "wsdl-1.1.xsd"
SOAPBIND_XSD = SCHEMAS / "wsdl-soap-1.1.xsd"

_PARSER = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)


@functools.cache
def wsdl_schema() -> etree.XMLSchema:
    """The WSDL 1.1 schema together with the SOAP 1.1 binding schema."""
    wrapper = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'targetNamespace="urn:bios-ws:conformance:wrapper">'
        f'<xs:import namespace="http://schemas.xmlsoap.org/wsdl/" '
        f'schemaLocation="{WSDL_XSD.as_uri()}"/>'
        f'<xs:import namespace="{SOAPBIND}" schemaLocation="{SOAPBIND_XSD.as_uri()}"/>'
        "</xs:schema>"
    )
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), _PARSER))


def schema_violations(doc: etree._Element) -> list[str]:
    """R2028 (WSDL namespace) and R2029 (SOAP binding namespace) validation errors."""
    schema = wsdl_schema()
    if schema.validate(etree.ElementTree(doc)):
        return []
    problems = []
    for entry in cast("Iterable[etree._LogEntry]", schema.error_log):
        rule = "R2029" if f"{{{SOAPBIND}}}" in entry.message else "R2028"
        problems.append(f"{rule}: line {entry.line}: {entry.message}")
    return problems


def types_violations(doc: etree._Element) -> list[str]:
    """R2801: every xs:schema in wsdl:types is a valid XML Schema 1.0 document."""
    problems = []
    for schema in doc.iterfind("wsdl:types/xs:schema", NS):
        standalone = etree.fromstring(etree.tostring(schema), _PARSER)  # keeps its xmlns
        try:
            etree.XMLSchema(standalone)
        except etree.XMLSchemaParseError as exc:
            problems.append(f"R2801: xs:schema {schema.get('targetNamespace')!r} in wsdl:types"
                            f" is not a valid XML Schema: {exc}")
    return problems
