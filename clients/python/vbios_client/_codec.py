"""Requests written straight from the compiled contract (``_contract``).

``request`` writes an operation's SOAP 1.1 envelope from keyword values shaped as
zeep takes them (a mapping for a complex field, a list for a repeated one, None or
absent for an optional field left out), in the order of the WSDL's sequences, every
text escaped and a character XML cannot carry refused. A value of the wrong type is
a TypeError, a missing field, an unknown enumeration value or an integer out of
range a ValueError, both before anything is sent; an xs:double takes an int or a float.
Answers are read by ``_answers``.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Mapping
from typing import Any

from vbios_client._contract import ComplexType, Contract, Field, contract

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_PROLOG = ("<?xml version='1.0' encoding='utf-8'?>\n"
           f'<soap-env:Envelope xmlns:soap-env="{SOAP11_ENV}"><soap-env:Body>')
_EPILOG = "</soap-env:Body></soap-env:Envelope>"
_NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1),
          "unsignedLong": (0, 2**64 - 1)}
#: Deepest nesting of complex types written (the contract needs 5).
_MAX_DEPTH = 12


# -- requests ------------------------------------------------------------------------


def request(operation: str, params: Mapping[str, Any]) -> bytes:
    """The envelope of ``operation`` with ``params``; TypeError/ValueError for bad values."""
    known = contract()
    spec = known.operations.get(operation)
    if spec is None:
        raise ValueError(f"the contract has no operation {operation!r}")
    out = [_PROLOG, f'<ns0:{spec.input_element} xmlns:ns0="{known.namespace}"']
    inner: list[str] = []
    _write_fields(inner, known, known.types[spec.input_type], params, operation, 0)
    out.append(">" + "".join(inner) + f"</ns0:{spec.input_element}>" if inner else "/>")
    out.append(_EPILOG)
    return "".join(out).encode("utf-8")


def headers(operation: str) -> dict[str, str]:
    """The HTTP headers of a call of ``operation`` (SOAPAction as the binding says)."""
    action = contract().operations[operation].soap_action
    return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}


def _write_fields(out: list[str], known: Contract, ctype: ComplexType, value: Any,
                  path: str, depth: int) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{path} must be a mapping of field to value")
    names = {f.name for f in ctype.fields}
    unknown = [str(k) for k in value if k not in names]
    if unknown:
        raise TypeError(f"{path} has no field {', '.join(sorted(unknown))}")
    for field in ctype.fields:
        item = value.get(field.name)
        where = f"{path}.{field.name}"
        if item is None:
            if field.required:
                raise ValueError(f"{where} is missing")
            continue
        if not field.repeated:
            _write_one(out, known, field, item, where, depth)
            continue
        if not isinstance(item, list | tuple):
            raise TypeError(f"{where} must be a list")
        for one in item:
            _write_one(out, known, field, one, where, depth)


def _write_one(out: list[str], known: Contract, field: Field, value: Any, path: str,
               depth: int) -> None:
    if field.kind != "complex":
        out.append(f"<ns0:{field.name}>{_text(field, value, path)}</ns0:{field.name}>")
        return
    if depth >= _MAX_DEPTH:
        raise ValueError(f"{path} is nested too deep")
    inner: list[str] = []
    _write_fields(inner, known, known.types[field.type], value, path, depth + 1)
    if inner:
        out.append(f"<ns0:{field.name}>{''.join(inner)}</ns0:{field.name}>")
    else:
        out.append(f"<ns0:{field.name}/>")


def _text(field: Field, value: Any, path: str) -> str:
    kind = field.kind
    if kind in ("string", "enum"):
        if not isinstance(value, str):
            raise TypeError(f"{path} must be a str, not {type(value).__name__}")
        if kind == "enum" and value not in field.values:
            raise ValueError(f"{path} must be one of {', '.join(sorted(field.values))}")
        return escape(value, path)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise TypeError(f"{path} must be a bool, not {type(value).__name__}")
        return "true" if value else "false"
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{path} must be a float, not {type(value).__name__}")
        return double_text(float(value))
    if kind in RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{path} must be an int, not {type(value).__name__}")
        low, high = RANGES[kind]
        if not low <= value <= high:
            raise ValueError(f"{path} is out of the range of xs:{kind}")
        return str(int(value))
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{path} must be bytes, not {type(value).__name__}")
    return binascii.b2a_base64(bytes(value), newline=False).decode("ascii")


def double_text(value: float) -> str:
    """xs:double text: the shortest that reads back as ``value`` (INF, -INF, NaN)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(value)


def escape(text: str, path: str = "value") -> str:
    """``text`` as XML character data; ValueError for a character XML cannot carry."""
    if text.isascii() and text.isprintable() and not ("&" in text or "<" in text
                                                       or ">" in text):
        return text
    if _NOT_XML_CHARS.search(text):
        raise ValueError(f"{path} holds a character XML cannot carry")
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))
