"""The contract's types as Spyne models, all in the target namespace ``urn:bios-ws:vbios:v1``.

Required fields are ``minOccurs=1`` and not nillable; optional ones are
``minOccurs=0`` and not nillable either (absent means "not given"). Lists are
explicit wrapper types (``<Attributes><AttributeValue/>...</Attributes>``), so
every element of the WSDL has a name chosen here, never one Spyne invents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from spyne import Boolean, ComplexModel, Enum, Integer32, Integer64, Unicode, rpc
from spyne.model.fault import Fault

TNS = "urn:bios-ws:vbios:v1"

F = TypeVar("F", bound=Callable[..., Any])


def required(model: Any) -> Any:
    """A field that must appear exactly once."""
    return model.customize(min_occurs=1, nillable=False)


def optional(model: Any) -> Any:
    """A field that may be absent (never xsi:nil)."""
    return model.customize(min_occurs=0, nillable=False)


def repeated(model: Any) -> Any:
    """The item of a wrapper list: zero or more, never nil."""
    return model.customize(min_occurs=0, max_occurs="unbounded", nillable=False)


ApplyTime = Enum("Immediate", "OnReset", type_name="ApplyTime").customize(__namespace__=TNS)
AttributeType = Enum(
    "Enumeration", "Integer", "String", "Boolean", "Password", type_name="AttributeType"
).customize(__namespace__=TNS)


class TypedValue(ComplexModel):  # type: ignore[misc]
    """Exactly one of the three values."""

    __namespace__ = TNS
    _type_info = [
        ("StringValue", optional(Unicode)),
        ("IntegerValue", optional(Integer64)),
        ("BooleanValue", optional(Boolean)),
    ]


class AttributeValue(ComplexModel):  # type: ignore[misc]
    """A named value; Enumeration values travel as StringValue."""

    __namespace__ = TNS
    _type_info = [
        ("Name", required(Unicode)),
        ("StringValue", optional(Unicode)),
        ("IntegerValue", optional(Integer64)),
        ("BooleanValue", optional(Boolean)),
    ]


class AttributeValueList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("AttributeValue", repeated(AttributeValue))]


class AllowedValueList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Value", repeated(Unicode))]


class NameList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Name", repeated(Unicode))]


class AttributeDefinition(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("Name", required(Unicode)),
        ("Type", required(AttributeType)),
        ("DisplayName", required(Unicode)),
        ("HelpText", required(Unicode)),
        ("ReadOnly", required(Boolean)),
        ("ResetRequired", required(Boolean)),
        ("Default", optional(TypedValue)),
        ("LowerBound", optional(Integer64)),
        ("UpperBound", optional(Integer64)),
        ("ScalarIncrement", optional(Integer64)),
        ("AllowedValues", optional(AllowedValueList)),
        ("MinLength", optional(Integer32)),
        ("MaxLength", optional(Integer32)),
    ]


class AttributeDefinitionList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("AttributeDefinition", repeated(AttributeDefinition))]


class BootOption(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("Id", required(Unicode)),
        ("DisplayName", required(Unicode)),
        ("Enabled", required(Boolean)),
    ]


class BootOptionList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("BootOption", repeated(BootOption))]


class BootOrder(ComplexModel):  # type: ignore[misc]
    """Boot option ids, first to try first."""

    __namespace__ = TNS
    _type_info = [("OptionId", repeated(Unicode))]


class VbiosFaultDetail(Fault):  # type: ignore[misc]
    """The typed detail of every fault (declared here; rendered by ``faults``)."""

    __namespace__ = TNS
    _type_info = [
        ("Code", required(Unicode)),
        ("Message", required(Unicode)),
        ("Attribute", optional(Unicode)),
        ("CorrelationId", optional(Unicode)),
    ]


def operation(*params: Any, returns: Any, names: str | tuple[str, ...]) -> Callable[[F], F]:
    """``spyne.rpc`` for one contract operation: wrapped, declaring ``VbiosFault``."""
    options: dict[str, Any] = {
        "_returns": returns,
        "_throws": [VbiosFaultDetail],
        "_body_style": "wrapped",
    }
    if isinstance(names, str):
        options["_out_variable_name"] = names
    else:
        options["_out_variable_names"] = names
    return cast(Callable[[F], F], rpc(*params, **options))
