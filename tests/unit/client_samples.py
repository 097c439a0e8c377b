"""Sample values for every type of the contract, and zeep over the bundled WSDL as the
independent oracle the fast codec (vbios_client._codec, _answers) is compared with."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import zeep
from lxml import etree
from vbios_client import _contract

#: Strings that need escaping, a character outside the BMP, a CR that XML would
#: otherwise fold, and text that looks like markup.
HOSTILE_TEXT = "a<b>&c;\"q\" 'q' ]]> \r\n\té \U0001f600 <![CDATA[x]]> &amp;"
SAMPLE_BYTES = b"\x00\xff\x10binary\n"


@cache
def zeep_client() -> Any:
    return zeep.Client(io.BytesIO(_contract.bundled_wsdl()),  # type: ignore[no-untyped-call]
                       settings=zeep.Settings(strict=True))


@cache
def zeep_service() -> Any:
    client = zeep_client()
    binding = next(iter(client.wsdl.bindings))
    return client.create_service(binding, "https://vbios.test/")


def zeep_binding() -> Any:
    return zeep_service()._binding


def sample(type_name: str, *, text: str = HOSTILE_TEXT, optional: bool = True,
           repeat: int = 2) -> dict[str, Any]:
    """Values for every field of complex type ``type_name`` (optional ones too, unless
    ``optional`` is false; ``repeat`` items for each repeated field)."""
    known = _contract.contract()
    values: dict[str, Any] = {}
    for field in known.types[type_name].fields:
        if not field.required and not optional:
            continue
        one = _value(field, text=text, optional=optional, repeat=repeat)
        values[field.name] = [one] * repeat if field.repeated else one
    return values


def _value(field: _contract.Field, *, text: str, optional: bool, repeat: int) -> Any:
    if field.kind == "complex":
        return sample(field.type, text=text, optional=optional, repeat=repeat)
    if field.kind == "enum":
        return sorted(field.values)[-1]
    return {"string": text, "long": -(2**62), "unsignedLong": 2**64 - 1,
            "int": 2**31 - 1, "double": -1234.5678901234567, "boolean": True,
            "base64Binary": SAMPLE_BYTES}[field.kind]


def canonical(xml: bytes) -> bytes:
    """Exclusive C14N of a document (prefixes and self-closing tags do not matter)."""
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    return etree.tostring(root, method="c14n", exclusive=True)


def plain(value: Any) -> Any:
    """A result (zeep's objects or the fast reader's namespaces) as dicts and lists."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "__values__"):  # zeep's CompoundValue
        return {k: plain(v) for k, v in value.__values__.items()}
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items()}
    return value


def envelope(inner: str | bytes) -> bytes:
    text = inner.decode() if isinstance(inner, bytes) else inner
    return ('<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns:tns="urn:bios-ws:vbios:v1"><soap11env:Body>'
            f"{text}</soap11env:Body></soap11env:Envelope>").encode()


def zeep_response(operation: str, values: dict[str, Any]) -> bytes:
    """The response envelope of ``operation`` holding ``values``, as zeep writes it."""
    spec = _contract.contract().operations[operation]
    element = zeep_client().get_element(f"{{{_contract.NAMESPACE}}}{spec.output_element}")
    holder = etree.Element("holder")
    element.render(holder, element(**values))
    return envelope(etree.tostring(holder[0]))
