"""The published WSDL read back as data: its operations, their wrappers' children, the
named types and the enumerations.

``read_wsdl`` understands the subset of WSDL 1.1 and XML Schema the contract uses
(``docs/contract.md``): document/literal wrapped operations whose request and
response are global elements of named complex types, complex types that are one
``xs:sequence`` of named elements, and simple types that restrict ``xs:string`` to
an enumeration. Anything else is refused with ``UnsupportedWsdl``, naming it, so
that the readers of this model (``operations_doc``, ``baseline``) never skip part of
the contract silently.

Type names are written ``xs:<name>`` for XML Schema's built-in types and
``tns:<name>`` for the contract's own, whatever prefixes the document uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from bios_ws.soap.xmlparser import hardened_parser

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_W = f"{{{WSDL_NS}}}"
_XS = f"{{{XSD_NS}}}"


class UnsupportedWsdl(ValueError):
    """The document uses a construct this model does not represent."""


@dataclass(frozen=True)
class Field:
    """One child element of a sequence."""

    name: str
    #: ``xs:string``, ``tns:AttributeValue``, ...
    type: str
    #: ``minOccurs`` is not 0.
    required: bool
    #: ``maxOccurs`` is above 1 (``unbounded`` in this contract).
    repeated: bool


@dataclass(frozen=True)
class Operation:
    name: str
    #: The request's global element (its wrapper), and the wrapper's children.
    request: str
    request_fields: tuple[Field, ...]
    response: str
    response_fields: tuple[Field, ...]
    #: The names of the faults the operation declares, sorted.
    faults: tuple[str, ...]
    #: The portType operation's ``wsdl:documentation`` or the request type's
    #: ``xs:documentation``, whitespace collapsed ("" when there is none).
    documentation: str = ""


@dataclass(frozen=True)
class WsdlModel:
    namespace: str
    #: In the portType's order.
    operations: tuple[Operation, ...]
    #: Every fault message: its name -> the type of its detail element.
    faults: Mapping[str, str]
    #: The named complex types other than the operations' wrappers, by name (no prefix).
    types: Mapping[str, tuple[Field, ...]]
    #: The named simple types (enumerations of strings), by name: their values in order.
    enumerations: Mapping[str, tuple[str, ...]]

    def operation(self, name: str) -> Operation:
        for found in self.operations:
            if found.name == name:
                return found
        raise KeyError(name)


def read_wsdl(document: bytes) -> WsdlModel:
    """The contract ``document`` (a WSDL 1.1 file's bytes) describes."""
    root = etree.fromstring(document, hardened_parser())
    namespace = root.get("targetNamespace") or ""
    schema = root.find(f"{_W}types/{_XS}schema")
    if schema is None:
        raise UnsupportedWsdl("the WSDL holds no schema")
    names = _QNames(namespace)
    complex_types = {
        str(node.get("name")): node for node in schema.iterchildren(f"{_XS}complexType")}
    elements = {str(node.get("name")): _element_type(node, names)
                for node in schema.iterchildren(f"{_XS}element")}
    messages = {str(node.get("name")): _message_element(node, names)
                for node in root.iterchildren(f"{_W}message")}
    port_types = root.findall(f"{_W}portType")
    if len(port_types) != 1:
        raise UnsupportedWsdl(f"the WSDL has {len(port_types)} portTypes, not one")

    def fields_of(element: str) -> tuple[Field, ...]:
        type_name = names.local_of(elements[element], f"element {element}")
        return _fields(complex_types[type_name], names)

    operations = []
    wrappers: set[str] = set()
    for node in port_types[0].iterchildren(f"{_W}operation"):
        request = messages[_message_name(node, "input", names)]
        response = messages[_message_name(node, "output", names)]
        wrappers.update(names.local_of(elements[e], e) for e in (request, response))
        declared = sorted(names.local_of(str(f.get("message")), "fault")
                          for f in node.iterchildren(f"{_W}fault"))
        operations.append(Operation(
            name=str(node.get("name")), request=request, request_fields=fields_of(request),
            response=response, response_fields=fields_of(response), faults=tuple(declared),
            documentation=_documentation(node, complex_types.get(
                names.local_of(elements[request], request)))))
    fault_names = {f for operation in operations for f in operation.faults}
    return WsdlModel(
        namespace=namespace,
        operations=tuple(operations),
        faults={name: elements[messages[name]] for name in sorted(fault_names)},
        types={name: _fields(node, names) for name, node in sorted(complex_types.items())
               if name not in wrappers},
        enumerations={str(node.get("name")): _enumeration(node, names)
                      for node in sorted(schema.iterchildren(f"{_XS}simpleType"),
                                         key=lambda n: str(n.get("name")))},
    )


class _QNames:
    """Turns a QName written in the document into ``xs:<name>`` or ``tns:<name>``."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def normal(self, qname: str | None, node: etree._Element) -> str:
        prefix, _, local = (qname or "").rpartition(":")
        uri = node.nsmap.get(prefix or None)
        if uri == XSD_NS:
            return f"xs:{local}"
        if uri == self.namespace:
            return f"tns:{local}"
        raise UnsupportedWsdl(f"{qname!r} is neither an XML Schema nor a contract name")

    @staticmethod
    def local_of(name: str, where: str) -> str:
        if not name.startswith("tns:"):
            raise UnsupportedWsdl(f"{where}: {name} is not a type of the contract")
        return name[len("tns:"):]


def _element_type(node: etree._Element, names: _QNames) -> str:
    if node.get("type") is None:
        raise UnsupportedWsdl(f"global element {node.get('name')} has no named type")
    return names.normal(node.get("type"), node)


def _message_element(node: etree._Element, names: _QNames) -> str:
    parts = node.findall(f"{_W}part")
    if len(parts) != 1 or parts[0].get("element") is None:
        raise UnsupportedWsdl(f"message {node.get('name')} is not one part naming an element")
    return names.local_of(names.normal(parts[0].get("element"), parts[0]),
                          f"message {node.get('name')}")


def _message_name(operation: etree._Element, direction: str, names: _QNames) -> str:
    found = operation.find(f"{_W}{direction}")
    if found is None:
        raise UnsupportedWsdl(f"operation {operation.get('name')} has no {direction}")
    return names.local_of(names.normal(found.get("message"), found),
                          f"operation {operation.get('name')}")


def _fields(node: etree._Element, names: _QNames) -> tuple[Field, ...]:
    where = f"type {node.get('name')}"
    children = [c for c in node if c.tag != f"{_XS}annotation"]
    if not children:
        return ()
    if len(children) != 1 or children[0].tag != f"{_XS}sequence":
        raise UnsupportedWsdl(f"{where}: only one xs:sequence is supported")
    fields = []
    for child in children[0]:
        if child.tag != f"{_XS}element" or child.get("name") is None \
                or child.get("type") is None:
            raise UnsupportedWsdl(f"{where}: only named elements of named types are supported")
        fields.append(Field(name=str(child.get("name")),
                            type=names.normal(child.get("type"), child),
                            required=child.get("minOccurs", "1") != "0",
                            repeated=child.get("maxOccurs", "1") not in ("0", "1")))
    return tuple(fields)


def _enumeration(node: etree._Element, names: _QNames) -> tuple[str, ...]:
    restriction = node.find(f"{_XS}restriction")
    if restriction is None or names.normal(restriction.get("base"), restriction) \
            != "xs:string":
        raise UnsupportedWsdl(f"simple type {node.get('name')}: only enumerations of"
                              " xs:string are supported")
    facets = [c for c in restriction if c.tag != f"{_XS}annotation"]
    if any(f.tag != f"{_XS}enumeration" for f in facets):
        raise UnsupportedWsdl(f"simple type {node.get('name')}: only enumeration facets"
                              " are supported")
    return tuple(str(f.get("value")) for f in facets)


def _documentation(operation: etree._Element, request_type: etree._Element | None) -> str:
    nodes = list(operation.iterchildren(f"{_W}documentation"))
    if request_type is not None:
        nodes += request_type.iterfind(f"{_XS}annotation/{_XS}documentation")
    texts = ("".join(str(t) for t in node.itertext()).split() for node in nodes)
    return "\n\n".join(" ".join(words) for words in texts if words)
