"""AttributeRegistry.from_dict refusals and AttributeDefinition.validate for every type."""

from __future__ import annotations

from typing import Any

import pytest

from bios_ws.domain.registry import (
    MAX_STRING_LENGTH,
    AttributeDefinition,
    AttributeRegistry,
    AttributeType,
)
from bios_ws.errors import InvalidAttributeValue, RegistryError, UnknownAttribute


def attribute(name: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "display_name": name, **fields}


def _registry(*attributes: dict[str, Any]) -> AttributeRegistry:
    return AttributeRegistry.from_dict({"registry_version": "t", "attributes": list(attributes)})


def _refused(fragment: str, *attributes: dict[str, Any]) -> None:
    with pytest.raises(RegistryError) as caught:
        _registry(*attributes)
    assert fragment in caught.value.message


# -- from_dict ---------------------------------------------------------------


def test_a_good_registry_keeps_every_field() -> None:
    reg = _registry(attribute("Delay", "Integer", lower_bound=10, upper_bound=100,
                              scalar_increment=5, default=20, help_text="h",
                              reset_required=True))
    d = reg.get("Delay")
    assert (d.type, d.lower_bound, d.upper_bound, d.scalar_increment) == (
        AttributeType.INTEGER, 10, 100, 5)
    assert (d.default, d.help_text, d.reset_required, d.read_only) == (20, "h", True, False)


@pytest.mark.parametrize("document", [
    None, [], "text", {"registry_version": "1"}, {"registry_version": "1", "attributes": {}},
])
def test_document_shape_is_refused(document: object) -> None:
    with pytest.raises(RegistryError):
        AttributeRegistry.from_dict(document)


@pytest.mark.parametrize("version", [None, "", 3])
def test_registry_version_is_required(version: object) -> None:
    with pytest.raises(RegistryError, match="registry_version"):
        AttributeRegistry.from_dict({"registry_version": version, "attributes": []})


def test_unknown_top_level_keys_are_refused() -> None:
    with pytest.raises(RegistryError, match="unknown keys: extra"):
        AttributeRegistry.from_dict({"registry_version": "1", "attributes": [], "extra": 1})


def test_unknown_attribute_keys_are_refused() -> None:
    _refused("unknown keys: colour, size",
             attribute("A", "Boolean", default=True, colour="red", size=1))


def test_attribute_must_be_an_object() -> None:
    _refused("attribute #0 is not an object", ["A", "Boolean"])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [None, "", "1abc", "has space", "a-b", "x" * 65, 7, "Abc\n"])
def test_bad_names_are_refused(name: object) -> None:
    _refused("needs a name", {"name": name, "type": "Boolean", "default": True})


@pytest.mark.parametrize("kind", ["Float", "boolean", None, 1, ["Integer"]])
def test_bad_types_are_refused(kind: object) -> None:
    _refused("unknown type", {"name": "A", "type": kind, "default": True})


def test_duplicate_names_are_refused() -> None:
    _refused("defined twice", attribute("A", "Boolean", default=True),
             attribute("A", "Boolean", default=False))


def test_enumeration_without_values_is_refused() -> None:
    _refused("needs allowed_values", attribute("E", "Enumeration", default="x"))
    _refused("needs allowed_values", attribute("E", "Enumeration", allowed_values=[],
                                               default="x"))


@pytest.mark.parametrize("values", ["On", ["On", 1], [None]])
def test_allowed_values_must_be_strings(values: object) -> None:
    _refused("list of strings", attribute("E", "Enumeration", allowed_values=values,
                                          default="On"))


def test_repeated_allowed_values_are_refused() -> None:
    _refused("repeats", attribute("E", "Enumeration", allowed_values=["On", "On"],
                                  default="On"))


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"type": "Integer", "lower_bound": 0, "upper_bound": 10, "default": 11}, "at most 10"),
    ({"type": "Integer", "lower_bound": 5, "default": 4}, "at least 5"),
    ({"type": "Integer", "lower_bound": 0, "scalar_increment": 5, "default": 3}, "steps of 5"),
    ({"type": "Integer", "default": True}, "expects an Integer"),
    ({"type": "Integer", "default": "3"}, "expects an Integer"),
    ({"type": "Enumeration", "allowed_values": ["On"], "default": "Off"}, "accepts only"),
    ({"type": "String", "max_length": 3, "default": "long"}, "at most 3"),
    ({"type": "Boolean", "default": 0}, "expects a Boolean"),
])
def test_default_must_be_valid(fields: dict[str, Any], fragment: str) -> None:
    _refused(fragment, {"name": "A", **fields})


@pytest.mark.parametrize("kind", ["Boolean", "Integer", "String"])
def test_non_password_needs_a_default(kind: str) -> None:
    _refused("needs a default", attribute("A", kind))


def test_password_with_default_is_refused() -> None:
    _refused("has no default", attribute("P", "Password", default="secret123"))


@pytest.mark.parametrize(("key", "value"), [
    ("read_only", "yes"), ("reset_required", 1), ("lower_bound", 1.5), ("lower_bound", True),
    ("max_length", "8"), ("display_name", 3), ("help_text", ["h"]),
])
def test_field_types_are_checked(key: str, value: object) -> None:
    _refused(key, attribute("A", "Integer", default=0, **{key: value}))


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"lower_bound": 10, "upper_bound": 1}, "lower_bound is above upper_bound"),
    ({"scalar_increment": 0}, "scalar_increment"),
    ({"scalar_increment": -5}, "scalar_increment"),
])
def test_contradictory_integer_limits_are_refused(fields: dict[str, Any], fragment: str) -> None:
    _refused(fragment, attribute("A", "Integer", default=5, **fields))


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"min_length": -1}, "min_length"),
    ({"max_length": 0}, "max_length"),
    ({"max_length": MAX_STRING_LENGTH + 1}, "max_length"),
    ({"min_length": 9, "max_length": 8}, "min_length is above max_length"),
])
def test_contradictory_lengths_are_refused(fields: dict[str, Any], fragment: str) -> None:
    _refused(fragment, attribute("P", "Password", **fields))


def test_from_json_refuses_bad_json() -> None:
    with pytest.raises(RegistryError, match="not valid JSON"):
        AttributeRegistry.from_json("{nope")


def test_unknown_attribute_lookup() -> None:
    with pytest.raises(UnknownAttribute) as caught:
        _registry().get("Nope")
    assert caught.value.attribute == "Nope"


def test_defaults_leave_out_passwords_and_writable_leave_out_read_only() -> None:
    reg = _registry(attribute("A", "Boolean", default=True),
                    attribute("R", "String", default="v", read_only=True),
                    attribute("P", "Password"))
    assert reg.defaults() == {"A": True, "R": "v"}
    assert reg.writable_defaults() == {"A": True}


# -- validate ----------------------------------------------------------------


def _definition(kind: AttributeType, **fields: Any) -> AttributeDefinition:
    return AttributeDefinition(name="A", type=kind, display_name="A", **fields)


def _invalid(definition: AttributeDefinition, value: object, fragment: str) -> None:
    with pytest.raises(InvalidAttributeValue) as caught:
        definition.validate(value)
    assert caught.value.attribute == "A"
    assert fragment in caught.value.message


def test_boolean_accepts_only_bool() -> None:
    d = _definition(AttributeType.BOOLEAN)
    assert d.validate(True) is True and d.validate(False) is False
    for value in (0, 1, "true", None):
        _invalid(d, value, "expects a Boolean")


def test_integer_refuses_bool_float_and_strings() -> None:
    d = _definition(AttributeType.INTEGER)
    assert d.validate(-7) == -7
    for value in (True, False, 1.0, "1", None):
        _invalid(d, value, "expects an Integer")


def test_integer_bounds_are_inclusive() -> None:
    d = _definition(AttributeType.INTEGER, lower_bound=10, upper_bound=100)
    assert d.validate(10) == 10 and d.validate(100) == 100
    _invalid(d, 9, "at least 10")
    _invalid(d, 101, "at most 100")


def test_scalar_increment_counts_from_the_lower_bound() -> None:
    d = _definition(AttributeType.INTEGER, lower_bound=10, upper_bound=100, scalar_increment=5)
    assert [d.validate(v) for v in (10, 15, 100)] == [10, 15, 100]
    _invalid(d, 12, "steps of 5")
    unbounded = _definition(AttributeType.INTEGER, scalar_increment=3)
    assert unbounded.validate(-6) == -6
    _invalid(unbounded, 4, "steps of 3")


def test_enumeration_accepts_only_its_values_case_sensitively() -> None:
    d = _definition(AttributeType.ENUMERATION, allowed_values=("Uefi", "Bios"))
    assert d.validate("Bios") == "Bios"
    _invalid(d, "uefi", "accepts only: Uefi, Bios")
    _invalid(d, 1, "expects a Enumeration")


def test_string_length_limits() -> None:
    d = _definition(AttributeType.STRING, min_length=2, max_length=4)
    assert d.validate("abcd") == "abcd"
    _invalid(d, "abcde", "at most 4")
    _invalid(d, "a", "at least 2")
    _invalid(d, 5, "expects a String")


def test_string_without_max_length_has_a_global_cap() -> None:
    d = _definition(AttributeType.STRING)
    assert d.validate("x" * MAX_STRING_LENGTH)
    _invalid(d, "x" * (MAX_STRING_LENGTH + 1), f"at most {MAX_STRING_LENGTH}")
    big = _definition(AttributeType.STRING, max_length=MAX_STRING_LENGTH * 4)
    _invalid(big, "x" * (MAX_STRING_LENGTH + 1), f"at most {MAX_STRING_LENGTH}")


@pytest.mark.parametrize(("value", "point"), [
    ("a\nb", "U+000A"), ("tab\there", "U+0009"), ("nul\x00", "U+0000"),
    ("esc\x1b[2J", "U+001B"), ("del\x7f", "U+007F"), ("c1\x85", "U+0085"),
    ("csi\x9b", "U+009B"), ("c1\x80", "U+0080"), ("c1\x9f", "U+009F"),
])
def test_control_characters_are_refused_by_code_point(value: str, point: str) -> None:
    _invalid(_definition(AttributeType.STRING), value, f"A: {point} is not allowed")
    _invalid(_definition(AttributeType.PASSWORD), value, f"A: {point} is not allowed")


@pytest.mark.parametrize("point", [
    0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069,
    0x200E, 0x200F, 0x061C,
])
def test_bidirectional_controls_are_refused(point: int) -> None:
    _invalid(_definition(AttributeType.STRING), f"invoice{chr(point)}fdp.exe",
             f"A: U+{point:04X} is not allowed (a bidirectional control)")


def test_neighbours_of_the_refused_ranges_are_accepted() -> None:
    d = _definition(AttributeType.STRING)
    for point in (0x20, 0x7E, 0xA0, 0x2029, 0x202F, 0x2065, 0x206A, 0x200D, 0x2010, 0x061B):
        assert d.validate(f"a{chr(point)}b") == f"a{chr(point)}b"


def test_a_registry_cannot_allow_a_control_character() -> None:
    _refused("U+001B", attribute("Mode", "Enumeration", allowed_values=["A", "B\x1b"],
                                 default="A"))
    _refused("U+202E", attribute("Mode", "Enumeration", allowed_values=["A\u202e"],
                                 default="A\u202e"))
    _refused("U+0085", attribute("Tag", "String", default="x\x85"))


def test_lone_surrogates_are_refused() -> None:
    _invalid(_definition(AttributeType.STRING), "a\udc80b", "valid Unicode")


def test_unicode_text_is_accepted() -> None:
    d = _definition(AttributeType.STRING, max_length=8)
    assert d.validate("Büro-Ω") == "Büro-Ω"


def test_password_is_length_checked() -> None:
    d = _definition(AttributeType.PASSWORD, min_length=8, max_length=32)
    assert d.is_password
    assert d.validate("correct horse") == "correct horse"
    _invalid(d, "short", "at least 8")
    _invalid(d, "p" * 33, "at most 32")
