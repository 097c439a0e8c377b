"""The bundled WSDL, compiled once per process into what the fast codec needs.

The WSDL stays the one source of truth: ``contract()`` reads the copy shipped in the
package (with the hardened parser of ``_xml``) and turns its schema and binding into
plain tables, the operations with their SOAPAction and message elements, and every
complex type as an ordered list of fields. ``_codec`` writes requests and reads
answers from these tables only, so a field added, renamed or retyped in the WSDL is
followed, and a construct the codec cannot follow (an attribute, a choice, a type it
does not know, ...) stops ``compile_contract`` with ``ContractError``: a test compiles
the bundled WSDL.
"""

from __future__ import annotations

import threading
from copy import deepcopy
from dataclasses import dataclass
from importlib import resources
from typing import Any

from lxml import etree

from vbios_client import _xml

NAMESPACE = "urn:bios-ws:vbios:v1"
XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
#: The XML Schema built-in types the codec reads and writes.
BUILTINS = frozenset({"string", "long", "unsignedLong", "int", "double", "boolean",
                      "base64Binary"})
#: What a field of a sequence may say about itself.
_FIELD_ATTRIBUTES = frozenset({"name", "type", "minOccurs", "maxOccurs"})


class ContractError(RuntimeError):
    """The bundled WSDL uses something the fast codec does not follow."""


@dataclass(frozen=True)
class Field:
    """One element of a complex type's sequence.

    ``kind`` is a built-in (``BUILTINS``), ``"enum"`` (then ``values`` lists the
    enumeration) or ``"complex"`` (then ``type`` names the complex type).
    """

    name: str
    tag: str
    kind: str
    type: str
    required: bool
    repeated: bool
    values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ComplexType:
    name: str
    fields: tuple[Field, ...]

    def field_index(self) -> dict[str, int]:
        return {f.tag: i for i, f in enumerate(self.fields)}


@dataclass(frozen=True)
class Operation:
    """One operation of the binding: document/literal, one element in, one element out."""

    name: str
    soap_action: str
    input_element: str
    input_type: str
    output_element: str
    output_type: str


@dataclass(frozen=True)
class Contract:
    namespace: str
    types: dict[str, ComplexType]
    operations: dict[str, Operation]
    #: The WSDL's schema as a standalone XML Schema document (answers are validated by it).
    schema: bytes


_compiled: Contract | None = None
_lock = threading.Lock()


def bundled_wsdl() -> bytes:
    """The WSDL shipped inside the package; the client never fetches one."""
    return resources.files("vbios_client").joinpath("wsdl/vbios.wsdl").read_bytes()


def contract() -> Contract:
    """The bundled WSDL, compiled at first use (once per process)."""
    global _compiled
    if _compiled is None:
        with _lock:
            if _compiled is None:
                _compiled = compile_contract(bundled_wsdl())
    return _compiled


def compile_contract(wsdl: bytes) -> Contract:
    """Compile a WSDL of the shape the server publishes; ContractError for anything else."""
    root = _xml.parse(wsdl, limit=_xml.MAX_WSDL_BYTES)
    if root.tag != f"{{{WSDL}}}definitions" or root.get("targetNamespace") != NAMESPACE:
        raise ContractError(f"the WSDL must be a {NAMESPACE} wsdl:definitions")
    schemas = root.findall(f"{{{WSDL}}}types/{{{XS}}}schema")
    if len(schemas) != 1 or schemas[0].get("targetNamespace") != NAMESPACE \
            or schemas[0].get("elementFormDefault") != "qualified":
        raise ContractError("the WSDL must hold one qualified schema of its namespace")
    schema = schemas[0]
    enums = {s.get("name", ""): _enumeration(s) for s in schema.findall(f"{{{XS}}}simpleType")}
    complex_nodes = {c.get("name", ""): c for c in schema.findall(f"{{{XS}}}complexType")}
    types = {name: _complex(name, node, enums, complex_nodes)
             for name, node in complex_nodes.items()}
    elements: dict[str, str] = {}
    for node in schema:
        if not isinstance(node.tag, str):
            continue
        if node.tag == f"{{{XS}}}element":
            elements[node.get("name", "")] = _local_type(node, "element", complex_nodes)
        elif node.tag not in (f"{{{XS}}}complexType", f"{{{XS}}}simpleType"):
            raise ContractError(f"the schema holds an unsupported {_local(node.tag)}")
    return Contract(NAMESPACE, types, _operations(root, elements), _standalone(schema))


def _standalone(schema: Any) -> bytes:
    """The schema element as its own document, with the prefixes its type references use."""
    copy = etree.Element(schema.tag, attrib=dict(schema.attrib),
                         nsmap={"xs": XS, "tns": NAMESPACE})
    for child in schema:
        copy.append(deepcopy(child))
    return bytes(etree.tostring(copy))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _type_name(node: Any, prefix: str) -> str:
    """The local name of a ``prefix:name`` type reference (``tns`` or ``xs``)."""
    value = node.get("type") or ""
    head, _, name = value.partition(":")
    namespace = node.nsmap.get(head) if name else None
    if namespace != (XS if prefix == "xs" else NAMESPACE):
        raise ContractError(f"{node.get('name')}: type {value!r} is not {prefix}:...")
    return name


def _enumeration(node: Any) -> frozenset[str]:
    restriction = node.find(f"{{{XS}}}restriction")
    children = [c for c in node if isinstance(c.tag, str)]
    if restriction is None or len(children) != 1 or restriction.get("base") != "xs:string":
        raise ContractError(f"simple type {node.get('name')}: only string enumerations")
    values = []
    for facet in restriction:
        if isinstance(facet.tag, str):
            if facet.tag != f"{{{XS}}}enumeration":
                raise ContractError(f"simple type {node.get('name')}: {_local(facet.tag)}")
            values.append(facet.get("value", ""))
    if not values:
        raise ContractError(f"simple type {node.get('name')} enumerates nothing")
    return frozenset(values)


def _complex(name: str, node: Any, enums: dict[str, frozenset[str]],
             complex_nodes: dict[str, Any]) -> ComplexType:
    children = [c for c in node if isinstance(c.tag, str)]
    if set(node.attrib) != {"name"} or len(children) > 1 or (
            children and children[0].tag != f"{{{XS}}}sequence"):
        raise ContractError(f"complex type {name}: only a plain sequence is followed")
    fields: list[Field] = []
    for element in children[0] if children else ():
        if not isinstance(element.tag, str):
            continue
        if element.tag != f"{{{XS}}}element" or not set(element.attrib) <= _FIELD_ATTRIBUTES:
            raise ContractError(f"complex type {name}: unsupported {_local(element.tag)}"
                                f" {dict(element.attrib)}")
        fields.append(_field(name, element, enums, complex_nodes))
    return ComplexType(name, tuple(fields))


def _field(owner: str, element: Any, enums: dict[str, frozenset[str]],
           complex_nodes: dict[str, Any]) -> Field:
    name = element.get("name", "")
    occurs = (element.get("minOccurs", "1"), element.get("maxOccurs", "1"))
    if occurs[0] not in ("0", "1") or occurs[1] not in ("1", "unbounded") or not name:
        raise ContractError(f"{owner}.{name}: occurrences {occurs} are not followed")
    reference = element.get("type") or ""
    if reference.startswith("xs:"):
        kind = type_name = _type_name(element, "xs")
        if kind not in BUILTINS:
            raise ContractError(f"{owner}.{name}: xs:{kind} is not followed")
        values: frozenset[str] = frozenset()
    else:
        type_name = _type_name(element, "tns")
        if type_name in enums:
            kind, values = "enum", enums[type_name]
        elif type_name in complex_nodes:
            kind, values = "complex", frozenset()
        else:
            raise ContractError(f"{owner}.{name}: unknown type {reference!r}")
    return Field(name=name, tag=f"{{{NAMESPACE}}}{name}", kind=kind, type=type_name,
                 required=occurs[0] == "1", repeated=occurs[1] == "unbounded", values=values)


def _local_type(node: Any, what: str, complex_nodes: dict[str, Any]) -> str:
    type_name = _type_name(node, "tns")
    if type_name not in complex_nodes or set(node.attrib) != {"name", "type"}:
        raise ContractError(f"{what} {node.get('name')}: not a complex type of the schema")
    return type_name


def _operations(root: Any, elements: dict[str, str]) -> dict[str, Operation]:
    messages = {}
    for message in root.findall(f"{{{WSDL}}}message"):
        parts = message.findall(f"{{{WSDL}}}part")
        if len(parts) != 1:
            raise ContractError(f"message {message.get('name')}: one part expected")
        element = parts[0].get("element", "")
        if not element.startswith("tns:") or element[4:] not in elements:
            raise ContractError(f"message {message.get('name')}: unknown element {element}")
        messages[message.get("name", "")] = element[4:]
    bindings = root.findall(f"{{{WSDL}}}binding")
    port_types = root.findall(f"{{{WSDL}}}portType")
    if len(bindings) != 1 or len(port_types) != 1:
        raise ContractError("the WSDL must declare one binding and one port type")
    style = bindings[0].find(f"{{{WSDL_SOAP11}}}binding")
    if style is None or style.get("style") != "document":
        raise ContractError("the binding must be SOAP 1.1 document style")
    actions = {}
    for node in bindings[0].findall(f"{{{WSDL}}}operation"):
        soap = node.find(f"{{{WSDL_SOAP11}}}operation")
        bodies = node.findall(f".//{{{WSDL_SOAP11}}}body")
        if soap is None or any(b.get("use") != "literal" for b in bodies) or len(bodies) != 2:
            raise ContractError(f"operation {node.get('name')}: document/literal expected")
        actions[node.get("name", "")] = soap.get("soapAction", "")
    operations = {}
    for node in port_types[0].findall(f"{{{WSDL}}}operation"):
        name = node.get("name", "")
        ends = [node.find(f"{{{WSDL}}}{end}") for end in ("input", "output")]
        if name not in actions or any(end is None for end in ends):
            raise ContractError(f"operation {name}: no binding, input or output")
        message_in, message_out = (str(end.get("message", "")) for end in ends if end is not None)
        element_in = messages[message_in.removeprefix("tns:")]
        element_out = messages[message_out.removeprefix("tns:")]
        operations[name] = Operation(name, actions[name], element_in, elements[element_in],
                                     element_out, elements[element_out])
    if set(operations) != set(actions):
        raise ContractError("the binding and the port type name different operations")
    return operations
