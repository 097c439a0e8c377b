"""WS-I Basic Profile 1.1 assertions over a WSDL 1.1 document (lxml, no network).

Each check takes the ``wsdl:definitions`` element and returns the violations it found,
each a sentence that starts with the requirement id and names the offending element,
e.g. ``"R2716: soapbind:body of operation X (input) has a namespace attribute"``.
An empty list means the document meets the requirement. ``RULES`` maps a test name
to its check; ``test_wsdl_profile.py`` runs them over the published WSDL and
``test_wsdl_selftest.py`` over copies broken on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlparse

from lxml import etree

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAPBIND = "http://schemas.xmlsoap.org/wsdl/soap/"
XS = "http://www.w3.org/2001/XMLSchema"
SOAP_HTTP = "http://schemas.xmlsoap.org/soap/http"
NS = {"wsdl": WSDL, "soapbind": SOAPBIND, "xs": XS}

Check = Callable[[etree._Element], list[str]]
Name = tuple[str, str]  # (namespace, local name)

_XS_BUILTINS = frozenset({
    "anyType", "anySimpleType", "string", "boolean", "decimal", "float", "double", "duration",
    "dateTime", "time", "date", "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth",
    "hexBinary", "base64Binary", "anyURI", "QName", "NOTATION", "normalizedString", "token",
    "language", "NMTOKEN", "NMTOKENS", "Name", "NCName", "ID", "IDREF", "IDREFS", "ENTITY",
    "ENTITIES", "integer", "nonPositiveInteger", "negativeInteger", "long", "int", "short",
    "byte", "nonNegativeInteger", "unsignedLong", "unsignedInt", "unsignedShort",
    "unsignedByte", "positiveInteger",
})


def _name(element: etree._Element) -> str:
    return str(element.get("name", "?"))


def _resolve(element: etree._Element, qname: str | None) -> Name | None:
    """The (namespace, local name) of a QName attribute value, None if its prefix is unbound."""
    if qname is None:
        return None
    prefix, _, local = qname.rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    return None if namespace is None else (namespace, local)


def _shown(name: Name | None, raw: str | None) -> str:
    return repr(raw) if name is None else f"{{{name[0]}}}{name[1]}"


def _operations(doc: etree._Element, path: str) -> Iterator[etree._Element]:
    yield from doc.iterfind(path, NS)


def _schemas(doc: etree._Element) -> list[etree._Element]:
    return doc.findall("wsdl:types/xs:schema", NS)


def _global(doc: etree._Element, kinds: tuple[str, ...]) -> set[Name]:
    found: set[Name] = set()
    for schema in _schemas(doc):
        target = str(schema.get("targetNamespace", ""))
        for child in schema:
            if isinstance(child.tag, str) and etree.QName(child).localname in kinds:
                found.add((target, _name(child)))
    return found


def _wsdl_names(doc: etree._Element, kind: str) -> set[Name]:
    target = str(doc.get("targetNamespace", ""))
    return {(target, _name(e)) for e in doc.iterfind(f"wsdl:{kind}", NS)}


def _message_part(doc: etree._Element, message: Name | None) -> list[etree._Element]:
    target = str(doc.get("targetNamespace", ""))
    if message is None or message[0] != target:
        return []
    for candidate in doc.iterfind("wsdl:message", NS):
        if _name(candidate) == message[1]:
            return candidate.findall("wsdl:part", NS)
    return []


def _is_document_style(binding: etree._Element, operation: etree._Element) -> bool:
    soap_operation = operation.find("soapbind:operation", NS)
    style = soap_operation.get("style") if soap_operation is not None else None
    if style is None:
        soap_binding = binding.find("soapbind:binding", NS)
        style = soap_binding.get("style") if soap_binding is not None else None
    return (style or "document") == "document"


def check_one_part(doc: etree._Element) -> list[str]:
    """R2201, R2210: a document-literal message has at most one part."""
    return [f"R2201: wsdl:message {_name(m)} has {len(m.findall('wsdl:part', NS))} parts"
            for m in doc.iterfind("wsdl:message", NS) if len(m.findall("wsdl:part", NS)) > 1]


def check_parts_are_global_elements(doc: etree._Element) -> list[str]:
    """R2204, R2206: parts refer to global element declarations with ``element``."""
    problems = []
    elements = _global(doc, ("element",))
    for message in doc.iterfind("wsdl:message", NS):
        for part in message.findall("wsdl:part", NS):
            where = f"wsdl:part {_name(part)} of message {_name(message)}"
            if part.get("type") is not None or part.get("element") is None:
                problems.append(f"R2204: {where} uses type= instead of element=")
                continue
            target = _resolve(part, part.get("element"))
            if target not in elements:
                problems.append(f"R2206: {where} refers to {_shown(target, part.get('element'))}"
                                ", not a global element of wsdl:types")
    return problems


def check_soap_http_transport(doc: etree._Element) -> list[str]:
    """R2701, R2702: every binding is a SOAP binding over the SOAP/HTTP transport."""
    problems = []
    for binding in doc.iterfind("wsdl:binding", NS):
        soap_binding = binding.find("soapbind:binding", NS)
        if soap_binding is None:
            problems.append(f"R2701: wsdl:binding {_name(binding)} has no soapbind:binding")
        elif soap_binding.get("transport") != SOAP_HTTP:
            problems.append(f"R2702: soapbind:binding of {_name(binding)} has transport "
                            f"{soap_binding.get('transport')!r}, not {SOAP_HTTP}")
    return problems


def check_literal_use(doc: etree._Element) -> list[str]:
    """R2705, R2706: document style, and use="literal" on every body, header and fault."""
    problems = []
    for binding in doc.iterfind("wsdl:binding", NS):
        for operation in binding.iterfind("wsdl:operation", NS):
            if not _is_document_style(binding, operation):
                problems.append(f"R2705: operation {_name(operation)} is not document style")
            for kind in ("body", "header", "headerfault", "fault"):
                for element in operation.iter(f"{{{SOAPBIND}}}{kind}"):
                    if element.get("use") != "literal":
                        problems.append(f"R2706: soapbind:{kind} of operation "
                                        f"{_name(operation)} has use={element.get('use')!r}")
    return problems


def check_no_namespace_attribute(doc: etree._Element) -> list[str]:
    """R2716: no namespace attribute on a document-literal soapbind:body, header, fault."""
    problems = []
    for operation in _operations(doc, "wsdl:binding/wsdl:operation"):
        for kind in ("body", "header", "headerfault", "fault"):
            for element in operation.iter(f"{{{SOAPBIND}}}{kind}"):
                if element.get("namespace") is not None:
                    where = etree.QName(element.getparent()).localname
                    problems.append(f"R2716: soapbind:{kind} of operation {_name(operation)}"
                                    f" ({where}) has a namespace attribute")
    return problems


def check_same_operations(doc: etree._Element) -> list[str]:
    """R2718: a binding has the same set of operations as the portType it binds."""
    problems = []
    port_types = {(_name(p)): p for p in doc.iterfind("wsdl:portType", NS)}
    for binding in doc.iterfind("wsdl:binding", NS):
        bound = _resolve(binding, binding.get("type"))
        port_type = port_types.get(bound[1]) if bound is not None else None
        if port_type is None:
            problems.append(f"R2718: wsdl:binding {_name(binding)} binds no portType of the "
                            f"document ({binding.get('type')!r})")
            continue
        abstract = {_name(o) for o in port_type.iterfind("wsdl:operation", NS)}
        concrete = {_name(o) for o in binding.iterfind("wsdl:operation", NS)}
        for missing in sorted(abstract - concrete):
            problems.append(f"R2718: operation {missing} of portType {_name(port_type)} is "
                            f"missing from wsdl:binding {_name(binding)}")
        for extra in sorted(concrete - abstract):
            problems.append(f"R2718: operation {extra} of wsdl:binding {_name(binding)} is "
                            f"not in portType {_name(port_type)}")
    return problems


def check_distinct_wire_signatures(doc: etree._Element) -> list[str]:
    """R2710, R2304: operation names are unique (no overloading) and the body element of
    every request differs, so the message alone names the operation."""
    problems = []
    for port_type in doc.iterfind("wsdl:portType", NS):
        seen: dict[Name, str] = {}
        names: set[str] = set()
        for operation in port_type.iterfind("wsdl:operation", NS):
            if _name(operation) in names:
                problems.append(f"R2304: operation {_name(operation)} is overloaded in "
                                f"portType {_name(port_type)}")
            names.add(_name(operation))
            request = operation.find("wsdl:input", NS)
            message = _resolve(request, request.get("message")) if request is not None else None
            parts = _message_part(doc, message)
            signature = _resolve(parts[0], parts[0].get("element")) if parts else None
            if signature is None:
                continue
            if signature in seen:
                problems.append(f"R2710: operations {seen[signature]} and {_name(operation)} "
                                f"have the same wire signature {_shown(signature, None)}")
            seen.setdefault(signature, _name(operation))
    return problems


def check_schemas_and_qnames(doc: etree._Element) -> list[str]:
    """R2105, R2101, R2102: every schema has an absolute targetNamespace, and every QName
    reference resolves to a definition of the document or of XML Schema."""
    problems = []
    for schema in _schemas(doc):
        target = schema.get("targetNamespace")
        if not target or not urlparse(target).scheme:
            problems.append(f"R2105: xs:schema in wsdl:types has targetNamespace {target!r}")
    types = _global(doc, ("complexType", "simpleType")) | {(XS, n) for n in _XS_BUILTINS}
    elements = _global(doc, ("element",))
    references: list[tuple[str, str, str, set[Name]]] = [
        ("R2102", ".//xs:element[@type]", "type", types),
        ("R2102", ".//xs:restriction[@base]", "base", types),
        ("R2102", ".//xs:extension[@base]", "base", types),
        ("R2102", ".//xs:list[@itemType]", "itemType", types),
        ("R2102", ".//xs:element[@ref]", "ref", elements),
        ("R2101", "wsdl:portType/wsdl:operation/*[@message]", "message",
         _wsdl_names(doc, "message")),
        ("R2101", "wsdl:binding[@type]", "type", _wsdl_names(doc, "portType")),
        ("R2101", "wsdl:service/wsdl:port[@binding]", "binding", _wsdl_names(doc, "binding")),
    ]
    for rule, path, attribute, known in references:
        for element in doc.iterfind(path, NS):
            raw = element.get(attribute)
            target_name = _resolve(element, raw)
            if target_name not in known:
                owner = etree.QName(element).localname
                problems.append(f"{rule}: {attribute}={raw!r} of {owner} {_name(element)} "
                                "does not resolve to a definition")
    return problems


def check_soap_faults(doc: etree._Element) -> list[str]:
    """R2740, R2721, R2754, R2205: every wsdl:fault of the portType is bound with a
    soapbind:fault of the same name, whose message part is an element."""
    problems = []
    port_faults = {(_name(o), _name(f)): f for o in doc.iterfind("wsdl:portType/wsdl:operation",
                                                                  NS)
                   for f in o.iterfind("wsdl:fault", NS)}
    for operation in _operations(doc, "wsdl:binding/wsdl:operation"):
        bound = {_name(f) for f in operation.iterfind("wsdl:fault", NS)}
        for (op_name, fault_name) in port_faults:
            if op_name == _name(operation) and fault_name not in bound:
                problems.append(f"R2740: wsdl:fault {fault_name} of operation {op_name} is not "
                                "bound in the wsdl:binding")
        for fault in operation.iterfind("wsdl:fault", NS):
            soap_fault = fault.find("soapbind:fault", NS)
            where = f"wsdl:fault {_name(fault)} of operation {_name(operation)}"
            if soap_fault is None:
                problems.append(f"R2740: {where} has no soapbind:fault")
            elif soap_fault.get("name") is None:
                problems.append(f"R2721: soapbind:fault of {where} has no name attribute")
            elif soap_fault.get("name") != fault.get("name"):
                problems.append(f"R2754: soapbind:fault of {where} is named "
                                f"{soap_fault.get('name')!r}")
    for (op_name, fault_name), fault in port_faults.items():
        for part in _message_part(doc, _resolve(fault, fault.get("message"))):
            if part.get("element") is None:
                problems.append(f"R2205: the part of fault {fault_name} of operation {op_name} "
                                "is not defined with element=")
    return problems


def check_https_address(doc: etree._Element) -> list[str]:
    """R5001 (HTTPS is required by this service): every soapbind:address is https."""
    problems = []
    for port in doc.iterfind("wsdl:service/wsdl:port", NS):
        for address in port.iterfind("soapbind:address", NS):
            location = str(address.get("location", ""))
            if urlparse(location).scheme != "https":
                problems.append(f"R5001: soapbind:address of port {_name(port)} is "
                                f"{location!r}, not https")
    return problems


RULES: dict[str, Check] = {
    "R2201_R2210_one_part": check_one_part,
    "R2204_R2206_parts_are_global_elements": check_parts_are_global_elements,
    "R2701_R2702_soap_http_transport": check_soap_http_transport,
    "R2705_R2706_literal_use": check_literal_use,
    "R2716_no_namespace_attribute": check_no_namespace_attribute,
    "R2718_same_operations": check_same_operations,
    "R2710_R2304_distinct_wire_signatures": check_distinct_wire_signatures,
    "R2105_R2101_R2102_schemas_and_qnames": check_schemas_and_qnames,
    "R2740_R2721_R2754_R2205_soap_faults": check_soap_faults,
    "R5001_https_address": check_https_address,
}


def violations(doc: etree._Element) -> list[str]:
    """Every violation of every rule."""
    return [problem for check in RULES.values() for problem in check(doc)]
