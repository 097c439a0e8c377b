"""Every simple type the response encoder writes, in its XML Schema lexical form: a test per
type, against Spyne's serializer where Spyne writes a valid form, and the schema's own
validator (a decimal 42.7 comes out as 42.7, never 42)."""

from __future__ import annotations

import decimal
import math
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree
from spyne import (
    Boolean,
    ByteArray,
    ComplexModel,
    Decimal,
    Double,
    Enum,
    Float,
    Integer32,
    Integer64,
    Unicode,
    UnsignedInteger64,
)
from spyne.protocol.xml import XmlDocument

from bios_ws.soap.encoder import render

XS = "http://www.w3.org/2001/XMLSchema"
COLOUR = Enum("Red", "Green", type_name="Colour")


def one_field(model: Any) -> Any:
    class Holder(ComplexModel):  # type: ignore[misc]
        __namespace__ = "urn:test"
        _type_info = [("Value", model)]

    return Holder


def ours(model: Any, value: Any) -> str:
    text = render(one_field(model), SimpleNamespace(Value=value)).xml
    element = etree.fromstring(text.replace("<tns:", "<").replace("</tns:", "</"))
    return element.text or ""


def spyne_text(model: Any, value: Any) -> str:
    holder = one_field(model)
    parent = etree.Element("root")
    XmlDocument().to_parent(None, holder, holder(Value=value), parent, "urn:test")
    return parent[0][0].text or ""


def valid(xs_type: str, text: str) -> bool:
    schema = etree.XMLSchema(etree.fromstring(
        f'<xs:schema xmlns:xs="{XS}"><xs:element name="v" type="xs:{xs_type}"/></xs:schema>'))
    return schema.validate(etree.fromstring(f"<v>{text}</v>"))


@pytest.mark.parametrize(("value", "text"), [
    (42.7, "42.7"), (-0.1, "-0.1"), (1e16, "1e+16"), (2.5e-08, "2.5e-08"), (0.0, "0.0"),
    (7, "7.0"), (float("inf"), "INF"), (float("-inf"), "-INF"), (float("nan"), "NaN"),
    (decimal.Decimal("36.6"), "36.6"),
])
@pytest.mark.parametrize("model", [Double, Float], ids=["double", "float"])
def test_doubles_keep_their_value(model: Any, value: Any, text: str) -> None:
    written = ours(model, value)
    assert written == text
    assert valid(model.get_type_name(), written)
    parsed = float(written.replace("INF", "inf"))
    assert parsed == float(value) or (math.isnan(parsed) and math.isnan(float(value)))
    if math.isfinite(float(value)) and not isinstance(value, (int, decimal.Decimal)):
        assert written == spyne_text(model, value)  # Spyne's repr, where it is valid


@pytest.mark.parametrize(("value", "text"), [
    (decimal.Decimal("42.7"), "42.7"), (42.7, "42.7"), (decimal.Decimal("1E+3"), "1000"),
    (decimal.Decimal("-0.000001"), "-0.000001"), (12, "12"), (decimal.Decimal("-0"), "0"),
])
def test_decimals_have_no_exponent(value: Any, text: str) -> None:
    assert ours(Decimal, value) == text
    assert valid("decimal", text)


@pytest.mark.parametrize("value", [decimal.Decimal("NaN"), float("inf")])
def test_a_decimal_that_is_not_a_number_is_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        ours(Decimal, value)


@pytest.mark.parametrize("model", [Integer32, Integer64, UnsignedInteger64])
@pytest.mark.parametrize("value", [0, -5, 2**31 - 1, 7.0, decimal.Decimal("9")])
def test_integers(model: Any, value: Any) -> None:
    if value == -5 and model is UnsignedInteger64:
        return
    written = ours(model, value)
    assert written == str(int(value)) and valid(model.get_type_name(), written)
    assert written == spyne_text(model, int(value))


@pytest.mark.parametrize("value", [42.7, decimal.Decimal("0.5"), "7"])
def test_an_integer_with_a_fraction_is_refused_not_truncated(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        ours(Integer64, value)


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (False, "false")])
def test_booleans(value: bool, text: str) -> None:
    assert ours(Boolean, value) == text == spyne_text(Boolean, value)


def test_strings_and_enumerations() -> None:
    assert ours(Unicode, "a<&>é") == "a<&>é" == spyne_text(Unicode, "a<&>é")
    assert ours(COLOUR, "Green") == "Green"


def test_base64_binary() -> None:
    assert ours(ByteArray, b"\x00\x01\xff") == "AAH/" == spyne_text(ByteArray, [b"\x00\x01\xff"])
