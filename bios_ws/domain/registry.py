"""The attribute registry: what BIOS attributes exist and which values they accept.

The registry is data (a JSON document the admin can replace); this module turns
it into typed definitions and validates values against them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bios_ws.errors import (
    InvalidAttributeValue,
    RegistryError,
    UnknownAttribute,
)

Value = str | int | bool

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
#: Longest string value any attribute may hold, whatever the registry says.
MAX_STRING_LENGTH = 1024


#: Bidirectional formatting characters: they make text display in another order than
#: it is stored (an attribute shown to an admin must read as it is).
BIDI_CONTROLS = frozenset(
    {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
)


def first_refused_character(text: str) -> str | None:
    """The first character no string attribute may hold, whatever its registry says:
    a C0 or C1 control, DEL, or a bidirectional formatting character; None if none."""
    for char in text:
        point = ord(char)
        if point < 0x20 or 0x7F <= point <= 0x9F or point in BIDI_CONTROLS:
            return char
    return None


def _kind_of(char: str) -> str:
    return "a bidirectional control" if ord(char) in BIDI_CONTROLS else "a control character"


class AttributeType(StrEnum):
    ENUMERATION = "Enumeration"
    INTEGER = "Integer"
    STRING = "String"
    BOOLEAN = "Boolean"
    PASSWORD = "Password"  # noqa: S105 (a type name, not a secret)


@dataclass(frozen=True)
class AttributeDefinition:
    name: str
    type: AttributeType
    display_name: str
    help_text: str = ""
    read_only: bool = False
    reset_required: bool = False
    default: Value | None = None
    lower_bound: int | None = None
    upper_bound: int | None = None
    scalar_increment: int | None = None
    allowed_values: tuple[str, ...] = ()
    min_length: int | None = None
    max_length: int | None = None

    @property
    def is_password(self) -> bool:
        return self.type is AttributeType.PASSWORD

    def validate(self, value: object) -> Value:
        """Return ``value`` if this attribute accepts it, else raise InvalidAttributeValue."""
        if self.type is AttributeType.BOOLEAN:
            if isinstance(value, bool):
                return value
            raise self._invalid("expects a Boolean")
        if self.type is AttributeType.INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._invalid("expects an Integer")
            return self._check_integer(value)
        if not isinstance(value, str):
            raise self._invalid(f"expects a {self.type.value} (string)")
        if self.type is AttributeType.ENUMERATION:
            if value not in self.allowed_values:
                allowed = ", ".join(self.allowed_values)
                raise self._invalid(f"accepts only: {allowed}")
            return value
        return self._check_string(value)

    def _check_integer(self, value: int) -> int:
        if self.lower_bound is not None and value < self.lower_bound:
            raise self._invalid(f"must be at least {self.lower_bound}")
        if self.upper_bound is not None and value > self.upper_bound:
            raise self._invalid(f"must be at most {self.upper_bound}")
        step = self.scalar_increment
        if step and (value - (self.lower_bound or 0)) % step:
            raise self._invalid(f"must move in steps of {step}")
        return value

    def _check_string(self, value: str) -> str:
        limit = MAX_STRING_LENGTH
        if self.max_length is not None:
            limit = min(self.max_length, MAX_STRING_LENGTH)
        if len(value) > limit:
            raise self._invalid(f"is at most {limit} characters long")
        if self.min_length is not None and len(value) < self.min_length:
            raise self._invalid(f"is at least {self.min_length} characters long")
        refused = first_refused_character(value)
        if refused is not None:
            raise InvalidAttributeValue(
                f"{self.name}: U+{ord(refused):04X} is not allowed ({_kind_of(refused)})",
                attribute=self.name)
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise self._invalid("must be valid Unicode text")
        return value

    def _invalid(self, why: str) -> InvalidAttributeValue:
        return InvalidAttributeValue(f"attribute {self.name} {why}", attribute=self.name)


@dataclass(frozen=True)
class AttributeRegistry:
    registry_version: str
    definitions: Mapping[str, AttributeDefinition] = field(default_factory=dict)

    def __iter__(self) -> Iterator[AttributeDefinition]:
        return iter(self.definitions.values())

    def __len__(self) -> int:
        return len(self.definitions)

    def get(self, name: str) -> AttributeDefinition:
        try:
            return self.definitions[name]
        except KeyError:
            raise UnknownAttribute(f"unknown attribute {name!r}", attribute=name) from None

    def defaults(self) -> dict[str, Value]:
        """Default values of every attribute that holds a value (passwords hold none)."""
        return {
            d.name: d.default
            for d in self.definitions.values()
            if not d.is_password and d.default is not None
        }

    def writable_defaults(self) -> dict[str, Value]:
        """Defaults of the attributes a guest may change: what a reset to defaults sets."""
        return {n: v for n, v in self.defaults().items() if not self.definitions[n].read_only}

    @classmethod
    def from_json(cls, text: str) -> AttributeRegistry:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RegistryError(f"attribute registry is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> AttributeRegistry:
        if not isinstance(data, dict) or not isinstance(data.get("attributes"), list):
            raise RegistryError("attribute registry needs an 'attributes' list")
        unknown = set(data) - {"registry_version", "attributes"}
        if unknown:
            names = ", ".join(sorted(unknown))
            raise RegistryError(f"attribute registry has unknown keys: {names}")
        version = data.get("registry_version")
        if not isinstance(version, str) or not version:
            raise RegistryError("attribute registry needs a 'registry_version' string")
        definitions: dict[str, AttributeDefinition] = {}
        for index, raw in enumerate(data["attributes"]):
            definition = _definition_from_dict(raw, index)
            if definition.name in definitions:
                raise RegistryError(f"attribute {definition.name} is defined twice")
            definitions[definition.name] = definition
        return cls(registry_version=version, definitions=definitions)


_KEYS = {
    "name", "type", "display_name", "help_text", "read_only", "reset_required", "default",
    "lower_bound", "upper_bound", "scalar_increment", "allowed_values", "min_length",
    "max_length",
}


def _definition_from_dict(raw: Any, index: int) -> AttributeDefinition:
    where = f"attribute #{index}"
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} is not an object")
    unknown = set(raw) - _KEYS
    if unknown:
        raise RegistryError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RegistryError(f"{where} needs a name of letters, digits and underscores")
    raw_type = raw.get("type")
    try:
        kind = AttributeType(raw_type if isinstance(raw_type, str) else "")
    except ValueError:
        raise RegistryError(f"attribute {name} has an unknown type {raw_type!r}") from None
    allowed = raw.get("allowed_values", [])
    if not isinstance(allowed, list) or not all(isinstance(v, str) for v in allowed):
        raise RegistryError(f"attribute {name}: allowed_values must be a list of strings")
    if kind is AttributeType.ENUMERATION and not allowed:
        raise RegistryError(f"attribute {name}: an Enumeration needs allowed_values")
    try:
        definition = AttributeDefinition(
            name=name,
            type=kind,
            display_name=_opt(raw, "display_name", str) or name,
            help_text=_opt(raw, "help_text", str) or "",
            read_only=bool(_opt(raw, "read_only", bool)),
            reset_required=bool(_opt(raw, "reset_required", bool)),
            default=raw.get("default"),
            lower_bound=_opt(raw, "lower_bound", int),
            upper_bound=_opt(raw, "upper_bound", int),
            scalar_increment=_opt(raw, "scalar_increment", int),
            allowed_values=tuple(allowed),
            min_length=_opt(raw, "min_length", int),
            max_length=_opt(raw, "max_length", int),
        )
    except TypeError as exc:
        raise RegistryError(f"attribute {name}: {exc}") from None
    _check_limits(definition)
    if kind is AttributeType.PASSWORD:
        if definition.default is not None:
            raise RegistryError(f"attribute {name}: a Password has no default")
    elif definition.default is None:
        raise RegistryError(f"attribute {name} needs a default")
    else:
        try:
            definition.validate(definition.default)
        except InvalidAttributeValue as exc:
            raise RegistryError(f"default of {exc.message}") from None
    return definition


def _check_limits(definition: AttributeDefinition) -> None:
    """Refuse bounds, steps, lengths and value lists that contradict themselves."""
    name, lower, upper = definition.name, definition.lower_bound, definition.upper_bound
    if lower is not None and upper is not None and lower > upper:
        raise RegistryError(f"attribute {name}: lower_bound is above upper_bound")
    if definition.scalar_increment is not None and definition.scalar_increment < 1:
        raise RegistryError(f"attribute {name}: scalar_increment must be at least 1")
    shortest, longest = definition.min_length, definition.max_length
    if shortest is not None and shortest < 0:
        raise RegistryError(f"attribute {name}: min_length must not be negative")
    if longest is not None and not 1 <= longest <= MAX_STRING_LENGTH:
        raise RegistryError(f"attribute {name}: max_length must be 1 to {MAX_STRING_LENGTH}")
    if shortest is not None and longest is not None and shortest > longest:
        raise RegistryError(f"attribute {name}: min_length is above max_length")
    if len(set(definition.allowed_values)) != len(definition.allowed_values):
        raise RegistryError(f"attribute {name}: allowed_values repeats a value")
    for value in definition.allowed_values:
        refused = first_refused_character(value)
        if refused is not None:
            raise RegistryError(f"attribute {name}: allowed value {value!r} holds"
                                f" U+{ord(refused):04X} ({_kind_of(refused)})")


def _opt(raw: dict[str, Any], key: str, kind: type) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{key} must be of type {kind.__name__}")
    return value
