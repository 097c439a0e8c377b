"""The published WSDL: Spyne's document, tidied into the contract of ``docs/contract.md``.

Pure document transforms over bytes; ``bios_ws.soap.contract`` runs them once
per process.

Post-processing of Spyne's output (it has no switches for these):
- only the namespaces the document uses are declared (Spyne also declares
  SOAP 1.2, partner-link, WS-Addressing, XOP and HTTP binding namespaces);
- one port (Spyne writes one per service class);
- the fault is named ``VbiosFault`` (message, portType and binding), its part
  the global element ``tns:VbiosFaultDetail``;
- schema definitions and messages are sorted by name, and the document is
  pretty-printed, so the output is deterministic and reviewable.
"""

from __future__ import annotations

import copy
from xml.sax.saxutils import quoteattr

from lxml import etree

from bios_ws.soap.types import TNS
from bios_ws.soap.xmlparser import hardened_parser

DEFAULT_ADDRESS = "https://127.0.0.1:8443/"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
FAULT_NAME = "VbiosFault"
FAULT_DETAIL = "VbiosFaultDetail"
#: Prefixes used only inside attribute values (QNames), which lxml cannot see.
_QNAME_PREFIXES = ["xs", "tns", "wsdl", "wsdlsoap11"]


def check_address(address: str) -> str:
    """``address`` if it is an https URL (the vBIOS is served over https only)."""
    if not address.startswith("https://"):
        raise ValueError("the vBIOS is served over https only")
    return address


def tidy_wsdl(raw: bytes) -> bytes:
    """Spyne's raw WSDL as the published contract: deterministic, pretty-printed."""
    root = etree.fromstring(raw, hardened_parser())
    _rename_fault(root)
    _drop_duplicate_ports(root)
    _sort_definitions(root)
    etree.cleanup_namespaces(root, keep_ns_prefixes=_QNAME_PREFIXES)
    return bytes(
        etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    )


def moved_wsdl(wsdl: bytes, address: str) -> bytes:
    """``wsdl`` (rendered at ``DEFAULT_ADDRESS``) with ``address`` as its soap:address."""
    old = f"location={quoteattr(DEFAULT_ADDRESS)}".encode()
    if old not in wsdl:
        raise ValueError("the WSDL carries no default soap:address")
    if address == DEFAULT_ADDRESS:
        return wsdl
    return wsdl.replace(old, f"location={quoteattr(check_address(address))}".encode(), 1)


def _wsdl(name: str) -> str:
    return f"{{{WSDL_NS}}}{name}"


def _rename_fault(root: etree._Element) -> None:
    for message in root.iterchildren(_wsdl("message")):
        if message.get("name") == FAULT_DETAIL:
            message.set("name", FAULT_NAME)
    for fault in root.iter(_wsdl("fault")):
        if fault.get("name") == FAULT_DETAIL:
            fault.set("name", FAULT_NAME)
        if fault.get("message") == f"tns:{FAULT_DETAIL}":
            fault.set("message", f"tns:{FAULT_NAME}")
    for soap_fault in root.iter(f"{{{WSDL_SOAP_NS}}}fault"):
        if soap_fault.get("name") == FAULT_DETAIL:
            soap_fault.set("name", FAULT_NAME)


def _drop_duplicate_ports(root: etree._Element) -> None:
    """Spyne writes one identical port per service class; the contract has one."""
    for service in root.iterchildren(_wsdl("service")):
        seen: set[str | None] = set()
        for port in list(service.iterchildren(_wsdl("port"))):
            if port.get("name") in seen:
                service.remove(port)
            seen.add(port.get("name"))


def _sort_definitions(root: etree._Element) -> None:
    for schema in root.iter(f"{{{XSD_NS}}}schema"):
        children = list(schema)
        order = {f"{{{XSD_NS}}}simpleType": 0, f"{{{XSD_NS}}}complexType": 0,
                 f"{{{XSD_NS}}}element": 1}
        children.sort(key=lambda c: (order.get(str(c.tag), 2), c.get("name") or ""))
        schema[:] = children
    messages = list(root.iterchildren(_wsdl("message")))
    if messages:
        position = root.index(messages[0])
        for message in messages:
            root.remove(message)
        messages.sort(key=lambda m: m.get("name") or "")
        for offset, message in enumerate(messages):
            root.insert(position + offset, message)


def request_schema(wsdl: bytes) -> bytes:
    """The XML schema embedded in ``wsdl``, as a standalone schema document."""
    root = etree.fromstring(wsdl, hardened_parser())
    embedded = root.find(f"{_wsdl('types')}/{{{XSD_NS}}}schema")
    if embedded is None:
        raise ValueError("the WSDL holds no schema")
    schema = etree.Element(
        f"{{{XSD_NS}}}schema", nsmap={"xs": XSD_NS, "tns": TNS}, attrib=dict(embedded.attrib)
    )
    schema.extend(copy.deepcopy(child) for child in embedded)
    return bytes(etree.tostring(schema, encoding="UTF-8"))
