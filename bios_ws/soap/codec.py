"""Conversions between the contract's Spyne models and the domain's values.

Decoding checks only what the XML schema cannot say (exactly one value per
attribute); every rule about values stays in the domain. Encoding builds plain
records (``Out``) with the attribute names of the Spyne types: the response
encoder reads attributes only, and Spyne model instances cost ~6 us each.
``render_values`` goes one step further for the value lists every read
answers: their XML text, kept per exact content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import SimpleNamespace as Out
from typing import Any

from bios_ws.domain.registry import AttributeDefinition as Definition
from bios_ws.domain.registry import AttributeRegistry, Value
from bios_ws.domain.state import BootOption as DomainBootOption
from bios_ws.errors import InvalidRequest
from bios_ws.soap import types
from bios_ws.soap.encoder import Rendered, render


def decode_values(values: Any) -> dict[str, Value]:
    """An AttributeValueList into name -> value; a name given twice is refused."""
    items = list(getattr(values, "AttributeValue", None) or [])
    decoded: dict[str, Value] = {}
    for item in items:
        name, value = decode_value(item)
        if name in decoded:
            raise InvalidRequest(f"attribute {name} is given twice", attribute=name)
        decoded[name] = value
    return decoded


def decode_value(item: Any) -> tuple[str, Value]:
    name = str(item.Name)
    given = [v for v in (item.StringValue, item.IntegerValue, item.BooleanValue) if v is not None]
    if len(given) != 1:
        raise InvalidRequest(
            f"attribute {name} needs exactly one of StringValue, IntegerValue, BooleanValue",
            attribute=name,
        )
    value: Value = given[0]
    return name, value


def decode_strings(wrapper: Any, item_name: str) -> list[str]:
    if wrapper is None:
        return []
    return [str(v) for v in (getattr(wrapper, item_name, None) or [])]


def encode_values(values: Mapping[str, Value]) -> Any:
    return Out(AttributeValue=[_attribute_value(name, v) for name, v in values.items()])


#: (names, value types, values) -> their AttributeValueList, rendered; bounded.
_rendered_values: dict[tuple[tuple[str, ...], tuple[type, ...], tuple[Value, ...]], Rendered] = {}
_RENDERED_VALUES_KEPT = 256


def render_values(values: Mapping[str, Value]) -> Rendered:
    """``encode_values(values)`` as response XML, kept for the next response with the same values.

    Every GetAttributes of an unchanged domain answers the same values; the key
    is exactly what the text depends on (names in order, and each value with its
    type: ``True``, ``1`` and ``"1"`` differ).
    """
    key = (tuple(values), tuple(map(type, values.values())), tuple(values.values()))
    rendered = _rendered_values.get(key)
    if rendered is None:
        rendered = render(types.AttributeValueList, encode_values(values))
        if len(_rendered_values) >= _RENDERED_VALUES_KEPT:
            _rendered_values.clear()
        _rendered_values[key] = rendered
    return rendered


def _attribute_value(name: str, value: Value) -> Any:
    # What _typed says, without building and unpacking a dict (46 values a response).
    if isinstance(value, bool):
        return Out(Name=name, BooleanValue=value)
    if isinstance(value, int):
        return Out(Name=name, IntegerValue=value)
    return Out(Name=name, StringValue=value)


def encode_registry(registry: AttributeRegistry) -> Any:
    return Out(
        AttributeDefinition=[encode_definition(d) for d in registry]
    )


def encode_definition(d: Definition) -> Any:
    return Out(
        Name=d.name,
        Type=d.type.value,
        DisplayName=d.display_name,
        HelpText=d.help_text,
        ReadOnly=d.read_only,
        ResetRequired=d.reset_required,
        Default=None if d.default is None else Out(**_typed(d.default)),
        LowerBound=d.lower_bound,
        UpperBound=d.upper_bound,
        ScalarIncrement=d.scalar_increment,
        AllowedValues=Out(Value=list(d.allowed_values))
        if d.allowed_values else None,
        MinLength=d.min_length,
        MaxLength=d.max_length,
    )


def encode_boot_options(options: Iterable[DomainBootOption]) -> Any:
    return Out(
        BootOption=[
            Out(Id=o.id, DisplayName=o.display_name, Enabled=o.enabled)
            for o in options
        ]
    )


def encode_boot_order(order: Iterable[str]) -> Any:
    return Out(OptionId=list(order))


def _typed(value: Value) -> dict[str, Value]:
    if isinstance(value, bool):
        return {"BooleanValue": value}
    if isinstance(value, int):
        return {"IntegerValue": value}
    return {"StringValue": value}
