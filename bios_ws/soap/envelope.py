"""SOAP 1.1 envelope checks, in the order WS-I Basic Profile 1.1 asks for.

1. the document element is ``{soap 1.1}Envelope`` (another namespace:
   ``VersionMismatch``; another name: Client fault, R1015);
2. a header entry for us with ``mustUnderstand="1"``: we understand none, so
   ``MustUnderstand`` (R1025, R1027);
3. the Envelope holds an optional Header then exactly one Body, nothing after
   it (R1011); the Body holds exactly one element (R9981), qualified (R1014);
4. that element names an operation of the contract.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from lxml import etree

from bios_ws.errors import InvalidRequest
from bios_ws.soap.faults import SOAP11_ENV, EnvelopeFault

_ENVELOPE = f"{{{SOAP11_ENV}}}Envelope"
_HEADER = f"{{{SOAP11_ENV}}}Header"
_BODY = f"{{{SOAP11_ENV}}}Body"
_MUST_UNDERSTAND = f"{{{SOAP11_ENV}}}mustUnderstand"
_ACTOR = f"{{{SOAP11_ENV}}}actor"
_NEXT_ACTOR = "http://schemas.xmlsoap.org/soap/actor/next"


@dataclass(frozen=True)
class Envelope:
    root: etree._Element
    body: etree._Element
    """The one child of soap:Body: the operation's request element."""

    @property
    def operation(self) -> str:
        return etree.QName(self.body).localname


def check_envelope(root: etree._Element, operations: Collection[str]) -> Envelope:
    """The checked envelope; ``operations`` holds the Clark names of the request elements."""
    qname = etree.QName(root)
    if qname.localname != "Envelope":
        raise InvalidRequest("the document element of a SOAP message is soap:Envelope")
    if root.tag != _ENVELOPE:
        raise EnvelopeFault(
            "VersionMismatch", "only SOAP 1.1 envelopes are understood (" + SOAP11_ENV + ")"
        )
    children = _elements(root)
    header = children[0] if children and children[0].tag == _HEADER else None
    if header is not None:
        _check_header(header)
        children = children[1:]
    if len(children) != 1 or children[0].tag != _BODY:
        raise InvalidRequest("a SOAP envelope holds an optional Header and then one Body only")
    body = children[0]
    entries = _elements(body)
    if len(entries) != 1:
        raise InvalidRequest(
            f"the SOAP body must hold exactly one element, not {len(entries)}"
        )
    request = entries[0]
    if request.tag not in operations:
        raise InvalidRequest(f"unknown operation {_shown(request)}")
    return Envelope(root, request)


def _check_header(header: etree._Element) -> None:
    for entry in _elements(header):
        if entry.get(_MUST_UNDERSTAND, "0").strip() not in ("1", "true"):
            continue
        if entry.get(_ACTOR, _NEXT_ACTOR) != _NEXT_ACTOR:
            continue
        raise EnvelopeFault(
            "MustUnderstand", f"header entry {_shown(entry)} is not understood"
        )


def _elements(parent: etree._Element) -> list[etree._Element]:
    if parent.text is not None and parent.text.strip():
        raise InvalidRequest("the SOAP envelope holds text outside its elements")
    children = []
    for child in parent:
        if not isinstance(child.tag, str):
            raise InvalidRequest("the SOAP envelope holds a node that is not an element")
        if child.tail is not None and child.tail.strip():
            raise InvalidRequest("the SOAP envelope holds text outside its elements")
        children.append(child)
    return children


def _shown(element: etree._Element) -> str:
    qname = etree.QName(element)
    namespace = qname.namespace or ""
    return f"{{{namespace[:100]}}}{qname.localname[:100]}"
