"""Answers read straight from the compiled contract (``_contract``), shape by shape.

``answer`` reads the server's envelope with the hardened parser (``_xml``), takes
the one element of its Body, and accepts it only if it is the operation's response
element and valid against the WSDL's own schema (libxml2's XML Schema validator:
fields in order, each at most as often as allowed, each required one present, each
value of its type, integers in range, enumeration values, no attributes and no text
between elements). Anything else is ``UnreadableAnswer``, whose reason names where,
never a value. A SOAP fault becomes its ``vbios_client.exceptions`` class.

Results are plain objects read by field name, as zeep gave them: an optional field
absent is None, a repeated one a list, an empty string None, and a response of one
field is that field's value.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from lxml import etree

from vbios_client import _wire, _xml
from vbios_client._codec import SOAP11_ENV
from vbios_client._contract import ComplexType, Contract, Field, contract
from vbios_client.exceptions import FaultError

_ENVELOPE, _HEADER, _BODY, _FAULT = (f"{{{SOAP11_ENV}}}{n}"
                                     for n in ("Envelope", "Header", "Body", "Fault"))
_TRUE = frozenset({"true", "1"})


class UnreadableAnswer(ValueError):
    """An answer that is not the shape the contract declares (the reason names no value)."""


class NotSoap(ValueError):
    """An answer that is no SOAP envelope at all (an HTTP error page, nothing, junk)."""


def answer(operation: str, status: int, body: bytes) -> Any:
    """The result of ``operation`` in ``body``; raises the FaultError the server sent,
    NotSoap for no envelope at all, UnreadableAnswer for any other shape."""
    if not body:
        raise NotSoap("no content")
    try:
        root = _xml.parse(body)
    except _xml.NotXml as exc:
        raise NotSoap(str(exc)) from None
    except _xml.UnsafeXml as exc:
        raise UnreadableAnswer(str(exc)) from None
    if root.tag != _ENVELOPE:
        if status != 200:
            raise NotSoap("no SOAP 1.1 envelope")
        raise UnreadableAnswer(f"{_name(root.tag)} instead of a SOAP 1.1 envelope")
    payload = _payload(root)
    if payload.tag == _FAULT:
        raise _fault(payload)
    if status != 200:
        raise NotSoap(f"HTTP {status} without a fault")
    known = contract()
    spec = known.operations[operation]
    if payload.tag != f"{{{known.namespace}}}{spec.output_element}":
        raise UnreadableAnswer(f"{_name(payload.tag)} instead of {spec.output_element}")
    _validate(known, payload)
    reader = _reader(known, spec.output_type)
    result = reader.read(payload)
    if len(reader.fields) == 1:  # zeep hands over the one field of a one-field response
        return getattr(result, reader.fields[0].name)
    return result


def _payload(envelope: etree._Element) -> etree._Element:
    """The one element inside the envelope's Body (after an empty Header, if any)."""
    parts = list(envelope)
    if parts and parts[0].tag == _HEADER:
        if len(parts[0]):
            raise UnreadableAnswer("a SOAP header is not expected")
        parts = parts[1:]
    if len(parts) != 1 or parts[0].tag != _BODY:
        raise UnreadableAnswer("the envelope must hold one Body")
    inside = list(parts[0])
    if len(inside) != 1:
        raise UnreadableAnswer(f"the Body holds {len(inside)} elements, not one")
    return inside[0]


def _fault(fault: etree._Element) -> FaultError:
    def text(name: str) -> str | None:
        child = fault.find(name)
        return None if child is None else child.text

    return _wire.fault_error(text("faultcode"), text("faultstring"), fault.find("detail"))


# -- validation and reading -----------------------------------------------------------


_local = threading.local()


def _validate(known: Contract, payload: etree._Element) -> None:
    """UnreadableAnswer unless ``payload`` is valid against the contract's schema."""
    validator: etree.XMLSchema | None = getattr(_local, "validator", None)
    if validator is None:  # validators are not shared between threads
        validator = _local.validator = etree.XMLSchema(_xml.parse(known.schema,
                                                                  limit=_xml.MAX_WSDL_BYTES))
    if not validator.validate(payload):
        errors: Any = validator.error_log  # lxml-stubs lack last_error
        where = str(getattr(errors.last_error, "path", "") or "")
        raise UnreadableAnswer(f"not as the contract declares it at {where[:200]}")


class _Reader:
    """Turns a valid element of one complex type into a SimpleNamespace."""

    def __init__(self, ctype: ComplexType) -> None:
        self.fields = ctype.fields
        self.singles = {f.name: None for f in ctype.fields if not f.repeated}
        self.repeated = tuple(f.name for f in ctype.fields if f.repeated)
        #: Per qualified tag: the field's name, whether it repeats, and how to read it
        #: (set by ``_reader`` once every reader exists).
        self.slots: dict[str, tuple[str, bool, Callable[[etree._Element], Any]]] = {}

    def read(self, element: etree._Element) -> SimpleNamespace:
        values: dict[str, Any] = dict(self.singles)
        for name in self.repeated:
            values[name] = []
        slots = self.slots
        for child in element:
            name, repeated, read = slots[child.tag]
            if repeated:
                values[name].append(read(child))
            else:
                values[name] = read(child)
        return SimpleNamespace(**values)


_readers: dict[str, _Reader] = {}
_lock = threading.Lock()


def _reader(known: Contract, type_name: str) -> _Reader:
    """The reader of complex type ``type_name`` (all readers are made at first use)."""
    found = _readers.get(type_name)
    if found is not None:
        return found
    with _lock:
        if not _readers:
            made = {name: _Reader(ctype) for name, ctype in known.types.items()}
            for reader in made.values():
                reader.slots = {f.tag: (f.name, f.repeated, _field_reader(f, made))
                                for f in reader.fields}
            _readers.update(made)
    return _readers[type_name]


def _field_reader(field: Field, made: dict[str, _Reader]
                  ) -> Callable[[etree._Element], Any]:
    """Reads one element of ``field``, already valid against the schema."""
    kind = field.kind
    if kind == "complex":
        return made[field.type].read
    if kind in ("string", "enum"):
        return lambda element: element.text or None  # zeep read "" as None
    if kind == "boolean":
        return lambda element: (element.text or "").strip() in _TRUE
    if kind in ("int", "long"):
        return lambda element: int(element.text or "")
    return lambda element: base64.b64decode("".join((element.text or "").split()))


def _name(tag: object) -> str:
    """A tag's local name, short enough for an error message."""
    return str(tag).rsplit("}", 1)[-1][:64]
