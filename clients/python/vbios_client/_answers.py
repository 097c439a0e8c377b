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
from vbios_client._contract import ComplexType, Contract, contract
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


#: How a field's element is read: its text as it is (string, enumeration), a complex
#: type's reader, or its text converted (``_convert``).
_TEXT, _COMPLEX, _BOOLEAN, _INTEGER, _BINARY, _DOUBLE = range(6)
_KINDS = {"string": _TEXT, "enum": _TEXT, "complex": _COMPLEX, "boolean": _BOOLEAN,
          "int": _INTEGER, "long": _INTEGER, "unsignedLong": _INTEGER,
          "double": _DOUBLE, "base64Binary": _BINARY}


class _Reader:
    """Turns a valid element of one complex type into a SimpleNamespace.

    Its attributes are the fields in the type's order, the repeated ones (lists) last;
    an optional field absent is None. Each child's tag finds its field, how to read it
    and whether it repeats (``slots``, set by ``link`` once every reader exists).
    """

    def __init__(self, ctype: ComplexType) -> None:
        self.fields = ctype.fields
        self.singles: dict[str, Any] = {f.name: None for f in ctype.fields if not f.repeated}
        self.repeated = tuple(f.name for f in ctype.fields if f.repeated)
        #: Whether no field is of a complex type (an element of it has no grandchildren).
        self.flat = all(f.kind != "complex" for f in ctype.fields)
        self.slots: dict[str, tuple[str, int, bool, _Reader | None]] = {}
        #: Reads an element of this type: ``_read_fields``, or when the type's one field
        #: repeats ``_read_items`` (``_read_flat_items`` if its items are flat), as
        #: ``link`` decides.
        self.read: Callable[[etree._Element], SimpleNamespace] = self._read_fields
        self._items: tuple[str, int, _Reader | None] = ("", _TEXT, None)
        self._item_tag = ""

    def link(self, made: dict[str, _Reader]) -> None:
        """Finds the readers of the complex fields among ``made``."""
        self.slots = {f.tag: (f.name, _KINDS[f.kind], f.repeated,
                              made[f.type] if f.kind == "complex" else None)
                      for f in self.fields}
        if len(self.fields) == 1 and self.fields[0].repeated:
            name, kind, _, inner = self.slots[self.fields[0].tag]
            self._items = (name, kind, inner)
            self.read = self._read_items
            if inner is not None and inner.flat and self.fields[0].tag not in inner.slots:
                self._item_tag = self.fields[0].tag
                self.read = self._read_flat_items

    def _read_fields(self, element: etree._Element) -> SimpleNamespace:
        values = self.singles.copy()
        for name in self.repeated:
            values[name] = []
        slots = self.slots
        value: Any
        for child in element:
            name, kind, repeated, inner = slots[child.tag]
            if kind == _TEXT:
                value = child.text or None  # zeep read "" as None
            elif kind == _COMPLEX:
                value = inner.read(child)  # type: ignore[union-attr]  # set for complex
            else:
                value = _convert(kind, child.text)
            if repeated:
                values[name].append(value)
            else:
                values[name] = value
        return SimpleNamespace(**values)

    def _read_items(self, element: etree._Element) -> SimpleNamespace:
        """An element whose type's one field repeats: every child is one of its items
        (the schema says so), so no child's tag is looked at."""
        name, kind, inner = self._items
        if kind == _COMPLEX:
            read = inner.read  # type: ignore[union-attr]  # set for complex
            return SimpleNamespace(**{name: [read(child) for child in element]})
        if kind == _TEXT:
            return SimpleNamespace(**{name: [child.text or None for child in element]})
        return SimpleNamespace(**{name: [_convert(kind, child.text) for child in element]})

    def _read_flat_items(self, element: etree._Element) -> SimpleNamespace:
        """As ``_read_items`` for items whose fields are all simple, in one pass over the
        descendants (cheaper than going through the children of each item): an item's
        tag starts the next item, any other tag is a field of the current one."""
        name, _, inner = self._items
        assert inner is not None
        item_tag, slots, singles, repeated = (self._item_tag, inner.slots, inner.singles,
                                              inner.repeated)
        rows: list[dict[str, Any]] = []
        values: dict[str, Any] = {}
        for node in element.iterdescendants():
            tag = node.tag
            if tag == item_tag:
                values = singles.copy()
                for each in repeated:
                    values[each] = []
                rows.append(values)
                continue
            field, kind, many, _ = slots[tag]
            text = node.text
            value = (text or None) if kind == _TEXT else _convert(kind, text)
            if many:
                values[field].append(value)
            else:
                values[field] = value
        return SimpleNamespace(**{name: [SimpleNamespace(**row) for row in rows]})


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
                reader.link(made)
            _readers.update(made)
    return _readers[type_name]


def _convert(kind: int, text: str | None) -> Any:
    """The value of a boolean, integer, double or base64Binary element's text (already
    valid: a double's INF, -INF and NaN are what float() reads too)."""
    if kind == _BOOLEAN:
        return (text or "").strip() in _TRUE
    if kind == _INTEGER:
        return int(text or "")
    if kind == _DOUBLE:
        return float(text or "")
    return base64.b64decode("".join((text or "").split()))


def _name(tag: object) -> str:
    """A tag's local name, short enough for an error message."""
    return str(tag).rsplit("}", 1)[-1][:64]
