"""A fast request decoder for the contract's Spyne models (the response encoder's counterpart).

Spyne's ``deserialize`` walks a request through its generic protocol machinery
(a method context, per-class attribute lookups, events) and costs more than the
rest of a read. A request reaches the decoder only after the contract's schema
validated it (``Contract.validate_request``), so its shape is known: the
children of each element come in the order of the type's fields, repeated ones
together, each simple value in its lexical space. For each request message a
plan is built once from the Spyne class's ``_type_info`` (the WSDL stays the
one source of the schema), and decoding is one pass over the elements.

It gives what Spyne gives: a tuple of the operation's arguments, absent fields
``None``, a complex value as an object with one attribute per field, a repeated
field as a list, a string as its text ("" when empty), an enumeration as
Spyne's value, base64Binary as a tuple of one bytes value (None when empty). It
covers the plain cases only: an element carrying attributes (``xsi:type``,
``xsi:nil``...), a number or boolean not in its usual form (``+7``, `` true ``,
``1e3``, ``INF``),
or a message with a type it does not know is left to Spyne (``NotPlain``, or no
decoder at all), which then decodes exactly as it did before. A test compares
both on every operation.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from lxml import etree
from spyne.model import ComplexModelBase
from spyne.model.binary import ByteArray
from spyne.model.enum import EnumBase
from spyne.model.primitive import Boolean, Double, Integer, Unicode

#: Gives the arguments of an operation from its (validated) request element.
Decoder = Callable[[etree._Element], tuple[Any, ...]]
#: Gives the value of one (validated) element.
_Convert = Callable[[etree._Element], Any]

#: Integers Spyne reads with int() and no length refusal of its own (19 digits can
#: overflow a long; the schema refuses them, and Spyne is asked anyway).
_PLAIN_INTEGER = re.compile(r"-?[0-9]{1,18}\Z")
#: Doubles in decimal notation with at most 17 significant digits (an exponent, INF,
#: NaN, a sign "+" are left to Spyne).
_PLAIN_DOUBLE = re.compile(r"-?[0-9]{1,17}(\.[0-9]{1,17})?\Z")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_MAX_DEPTH = 16


class NotPlain(Exception):
    """The request is not one the decoder covers: let Spyne decode it."""


def decoder_for(message_class: Any) -> Decoder | None:
    """The decoder of a wrapped request message, or None when it has a type not covered."""
    try:
        fields = _plan(message_class, 0)
    except TypeError:
        return None

    def decode(element: etree._Element) -> tuple[Any, ...]:
        if element.attrib:
            raise NotPlain
        return tuple(_fill(fields, element).values())

    return decode


class _Field:
    __slots__ = ("convert", "name", "repeated")

    def __init__(self, name: str, convert: _Convert, repeated: bool) -> None:
        self.name = name
        self.convert = convert
        self.repeated = repeated


def _plan(cls: Any, depth: int) -> dict[str, _Field]:
    """Clark tag -> field, for the fields of complex class ``cls`` (in their order)."""
    if depth > _MAX_DEPTH:
        raise TypeError("nested too deep")
    namespace = cls.get_namespace()
    plan: dict[str, _Field] = {}
    for name, field in cls.get_flat_type_info(cls).items():
        repeated = (field.Attributes.max_occurs or 1) > 1
        plan[f"{{{namespace}}}{name}"] = _Field(name, _converter(field, depth), repeated)
    return plan


def _converter(cls: Any, depth: int) -> _Convert:
    if issubclass(cls, ComplexModelBase):
        fields = _plan(cls, depth + 1)
        return lambda element: SimpleNamespace(**_fill(fields, element))
    if issubclass(cls, EnumBase):
        values = {value: getattr(cls, value) for value in cls.__values__}
        return lambda element: _lookup(values, element.text or "")
    if issubclass(cls, Boolean):
        return lambda element: _lookup(_BOOLEANS, element.text or "")
    if issubclass(cls, Integer):
        return _integer
    if issubclass(cls, Double):
        return _double
    if issubclass(cls, Unicode):
        return _string
    if issubclass(cls, ByteArray):
        return _binary
    raise TypeError(f"the request decoder does not handle {cls!r}")


def _fill(fields: dict[str, _Field], element: etree._Element) -> dict[str, Any]:
    """Field name -> value of the children of ``element`` (None for an absent field)."""
    values: dict[str, Any] = dict.fromkeys(f.name for f in fields.values())
    for child in element:
        field = fields.get(child.tag)
        if field is None or child.attrib:
            raise NotPlain
        value = field.convert(child)
        if not field.repeated:
            values[field.name] = value
        elif values[field.name] is None:
            values[field.name] = [value]
        else:
            values[field.name].append(value)
    return values


def _lookup(values: dict[str, Any], text: str) -> Any:
    try:
        return values[text]
    except KeyError:
        raise NotPlain from None


def _integer(element: etree._Element) -> int:
    text = element.text or ""
    if not _PLAIN_INTEGER.match(text):
        raise NotPlain
    return int(text)


def _double(element: etree._Element) -> float:
    text = element.text or ""
    if not _PLAIN_DOUBLE.match(text):
        raise NotPlain
    return float(text)


def _binary(element: etree._Element) -> tuple[bytes] | None:
    """base64Binary as Spyne gives it (its decoder is slow on chunks of capsules)."""
    if len(element):
        raise NotPlain
    text = element.text
    if not text:
        return None
    try:
        return (binascii.a2b_base64(text),)
    except binascii.Error:
        raise NotPlain from None


def _string(element: etree._Element) -> str:
    if len(element):
        raise NotPlain
    return element.text or ""
