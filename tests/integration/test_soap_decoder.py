"""The request decoder gives what Spyne's decoder gives, on every operation of the contract."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from spyne.model import ComplexModelBase
from spyne.model.binary import ByteArray
from spyne.model.enum import EnumBase
from spyne.model.primitive import Boolean, Double, Integer, Unicode

from bios_ws.domain.principal import Principal
from bios_ws.errors import InvalidRequest
from bios_ws.soap.context import Call
from bios_ws.soap.contract import contract
from bios_ws.soap.decoder import NotPlain, decoder_for
from bios_ws.soap.envelope import check_envelope
from bios_ws.soap.testing import build_endpoint, soap_envelope
from bios_ws.soap.types import TNS
from bios_ws.soap.xmlparser import parse_xml

#: Texts tried for each simple type; the first of each is the plain one.
TEXTS: dict[type, tuple[str, ...]] = {
    Boolean: ("true", "false", "1", "0", " true ", "TRUE"),
    Integer: ("42", "-7", "0", "+7", " 5 ", "007", "123456789012345678"),
    Double: ("42.7", "-7", "0.000001", "1e3", " 5.5 ", "INF", "-0.0", "0.1000000000000000055"),
    Unicode: ("x", "", " a b ", "&lt;&amp;&gt;", "é\u20ac", "<![CDATA[c&d]]>"),
    ByteArray: ("AAEC", ""),
}

DISPATCHER = contract().dispatcher
OPERATIONS = sorted(DISPATCHER.operations)


def simple_kind(cls: Any) -> type:
    return next(kind for kind in TEXTS if issubclass(cls, kind))


def texts(cls: Any) -> tuple[str, ...]:
    if issubclass(cls, EnumBase):
        return tuple(cls.__values__)
    return TEXTS[simple_kind(cls)]


def fields(cls: Any) -> list[tuple[str, Any]]:
    return list(cls.get_flat_type_info(cls).items())


def inner(cls: Any, variant: int, depth: int = 0) -> str:
    """The children of an element of complex class ``cls``, for one ``variant``."""
    out = []
    for position, (name, field) in enumerate(fields(cls)):
        optional = (field.Attributes.min_occurs or 0) == 0
        if optional and (variant + position) % 3 == 0:
            continue
        repeated = (field.Attributes.max_occurs or 1) > 1
        count = (variant + depth) % 3 if repeated else 1
        for item in range(count):
            if issubclass(field, ComplexModelBase):
                text = inner(field, variant + item + 1, depth + 1)
            else:
                options = texts(field)
                text = options[(variant + position + item) % len(options)]
            out.append(f"<tns:{name}>{text}</tns:{name}>")
    return "".join(out)


def plain(value: Any) -> Any:
    """A comparable form of a decoded value (Spyne's or ours)."""
    if isinstance(value, SimpleNamespace):
        return {name: plain(v) for name, v in vars(value).items()}
    if isinstance(value, ComplexModelBase):
        return {name: plain(getattr(value, name, None)) for name, _ in fields(type(value))}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return (type(value).__name__, value)


def requests_for(operation: str) -> Iterator[bytes]:
    descriptor = DISPATCHER.app.interface.service_method_map[operation][0]
    name = descriptor.in_message.get_type_name()
    for variant in range(12):
        yield soap_envelope(name, inner(descriptor.in_message, variant))


def decoded_both_ways(request: bytes) -> tuple[Any, Any] | None:
    """(ours or NotPlain, Spyne's) for a request the schema accepts; None otherwise."""
    envelope = check_envelope(parse_xml(request), DISPATCHER.operations)
    try:
        contract().validate_request(envelope.body)
    except InvalidRequest:
        return None
    descriptor = DISPATCHER.app.interface.service_method_map[envelope.body.tag][0]
    spyne_ctx = DISPATCHER._decoded_by_spyne(envelope, Call(Principal.admin(), None))  # type: ignore[arg-type]
    theirs = [plain(v) for v in spyne_ctx.in_object]
    decode = decoder_for(descriptor.in_message)
    if decode is None:
        return NotPlain, theirs
    try:
        return [plain(v) for v in decode(envelope.body)], theirs
    except NotPlain:
        return NotPlain, theirs


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_decoder_agrees_with_spyne_or_leaves_the_request_to_it(operation: str) -> None:
    accepted = 0
    for request in requests_for(operation):
        both = decoded_both_ways(request)
        if both is None:
            continue
        accepted += 1
        ours, theirs = both
        assert ours is NotPlain or ours == theirs, request
    assert accepted > 0, "no sample request is valid: the generator needs a case"


def test_the_plain_requests_of_the_hot_operations_are_decoded_without_spyne() -> None:
    for operation, inner_xml in [
        ("GetAttributes", ""),
        ("GetAttributes", "<tns:Names><tns:Name>A</tns:Name><tns:Name/></tns:Names>"),
        ("SetAttributes", "<tns:Attributes><tns:AttributeValue><tns:Name>A</tns:Name>"
         "<tns:IntegerValue>-5</tns:IntegerValue></tns:AttributeValue><tns:AttributeValue>"
         "<tns:Name>B</tns:Name><tns:BooleanValue>1</tns:BooleanValue></tns:AttributeValue>"
         "</tns:Attributes><tns:ApplyTime>OnReset</tns:ApplyTime>"
         "<tns:Password></tns:Password>"),
        ("GetBootOrder", ""),
        ("SetBootOrder", "<tns:Order><tns:OptionId>a</tns:OptionId></tns:Order>"),
    ]:
        both = decoded_both_ways(soap_envelope(operation, inner_xml))
        assert both is not None
        ours, theirs = both
        assert ours is not NotPlain and ours == theirs


@pytest.mark.parametrize("inner_xml", [
    "<tns:Attributes/><tns:ApplyTime>OnReset</tns:ApplyTime>"
    "<tns:ExpectedVersion> 5 </tns:ExpectedVersion>",
    '<tns:Attributes xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:type="tns:AttributeValueList"/><tns:ApplyTime>OnReset</tns:ApplyTime>',
    "<tns:Attributes><tns:AttributeValue><tns:Name>A</tns:Name>"
    "<tns:BooleanValue> true </tns:BooleanValue></tns:AttributeValue></tns:Attributes>"
    "<tns:ApplyTime>OnReset</tns:ApplyTime>",
])
def test_unusual_forms_go_to_spyne_and_answer_as_before(inner_xml: str) -> None:
    both = decoded_both_ways(soap_envelope("SetAttributes", inner_xml))
    assert both is not None and both[0] is NotPlain
    answer = build_endpoint().call("SetAttributes", inner_xml)
    assert answer.status in (200, 500)  # whatever Spyne made of it, answered as a SOAP message
    assert answer.xml is not None


def test_operations_with_binary_values_have_a_decoder_too() -> None:
    """base64Binary is decoded here (Spyne's own decoder is slow on capsule chunks); the
    agreement test above checks it gives what Spyne gives."""
    binary = [
        op for op in OPERATIONS
        if any(issubclass(f, ByteArray) for f in _all_field_types(
            DISPATCHER.app.interface.service_method_map[op][0].in_message))
    ]
    assert {f"{{{TNS}}}UploadFirmwareChunk", f"{{{TNS}}}GetQuote"} <= set(binary)
    for op in binary:
        message = DISPATCHER.app.interface.service_method_map[op][0].in_message
        assert decoder_for(message) is not None


def _all_field_types(cls: Any) -> Iterator[Any]:
    for _, field in fields(cls):
        yield field
        if issubclass(field, ComplexModelBase):
            yield from _all_field_types(field)


def test_the_samples_cover_every_simple_kind() -> None:
    kinds = {simple_kind(f) for op in OPERATIONS for f in itertools.chain(_all_field_types(
        DISPATCHER.app.interface.service_method_map[op][0].in_message))
        if not issubclass(f, (ComplexModelBase, EnumBase))}
    assert kinds == set(TEXTS)
